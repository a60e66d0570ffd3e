"""T5 / mT5 reference math in plain torch (float64), written from the T5 paper and transformers' documented
semantics, plus greedy and beam-search decoding without any cache. Writes two tiny checkpoints in the Hugging
Face layout and the expected values to test/fixtures/models/{t5-tiny,mt5-tiny}/:

    /usr/bin/python3 scripts/oracle/t5_reference.py

The tests never run Python; they read the committed files."""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from reference import ce, gelu_tanh, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "models")
ACTS = {"relu": torch.relu, "gelu_new": gelu_tanh, "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))}


def ffn_kind(c):
    proj = c.get("feed_forward_proj", "relu")
    gated = proj.startswith("gated-")
    act = proj[len("gated-"):] if gated else proj
    return gated, ("gelu_new" if act == "gelu" and gated else act)


def bucket(rel, bidirectional, num_buckets, max_distance):
    """Bucket of each relative position (key - query): exact for small distances, log-spaced up to max_distance."""
    out = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        out = out + (rel > 0).long() * num_buckets
        n = rel.abs()
    else:
        n = (-rel).clamp(min=0)
    exact = num_buckets // 2
    # The log-spaced part in float32, as the original implementation computes it.
    far = exact + (torch.log(n.float().clamp(min=1) / exact) / math.log(max_distance / exact) * (num_buckets - exact)).long()
    far = far.clamp(max=num_buckets - 1)
    return out + torch.where(n < exact, n, far)


def per_layer(c):
    return c["model_type"] == "umt5"  # umT5: a bias table in every block, not only block 0


def rel_bias(c, W, stack, q_len, k_len, bidirectional, i=0):
    ctx = torch.arange(q_len)[:, None]
    mem = torch.arange(k_len)[None, :]
    b = bucket(mem - ctx, bidirectional, c["relative_attention_num_buckets"], c["relative_attention_max_distance"])
    table = W[f"{stack}.block.{i if per_layer(c) else 0}.layer.0.SelfAttention.relative_attention_bias.weight"]
    return table[b].permute(2, 0, 1)[None]  # [1, H, q, k]


def norm(W, name, x, eps):
    return W[name + ".weight"] * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def mha(c, W, mod, x, mem, bias, allowed):
    """No 1/sqrt(d) scaling (T5 folds it into the init); `allowed` [B, 1, q, k] bool."""
    B, T, _ = x.shape
    H, D = c["num_heads"], c["d_kv"]
    split = lambda y: y.view(B, -1, H, D).transpose(1, 2)
    q = split(x @ W[mod + ".q.weight"].T)
    k = split(mem @ W[mod + ".k.weight"].T)
    v = split(mem @ W[mod + ".v.weight"].T)
    s = q @ k.transpose(-1, -2) + bias
    s = s.masked_fill(~allowed, -1e30)
    o = torch.softmax(s, -1) @ v
    return o.transpose(1, 2).reshape(B, T, H * D) @ W[mod + ".o.weight"].T


def ff(c, W, mod, x):
    gated, act = ffn_kind(c)
    f = ACTS[act]
    h = f(x @ W[mod + ".wi_0.weight"].T) * (x @ W[mod + ".wi_1.weight"].T) if gated else f(x @ W[mod + ".wi.weight"].T)
    return h @ W[mod + ".wo.weight"].T


def encode(c, W, ids, mask):
    eps = c["layer_norm_epsilon"]
    x = W["shared.weight"][ids]
    T = ids.shape[1]
    allowed = mask.bool()[:, None, None, :].expand(-1, 1, T, T)
    for i in range(c["num_layers"]):
        bias = rel_bias(c, W, "encoder", T, T, True, i)
        l = f"encoder.block.{i}.layer."
        x = x + mha(c, W, l + "0.SelfAttention", norm(W, l + "0.layer_norm", x, eps), norm(W, l + "0.layer_norm", x, eps), bias, allowed)
        x = x + ff(c, W, l + "1.DenseReluDense", norm(W, l + "1.layer_norm", x, eps))
    return norm(W, "encoder.final_layer_norm", x, eps)


def decode(c, W, enc, mask, dec_ids):
    eps = c["layer_norm_epsilon"]
    x = W["shared.weight"][dec_ids]
    T, S = dec_ids.shape[1], enc.shape[1]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, None]
    cross = mask.bool()[:, None, None, :].expand(-1, 1, T, S)
    for i in range(c.get("num_decoder_layers", c["num_layers"])):
        l = f"decoder.block.{i}.layer."
        bias = rel_bias(c, W, "decoder", T, T, False, i)
        h = norm(W, l + "0.layer_norm", x, eps)
        x = x + mha(c, W, l + "0.SelfAttention", h, h, bias, causal)
        x = x + mha(c, W, l + "1.EncDecAttention", norm(W, l + "1.layer_norm", x, eps), enc, 0.0, cross)
        x = x + ff(c, W, l + "2.DenseReluDense", norm(W, l + "2.layer_norm", x, eps))
    x = norm(W, "decoder.final_layer_norm", x, eps)
    if c.get("tie_word_embeddings", True):
        return (x * c["d_model"] ** -0.5) @ W["shared.weight"].T
    return x @ W["lm_head.weight"].T


