#!/usr/bin/env python3
"""Writes a LLaMA checkpoint of about GPT-2 124M's size with random weights for
bench/decoder_bench.

    make_llama_124m.py [FOLDER] [--seed N]

LlamaConfig with vocab 32000, hidden 768, SwiGLU MLP of 2048, 12 layers, 12 query
heads and 4 key/value heads of 64 (grouped-query attention), 1024 positions, RMS
norm eps 1e-5, rope theta 10000 and an LM head of its own (not tied): 124.7M
parameters in float32, LLaMA's own initialisation under a fixed seed, saved with
save_pretrained(safe_serialization=True): config.json and model.safetensors, about
500 MB. No tokenizer: the benchmark's prompt is token ids. FOLDER defaults to
<source>/build/bench/llama-124m (a build folder, never the source tree). Does
nothing when FOLDER already holds the checkpoint made with the same config and
seed (a stamp file records them: bench/random_checkpoint.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from random_checkpoint import make  # noqa: E402


def model(transformers):
    config = transformers.LlamaConfig(
        vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
        num_key_value_heads=4, max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=10000,
        tie_word_embeddings=False, dtype="float32")
    return config, transformers.LlamaForCausalLM


if __name__ == "__main__":
    make("make_llama_124m", __doc__, "llama-124m", 124, model,
         ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
          "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_parameters",
          "hidden_act", "tie_word_embeddings"))
