#!/usr/bin/env python3
"""Writes a GPT-2 124M-shaped checkpoint with random weights for bench/gpt2_bench.

    make_gpt2_124m.py [FOLDER] [--seed N]

GPT2Config's defaults (vocab 50257, 1024 positions, 768 hidden, 12 layers, 12 heads,
tied LM head), GPT-2's own initialisation under a fixed seed, saved with
save_pretrained(safe_serialization=True): config.json and model.safetensors, about
500 MB. FOLDER defaults to <source>/build/bench/gpt2-124m (a build folder, never the
source tree). Does nothing when FOLDER already holds the checkpoint made with the
same config and seed (a stamp file records them).
"""
import argparse
import json
import os
import sys

STAMP = "scribe-bench.json"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=os.path.join(root, "build", "bench", "gpt2-124m"))
    ap.add_argument("--seed", type=int, default=124)
    a = ap.parse_args()

    folder = os.path.abspath(a.folder)
    src = os.path.join(root, "")
    if (folder + os.sep).startswith(src) and not os.path.relpath(folder, root).startswith("build"):
        sys.exit(f"make_gpt2_124m: {folder} is inside the source tree; give a folder under a build directory")

    import torch
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config()  # the defaults are GPT-2 124M
    want = {"seed": a.seed, "config": {k: getattr(config, k) for k in
            ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner", "activation_function",
             "layer_norm_epsilon", "tie_word_embeddings")}}
    stamp = os.path.join(folder, STAMP)
    if os.path.exists(stamp) and os.path.exists(os.path.join(folder, "model.safetensors")):
        with open(stamp) as f:
            if json.load(f) == want:
                print(f"make_gpt2_124m: {folder} is up to date")
                return

    torch.manual_seed(a.seed)
    model = GPT2LMHeadModel(config).eval()
    params = sum(p.numel() for p in model.parameters())
    os.makedirs(folder, exist_ok=True)
    if os.path.exists(stamp):
        os.remove(stamp)
    model.save_pretrained(folder, safe_serialization=True)
    with open(stamp, "w") as f:
        json.dump(want, f, indent=1)
    print(f"make_gpt2_124m: wrote {params / 1e6:.1f}M parameters to {folder} "
          f"(torch {torch.__version__}, transformers {transformers.__version__}, seed {a.seed})")


if __name__ == "__main__":
    main()
