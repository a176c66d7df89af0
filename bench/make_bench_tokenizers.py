#!/usr/bin/env python3
"""Tokenizers of realistic size for bench/tokenizer_bench: the same layouts as the
test tokenizers (scripts/reference/make_family_tokenizers.py: Llama 2's
SentencePiece-style BPE with byte fallback, Mistral's Metaspace layout of it, Llama
3's byte-level BPE with its Split pattern) and GPT-2's byte-level BPE, each trained
with Hugging Face `tokenizers` on the benchmark's text to a vocabulary of 16,000.

    make_bench_tokenizers.py TEXT OUT_DIR

Writes OUT_DIR/{gpt2,llama2,mistral,llama3}/tokenizer.json; does nothing for a
tokenizer already there.
"""
import json
import pathlib
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts" / "reference"))
import make_family_tokenizers as fam  # noqa: E402

VOCAB = 16000


def gpt2(documents):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(documents, trainer)
    return tok


def main():
    text, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    kinds = ["gpt2", "llama2", "mistral", "llama3"]
    if all((out / k / "tokenizer.json").exists() for k in kinds):
        return
    documents = text.read_text(encoding="utf-8").split("\n")
    sp = fam.sentencepiece_model(documents, VOCAB)
    made = {"gpt2": gpt2(documents), "llama3": Tokenizer.from_str(json.dumps(fam.llama3_model(documents, VOCAB)))}
    for kind in ("llama2", "mistral"):
        made[kind] = fam.sp_layout(sp, kind)
    for kind in kinds:
        (out / kind).mkdir(parents=True, exist_ok=True)
        made[kind].save(str(out / kind / "tokenizer.json"))
        print(f"{kind}: {made[kind].get_vocab_size()} tokens")


if __name__ == "__main__":
    main()
