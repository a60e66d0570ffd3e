// What this process runs on: LibTorch version, CUDA devices, BLAS, thread counts; thread settings.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nodetune {

struct BlasInfo {
  std::string name;     // "openblas" | "mkl" | "reference" | "blis" | "unknown"
  std::string library;  // path of the loaded shared library, when found
  int threads = -1;     // BLAS's own thread count, -1 when it cannot be asked
  std::string kernel;   // OpenBLAS: the kernel family it runs (openblas_get_corename: "Haswell", "SkylakeX", ...)
  std::string config;   // OpenBLAS: its build description (openblas_get_config: version, DYNAMIC_ARCH, ...)
};

struct RuntimeInfo {
  std::string torch_version;  // of the headers compiled against
  bool cuda_available = false;
  std::vector<std::string> cuda_devices;
  std::string torch_library;  // path of the loaded libtorch_cpu
  BlasInfo blas;
  int intra_op_threads = 0;
  int inter_op_threads = 0;
  int hardware_threads = 0;
};

RuntimeInfo runtime_info();

// Names of the CUDA devices (empty on a CPU-only LibTorch). Defined in cuda_info.cc.
std::vector<std::string> cuda_device_names();

// A CUDA device's compute capability (major, minor); (0, 0) where there is no such device or it cannot be asked.
std::pair<int, int> cuda_compute_capability(int64_t index);

// Sets LibTorch's intra-op threads and, where the BLAS can be told, the BLAS's own threads
// (a value <= 0 leaves that one alone).
void set_num_threads(int torch_threads, int blas_threads);

// LibTorch intra-op threads for every call on a bfloat16 model on the CPU (its products run in oneDNN on these
// threads; lib/threads.ts): 0 (the default) leaves the setting as it is. Read by the binding's model tasks.
void set_bf16_model_threads(int threads);
int bf16_model_threads();

// LibTorch's intra-op threads for one task, restored at the end of the scope (threads <= 0: unchanged). The
// setting is per calling thread under OpenMP (each thread's own ICV), so it must be made on the thread that runs
// the work: the compute thread (core/compute_thread.h). bf16 products run in oneDNN on these threads, not on the
// BLAS's (lib/threads.ts has the rule per precision).
class IntraOpThreads {
 public:
  explicit IntraOpThreads(int threads);
  ~IntraOpThreads();
  IntraOpThreads(const IntraOpThreads&) = delete;
  IntraOpThreads& operator=(const IntraOpThreads&) = delete;

 private:
  int previous_ = 0;
};

// Measures the matrix-product rate in `dtype` (float32: the BLAS; bfloat16: LibTorch's own kernels, oneDNN
// where it has them): `iterations` products of two n x n matrices. GFLOP/s. threads > 0 runs it with that many
// LibTorch intra-op threads (restored afterwards); otherwise with the current setting.
double measure_matmul_gflops(int64_t n, int64_t iterations, const std::string& dtype, int threads);

// Measures how fast LibTorch reads memory: `iterations` sums over a float32 tensor of `bytes` (the current thread
// setting). GB/s (1e9 bytes). The ceiling of batch-1 decoding, which reads every weight once per token.
double measure_read_gbps(int64_t bytes, int64_t iterations);

}  // namespace nodetune