def shift_right(c, labels):
    d = torch.full_like(labels, c.get("decoder_start_token_id", 0))
    d[:, 1:] = labels[:, :-1]
    return d.masked_fill(d == -100, c.get("pad_token_id", 0))


def greedy(c, W, ids, mask, n):
    enc = encode(c, W, ids, mask)
    seq = torch.full((ids.shape[0], 1), c.get("decoder_start_token_id", 0))
    for _ in range(n):
        nxt = decode(c, W, enc, mask, seq)[:, -1].argmax(-1)
        seq = torch.cat([seq, nxt[:, None]], 1)
    return seq[:, 1:].tolist()


def beam(c, W, ids, mask, beams, n, eos, lp):
    """Beam search, one input row at a time: 2 * beams candidates per step; a candidate ending in eos among the
    top `beams` becomes a hypothesis scored sum(logprob) / len**lp (len: generated tokens, eos included); the
    search of a row ends when `beams` hypotheses exist and none of the live beams can beat the worst (the
    non-early-stopping rule: best live sum / current length**lp), else after n steps, when the live beams
    are added as hypotheses too. Returns the best hypothesis per row."""
    out = []
    start = c.get("decoder_start_token_id", 0)
    for r in range(ids.shape[0]):
        enc = encode(c, W, ids[r : r + 1], mask[r : r + 1])
        m = mask[r : r + 1]
        live = [([], 0.0)] + [([], -1e9)] * (beams - 1)
        hyps = []
        done = False
        for step in range(n):
            seqs = torch.tensor([[start] + s for s, _ in live])
            logits = decode(c, W, enc.expand(len(live), -1, -1), m.expand(len(live), -1), seqs)[:, -1]
            lp_all = torch.log_softmax(logits, -1) + torch.tensor([s for _, s in live], dtype=torch.float64)[:, None]
            top, idx = lp_all.view(-1).topk(2 * beams)
            V = logits.shape[-1]
            nxt = []
            for rank in range(2 * beams):
                b, t, s = int(idx[rank]) // V, int(idx[rank]) % V, float(top[rank])
                if eos is not None and t == eos:
                    if rank >= beams:
                        continue
                    toks = live[b][0] + [t]
                    hyps.append((s / len(toks) ** lp, toks))
                else:
                    nxt.append((live[b][0] + [t], s))
                if len(nxt) == beams:
                    break
            live = nxt
            hyps = sorted(hyps, key=lambda h: -h[0])[:beams]
            if len(hyps) == beams and hyps[-1][0] >= float(top.max()) / (step + 1) ** lp:
                done = True
                break
        if not done:
            for toks, s in live:
                hyps.append((s / len(toks) ** lp, toks))
            hyps = sorted(hyps, key=lambda h: -h[0])[:beams]
        out.append(hyps[0][1])
    return out


