"""Writes tiny random checkpoints + expected logits/losses under test/fixtures/models/ (run with
/usr/bin/python3 scripts/oracle/make_fixtures.py; the values are committed, the tests never run Python)."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from reference import bert, ce, distilbert, gpt2, llama, read_safetensors, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "models")


def rnd(*shape, std=0.2):
    return torch.randn(*shape) * std


def lin(W, name, out, inp, bias=True):
    W[name + ".weight"] = rnd(out, inp)
    if bias:
        W[name + ".bias"] = rnd(out, std=0.05)


def norm(W, name, h, bias=True):
    W[name + ".weight"] = 1 + rnd(h, std=0.1)
    if bias:
        W[name + ".bias"] = rnd(h, std=0.05)


def save(name, config, W, expected):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    write_safetensors(os.path.join(d, "model.safetensors"), W)
    r = lambda t: [round(float(v), 6) for v in t.reshape(-1).tolist()]
    out = {k: (r(v) if isinstance(v, torch.Tensor) and v.is_floating_point() else v.tolist() if isinstance(v, torch.Tensor) else v)
           for k, v in expected.items()}
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(out, f)


def make_gpt2():
    c = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 40, "n_embd": 16, "n_layer": 2, "n_head": 2,
         "n_positions": 16, "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
         "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "bos_token_id": 0, "eos_token_id": 0}
    W, p, H = {}, "transformer.", 16
    W[p + "wte.weight"] = rnd(40, H)
    W[p + "wpe.weight"] = rnd(16, H)
    for i in range(2):
        l = f"{p}h.{i}."
        norm(W, l + "ln_1", H)
        W[l + "attn.c_attn.weight"], W[l + "attn.c_attn.bias"] = rnd(H, 3 * H), rnd(3 * H, std=0.05)
        W[l + "attn.c_proj.weight"], W[l + "attn.c_proj.bias"] = rnd(H, H), rnd(H, std=0.05)
        norm(W, l + "ln_2", H)
        W[l + "mlp.c_fc.weight"], W[l + "mlp.c_fc.bias"] = rnd(H, 4 * H), rnd(4 * H, std=0.05)
        W[l + "mlp.c_proj.weight"], W[l + "mlp.c_proj.bias"] = rnd(4 * H, H), rnd(H, std=0.05)
    norm(W, p + "ln_f", H)
    ids = torch.randint(0, 40, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    logits = gpt2(c, W, ids, mask) @ W[p + "wte.weight"].T
    labels = ids.clone()
    labels[1, 5:] = -100
    loss = ce(logits[:, :-1], labels[:, 1:])
    save("gpt2", c, W, {"inputIds": ids, "attentionMask": mask, "labels": labels, "shape": list(logits.shape), "logits": logits, "loss": float(loss)})


def llama_weights(c, tied):
    W, p = {}, "model."
    H, nh = c["hidden_size"], c["num_attention_heads"]
    nkv, d, I = c["num_key_value_heads"], c["head_dim"], c["intermediate_size"]
    qwen, bias = c["model_type"] == "qwen2", c.get("attention_bias", False)
    W[p + "embed_tokens.weight"] = rnd(c["vocab_size"], H, std=0.5)
    for i in range(c["num_hidden_layers"]):
        l = f"{p}layers.{i}."
        lin(W, l + "self_attn.q_proj", nh * d, H, qwen or bias)
        lin(W, l + "self_attn.k_proj", nkv * d, H, qwen or bias)
        lin(W, l + "self_attn.v_proj", nkv * d, H, qwen or bias)
        lin(W, l + "self_attn.o_proj", H, nh * d, bias and not qwen)
        lin(W, l + "mlp.gate_proj", I, H, False)
        lin(W, l + "mlp.up_proj", I, H, False)
        lin(W, l + "mlp.down_proj", H, I, False)
        norm(W, l + "input_layernorm", H, False)
        norm(W, l + "post_attention_layernorm", H, False)
    norm(W, p + "norm", H, False)
    if not tied:
        lin(W, "lm_head", c["vocab_size"], H, False)
    return W


def make_llama():
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 48, "hidden_size": 24, "intermediate_size": 40,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "max_position_embeddings": 64,
         "rms_norm_eps": 1e-6, "rope_theta": 500000.0, "hidden_act": "silu", "tie_word_embeddings": False, "attention_bias": False,
         "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 16},
         "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2}
    W = llama_weights(c, False)
    ids = torch.randint(0, 48, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.long)
    logits = llama(c, W, ids, mask) @ W["lm_head.weight"].T
    labels = ids.clone()
    labels[0, :3] = -100
    loss = ce(logits[:, :-1], labels[:, 1:])
    save("llama", c, W, {"inputIds": ids, "attentionMask": mask, "labels": labels, "shape": list(logits.shape), "logits": logits, "loss": float(loss)})


def make_qwen2():
    c = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 32, "hidden_size": 16, "intermediate_size": 24,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "max_position_embeddings": 32,
         "rms_norm_eps": 1e-6, "rope_theta": 1000.0, "hidden_act": "silu", "tie_word_embeddings": True,
         "rope_scaling": {"type": "linear", "factor": 2.0}, "use_sliding_window": False, "eos_token_id": 3}
    c["head_dim"] = 4
    W = llama_weights(c, True)
    del c["head_dim"]  # derived from hidden_size / heads
    ids = torch.randint(0, 32, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.long)
    logits = llama(c, W, ids, mask) @ W["model.embed_tokens.weight"].T
    loss = ce(logits[:, :-1], ids[:, 1:])
    save("qwen2", c, W, {"inputIds": ids, "attentionMask": mask, "labels": ids, "shape": list(logits.shape), "logits": logits, "loss": float(loss)})


def make_mistral_cls():
    c = {"architectures": ["MistralForSequenceClassification"], "model_type": "mistral", "vocab_size": 32, "hidden_size": 16,
         "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 8,
         "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "sliding_window": 3,
         "tie_word_embeddings": False, "pad_token_id": 0, "id2label": {"0": "neg", "1": "neu", "2": "pos"},
         "label2id": {"neg": 0, "neu": 1, "pos": 2}}
    W = llama_weights(c, True)
    W["score.weight"] = rnd(3, 16)
    ids = torch.randint(1, 32, (2, 7))
    ids[1, 5:] = 0  # right padding with pad_token_id
    mask = (ids != 0).long()
    h = llama(c, W, ids, mask)
    last = torch.tensor([6, 4])
    logits = (h @ W["score.weight"].T)[torch.arange(2), last]
    labels = torch.tensor([2, 0])
    save("mistral-cls", c, W, {"inputIds": ids, "attentionMask": mask, "labels": labels, "shape": list(logits.shape), "logits": logits, "loss": float(ce(logits, labels))})


def bert_weights(c, p):
    W, H, I = {}, c["hidden_size"], c["intermediate_size"]
    W[p + "embeddings.word_embeddings.weight"] = rnd(c["vocab_size"], H, std=0.5)
    W[p + "embeddings.position_embeddings.weight"] = rnd(c["max_position_embeddings"], H)
    W[p + "embeddings.token_type_embeddings.weight"] = rnd(c["type_vocab_size"], H)
    norm(W, p + "embeddings.LayerNorm", H)
    for i in range(c["num_hidden_layers"]):
        l = f"{p}encoder.layer.{i}."
        for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            lin(W, l + n, H, H)
        norm(W, l + "attention.output.LayerNorm", H)
        lin(W, l + "intermediate.dense", I, H)
        lin(W, l + "output.dense", H, I)
        norm(W, l + "output.LayerNorm", H)
    return W


def make_bert_cls():
    c = {"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 40, "hidden_size": 16,
         "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 16,
         "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
         "attention_probs_dropout_prob": 0.1, "pad_token_id": 0, "position_embedding_type": "absolute",
         "id2label": {"0": "a", "1": "b", "2": "c"}, "label2id": {"a": 0, "b": 1, "c": 2}}
    W = bert_weights(c, "bert.")
    lin(W, "bert.pooler.dense", 16, 16)
    lin(W, "classifier", 3, 16)
    ids = torch.randint(1, 40, (2, 8))
    ids[1, 6:] = 0
    mask = (ids != 0).long()
    types = torch.zeros(2, 8, dtype=torch.long)
    types[:, 4:] = 1
    h = bert(c, W, ids, mask, types, "bert.")
    pooled = torch.tanh(h[:, 0] @ W["bert.pooler.dense.weight"].T + W["bert.pooler.dense.bias"])
    logits = pooled @ W["classifier.weight"].T + W["classifier.bias"]
    labels = torch.tensor([1, 2])
    save("bert-cls", c, W, {"inputIds": ids, "attentionMask": mask, "tokenTypeIds": types, "labels": labels, "shape": list(logits.shape),
                            "logits": logits, "loss": float(ce(logits, labels))})


def make_roberta_tok():
    c = {"architectures": ["RobertaForTokenClassification"], "model_type": "roberta", "vocab_size": 40, "hidden_size": 16,
         "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 32, "max_position_embeddings": 20,
         "type_vocab_size": 1, "hidden_act": "gelu", "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0,
         "eos_token_id": 2, "id2label": {str(i): f"T{i}" for i in range(4)}, "label2id": {f"T{i}": i for i in range(4)}}
    W = bert_weights(c, "roberta.")
    lin(W, "classifier", 4, 16)
    ids = torch.randint(3, 40, (2, 7))
    ids[0, 5:] = 1
    mask = (ids != 1).long()
    types = torch.zeros(2, 7, dtype=torch.long)
    logits = bert(c, W, ids, mask, types, "roberta.") @ W["classifier.weight"].T + W["classifier.bias"]
    labels = torch.randint(0, 4, (2, 7))
    labels[0, 5:] = -100
    save("roberta-tok", c, W, {"inputIds": ids, "attentionMask": mask, "labels": labels, "shape": list(logits.shape), "logits": logits,
                               "loss": float(ce(logits, labels))})


def make_distilbert_qa():
    c = {"architectures": ["DistilBertForQuestionAnswering"], "model_type": "distilbert", "vocab_size": 40, "dim": 16, "n_layers": 2,
         "n_heads": 2, "hidden_dim": 32, "max_position_embeddings": 16, "activation": "gelu", "dropout": 0.1,
         "attention_dropout": 0.1, "qa_dropout": 0.1, "sinusoidal_pos_embds": False, "pad_token_id": 0}
    W, p, H = {}, "distilbert.", 16
    W[p + "embeddings.word_embeddings.weight"] = rnd(40, H, std=0.5)
    W[p + "embeddings.position_embeddings.weight"] = rnd(16, H)
    norm(W, p + "embeddings.LayerNorm", H)
    for i in range(2):
        l = f"{p}transformer.layer.{i}."
        for n in ["q_lin", "k_lin", "v_lin", "out_lin"]:
            lin(W, l + "attention." + n, H, H)
        norm(W, l + "sa_layer_norm", H)
        lin(W, l + "ffn.lin1", 32, H)
        lin(W, l + "ffn.lin2", H, 32)
        norm(W, l + "output_layer_norm", H)
    lin(W, "qa_outputs", 2, H)
    ids = torch.randint(1, 40, (2, 8))
    ids[1, 7:] = 0
    mask = (ids != 0).long()
    logits = distilbert(c, W, ids, mask) @ W["qa_outputs.weight"].T + W["qa_outputs.bias"]
    labels = torch.tensor([[2, 4], [1, 1]])
    loss = (ce(logits[..., 0], labels[:, 0]) + ce(logits[..., 1], labels[:, 1])) / 2
    save("distilbert-qa", c, W, {"inputIds": ids, "attentionMask": mask, "labels": labels, "shape": list(logits.shape), "logits": logits,
                                 "loss": float(loss)})


def stories_greedy(n=60):
    d = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "assets", "models", "stories260K")
    if not os.path.exists(d):
        return
    c = json.load(open(os.path.join(d, "config.json")))
    W = read_safetensors(os.path.join(d, "model.safetensors"))
    ids = [1]
    for _ in range(n):  # full forward each step: no KV cache in the oracle
        t = torch.tensor([ids])
        h = llama(c, W, t, torch.ones_like(t))
        ids.append(int((h[0, -1] @ W["model.embed_tokens.weight"].T).argmax()))
    with open(os.path.join(ROOT, "stories260K-greedy.json"), "w") as f:
        json.dump({"prompt": [1], "ids": ids}, f)


if __name__ == "__main__":
    torch.manual_seed(1234)
    with torch.no_grad():
        make_gpt2()
        make_llama()
        make_qwen2()
        make_mistral_cls()
        make_bert_cls()
        make_roberta_tok()
        make_distilbert_qa()
        stories_greedy()
