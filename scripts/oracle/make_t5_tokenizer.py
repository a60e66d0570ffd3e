"""Writes test/fixtures/tokenizers/t5-unigram/: a T5-style tokenizer.json (Unigram model, WhitespaceSplit + Metaspace
pre-tokenizer, TemplateProcessing that appends </s>; <pad>=0, </s>=1, <unk>=2 as in T5) and its tokenizer_config.json.
Its 40 pieces fit the vocabularies of the gpt2 (40) and llama (48) model fixtures, so the same tokenizer serves the
decoder-only generation tests. Run with /usr/bin/python3 scripts/oracle/make_t5_tokenizer.py (standard library only)."""
import json
import os
import string

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "tokenizers", "t5-unigram")
META = "\u2581"

SPECIALS = ["<pad>", "</s>", "<unk>"]
WORDS = ["the", "is", "sky", "blue", "question", "context"]
PUNCT = [":", "?", ".", ","]


def vocab():
    pieces = [(t, 0.0) for t in SPECIALS]
    # Whole words beat spelling them out letter by letter; letters cover any other lower-case text.
    pieces += [(META + w, -2.0) for w in WORDS]
    pieces += [(META, -3.0)]
    pieces += [(c, -4.0) for c in string.ascii_lowercase]
    pieces += [(p, -4.5) for p in PUNCT]
    assert len(pieces) == 40 and len({p for p, _ in pieces}) == 40
    return pieces


def metaspace():
    return {"type": "Metaspace", "replacement": META, "prepend_scheme": "always", "split": True}


def main():
    os.makedirs(OUT, exist_ok=True)
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, t in enumerate(SPECIALS)]
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, metaspace()]},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
            "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}},
        },
        "decoder": metaspace(),
        "model": {"type": "Unigram", "unk_id": 2, "vocab": [[p, s] for p, s in vocab()], "byte_fallback": False},
    }
    with open(os.path.join(OUT, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
        f.write("\n")
    config = {"tokenizer_class": "T5Tokenizer", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
              "model_max_length": 512, "extra_ids": 0}
    with open(os.path.join(OUT, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
