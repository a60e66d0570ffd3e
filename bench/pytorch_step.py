"""PyTorch eager counterpart of bench/step-child.ts: the same checkpoint, batch and AdamW, from Python on
the same LibTorch (Debian's python3-torch matches libtorch-dev). Uses the plain-torch reference math of
scripts/oracle/reference.py with the weights as leaf tensors. Prints one JSON line like the Node child.
    /usr/bin/python3 bench/pytorch_step.py '<json: { dir, batchFile, steps, warmup, threads }>'"""
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "oracle"))
import reference  # noqa: E402


def main():
    args = json.loads(sys.argv[1])
    if args.get("threads"):
        torch.set_num_threads(int(args["threads"]))
    with open(args["batchFile"]) as f:
        ids = torch.tensor(json.load(f)["inputIds"], dtype=torch.long)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with open(os.path.join(args["dir"], "config.json")) as f:
        c = json.load(f)
    W = {k: v.clone().requires_grad_(True) for k, v in reference.read_safetensors(os.path.join(args["dir"], "model.safetensors")).items()}
    load_ms = (time.perf_counter() - t0) * 1000
    rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mask = torch.ones_like(ids)
    if c["model_type"] == "gpt2":
        head = W["transformer.wte.weight"]
        forward = lambda: reference.gpt2(c, W, ids, mask)  # noqa: E731
    else:
        head = W["lm_head.weight"]
        forward = lambda: reference.llama(c, W, ids, mask)  # noqa: E731
    opt = torch.optim.AdamW(list(W.values()), lr=1e-4, weight_decay=0.0)
    times, losses = [], []
    for i in range(args["warmup"] + args["steps"]):
        s = time.perf_counter()
        h = forward()
        logits = h @ head.T
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        ms = (time.perf_counter() - s) * 1000
        if i >= args["warmup"]:
            times.append(ms)
        losses.append(value)
    params = sum(v.numel() for v in W.values())
    print(json.dumps({"loadMs": load_ms, "params": params, "times": times, "losses": losses,
                      "rssBeforeLoadKb": rss_before, "rssAfterLoadKb": rss_load,
                      "peakRssKb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
