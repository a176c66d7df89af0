#!/usr/bin/env python3
"""Makes tests/data/quant/<family>-q8/: a tiny checkpoint of each decoder family whose
matrices are whole blocks of 32 along their inputs, and the logits Hugging Face's model
gives when it runs as llama.cpp runs Q8_0 weights (and Q4_0 weights), which
tests/unit/test_quantized.cpp compares Scribe's `--dtype q8` (and q4) against.

    .venv-ref/bin/python scripts/reference/make_q8_models.py

The reference is transformers' own model (torch, f32) with
  - every weight Scribe stores as q8 (a matrix or table whose input dim, the one its
    products contract, is a multiple of 32) replaced by its Q8_0 values, quantized and
    read back by llama.cpp's Python package `gguf` (gguf.quants), and
  - the input of every Linear/Conv1D whose weight is such a matrix quantized to Q8_0
    blocks along its last dim and read back (ggml's vec_dot_type for Q8_0 is Q8_0:
    llama.cpp multiplies int8 by int8), by a forward pre-hook.
The LLaMA checkpoint's MLP is 80 wide, so its down projection (80 inputs) stays f32 and
its input is not quantized: a model with both kinds of matrix.

Written per folder: config.json, model.safetensors (f32, save_pretrained) and
q8_logits.safetensors: "logits" F32 [12, vocab], every position of IDS below, and
"greedy" I32 [8], the tokens greedy decoding adds to IDS[:5] (each step's top logit ahead of
the next by a margin the script checks, so a rounding cannot flip it). q4_logits.safetensors:
the same with the weights in Q4_0 instead (their products' inputs still Q8_0: ggml's
vec_dot_type for Q4_0 is Q8_0).
Seeded: running the script again writes the same files.
"""
import pathlib
import sys

import numpy as np
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize
from transformers import (GPT2Config, GPT2LMHeadModel, GPTJConfig, GPTJForCausalLM, LlamaConfig,
                          LlamaForCausalLM, OPTConfig, OPTForCausalLM)
from transformers.pytorch_utils import Conv1D

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_golden import spread_weights  # noqa: E402  (the spreads the other golden models have)
from make_quant_golden import write_safetensors  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "quant"
IDS = [5, 17, 2, 41, 8, 30, 11, 3, 60, 12, 7, 64]
MODELS = {
    "gpt2-q8": (GPT2Config, GPT2LMHeadModel, 21,
                dict(vocab_size=96, n_positions=64, n_embd=64, n_layer=2, n_head=4, n_inner=128,
                     activation_function="gelu_new", layer_norm_epsilon=1e-5)),
    "opt-q8": (OPTConfig, OPTForCausalLM, 122,
               dict(vocab_size=90, hidden_size=64, num_hidden_layers=2, ffn_dim=128, num_attention_heads=4,
                    max_position_embeddings=64, do_layer_norm_before=True, word_embed_proj_dim=64,
                    activation_function="relu", enable_bias=True, pad_token_id=1)),
    "gptj-q8": (GPTJConfig, GPTJForCausalLM, 23,
                dict(vocab_size=80, n_positions=64, n_embd=64, n_layer=2, n_head=2, rotary_dim=8,
                     activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=False)),
    "llama-q8": (LlamaConfig, LlamaForCausalLM, 24,
                 dict(vocab_size=70, hidden_size=64, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=16, max_position_embeddings=64, rms_norm_eps=1e-6,
                      tie_word_embeddings=False)),
}


def q8_round_trip(rows: np.ndarray, qtype=GGMLQuantizationType.Q8_0) -> np.ndarray:
    """rows [n, k] (k a multiple of 32) quantized to qtype (Q8_0) by gguf and read back."""
    with np.errstate(all="ignore"):
        return dequantize(quantize(np.ascontiguousarray(rows, np.float32), qtype), qtype).reshape(rows.shape)


# How close (in steps of a block's scale) an input value may come to a rounding tie
# (k + 1/2) of its Q8_0 quantization: nearer, another order of the f32 sums that made
# it (Scribe's kernels, XLA's) could round it the other way, and the logits would move
# by a whole step of one input. 4e-6 is about half an f32 ulp between 64 and 128.
TIE_MARGIN = 4e-6


