#include "nn/kv_cache.h"

#include <algorithm>

namespace nodetune::nn {
namespace {

// A buffer like `like` ([B, H, *, D]) with `rows` rows and `capacity` positions.
at::Tensor buffer(const at::Tensor& like, int64_t rows, int64_t capacity) {
  return at::zeros({rows, like.size(1), capacity, like.size(3)}, like.options());
}

}  // namespace

std::pair<at::Tensor, at::Tensor> KvCache::append(size_t layer, const at::Tensor& nk, const at::Tensor& nv) {
  if (k.size() <= layer) k.resize(layer + 1), v.resize(layer + 1);
  at::Tensor& bk = k[layer];
  at::Tensor& bv = v[layer];
  const int64_t t = nk.size(2), need = length + t;
  if (!bk.defined() || bk.size(2) < need) {
    const int64_t cap = std::max({need, reserve, bk.defined() ? 2 * bk.size(2) : int64_t(0)});
    at::Tensor gk = buffer(nk, nk.size(0), cap), gv = buffer(nv, nv.size(0), cap);
    if (bk.defined() && length > 0) {
      gk.narrow(2, 0, length).copy_(bk.narrow(2, 0, length));
      gv.narrow(2, 0, length).copy_(bv.narrow(2, 0, length));
    }
    bk = gk, bv = gv;
  }
  bk.narrow(2, length, t).copy_(nk);
  bv.narrow(2, length, t).copy_(nv);
  // The first call attends over exactly what it computed (the same tensors as without a cache).
  if (length == 0) return {nk, nv};
  return {bk.narrow(2, 0, need), bv.narrow(2, 0, need)};
}

void KvCache::select_rows(const at::Tensor& index) {
  for (auto* list : {&k, &v, &cross_k, &cross_v})
    for (auto& t : *list)
      if (t.defined()) t = t.index_select(0, index.to(t.device()));
  if (encoder_out.defined()) encoder_out = encoder_out.index_select(0, index.to(encoder_out.device()));
}

void KvCache::drop_front(int64_t n) {
  if (n <= 0) return;
  for (auto* list : {&k, &v})
    for (auto& t : *list)
      if (t.defined()) {
        at::Tensor moved = buffer(t, t.size(0), t.size(2));
        moved.narrow(2, 0, length - n).copy_(t.narrow(2, n, length - n));
        t = moved;
      }
  length -= n;
}

void KvCache::join(const KvCache& other) {
  if (rows() == 0) {
    k = other.k, v = other.v, length = other.length;
    return;
  }
  const int64_t len = std::max(length, other.length);
  const int64_t cap = std::max({capacity(), other.capacity(), len + 1});
  const int64_t a = rows();
  for (size_t i = 0; i < k.size(); ++i) {
    for (auto [mine, theirs] : {std::pair{&k[i], &other.k[i]}, std::pair{&v[i], &other.v[i]}}) {
      at::Tensor joined = buffer(*mine, a + theirs->size(0), cap);
      joined.narrow(0, 0, a).narrow(2, len - length, length).copy_(mine->narrow(2, 0, length));
      joined.narrow(0, a, theirs->size(0)).narrow(2, len - other.length, other.length).copy_(theirs->narrow(2, 0, other.length));
      *mine = joined;
    }
  }
  length = len;
}

}  // namespace nodetune::nn