def weights(c, seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, std=0.2: torch.randn(*s, generator=g) * std
    d, inner, dff, H = c["d_model"], c["num_heads"] * c["d_kv"], c["d_ff"], c["num_heads"]
    gated, _ = ffn_kind(c)
    W = {"shared.weight": r(c["vocab_size"], d, std=0.3)}
    for stack, n in (("encoder", c["num_layers"]), ("decoder", c.get("num_decoder_layers", c["num_layers"]))):
        for i in range(n):
            l = f"{stack}.block.{i}.layer."
            atts = ["0.SelfAttention"] + (["1.EncDecAttention"] if stack == "decoder" else [])
            for a in atts:
                for p in "qkv":
                    W[f"{l}{a}.{p}.weight"] = r(inner, d, std=2 * d ** -0.5)
                W[f"{l}{a}.o.weight"] = r(d, inner, std=3 * inner ** -0.5)
                if (i == 0 or per_layer(c)) and a == "0.SelfAttention":
                    W[f"{l}{a}.relative_attention_bias.weight"] = r(c["relative_attention_num_buckets"], H, std=0.5)
                W[f"{l}{a[0]}.layer_norm.weight"] = 1 + r(d, std=0.1)
            f = l + ("2." if stack == "decoder" else "1.")
            for w in (["wi_0", "wi_1"] if gated else ["wi"]):
                W[f"{f}DenseReluDense.{w}.weight"] = r(dff, d, std=d ** -0.5)
            W[f"{f}DenseReluDense.wo.weight"] = r(d, dff, std=3 * dff ** -0.5)
            W[f"{f}layer_norm.weight"] = 1 + r(d, std=0.1)
        W[f"{stack}.final_layer_norm.weight"] = 1 + r(d, std=0.1)
    if not c.get("tie_word_embeddings", True):
        W["lm_head.weight"] = r(c["vocab_size"], d, std=d ** -0.5)
    return W


def make(name, c, seed, ids, mask, labels, extra_copies):
    torch.manual_seed(seed)
    W = weights(c, seed)
    W64 = {k: v.double() for k, v in W.items()}
    dec = shift_right(c, labels)
    enc = encode(c, W64, ids, mask)
    logits = decode(c, W64, enc, mask, dec)
    loss = ce(logits, labels)
    g = greedy(c, W64, ids, mask, 8)
    no_eos = beam(c, W64, ids, mask, 3, 5, None, 1.0)
    eos = no_eos[0][2]  # a token the best beam of row 0 produces third, so that beams end on it
    expected = {
        "inputIds": ids.tolist(), "attentionMask": mask.tolist(), "labels": labels.tolist(),
        "decoderInputIds": dec.tolist(), "shape": list(logits.shape),
        "logits": [round(float(v), 6) for v in logits.reshape(-1).tolist()], "loss": round(float(loss), 7),
        "encoderShape": list(enc.shape), "encoder": [round(float(v), 6) for v in enc.reshape(-1).tolist()],
        "greedy": g, "beamEos": eos,
        "beam3": beam(c, W64, ids, mask, 3, 8, eos, 1.0),
        "beam4LengthPenalty2": beam(c, W64, ids, mask, 4, 8, eos, 2.0),
        "beam3NoEos": no_eos,
    }
    if extra_copies:  # transformers' tied copies of shared.weight, which the loader must accept and ignore
        W["encoder.embed_tokens.weight"] = W["shared.weight"].clone()
        W["decoder.embed_tokens.weight"] = W["shared.weight"].clone()
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    write_safetensors(os.path.join(d, "model.safetensors"), W)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(name, "loss", float(loss), "greedy", g, "beam3", expected["beam3"])


def main():
    t5 = {"architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "vocab_size": 100, "d_model": 32,
          "d_kv": 8, "d_ff": 48, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4,
          "relative_attention_num_buckets": 8, "relative_attention_max_distance": 16, "dropout_rate": 0.1,
          "layer_norm_epsilon": 1e-6, "initializer_factor": 1.0, "feed_forward_proj": "relu", "is_encoder_decoder": True,
          "tie_word_embeddings": True, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}
    ids = torch.tensor([[5, 17, 42, 8, 99, 23, 61, 2, 1], [44, 9, 73, 31, 12, 1, 0, 0, 0]])
    mask = (torch.arange(9)[None] < torch.tensor([[9], [6]])).long()
    labels = torch.tensor([[7, 3, 55, 21, 90, 1], [66, 14, 1, -100, -100, -100]])
    make("t5-tiny", t5, 1, ids, mask, labels, True)

    mt5 = {"architectures": ["MT5ForConditionalGeneration"], "model_type": "mt5", "vocab_size": 120, "d_model": 24,
           "d_kv": 8, "d_ff": 40, "num_layers": 2, "num_decoder_layers": 3, "num_heads": 3,
           "relative_attention_num_buckets": 16, "relative_attention_max_distance": 20, "dropout_rate": 0.1,
           "layer_norm_epsilon": 1e-6, "initializer_factor": 1.0, "feed_forward_proj": "gated-gelu",
           "is_encoder_decoder": True, "tie_word_embeddings": False, "pad_token_id": 0, "eos_token_id": 1,
           "decoder_start_token_id": 0}
    ids = torch.tensor([[11, 95, 3, 47, 110, 1, 0], [60, 2, 88, 19, 7, 34, 1]])
    mask = (ids != 0).long()
    mask[1] = 1
    labels = torch.tensor([[4, 81, 26, 9, 117, 53, 30, 2, 77, 15, 1], [101, 6, 1] + [-100] * 8])
    make("mt5-tiny", mt5, 2, ids, mask, labels, False)

    umt5 = {"architectures": ["UMT5ForConditionalGeneration"], "model_type": "umt5", "vocab_size": 80, "d_model": 16,
            "d_kv": 4, "d_ff": 24, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4,
            "relative_attention_num_buckets": 8, "relative_attention_max_distance": 12, "dropout_rate": 0.1,
            "layer_norm_epsilon": 1e-6, "initializer_factor": 1.0, "feed_forward_proj": "gated-gelu",
            "is_encoder_decoder": True, "tie_word_embeddings": False, "pad_token_id": 0, "eos_token_id": 1,
            "decoder_start_token_id": 0}
    ids = torch.tensor([[9, 31, 5, 77, 12, 40, 1], [3, 58, 21, 1, 0, 0, 0]])
    mask = (ids != 0).long()
    labels = torch.tensor([[44, 8, 19, 63, 1], [27, 1, -100, -100, -100]])
    make("umt5-tiny", umt5, 3, ids, mask, labels, False)


if __name__ == "__main__":
    main()