def tie_distance(rows: np.ndarray) -> float:
    """The smallest distance of rows' values, in units of their Q8_0 block's scale, to k + 1/2."""
    b = rows.reshape(rows.shape[0], -1, 32).astype(np.float32)
    d = np.abs(b).max(axis=2, keepdims=True) / np.float32(127)
    with np.errstate(all="ignore"):
        v = np.abs(b * np.where(d == 0, np.float32(0), np.float32(1) / d))
    return float(np.abs(v - np.floor(v) - 0.5).min())


def quantize_like_llama_cpp(model: torch.nn.Module, qtype=GGMLQuantizationType.Q8_0, ties=None) -> int:
    """Replaces the block weights by their qtype values (Q8_0 or Q4_0) and hooks their products'
    inputs (always Q8_0), appending each input's tie_distance to `ties`; returns how many
    products read block weights."""
    hooked = 0

    def round_trip_input(_module, args):
        x = args[0]
        flat = x.detach().reshape(-1, x.shape[-1]).numpy()
        if ties is not None:
            ties.append(tie_distance(flat))
        return (torch.from_numpy(q8_round_trip(flat)).reshape(x.shape),) + tuple(args[1:])

    with torch.no_grad():
        done = set()
        for module in model.modules():
            w = getattr(module, "weight", None)
            if w is None or w.dim() != 2:
                continue
            if isinstance(module, Conv1D):  # [in, out]: blocks along dim 0
                k, as_rows = w.shape[0], lambda t: t.T
            elif isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):  # [out, in] / [rows, width]
                k, as_rows = w.shape[1], lambda t: t
            else:
                raise SystemExit(f"unexpected module with a matrix: {type(module).__name__}")
            if k % 32:
                continue
            if w.data_ptr() not in done:  # a tied LM head shares the embedding's storage
                done.add(w.data_ptr())
                rows = as_rows(w.detach()).numpy()
                as_rows(w).copy_(torch.from_numpy(q8_round_trip(rows, qtype)))
            if not isinstance(module, torch.nn.Embedding):
                module.register_forward_pre_hook(round_trip_input)
                hooked += 1
    return hooked


def main():
    for name, (config_cls, model_cls, seed, args) in MODELS.items():
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        model = model_cls(config_cls(**args, bos_token_id=0, eos_token_id=0, attn_implementation="eager"))
        spread_weights(model)
        model.save_pretrained(str(folder), safe_serialization=True)
        (folder / "generation_config.json").unlink(missing_ok=True)
        (folder / "model.safetensors").chmod(0o644)
        for qtype, file in ((GGMLQuantizationType.Q8_0, "q8_logits.safetensors"),
                            (GGMLQuantizationType.Q4_0, "q4_logits.safetensors")):
            model = model_cls.from_pretrained(str(folder), attn_implementation="eager").eval()
            ties = []
            hooked = quantize_like_llama_cpp(model, qtype, ties)
            with torch.no_grad():
                logits = model(torch.tensor([IDS])).logits[0].float().numpy()
                out = model.generate(torch.tensor([IDS[:5]]), max_new_tokens=8, do_sample=False, output_scores=True,
                                     return_dict_in_generate=True, pad_token_id=0, eos_token_id=None)
            greedy = out.sequences[0, 5:].numpy().astype(np.int32)
            margin = min(float(torch.topk(s[0], 2).values[0] - torch.topk(s[0], 2).values[1]) for s in out.scores)
            assert margin > 1e-3, (name, qtype.name, margin)
            assert min(ties) > TIE_MARGIN, (name, qtype.name, "an input within", min(ties), "of a rounding tie: try another seed")
            write_safetensors(folder / file, {"logits": ("F32", logits), "greedy": ("I32", greedy)})
            print(f"wrote {folder / file}: {hooked} products read {qtype.name} weights, logits {logits.shape}, "
                  f"max |logit| {np.abs(logits).max():.2f}, greedy {greedy.tolist()} (smallest margin {margin:.3f}, "
                  f"nearest tie {min(ties):.1e})")


if __name__ == "__main__":
    main()
