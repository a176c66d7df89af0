#!/usr/bin/env python3
"""Writes a BERT-base-shaped sequence classifier with random weights for bench/encoder_bench.

    make_bert_base.py [FOLDER] [--seed N]

BertConfig's defaults (vocab 30522, 512 positions, 768 hidden, 12 layers, 12 heads,
intermediate 3072, 2 token types) with two labels (the paraphrase classifier of the
NeuronX Distributed guide), BERT's own initialisation under a fixed seed, saved with
save_pretrained(safe_serialization=True): config.json and model.safetensors, about
440 MB. FOLDER defaults to <source>/build/bench/bert-base (a build folder, never the
source tree). Does nothing when FOLDER already holds the checkpoint made with the
same config and seed (bench/random_checkpoint.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from random_checkpoint import make  # noqa: E402


def model(transformers):
    config = transformers.BertConfig(num_labels=2)
    config.architectures = ["BertForSequenceClassification"]
    return config, transformers.BertForSequenceClassification


if __name__ == "__main__":
    make("make_bert_base", __doc__, "bert-base", 110, model,
         ("vocab_size", "max_position_embeddings", "hidden_size", "num_hidden_layers", "num_attention_heads",
          "intermediate_size", "type_vocab_size", "num_labels"))
