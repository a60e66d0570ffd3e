"""Expected logits of the fixture models with layer 0 dropped (layer 1 renamed to 0, the layer count 1), computed with
the plain-torch reference (run with /usr/bin/python3 scripts/oracle/make_structure_fixtures.py; the values are
committed to test/fixtures/structure/keep-1.json, the tests never run Python)."""
import json
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from reference import bert, distilbert, gpt2, llama, read_safetensors  # noqa: E402

HERE = os.path.dirname(__file__)
MODELS = os.path.join(HERE, "..", "..", "test", "fixtures", "models")
OUT = os.path.join(HERE, "..", "..", "test", "fixtures", "structure", "keep-1.json")
# family layer path, config key of the layer count
STACK = {"gpt2": (r"transformer\.h\.", "n_layer"), "llama": (r"model\.layers\.", "num_hidden_layers"),
         "bert": (r"bert\.encoder\.layer\.", "num_hidden_layers"), "roberta": (r"roberta\.encoder\.layer\.", "num_hidden_layers"),
         "distilbert": (r"distilbert\.transformer\.layer\.", "n_layers")}


def keep_layer_1(name):
    c = json.load(open(os.path.join(MODELS, name, "config.json")))
    W = read_safetensors(os.path.join(MODELS, name, "model.safetensors"))
    path, key = STACK[c["model_type"]]
    out = {}
    for k, v in W.items():
        m = re.match(f"^({path})(\\d+)\\.(.*)$", k)
        if not m:
            out[k] = v
        elif m.group(2) == "1":
            out[f"{m.group(1)}0.{m.group(3)}"] = v
    c[key] = 1
    return c, out


def logits(name):
    c, W = keep_layer_1(name)
    e = json.load(open(os.path.join(MODELS, name, "expected.json")))
    ids, mask = torch.tensor(e["inputIds"]), torch.tensor(e["attentionMask"])
    if name == "gpt2":
        return gpt2(c, W, ids, mask) @ W["transformer.wte.weight"].T
    if name == "llama":
        return llama(c, W, ids, mask) @ W["lm_head.weight"].T
    if name == "bert-cls":
        h = bert(c, W, ids, mask, torch.tensor(e["tokenTypeIds"]), "bert.")
        pooled = torch.tanh(h[:, 0] @ W["bert.pooler.dense.weight"].T + W["bert.pooler.dense.bias"])
        return pooled @ W["classifier.weight"].T + W["classifier.bias"]
    if name == "roberta-tok":
        h = bert(c, W, ids, mask, torch.zeros_like(ids), "roberta.")
        return h @ W["classifier.weight"].T + W["classifier.bias"]
    if name == "distilbert-qa":
        return distilbert(c, W, ids, mask) @ W["qa_outputs.weight"].T + W["qa_outputs.bias"]
    raise ValueError(name)


def main():
    out = {}
    for name in ["gpt2", "llama", "bert-cls", "roberta-tok", "distilbert-qa"]:
        x = logits(name)
        out[name] = {"shape": list(x.shape), "logits": [round(float(v), 6) for v in x.reshape(-1).tolist()]}
    with open(OUT, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
