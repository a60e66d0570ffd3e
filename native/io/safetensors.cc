#include "io/safetensors.h"

#include <ATen/core/grad_mode.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>

#include "core/error.h"
#include "nn/quantized_weight.h"

namespace nodetune::io {
namespace {

c10::ScalarType dtype_of(const TensorEntry& e) {
  if (e.dtype == "F32") return at::kFloat;
  if (e.dtype == "F16") return at::kHalf;
  if (e.dtype == "BF16") return at::kBFloat16;
  if (e.dtype == "F64") return at::kDouble;
  if (e.dtype == "I8") return at::kChar;
  if (e.dtype == "U8") return at::kByte;
  if (e.dtype == "I32") return at::kInt;
  if (e.dtype == "I64") return at::kLong;
  fail("ERR_CHECKPOINT", e.file + ": tensor " + e.param + " has unsupported dtype " + e.dtype);
}

class Mapping {
 public:
  explicit Mapping(const std::string& file) : file_(file) {
    fd_ = ::open(file.c_str(), O_RDONLY);
    if (fd_ < 0) fail("ERR_IO", file + ": cannot open (" + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(fd_, &st) != 0) fail("ERR_IO", file + ": cannot stat (" + std::strerror(errno) + ")");
    size_ = st.st_size;
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (p == MAP_FAILED) fail("ERR_IO", file + ": cannot map (" + std::strerror(errno) + ")");
      data_ = static_cast<uint8_t*>(p);
    }
  }
  ~Mapping() {
    if (data_) ::munmap(data_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  int64_t size() const { return size_; }
  const uint8_t* data() const { return data_; }
  // Drops the pages of [offset, offset + length) from this process's memory.
  void release(int64_t offset, int64_t length) const {
    const int64_t page = ::sysconf(_SC_PAGESIZE);
    const int64_t start = offset / page * page;
    ::madvise(data_ + start, offset + length - start, MADV_DONTNEED);
  }

 private:
  std::string file_;
  int fd_ = -1;
  int64_t size_ = 0;
  uint8_t* data_ = nullptr;
};

// Byte count and range of an entry against its dtype, shape and file.
void check_range(const TensorEntry& e, const Mapping& m) {
  const auto type = dtype_of(e);
  int64_t numel = 1;
  for (auto d : e.shape) numel *= d;
  if (numel * int64_t(c10::elementSize(type)) != e.length)
    fail("ERR_CHECKPOINT", e.file + ": tensor " + e.param + " spans " + std::to_string(e.length) +
                               " bytes, its dtype and shape need " + std::to_string(numel * c10::elementSize(type)));
  if (e.offset < 0 || e.length < 0 || e.offset + e.length > m.size())
    fail("ERR_CHECKPOINT", e.file + ": tensor " + e.param + " lies past the end of the file (bytes " +
                               std::to_string(e.offset) + ".." + std::to_string(e.offset + e.length) + " of " +
                               std::to_string(m.size()) + ")");
}

// The entry's bytes as a tensor: a view of the mapping, or a copy when they are not aligned for the dtype.
at::Tensor stage(const TensorEntry& e, const Mapping& m) {
  const auto type = dtype_of(e);
  const uint8_t* src = m.data() + e.offset;
  if (reinterpret_cast<uintptr_t>(src) % c10::elementSize(type) != 0) {
    at::Tensor staged = at::empty(e.shape, at::TensorOptions().dtype(type));
    std::memcpy(staged.data_ptr(), src, e.length);
    return staged;
  }
  return at::from_blob(const_cast<uint8_t*>(src), e.shape, at::TensorOptions().dtype(type));
}

}  // namespace

std::vector<at::Tensor> read_tensors(const std::vector<TensorEntry>& entries) {
  std::map<std::string, std::unique_ptr<Mapping>> files;
  for (const auto& e : entries) {
    if (!files.count(e.file)) files.emplace(e.file, std::make_unique<Mapping>(e.file));
    check_range(e, *files.at(e.file));
  }
  std::vector<at::Tensor> out;
  for (const auto& e : entries) {
    const Mapping& m = *files.at(e.file);
    out.push_back(stage(e, m).clone());
    if (e.length > 0) m.release(e.offset, e.length);
  }
  return out;
}

void load_tensors(nn::Params& params, const std::vector<TensorEntry>& entries) {
  std::map<std::string, std::unique_ptr<Mapping>> files;
  for (const auto& e : entries) {
    if (!files.count(e.file)) files.emplace(e.file, std::make_unique<Mapping>(e.file));
    const Mapping& m = *files.at(e.file);
    if (!params.has(e.param)) fail("ERR_CHECKPOINT", e.file + ": tensor " + e.param + " has no parameter to load into");
    const at::Tensor& p = params.get(e.param);
    if (e.shape != p.sizes().vec())
      fail("ERR_CHECKPOINT", e.file + ": tensor " + e.param + " has shape " + c10::str(at::IntArrayRef(e.shape)) +
                                 ", the config implies " + c10::str(p.sizes()));
    check_range(e, m);
  }
  at::NoGradGuard no_grad;
  for (const auto& e : entries) {
    const Mapping& m = *files.at(e.file);
    at::Tensor staged = stage(e, m);
    // A weight kept quantized is quantized from the mapped bytes, one tensor at a time (no full-precision copy).
    if (const nn::QuantizedWeight* q = params.quantized(e.param))
      params.set_quantized(e.param, nn::quantize_weight(staged, q->format, q->transposed, params.device()));
    else
      params.get(e.param).copy_(staged);
    if (e.length > 0) m.release(e.offset, e.length);
  }
}

int64_t write_safetensors(const nn::Params& params, const std::string& path, const std::string& header,
                          const std::vector<std::string>& names) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) fail("ERR_IO", path + ": cannot write (" + std::strerror(errno) + ")");
  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));
  int64_t written = 0;
  auto put = [&](const void* data, size_t bytes) {
    if (bytes && std::fwrite(data, 1, bytes, f.get()) != bytes)
      fail("ERR_IO", path + ": write failed (" + std::strerror(errno) + ")");
    written += bytes;
  };
  put(len, 8);
  put(header.data(), header.size());
  for (const auto& name : names) {
    at::Tensor t = params.values(name).detach().to(at::kCPU).contiguous();  // a quantized weight: dequantized
    put(t.data_ptr(), t.nbytes());
  }
  if (std::fflush(f.get()) != 0) fail("ERR_IO", path + ": flush failed");
  return written;
}

}  // namespace nodetune::io
