#!/usr/bin/env python3
"""Check that Hugging Face transformers loads what `scribe train` writes, and record what it generates.

For each tiny golden checkpoint of a family (GPT-2, OPT, GPT-J, LLaMA), this runs the built
`scribe train` on the fixed text tests/cli/train.sh makes (the same generator, seed 7), loads the
trained folder with AutoModelForCausalLM.from_pretrained (the weights, config.json and the
tokenizer files scribe wrote), and records transformers' greedy continuation of two prompts.
tests/cli/train.sh trains the same model with the same options and checks that
`scribe generate --greedy` on it continues each prompt with the same text.

What it writes: tests/data/train/expected.json
  {"generator", "transformers", "torch", "models": [{"model", "args", "prompts": [{"text", "greedy_ids",
   "greedy_text"}], "margin"}]}   margin: the smallest gap between the two largest logits along the
   greedy continuations (a tie would make the comparison fragile; the script insists on >= 1e-3).

Run (from the repository root, after building):
    .venv-ref/bin/python scripts/reference/make_train_golden.py [--scribe build/tools/scribe]
"""
import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
MODELS = ["gpt2-tiny-a", "opt-tiny", "gptj-tiny", "llama-tiny-gqa"]
ARGS = ["--steps", "40", "--batch", "4", "--seq", "16", "--threads", "1", "--lr", "1e-2", "--schedule", "constant",
        "--seed", "11", "--no-dropout"]
PROMPTS = ["The old man", "Light shall"]
NEW_TOKENS = 8


def text() -> str:
    """tests/cli/train.sh's text, made by the same generator."""
    r = random.Random(7)
    words = "the old man and sea said light shall be in beginning was word with over land water day night".split()
    lines = [" ".join(r.choice(words) for _ in range(r.randint(4, 14))).capitalize() + "." for _ in range(900)]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scribe", type=Path, default=ROOT / "build" / "tools" / "scribe")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {"generator": "scripts/reference/make_train_golden.py", "transformers": transformers.__version__,
           "torch": torch.__version__, "models": []}
    with tempfile.TemporaryDirectory() as work:
        corpus = Path(work) / "text.txt"
        corpus.write_text(text())
        for name in MODELS:
            trained = Path(work) / name
            subprocess.run([str(args.scribe), "train", str(DATA / name), "--data", str(corpus), "--out", str(trained),
                            *ARGS, "--quiet"], check=True, stdout=subprocess.DEVNULL)
            model = AutoModelForCausalLM.from_pretrained(trained)  # scribe's folder, as a user would load it
            model.eval()
            tok = PreTrainedTokenizerFast(tokenizer_file=str(trained / "tokenizer.json"))
            entry = {"model": name, "args": ARGS, "prompts": [], "margin": float("inf")}
            for p in PROMPTS:
                ids = torch.tensor([tok.encode(p)])
                with torch.no_grad():
                    g = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, output_scores=True,
                                       return_dict_in_generate=True, eos_token_id=None, pad_token_id=0)
                new = g.sequences[0, ids.shape[1]:].tolist()
                for s in g.scores:
                    top = torch.topk(s[0], 2).values
                    entry["margin"] = min(entry["margin"], float(top[0] - top[1]))
                entry["prompts"].append({"text": p, "greedy_ids": new, "greedy_text": tok.decode(new)})
            if any("\ufffd" in q["greedy_text"] for q in entry["prompts"]):
                sys.exit(f"{name}: a continuation is not valid UTF-8; change ARGS or PROMPTS")
            if entry["margin"] < 1e-3:
                sys.exit(f"{name}: a greedy step is a near tie (margin {entry['margin']}); change ARGS or PROMPTS")
            out["models"].append(entry)
            print(f"== {name}: {entry['prompts'][0]['text']!r} -> {entry['prompts'][0]['greedy_text']!r} "
                  f"(margin {entry['margin']:.4f})")
    (DATA / "train").mkdir(exist_ok=True)
    (DATA / "train" / "expected.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
