// What the fused row-wise training ops (nn/swiglu.cc, nn/rms_norm.cc) share: a tensor seen as rows of its last
// dimension without copying where its strides allow, and eight float32 lanes read from and written to memory of
// the tensor's element type (float32, or bfloat16 through nn/simd.h's load_bf16x8 / store_bf16x8), so one kernel
// template serves both dtypes, computing in float32 and rounding once to the element type.
#pragma once
#include <ATen/ATen.h>

#include <algorithm>

#include "nn/simd.h"

namespace nodetune::nn {

// t as [rows, D] (D = t.size(-1) > 0) with unit stride along D and any row stride: a view where t's strides allow
// one (a split of a wider product's output, say), else a contiguous copy.
inline at::Tensor as_rows(const at::Tensor& t) {
  at::Tensor r = t.reshape({-1, t.size(-1)});
  return r.stride(1) == 1 ? r : r.contiguous();
}

// Rows per piece when the rows of width d are split over threads (core/workers.h's parallel_range): ~32K elements,
// so a small input stays on one thread. (LibTorch's at::parallel_for would stay on one thread: this Debian LibTorch
// parallelises through OpenMP, and its inline parallel_for forks only in code compiled with -fopenmp.)
inline int64_t piece_rows(int64_t d) { return std::max<int64_t>(1, 32768 / d); }

#ifdef NODETUNE_X86_KERNELS
template <class T>
struct Lanes;

template <>
struct Lanes<float> {
  __attribute__((target("avx2,fma"))) static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  __attribute__((target("avx2,fma"))) static void store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
};

template <>
struct Lanes<c10::BFloat16> {
  __attribute__((target("avx2,fma"))) static __m256 load(const c10::BFloat16* p) {
    return load_bf16x8(reinterpret_cast<const uint16_t*>(p));
  }
  __attribute__((target("avx2,fma"))) static void store(c10::BFloat16* p, __m256 v) {
    store_bf16x8(reinterpret_cast<uint16_t*>(p), v);
  }
};
#endif

}  // namespace nodetune::nn
