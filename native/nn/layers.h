// Stateless building blocks shared by the architectures: norms, activations, attention, masks, rotary
// embeddings. Parameters come from Params by name.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "nn/config.h"
#include "nn/params.h"

namespace nodetune::nn {

// x @ W^T + b with W [out, in] (nn.Linear); bias looked up only when `bias` is true.
at::Tensor linear(const Params& p, const std::string& name, const at::Tensor& x, bool bias);
// Several nn.Linear layers on the same input (q/k/v, gate/up) as ONE matrix product over their weights
// concatenated along the output dimension, then split; each part goes through the adapters of its own layer
// as linear() would. Small projections waste most of a GEMM's time on overhead: on 1024 tokens x 256, one
// [256 -> 768] product took 4.5 ms against 8.6 ms for three [256 -> 256] ones (OpenBLAS, 2 cores). Inputs of
// fewer than 64 rows (decoding) use separate products (there a weight copy would cost more than it saves), except
// steps of at most 4 rows that take the fused decoding ops (nn/decode_ops.h): one product over the rows of a
// bfloat16 weight block (no copy) or over the quantized weights one after another (quantized_linear_rows).
std::vector<at::Tensor> fused_linear(const Params& p, const std::vector<std::string>& names, const at::Tensor& x,
                                     bool bias);
// linear() of swiglu(gate, up) (the down projection of a gated MLP): the adapters may build that input themselves
// (nn/hooks.h swiglu_linear), so that LoRA keeps gate and up for backward instead of it.
at::Tensor swiglu_linear(const Params& p, const std::string& name, const at::Tensor& gate, const at::Tensor& up,
                         bool bias);
// x @ W + b with W [in, out] (GPT-2's Conv1D).
at::Tensor conv1d(const Params& p, const std::string& name, const at::Tensor& x);
// A sublayer's output passed through the adapters at `site` (see nn/hooks.h); unchanged without any.
at::Tensor sublayer(const Params& p, const std::string& site, const at::Tensor& h);
// [prefix (broadcast over the batch); x] along the sequence: x [B, T, H], prefix [n, H] or undefined.
at::Tensor with_prefix(const at::Tensor& prefix, const at::Tensor& x);
// The rows of a word embedding for token ids. While the embedding trains, the lookup's gradient is sparse (a row
// per distinct id, summed as LibTorch's dense backward sums them): the tied LM head's dense gradient takes it in
// place, with the same values, where a dense one is a zero-filled [vocab, hidden] table and an add of two such
// (0.4 s of a 0.5B full fine-tuning step in bf16, measured). A gradient that stays sparse (no tied head reads the
// table) is made dense where gradients are read (densify_gradients; lossAndGradients).
at::Tensor token_embedding(const at::Tensor& table, const at::Tensor& ids);
// Every sparse gradient among `params` made dense (token_embedding's, when nothing dense was added to it).
void densify_gradients(const std::vector<at::Tensor>& params);
at::Tensor layer_norm(const Params& p, const std::string& name, const at::Tensor& x, double eps);
// Llama RMSNorm: normalised in float32, cast back, then scaled.
at::Tensor rms_norm(const Params& p, const std::string& name, const at::Tensor& x, double eps);
at::Tensor activation(const std::string& act, const at::Tensor& x);

// Attention of q [B, H, T, D] over k, v [B, Hkv, S, D] (Hkv divides H), with an additive mask
// broadcastable to [B, 1, T, S] (or undefined). Softmax runs in float32.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                  double scale, double dropout, bool training);

// Additive mask [B, 1, T, S] for T queries after `past` cached positions: key j is visible when the
// attention mask [B, S] allows it and (causal) j <= past + i (and within the sliding window, if any).
at::Tensor additive_mask(const at::Tensor& attention_mask, int64_t batch, int64_t t, int64_t past, bool causal,
                         int64_t sliding_window, c10::ScalarType dtype, c10::Device device);

// Decoder positions from the attention mask (cumsum - 1; padding gets 1), the last T columns.
at::Tensor positions_from_mask(const at::Tensor& attention_mask, int64_t t);

// Rotary embeddings (rotate-half convention): cos, sin [B, 1, T, D] for the given positions [B, T].
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const ModelConfig& c, const at::Tensor& positions,
                                               c10::ScalarType dtype);
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace nodetune::nn
