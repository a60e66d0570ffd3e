#include "nn/linear_cross_entropy.h"

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

#include "nn/cross_entropy_rows.h"
#include "nn/train_fusions.h"

namespace nodetune::nn {
namespace {

// Rows per chunk: the chunk's logits stay within 16 MB (float32), under glibc's largest mmap threshold (32 MB),
// so the buffer is reused from one chunk and step to the next instead of being mapped afresh and page-faulted
// in each time; at least 128 rows so the matrix products keep their efficiency.
int64_t chunk_rows(int64_t vocab) { return std::max<int64_t>(128, (int64_t(4) << 20) / std::max<int64_t>(vocab, 1)); }

// out = g @ w, the logits' gradient [len, V] times the head [V, H]: a product over the vocabulary (K = V). With a
// vocabulary of 128k-152k rows, oneDNN's bfloat16 product (LibTorch 1.13, AMX) runs it at 44-55% of its peak
// where the same product in pieces of at most 65,536 vocabulary rows, each added into the last, runs at 65-70%:
// 100-106 against 73-79 ms at the 0.5B shape (255 rows, H 896), 127-147 against 96-104 ms at the 1B shape (130
// rows, H 2048), measured alternately on 2 threads. The partial sums are rounded to bfloat16 once per piece (two
// or three pieces), within bfloat16's tolerance for a gradient.
void product_over_vocab(at::Tensor& out, const at::Tensor& g, const at::Tensor& w) {
  constexpr int64_t kPiece = 65536;
  const int64_t vocab = w.size(0);
  if (vocab <= kPiece) {
    at::mm_out(out, g, w);
    return;
  }
  const int64_t pieces = (vocab + kPiece - 1) / kPiece, size = (vocab + pieces - 1) / pieces;
  at::mm_out(out, g.narrow(1, 0, size), w.narrow(0, 0, size));
  for (int64_t s = size; s < vocab; s += size) {
    const int64_t n = std::min(size, vocab - s);
    out.addmm_(g.narrow(1, s, n), w.narrow(0, s, n));
  }
}

struct LinearCrossEntropy : public torch::autograd::Function<LinearCrossEntropy> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h, const at::Tensor& w,
                            const at::Tensor& labels, c10::ScalarType compute) {
    // The dtypes below are chosen here: autocast would only recast what is already cast.
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const int64_t n = h.size(0);
    int64_t step = chunk_rows(w.size(0));
    const bool same = compute == h.scalar_type();
    at::Tensor hx = h.to(compute), wx = w.to(compute);  // no copies in float32
    at::Tensor valid = labels != -100;
    at::Tensor scale = valid.to(at::kFloat) / valid.sum().to(at::kFloat);  // 1/count on counted rows, else 0
    at::Tensor target = labels.clamp_min(0).unsqueeze(1);
    const bool need_h = h.requires_grad(), need_w = w.requires_grad();
    at::Tensor grad_h = need_h ? at::empty_like(h) : at::Tensor();
    at::Tensor grad_w;  // the first chunk's product, in w's dtype; later chunks add to it
    at::Tensor total = at::zeros({}, h.options().dtype(at::kFloat));
    // The fused rows (nn/cross_entropy_rows.h): the chunk's logits in one buffer of the products' dtype, reused by
    // every chunk, become their gradient in place; no float32 copy. Otherwise LibTorch's ops, as below.
    const bool fused = train_fusions_apply(hx);
    // One buffer of up to 32 MB serves every chunk there (130 rows of bf16 logits at the 1B shape's 128k
    // vocabulary): the buffer is live on top of every saved activation when the forward ends, the step's peak at 1B.
    if (fused) step = std::max(step, (int64_t(32) << 20) / int64_t(hx.element_size()) / std::max<int64_t>(w.size(0), 1));
    // Below a hidden size of 1024 (the 0.5B shape: 896), at least 256 rows a chunk (78 MB of bf16 logits at a 152k
    // vocabulary, small beside such a model's peak): measured with LibTorch 1.13's oneDNN on 2 threads, the logits' product runs
    // at 359 against 337 GFLOP/s and their gradient's (K = the vocabulary) at 400 against 349 at 128 rows. At 2048
    // (the 1B shape) the gradient's product gains as much (372 against 292), but the buffer would double to 66 MB
    // at the step's memory peak, so it stays at 32 MB there.
    if (fused && h.size(-1) < 1024) step = std::max<int64_t>(step, 256);
    at::Tensor buffer = fused ? at::empty({std::min(step, n), w.size(0)}, hx.options()) : at::Tensor();
    for (int64_t start = 0; start < n; start += step) {
      const int64_t len = std::min(step, n - start);
      at::Tensor hc = hx.narrow(0, start, len), tc = target.narrow(0, start, len), sc = scale.narrow(0, start, len);
      at::Tensor g;
      if (fused) {
        g = buffer.narrow(0, 0, len);
        at::mm_out(g, hc, wx.t());
        total += cross_entropy_rows(g, tc, sc, need_h || need_w);
        if (!need_h && !need_w) continue;
      } else {
        // Log-probabilities in float32 in one fused pass (logsumexp would take four), then the logits are gone.
        at::Tensor logits = at::_log_softmax(at::mm(hc, wx.t()).to(at::kFloat), 1, false);  // [len, V]
        total -= (logits.gather(1, tc).squeeze(1) * sc).sum();
        if (!need_h && !need_w) continue;
        // d loss / d logits = (softmax - one_hot) * scale, built in the log-probabilities' memory.
        logits.exp_();
        logits.scatter_add_(1, tc, at::full({len, 1}, -1.0, logits.options()));
        logits.mul_(sc.unsqueeze(1));
        g = logits.to(compute);
      }
      if (need_h) {
        at::Tensor out = grad_h.narrow(0, start, len);
        at::Tensor product = same ? out : at::empty({len, wx.size(1)}, hx.options());
        if (fused && compute != at::kFloat) product_over_vocab(product, g, wx);
        else at::mm_out(product, g, wx);
        if (!same) out.copy_(product);
      }
      if (need_w) {
        if (!grad_w.defined()) grad_w = at::mm(g.t(), hc).to(w.scalar_type());
        else if (compute == w.scalar_type()) grad_w.addmm_(g.t(), hc);
        else grad_w.add_(at::mm(g.t(), hc));
      }
    }
    ctx->saved_data["grad_h"] = grad_h;
    ctx->saved_data["grad_w"] = grad_w;
    return total;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // The saved gradients leave the context, so they are the only reference to their memory: scaled in place (not
    // at all for the plain loss's gradient of 1), and taken as they are by the weight's gradient (a tied embedding's
    // lookup adds its rows to it in place), where a product with g would be a new [vocab, hidden] table.
    const at::Tensor& g = grads[0];
    at::Tensor grad_h = ctx->saved_data["grad_h"].toTensor(), grad_w = ctx->saved_data["grad_w"].toTensor();
    ctx->saved_data.clear();
    const bool one = g.device().is_cpu() && g.numel() == 1 && g.item<double>() == 1.0;
    for (at::Tensor* t : {&grad_h, &grad_w})
      if (t->defined() && !one) t->mul_(g);
    return {grad_h, grad_w, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor linear_cross_entropy(const at::Tensor& h, const at::Tensor& w, const at::Tensor& labels,
                                c10::ScalarType compute) {
  return LinearCrossEntropy::apply(h, w, labels, compute);
}

}  // namespace nodetune::nn
