// The product of a few input rows (decoding) with an int8 weight [n, k] (per-row scale, nn/quantized_weight.h),
// reading the int8 bytes directly. Two schemes:
//  - q8 (llama.cpp's Q8_0 for the input): each input row is rounded to int8 in blocks of 32, each block with its own
//    float scale d = absmax / 127; each block's product is an exact integer dot product, scaled by d and the
//    weight row's scale. Kernels: AVX512-VNNI (vpdpbusd on 256-bit registers), AVX2 (vpmaddubsw +
//    vpmaddwd), both 32 weights a block, a portable loop. The input's rounding moves output o by at most
//      scale[o] * sum over blocks b of (d_b / 2) * sum_{i in b} |w[o, i]|
//    (each input element moves by at most d_b / 2; the integer sums are exact), plus float32 rounding.
//  - exact: the input stays float32, each int8 weight widened to float32 (AVX2 + FMA, or a portable loop): equal to
//    dequantize-then-multiply up to float32 rounding.
// The kernel in use is chosen per process: the best q8 kernel the CPU has (the exact float loop without AVX2), unless
// NODETUNE_INT8_DECODE names one (read at first use) or set_int8_decode_kernel() does. q8 is the default because it
// decoded 1.1-1.2x faster than exact at a 1-1.6% change of the logits (docs/PERFORMANCE.md, test 58).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nodetune::nn {

// Rows of x a product takes (more: the caller dequantizes and multiplies).
constexpr int64_t kInt8DecodeMaxRows = 4;

// Kernel names: "q8-vnni", "q8-avx2", "exact-avx2", "exact" (portable), "q8" (portable); "auto" chooses.
// Those this CPU runs, preferred first.
std::vector<std::string> int8_decode_kernels();
// The kernel products use now (a name from the list above, never "auto").
std::string int8_decode_kernel();
// Sets the kernel ("auto": the first of int8_decode_kernels()); ERR_ARGUMENT for an unknown name or one this CPU
// cannot run. Returns the previous kernel.
std::string set_int8_decode_kernel(const std::string& name);

// y [m, n] (float32, row-major) = x [m, k] @ (w * scale)^T for 1 <= m <= kInt8DecodeMaxRows, with `kernel` ("" for
// the current one); rows of w split over LibTorch's intra-op threads (one where OpenBLAS owns the cores).
void int8_decode_product(const float* x, int64_t m, const int8_t* w, const float* scale, int64_t k, int64_t n, float* y,
                         const std::string& kernel = "");

}  // namespace nodetune::nn
