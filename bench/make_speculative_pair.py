#!/usr/bin/env python3
"""Writes the target of bench/speculative_bench's draft/target pair: a GPT-2 of
GPT-2 124M's width and depth (12 layers, hidden 768, 12 x 2 heads of 32, ffn 3072)
grown from the demo model (models/demo-gpt2: 4 layers, hidden 256), sharing its
tokenizer, so the demo model is a draft that often agrees with it.

    make_speculative_pair.py [FOLDER] [--noise S] [--seed N]

Growing (function-preserving, as Net2Net widens a network): every hidden unit of
the demo model is repeated 3 times (LayerNorm sees the same mean and variance),
every attention head and MLP unit 3 times with the weights that read them divided
by 3, and the final LayerNorm's scale and shift divided by 3 (the tied LM head sums
768 units where the demo summed 256). The demo's 4 layers become layers 0, 3, 6, 9;
the 8 between are new blocks drawn as GPT-2 initialises them (seeded), their
output projections with standard deviation S x 0.02 / sqrt(2 x 12) (S = --noise,
default 1; 0 gives the demo model's function exactly, which the script checks with
transformers). So the target is the demo model perturbed by 8 untrained blocks: a
larger model that agrees with the draft often but not always, not one trained on
the text (training a 88M-parameter model is beyond a benchmark's set-up here).

FOLDER defaults to <source>/build/bench/speculative-target (a build folder). Does
nothing when FOLDER already holds the checkpoint made with the same options.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np

STAMP = "scribe-bench.json"


def grow(demo, config, layers, noise, rng):
    """The grown state dict (Hugging Face names, Conv1D weights [in, out])."""
    r = 3
    H, heads, hd = config["n_embd"], config["n_head"], config["n_embd"] // config["n_head"]
    ffn = config.get("n_inner") or 4 * H
    out = {}

    def rep(a, axis):  # unit i -> units 3i, 3i + 1, 3i + 2
        return np.repeat(a, r, axis=axis)

    def rep_heads(a, axis):  # [.., heads, hd, ..]: head h -> heads 3h .. 3h + 2
        return np.repeat(a, r, axis=axis)

    out["transformer.wte.weight"] = rep(demo["transformer.wte.weight"], 1)
    out["transformer.wpe.weight"] = rep(demo["transformer.wpe.weight"], 1)
    old_at = {3 * i: i for i in range(config["n_layer"])}
    n_embd, std = H * r, 0.02
    proj_std = noise * std / np.sqrt(2 * layers)
    for l in range(layers):
        p = f"transformer.h.{l}."
        if l in old_at:
            q = f"transformer.h.{old_at[l]}."
            for n in ("ln_1", "ln_2"):
                out[p + n + ".weight"] = rep(demo[q + n + ".weight"], 0)
                out[p + n + ".bias"] = rep(demo[q + n + ".bias"], 0)
            w = demo[q + "attn.c_attn.weight"].reshape(H, 3, heads, hd)
            out[p + "attn.c_attn.weight"] = (rep_heads(rep(w, 0), 2) / r).reshape(n_embd, 3 * n_embd)
            b = demo[q + "attn.c_attn.bias"].reshape(3, heads, hd)
            out[p + "attn.c_attn.bias"] = rep_heads(b, 1).reshape(3 * n_embd)
            w = demo[q + "attn.c_proj.weight"].reshape(heads, hd, H)
            out[p + "attn.c_proj.weight"] = (rep(rep_heads(w, 0), 2) / r).reshape(n_embd, n_embd)
            out[p + "attn.c_proj.bias"] = rep(demo[q + "attn.c_proj.bias"], 0)
            out[p + "mlp.c_fc.weight"] = rep(rep(demo[q + "mlp.c_fc.weight"], 0), 1) / r
            out[p + "mlp.c_fc.bias"] = rep(demo[q + "mlp.c_fc.bias"], 0)
            out[p + "mlp.c_proj.weight"] = rep(rep(demo[q + "mlp.c_proj.weight"], 0), 1) / r
            out[p + "mlp.c_proj.bias"] = rep(demo[q + "mlp.c_proj.bias"], 0)
        else:  # a new block, as GPT-2 initialises one
            for n in ("ln_1", "ln_2"):
                out[p + n + ".weight"] = np.ones(n_embd, np.float32)
                out[p + n + ".bias"] = np.zeros(n_embd, np.float32)
            out[p + "attn.c_attn.weight"] = rng.normal(0, std, (n_embd, 3 * n_embd))
            out[p + "attn.c_attn.bias"] = np.zeros(3 * n_embd, np.float32)
            out[p + "attn.c_proj.weight"] = rng.normal(0, proj_std, (n_embd, n_embd))
            out[p + "attn.c_proj.bias"] = np.zeros(n_embd, np.float32)
            out[p + "mlp.c_fc.weight"] = rng.normal(0, std, (n_embd, ffn * r))
            out[p + "mlp.c_fc.bias"] = np.zeros(ffn * r, np.float32)
            out[p + "mlp.c_proj.weight"] = rng.normal(0, proj_std, (ffn * r, n_embd))
            out[p + "mlp.c_proj.bias"] = np.zeros(n_embd, np.float32)
    out["transformer.ln_f.weight"] = rep(demo["transformer.ln_f.weight"], 0) / r
    out["transformer.ln_f.bias"] = rep(demo["transformer.ln_f.bias"], 0) / r
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(prog="make_speculative_pair", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=os.path.join(root, "build", "bench", "speculative-target"))
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--demo", default=os.path.join(root, "models", "demo-gpt2"))
    a = ap.parse_args()
    folder = os.path.abspath(a.folder)
    if (folder + os.sep).startswith(root + os.sep) and not os.path.relpath(folder, root).startswith("build"):
        sys.exit(f"make_speculative_pair: {folder} is inside the source tree; give a folder under a build directory")

    import torch
    import transformers
    from safetensors.numpy import load_file, save_file

    config = json.load(open(os.path.join(a.demo, "config.json")))
    layers = 12
    want = {"seed": a.seed, "noise": a.noise, "demo": config, "layers": layers}
    stamp = os.path.join(folder, STAMP)
    if os.path.exists(stamp) and os.path.exists(os.path.join(folder, "model.safetensors")):
        if json.load(open(stamp)) == want:
            print(f"make_speculative_pair: {folder} is up to date")
            return
    demo = load_file(os.path.join(a.demo, "model.safetensors"))
    demo = {(k if k.startswith("transformer.") else "transformer." + k): v for k, v in demo.items()}
    grown_config = dict(config, n_embd=config["n_embd"] * 3, n_head=config["n_head"] * 3, n_layer=layers, n_inner=None)

    def lm(state, cfg):
        m = transformers.GPT2LMHeadModel(transformers.GPT2Config(**{k: v for k, v in cfg.items() if k not in ("architectures", "dtype")}))
        m.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
        m.tie_weights()
        return m.eval()

    # The growth keeps the demo model's function: with no noise, equal logits.
    ids = torch.tensor([[5, 17, 301, 42, 7, 1999, 3, 88, 250, 11]])
    with torch.no_grad():
        want_logits = lm(demo, config)(ids).logits
        same = lm(grow(demo, config, layers, 0.0, np.random.default_rng(a.seed)), grown_config)(ids).logits
    diff = float((want_logits - same).abs().max())
    print(f"make_speculative_pair: grown without noise, max |logit - demo's| = {diff:.2e}")
    if diff > 1e-3:
        sys.exit("make_speculative_pair: the growth does not keep the demo model's function")

    state = grow(demo, config, layers, a.noise, np.random.default_rng(a.seed))
    os.makedirs(folder, exist_ok=True)
    save_file(state, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    grown_config["architectures"] = ["GPT2LMHeadModel"]
    json.dump(grown_config, open(os.path.join(folder, "config.json"), "w"), indent=2)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        if os.path.exists(os.path.join(a.demo, f)):
            shutil.copy(os.path.join(a.demo, f), folder)
    json.dump(want, open(stamp, "w"))
    n = sum(v.size for k, v in state.items())
    print(f"make_speculative_pair: wrote {folder} ({n / 1e6:.1f}M parameters, noise {a.noise})")


if __name__ == "__main__":
    main()
