"""Masked-LM fixtures: tiny random BERT / RoBERTa / DistilBERT *ForMaskedLM checkpoints (with the tied decoder copies
transformers writes) and the expected logits/loss, computed with plain torch (run with /usr/bin/python3
scripts/oracle/make_mlm_fixtures.py; the values are committed under test/fixtures/models/, the tests never run Python)."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from make_fixtures import bert_weights, lin, norm, rnd, save  # noqa: E402
from reference import ACT, bert, ce, distilbert, gelu_exact, ln  # noqa: E402


def mlm_head(W, x, dense, norm_name, bias, emb, act, eps):
    x = act(x @ W[dense + ".weight"].T + W[dense + ".bias"])
    x = ln(x, W[norm_name + ".weight"], W[norm_name + ".bias"], eps)
    return x @ W[emb].T + W[bias]


def mlm_labels(ids, pad):
    labels = torch.full_like(ids, -100)
    labels[0, 1], labels[0, 3], labels[1, 2], labels[1, 4] = ids[0, 1], ids[0, 3], ids[1, 2], ids[1, 4]
    labels[0, 5] = 7
    labels[ids == pad] = -100
    return labels


def make_bert_mlm():
    # hidden_act gelu_new: the head's transform uses the config's activation, not a fixed GELU.
    c = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": 40, "hidden_size": 16,
         "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 16,
         "type_vocab_size": 2, "hidden_act": "gelu_new", "layer_norm_eps": 1e-12, "pad_token_id": 0,
         "position_embedding_type": "absolute"}
    W = bert_weights(c, "bert.")
    lin(W, "cls.predictions.transform.dense", 16, 16)
    norm(W, "cls.predictions.transform.LayerNorm", 16)
    W["cls.predictions.bias"] = rnd(40, std=0.05)
    # transformers saves the tied decoder too: copies of the word embeddings and of the bias
    W["cls.predictions.decoder.weight"] = W["bert.embeddings.word_embeddings.weight"].clone()
    W["cls.predictions.decoder.bias"] = W["cls.predictions.bias"].clone()
    ids = torch.randint(1, 40, (2, 8))
    ids[1, 6:] = 0
    mask = (ids != 0).long()
    types = torch.zeros(2, 8, dtype=torch.long)
    h = bert(c, W, ids, mask, types, "bert.")
    logits = mlm_head(W, h, "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias",
                      "bert.embeddings.word_embeddings.weight", ACT["gelu_new"], 1e-12)
    labels = mlm_labels(ids, 0)
    save("bert-mlm", c, W, {"inputIds": ids, "attentionMask": mask, "tokenTypeIds": types, "labels": labels,
                            "shape": list(logits.shape), "logits": logits, "loss": float(ce(logits, labels))})


def make_roberta_mlm():
    # hidden_act relu in the body; RoBERTa's LM head uses exact GELU whatever the config says.
    c = {"architectures": ["RobertaForMaskedLM"], "model_type": "roberta", "vocab_size": 40, "hidden_size": 16,
         "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 32, "max_position_embeddings": 20,
         "type_vocab_size": 1, "hidden_act": "relu", "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0,
         "eos_token_id": 2}
    W = bert_weights(c, "roberta.")
    lin(W, "lm_head.dense", 16, 16)
    norm(W, "lm_head.layer_norm", 16)
    W["lm_head.bias"] = rnd(40, std=0.05)
    W["lm_head.decoder.weight"] = W["roberta.embeddings.word_embeddings.weight"].clone()
    W["lm_head.decoder.bias"] = W["lm_head.bias"].clone()
    ids = torch.randint(3, 40, (2, 7))
    ids[0, 6:] = 1
    mask = (ids != 1).long()
    types = torch.zeros(2, 7, dtype=torch.long)
    h = bert(c, W, ids, mask, types, "roberta.")
    logits = mlm_head(W, h, "lm_head.dense", "lm_head.layer_norm", "lm_head.bias", "roberta.embeddings.word_embeddings.weight",
                      gelu_exact, 1e-5)
    labels = mlm_labels(ids, 1)
    save("roberta-mlm", c, W, {"inputIds": ids, "attentionMask": mask, "labels": labels, "shape": list(logits.shape),
                               "logits": logits, "loss": float(ce(logits, labels))})


def make_distilbert_mlm():
    c = {"architectures": ["DistilBertForMaskedLM"], "model_type": "distilbert", "vocab_size": 40, "dim": 16, "n_layers": 2,
         "n_heads": 2, "hidden_dim": 32, "max_position_embeddings": 16, "activation": "relu", "dropout": 0.1,
         "attention_dropout": 0.1, "sinusoidal_pos_embds": False, "pad_token_id": 0}
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
    lin(W, "vocab_transform", H, H)
    norm(W, "vocab_layer_norm", H)
    W["vocab_projector.bias"] = rnd(40, std=0.05)
    W["vocab_projector.weight"] = W[p + "embeddings.word_embeddings.weight"].clone()
    ids = torch.randint(1, 40, (2, 8))
    ids[1, 7:] = 0
    mask = (ids != 0).long()
    h = distilbert(c, W, ids, mask)
    logits = mlm_head(W, h, "vocab_transform", "vocab_layer_norm", "vocab_projector.bias", p + "embeddings.word_embeddings.weight",
                      torch.relu, 1e-12)
    labels = mlm_labels(ids, 0)
    save("distilbert-mlm", c, W, {"inputIds": ids, "attentionMask": mask, "labels": labels, "shape": list(logits.shape),
                                  "logits": logits, "loss": float(ce(logits, labels))})


if __name__ == "__main__":
    torch.manual_seed(4321)
    with torch.no_grad():
        make_bert_mlm()
        make_roberta_mlm()
        make_distilbert_mlm()
