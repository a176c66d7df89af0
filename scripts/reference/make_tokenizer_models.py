#!/usr/bin/env python3
"""Tiny LLaMA checkpoints with the family tokenizers of tests/data/tokenizers, so
that generation is tested from text to text with each kind of tokenizer (the other
golden checkpoints all have GPT-2's byte-level BPE):

  tests/data/llama2-sp-tiny/   the Llama-2-style SentencePiece BPE tokenizer
                               (tokenizers/llama2: BOS <s> added, byte fallback);
                               config.json bos 1, eos 2
  tests/data/llama3-bpe-tiny/  the Llama-3-style byte-level BPE (tokenizers/llama3:
                               <|begin_of_text|> added); config.json's eos is
                               <|end_of_text|>, generation_config.json's the list
                               [<|end_of_text|>, <|eot_id|>]

Each: LlamaForCausalLM (vocab = the tokenizer's, hidden 32, 2 layers, 4 query and 2
key/value heads, intermediate 64, 64 positions, random weights, seed 0) saved with
safetensors, the tokenizer's files, and golden.json: for each prompt, "text",
"ids" (tokenizers' encode(text): with the BOS the post-processor adds), the
logits of every prompt position, and "greedy": model.generate(greedy, at most 12
new tokens, stopping at generation_config's end tokens as transformers does),
"step_logits", and "continuation": the text the new tokens add (decode(ids +
greedy without end tokens) less decode(ids), special tokens kept), which is what
`scribe generate` prints after the prompt.

    .venv-ref/bin/python scripts/reference/make_tokenizer_models.py
"""
import json
import pathlib
import shutil

import torch
import transformers
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
PROMPTS = ["Hello world", "The lighthouse keeper's log", "Καλημέρα 🙂 and 123"]


def make(name, kind, bos, eos, generation_eos=None):
    src = DATA / "tokenizers" / kind
    out = DATA / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / f, out / f)
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      bos_token_id=bos, eos_token_id=eos, pad_token_id=None, tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():  # larger than the init's 0.02, so the logits differ clearly
            p.normal_(0.0, 0.2)
    model.generation_config.eos_token_id = generation_eos if generation_eos is not None else eos
    model.generation_config.bos_token_id = bos
    model.save_pretrained(str(out), safe_serialization=True)
    stops = set(generation_eos if generation_eos is not None else [eos])
    prompts = []
    for text in PROMPTS:
        ids = tok.encode(text).ids
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(x).logits[0]
            gen = model.generate(x, max_new_tokens=12, do_sample=False, output_scores=True, return_dict_in_generate=True,
                                 pad_token_id=eos)
        greedy = gen.sequences[0, len(ids):].tolist()
        kept = [t for t in greedy if t not in stops]
        before = tok.decode(ids, skip_special_tokens=False)
        after = tok.decode(ids + kept, skip_special_tokens=False)
        assert after.startswith(before), (before, after)
        rounded = lambda rows: [[round(v, 6) for v in r] for r in rows]  # noqa: E731 (the tests allow 1e-4)
        prompts.append({"text": text, "ids": ids, "logits": rounded(logits.tolist()), "greedy": greedy,
                        "step_logits": rounded([s[0].tolist() for s in gen.scores]), "continuation": after[len(before):]})
    (out / "golden.json").write_text(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                                                 "prompts": prompts}) + "\n")
    print(f"{name}: vocab {tok.get_vocab_size()}, greedy {[p['greedy'] for p in prompts]}")


def main():
    make("llama2-sp-tiny", "llama2", bos=1, eos=2)
    make("llama3-bpe-tiny", "llama3", bos=0, eos=1, generation_eos=[1, 2])


if __name__ == "__main__":
    main()
