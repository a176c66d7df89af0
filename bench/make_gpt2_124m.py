#!/usr/bin/env python3
"""Writes a GPT-2 124M-shaped checkpoint with random weights for bench/decoder_bench.

    make_gpt2_124m.py [FOLDER] [--seed N]

GPT2Config's defaults (vocab 50257, 1024 positions, 768 hidden, 12 layers, 12 heads,
tied LM head), GPT-2's own initialisation under a fixed seed, saved with
save_pretrained(safe_serialization=True): config.json and model.safetensors, about
500 MB. FOLDER defaults to <source>/build/bench/gpt2-124m (a build folder, never the
source tree). Does nothing when FOLDER already holds the checkpoint made with the
same config and seed (a stamp file records them: bench/random_checkpoint.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from random_checkpoint import make  # noqa: E402


def model(transformers):
    return transformers.GPT2Config(), transformers.GPT2LMHeadModel  # the defaults are GPT-2 124M


if __name__ == "__main__":
    make("make_gpt2_124m", __doc__, "gpt2-124m", 124, model,
         ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner", "activation_function",
          "layer_norm_epsilon", "tie_word_embeddings"))
