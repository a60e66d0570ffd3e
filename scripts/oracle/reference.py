"""Plain-torch reference math of the Hugging Face architectures nodetune implements (an oracle for tests:
run with Debian's /usr/bin/python3, never by the test suite). Independent of nodetune's C++ code."""
import json
import math
import struct

import torch
import torch.nn.functional as F

DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
RDT = {v: k for k, v in DT.items()}


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        b = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        raw = bytearray(data[8 + n + a : 8 + n + b])
        out[name] = torch.frombuffer(raw, dtype=RDT[e["dtype"]]).reshape(e["shape"]).clone()
    return out


def gelu_exact(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


ACT = {"gelu": gelu_exact, "gelu_new": gelu_tanh, "relu": torch.relu, "silu": lambda x: x * torch.sigmoid(x)}
NEG = torch.finfo(torch.float32).min


def ln(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def attention(q, k, v, allowed):  # q [B,H,T,D], allowed [B,1,T,S] bool
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    s = s.masked_fill(~allowed, NEG if s.dtype == torch.float32 else torch.finfo(s.dtype).min)
    return torch.softmax(s, -1) @ v


def causal_allowed(mask, t, window=0):
    i = torch.arange(t).view(t, 1)
    j = torch.arange(t).view(1, t)
    ok = j <= i
    if window:
        ok = ok & (i - j < window)
    return ok.view(1, 1, t, t) & mask.bool().view(mask.shape[0], 1, 1, t)


def gpt2(c, W, ids, mask, p="transformer."):
    B, T = ids.shape
    H, nh = c["n_embd"], c["n_head"]
    x = W[p + "wte.weight"][ids] + W[p + "wpe.weight"][torch.arange(T)]
    allowed = causal_allowed(mask, T)
    act = ACT[c.get("activation_function", "gelu_new")]
    eps = c.get("layer_norm_epsilon", 1e-5)
    for i in range(c["n_layer"]):
        l = f"{p}h.{i}."
        a = ln(x, W[l + "ln_1.weight"], W[l + "ln_1.bias"], eps)
        qkv = a @ W[l + "attn.c_attn.weight"] + W[l + "attn.c_attn.bias"]
        q, k, v = [z.view(B, T, nh, H // nh).transpose(1, 2) for z in qkv.split(H, -1)]
        o = attention(q, k, v, allowed).transpose(1, 2).reshape(B, T, H)
        x = x + o @ W[l + "attn.c_proj.weight"] + W[l + "attn.c_proj.bias"]
        f = ln(x, W[l + "ln_2.weight"], W[l + "ln_2.bias"], eps)
        f = act(f @ W[l + "mlp.c_fc.weight"] + W[l + "mlp.c_fc.bias"]) @ W[l + "mlp.c_proj.weight"] + W[l + "mlp.c_proj.bias"]
        x = x + f
    return ln(x, W[p + "ln_f.weight"], W[p + "ln_f.bias"], eps)


def rope_inv_freq(c, d):
    inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, d, 2).float() / d))
    s = c.get("rope_scaling")
    if s and s.get("rope_type", s.get("type")) == "linear":
        inv = inv / s["factor"]
    elif s and s.get("rope_type", s.get("type")) == "llama3":
        f, lo, hi, old = s["factor"], s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"]
        out = []
        for w in inv.tolist():
            wl = 2 * math.pi / w
            if wl < old / hi:
                out.append(w)
            elif wl > old / lo:
                out.append(w / f)
            else:
                sm = (old / wl - lo) / (hi - lo)
                out.append((1 - sm) * w / f + sm * w)
        inv = torch.tensor(out)
    return inv


def rms(x, w, eps):
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def llama(c, W, ids, mask, p="model.", lora=None):
    """lora: optional {module name: (A [r, in], B [out, r], scale)}, added to that linear layer's output as
    (x @ A^T) @ B^T * scale (PEFT's LoRA without dropout)."""
    B, T = ids.shape
    nh, nkv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    d = c.get("head_dim") or c["hidden_size"] // nh
    eps = c.get("rms_norm_eps", 1e-6)
    qwen = c["model_type"] == "qwen2"
    bias = c.get("attention_bias", False)
    pos = torch.arange(T).float()
    ang = pos[:, None] * rope_inv_freq(c, d)[None, :]  # [T, d/2]
    cos, sin = torch.cos(ang), torch.sin(ang)

    def rot(z):  # rotate-half: pairs (i, i + d/2)
        z1, z2 = z[..., : d // 2], z[..., d // 2 :]
        return torch.cat([z1 * cos - z2 * sin, z2 * cos + z1 * sin], -1)

    def lin(x, name, b):
        y = x @ W[name + ".weight"].T
        if lora and name in lora:
            a_w, b_w, scale = lora[name]
            y = y + (x @ a_w.T) @ b_w.T * scale
        return y + W[name + ".bias"] if b else y

    window = c.get("sliding_window") if c["model_type"] == "mistral" else 0
    allowed = causal_allowed(mask, T, window or 0)
    x = W[p + "embed_tokens.weight"][ids]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # as transformers does (a no-op in float32)
    for i in range(c["num_hidden_layers"]):
        l = f"{p}layers.{i}."
        a = rms(x, W[l + "input_layernorm.weight"], eps)
        q = lin(a, l + "self_attn.q_proj", qwen or bias).view(B, T, nh, d).transpose(1, 2)
        k = lin(a, l + "self_attn.k_proj", qwen or bias).view(B, T, nkv, d).transpose(1, 2)
        v = lin(a, l + "self_attn.v_proj", qwen or bias).view(B, T, nkv, d).transpose(1, 2)
        q, k = rot(q), rot(k)
        g = nh // nkv
        k = k[:, :, None].expand(B, nkv, g, T, d).reshape(B, nh, T, d)
        v = v[:, :, None].expand(B, nkv, g, T, d).reshape(B, nh, T, d)
        o = attention(q, k, v, allowed).transpose(1, 2).reshape(B, T, nh * d)
        x = x + lin(o, l + "self_attn.o_proj", bias and not qwen)
        f = rms(x, W[l + "post_attention_layernorm.weight"], eps)
        mb = c.get("mlp_bias", False)
        f = ACT[c.get("hidden_act", "silu")](lin(f, l + "mlp.gate_proj", mb)) * lin(f, l + "mlp.up_proj", mb)
        x = x + lin(f, l + "mlp.down_proj", mb)
    return rms(x, W[p + "norm.weight"], eps)


def bert(c, W, ids, mask, types, p):
    B, T = ids.shape
    H, nh = c["hidden_size"], c["num_attention_heads"]
    eps = c.get("layer_norm_eps", 1e-12)
    if c["model_type"] == "roberta":
        pad = c["pad_token_id"]
        real = (ids != pad).long()
        pos = torch.cumsum(real, 1) * real + pad
    else:
        pos = torch.arange(T)[None].expand(B, T)
    x = W[p + "embeddings.word_embeddings.weight"][ids] + W[p + "embeddings.position_embeddings.weight"][pos]
    x = x + W[p + "embeddings.token_type_embeddings.weight"][types]
    x = ln(x, W[p + "embeddings.LayerNorm.weight"], W[p + "embeddings.LayerNorm.bias"], eps)
    allowed = mask.bool().view(B, 1, 1, T).expand(B, 1, T, T)
    L = lambda x, n: x @ W[n + ".weight"].T + W[n + ".bias"]
    for i in range(c["num_hidden_layers"]):
        l = f"{p}encoder.layer.{i}."
        heads = lambda n: L(x, n).view(B, T, nh, H // nh).transpose(1, 2)
        a = attention(heads(l + "attention.self.query"), heads(l + "attention.self.key"), heads(l + "attention.self.value"), allowed)
        a = L(a.transpose(1, 2).reshape(B, T, H), l + "attention.output.dense")
        x = ln(a + x, W[l + "attention.output.LayerNorm.weight"], W[l + "attention.output.LayerNorm.bias"], eps)
        f = L(ACT[c.get("hidden_act", "gelu")](L(x, l + "intermediate.dense")), l + "output.dense")
        x = ln(f + x, W[l + "output.LayerNorm.weight"], W[l + "output.LayerNorm.bias"], eps)
    return x


def distilbert(c, W, ids, mask, p="distilbert."):
    B, T = ids.shape
    H, nh = c["dim"], c["n_heads"]
    eps = 1e-12
    x = W[p + "embeddings.word_embeddings.weight"][ids] + W[p + "embeddings.position_embeddings.weight"][torch.arange(T)]
    x = ln(x, W[p + "embeddings.LayerNorm.weight"], W[p + "embeddings.LayerNorm.bias"], eps)
    allowed = mask.bool().view(B, 1, 1, T).expand(B, 1, T, T)
    L = lambda x, n: x @ W[n + ".weight"].T + W[n + ".bias"]
    for i in range(c["n_layers"]):
        l = f"{p}transformer.layer.{i}."
        heads = lambda n: L(x, n).view(B, T, nh, H // nh).transpose(1, 2)
        a = attention(heads(l + "attention.q_lin"), heads(l + "attention.k_lin"), heads(l + "attention.v_lin"), allowed)
        a = L(a.transpose(1, 2).reshape(B, T, H), l + "attention.out_lin")
        x = ln(a + x, W[l + "sa_layer_norm.weight"], W[l + "sa_layer_norm.bias"], eps)
        f = L(ACT[c.get("activation", "gelu")](L(x, l + "ffn.lin1")), l + "ffn.lin2")
        x = ln(f + x, W[l + "output_layer_norm.weight"], W[l + "output_layer_norm.bias"], eps)
    return x


def ce(logits, labels, ignore=-100):
    logits = logits.reshape(-1, logits.shape[-1])
    labels = labels.reshape(-1)
    keep = labels != ignore
    lp = torch.log_softmax(logits[keep], -1)
    return -lp[torch.arange(int(keep.sum())), labels[keep]].mean()
