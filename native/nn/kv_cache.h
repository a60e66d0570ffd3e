// Keys and values of past positions for decoding, per layer: buffers [B, Hkv, capacity, D] allocated once and
// grown by doubling, written in place (no per-token concatenation of the whole cache). Rows may be selected
// (beam search, rows leaving a generation session) and joined right-aligned (rows entering one).
#pragma once
#include <ATen/ATen.h>

#include <utility>
#include <vector>

namespace nodetune::nn {

struct KvCache {
  // Per layer [B, Hkv, capacity, D]; positions [0, length) hold keys/values (T5's self-attention keeps exact-size
  // tensors, concatenated per step: seq2seq decoding keeps that path).
  std::vector<at::Tensor> k, v;
  std::vector<at::Tensor> cross_k, cross_v;  // encoder-decoders: cross-attention keys/values, computed once
  at::Tensor encoder_out;
  int64_t length = 0;
  // Positions the first allocation makes room for (0: exactly what the first call writes, then doubling).
  int64_t reserve = 0;

  int64_t past() const { return length; }
  // Writes k, v [B, Hkv, t, D] at positions [length, length + t) of `layer` (growing its buffers when full) and
  // returns the layer's keys and values for positions [0, length + t). Every layer appends the same t; then
  // advance(t).
  std::pair<at::Tensor, at::Tensor> append(size_t layer, const at::Tensor& k, const at::Tensor& v);
  void advance(int64_t t) { length += t; }
  // Keeps the rows `index` (int64, in that order) of every buffer.
  void select_rows(const at::Tensor& index);
  // Drops the first n positions of every row (columns no row attends to any more).
  void drop_front(int64_t n);
  // Appends the rows of `other` below these, both right-aligned on the longer length (the shorter side's first
  // positions are left unwritten: the caller's attention mask hides them).
  void join(const KvCache& other);
  int64_t capacity() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
  int64_t rows() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(0); }
};

}  // namespace nodetune::nn
