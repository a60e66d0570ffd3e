#include "core/runtime.h"

#include <atomic>

#include <ATen/Parallel.h>
#include <ATen/ATen.h>
#include <dlfcn.h>
#include <torch/version.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "core/device.h"
#include "core/error.h"

namespace nodetune {
namespace {

// Shared libraries mapped into this process whose file name contains `needle`.
std::vector<std::string> mapped_libraries(const std::string& needle) {
  std::vector<std::string> found;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    auto base = path.substr(path.rfind('/') + 1);
    if (base.find(needle) == std::string::npos) continue;
    bool seen = false;
    for (const auto& f : found) seen = seen || f == path;
    if (!seen) found.push_back(path);
  }
  return found;
}

// A symbol from an already-loaded library (never loads a new one).
void* loaded_symbol(const std::string& library, const char* symbol) {
  void* handle = dlopen(library.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* sym = dlsym(handle, symbol);
  dlclose(handle);
  return sym;
}

BlasInfo detect_blas() {
  BlasInfo info;
  info.name = "unknown";
  auto openblas = mapped_libraries("openblas");
  auto mkl = mapped_libraries("mkl_");
  auto blas = mapped_libraries("libblas");
  auto blis = mapped_libraries("blis");
  if (!mkl.empty()) {
    info.name = "mkl";
    info.library = mkl.front();
  } else if (!openblas.empty()) {
    info.name = "openblas";
    info.library = openblas.front();
  } else if (!blas.empty()) {
    info.library = blas.front();
    // Debian's alternatives: libblas.so.3 points at openblas-pthread/, blis-*/ or blas/ (the reference BLAS).
    if (info.library.find("openblas") != std::string::npos) info.name = "openblas";
    else if (info.library.find("blis") != std::string::npos) info.name = "blis";
    else if (loaded_symbol(info.library, "openblas_get_num_threads") != nullptr) info.name = "openblas";
    else info.name = "reference";
  } else if (!blis.empty()) {
    info.name = "blis";
    info.library = blis.front();
  } else {
    // Statically linked (pytorch.org builds carry MKL inside libtorch_cpu).
    auto torch = mapped_libraries("libtorch_cpu");
    if (!torch.empty() && loaded_symbol(torch.front(), "mkl_get_max_threads") != nullptr) {
      info.name = "mkl";
      info.library = torch.front();
    }
  }
  if (!info.library.empty()) {
    using GetThreads = int (*)();
    if (auto f = reinterpret_cast<GetThreads>(loaded_symbol(info.library, "openblas_get_num_threads"))) info.threads = f();
    else if (auto g = reinterpret_cast<GetThreads>(loaded_symbol(info.library, "mkl_get_max_threads"))) info.threads = g();
    using GetName = char* (*)();
    if (auto f = reinterpret_cast<GetName>(loaded_symbol(info.library, "openblas_get_corename"))) info.kernel = f();
    if (auto f = reinterpret_cast<GetName>(loaded_symbol(info.library, "openblas_get_config"))) info.config = f();
  }
  return info;
}

}  // namespace

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  info.torch_version = TORCH_VERSION;
  info.cuda_available = cuda_available();
  if (info.cuda_available) info.cuda_devices = cuda_device_names();
  auto torch = mapped_libraries("libtorch_cpu");
  if (!torch.empty()) info.torch_library = torch.front();
  info.blas = detect_blas();
  info.intra_op_threads = at::get_num_threads();
  info.inter_op_threads = at::get_num_interop_threads();
  info.hardware_threads = static_cast<int>(std::thread::hardware_concurrency());
  return info;
}

void set_num_threads(int torch_threads, int blas_threads) {
  if (torch_threads > 0) at::set_num_threads(torch_threads);
  if (blas_threads > 0) {
    BlasInfo blas = detect_blas();
    if (blas.library.empty()) return;
    using SetThreads = void (*)(int);
    if (auto f = reinterpret_cast<SetThreads>(loaded_symbol(blas.library, "openblas_set_num_threads"))) f(blas_threads);
    else if (auto g = reinterpret_cast<SetThreads>(loaded_symbol(blas.library, "mkl_set_num_threads"))) g(blas_threads);
  }
}

namespace {
std::atomic<int> g_bf16_model_threads{0};
}  // namespace

void set_bf16_model_threads(int threads) { g_bf16_model_threads = threads > 0 ? threads : 0; }
int bf16_model_threads() { return g_bf16_model_threads; }

IntraOpThreads::IntraOpThreads(int threads) {
  if (threads <= 0 || threads == at::get_num_threads()) return;
  previous_ = at::get_num_threads();
  at::set_num_threads(threads);
}

IntraOpThreads::~IntraOpThreads() {
  if (previous_ > 0) at::set_num_threads(previous_);
}

double measure_matmul_gflops(int64_t n, int64_t iterations, const std::string& dtype, int threads) {
  if (n <= 0 || iterations <= 0) fail("ERR_ARGUMENT", "measureMatmul: n and iterations must be positive");
  if (dtype != "float32" && dtype != "bfloat16")
    fail("ERR_ARGUMENT", "measureMatmul: dtype must be 'float32' or 'bfloat16', got '" + dtype + "'");
  at::manual_seed(0);
  const auto type = dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
  auto a = at::randn({n, n}).to(type);
  auto b = at::randn({n, n}).to(type);
  IntraOpThreads scope(threads);
  // Warm-up: thread pools, page faults, the library's kernel generation, clocks. One product was not enough: at 5
  // timed products a 2-thread bf16 peak read 263 GFLOP/s where 50 read 377 (AMD EPYC Zen 4), so the warm-up runs
  // until 0.2 s have passed (at least 3 products).
  auto c = at::mm(a, b);
  const auto warm = std::chrono::steady_clock::now();
  for (int i = 0; i < 2 || std::chrono::steady_clock::now() - warm < std::chrono::milliseconds(200); ++i) at::mm_out(c, a, b);
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iterations; ++i) at::mm_out(c, a, b);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return 2.0 * static_cast<double>(n) * n * n * iterations / seconds / 1e9;
}

double measure_read_gbps(int64_t bytes, int64_t iterations) {
  if (bytes < 4 || iterations <= 0) fail("ERR_ARGUMENT", "measureReadBandwidth: bytes (>= 4) and iterations must be positive");
  at::Tensor t = at::ones({bytes / 4}, at::kFloat);  // every page touched before timing
  at::Tensor sum = t.sum();                           // warm-up: thread pool
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iterations; ++i) sum = t.sum();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (sum.item<double>() != double(bytes / 4)) fail("ERR_STATE", "measureReadBandwidth: the sum came out wrong");
  return double(bytes / 4 * 4) * double(iterations) / seconds / 1e9;
}

}  // namespace nodetune
