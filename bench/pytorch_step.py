"""PyTorch eager counterpart of bench/step-child.ts: the same checkpoint (or config with fresh weights), batch and
AdamW, from Python on the same LibTorch (Debian's python3-torch matches libtorch-dev). Uses the plain-torch reference
math of scripts/oracle/reference.py with the weights as leaf tensors. Prints one JSON line like the Node child.
    /usr/bin/python3 bench/pytorch_step.py '<json: { dir | config, batchFile, steps, warmup, threads,
                                                    dtype, precision, loraTargets, loraRank }>'
- dir: a checkpoint folder; config: a config.json object, weights drawn here (normal(0, initializer_range), unit
  norms), as AutoModel.fromConfig draws them (same distribution, not the same numbers).
- dtype 'bfloat16': the weights in bfloat16; precision 'bf16': the step under torch.autocast('cpu', bfloat16).
- loraTargets: a list of module names or 'all-linear': LoRA (r loraRank, alpha 2r, fp32 A and B, the base frozen)
  on those linear layers, AdamW on A and B only; otherwise every weight trains (fp32 master weights)."""
import json
import os
import resource
import sys
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "oracle"))
import reference  # noqa: E402

LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def fresh_llama_weights(c, dtype):
    """Llama-family weights named as in a checkpoint, drawn one tensor at a time in float32 then cast."""
    g = torch.Generator().manual_seed(1)
    std = c.get("initializer_range", 0.02)
    h, ffn, nh = c["hidden_size"], c["intermediate_size"], c["num_attention_heads"]
    nkv = c.get("num_key_value_heads", nh)
    d = c.get("head_dim") or h // nh
    bias = c["model_type"] == "qwen2" or c.get("attention_bias", False)
    W = {}

    def normal(name, *shape):
        W[name] = torch.empty(*shape).normal_(0, std, generator=g).to(dtype)

    normal("model.embed_tokens.weight", c["vocab_size"], h)
    for i in range(c["num_hidden_layers"]):
        l = f"model.layers.{i}."
        for name, out, inp in (("q_proj", nh * d, h), ("k_proj", nkv * d, h), ("v_proj", nkv * d, h), ("o_proj", h, nh * d)):
            normal(l + "self_attn." + name + ".weight", out, inp)
            if bias and name != "o_proj":
                W[l + "self_attn." + name + ".bias"] = torch.zeros(out, dtype=dtype)
        normal(l + "mlp.gate_proj.weight", ffn, h)
        normal(l + "mlp.up_proj.weight", ffn, h)
        normal(l + "mlp.down_proj.weight", h, ffn)
        W[l + "input_layernorm.weight"] = torch.ones(h, dtype=dtype)
        W[l + "post_attention_layernorm.weight"] = torch.ones(h, dtype=dtype)
    W["model.norm.weight"] = torch.ones(h, dtype=dtype)
    if not c.get("tie_word_embeddings", False):
        normal("lm_head.weight", c["vocab_size"], h)
    return W


def peak_rss_kb():
    """Peak resident set (KiB): VmHWM on Linux (getrusage's ru_maxrss keeps the parent's resident set of the moment
    it forked across exec, so it overstates a child of a large parent); ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main():
    args = json.loads(sys.argv[1])
    if args.get("threads"):
        torch.set_num_threads(int(args["threads"]))
    with open(args["batchFile"]) as f:
        ids = torch.tensor(json.load(f)["inputIds"], dtype=torch.long)
    dtype = torch.bfloat16 if args.get("dtype") == "bfloat16" else torch.float32
    rss_before = peak_rss_kb()
    t0 = time.perf_counter()
    if args.get("config"):
        c = args["config"]
        W = fresh_llama_weights(c, dtype)
    else:
        with open(os.path.join(args["dir"], "config.json")) as f:
            c = json.load(f)
        W = {k: v.to(dtype) for k, v in reference.read_safetensors(os.path.join(args["dir"], "model.safetensors")).items()}
    targets = args.get("loraTargets")
    lora = None
    if targets:
        r = int(args.get("loraRank") or 8)
        names = LINEAR if targets == "all-linear" else targets
        g = torch.Generator().manual_seed(2)
        lora = {}
        for key, w in W.items():
            module = key[: -len(".weight")]
            if key.endswith(".weight") and module.split(".")[-1] in names and w.dim() == 2:
                bound = 1.0 / (w.shape[1] ** 0.5)
                a_w = torch.empty(r, w.shape[1]).uniform_(-bound, bound, generator=g).requires_grad_(True)
                b_w = torch.zeros(w.shape[0], r).requires_grad_(True)  # PEFT's init: B = 0
                lora[module] = (a_w, b_w, 2.0)  # alpha 2r / r
        trainable = [t for a_w, b_w, _ in lora.values() for t in (a_w, b_w)]
    else:
        if dtype != torch.float32:
            raise SystemExit("full fine-tuning keeps fp32 master weights: use dtype float32 with precision bf16")
        for v in W.values():
            v.requires_grad_(True)
        trainable = list(W.values())
    load_ms = (time.perf_counter() - t0) * 1000
    rss_load = peak_rss_kb()
    mask = torch.ones_like(ids)
    if c["model_type"] == "gpt2":
        head = W["transformer.wte.weight"]
        forward = lambda: reference.gpt2(c, W, ids, mask)  # noqa: E731
    else:
        head = W["model.embed_tokens.weight"] if c.get("tie_word_embeddings", False) else W["lm_head.weight"]
        forward = lambda: reference.llama(c, W, ids, mask, lora=lora)  # noqa: E731
    autocast = args.get("precision") == "bf16"
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)
    times, cpu_times, losses = [], [], []
    for i in range(args["warmup"] + args["steps"]):
        s, cpu = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16) if autocast else nullcontext():
            h = forward()
            logits = h[:, :-1] @ head.T
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        ms = (time.perf_counter() - s) * 1000
        if i >= args["warmup"]:
            times.append(ms)
            cpu_times.append((time.process_time() - cpu) * 1000)
        losses.append(value)
    params = sum(v.numel() for v in W.values())
    print(json.dumps({"loadMs": load_ms, "params": params, "trainable": sum(t.numel() for t in trainable), "times": times,
                      "cpuTimes": cpu_times, "losses": losses, "rssBeforeLoadKb": rss_before, "rssAfterLoadKb": rss_load,
                      "peakRssKb": peak_rss_kb(),
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
