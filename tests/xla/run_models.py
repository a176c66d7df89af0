"""The exported GPT-2 graphs, run by XLA, against Hugging Face's golden outputs.

For each tiny checkpoint in tests/data (made by scripts/reference/make_golden.py
with transformers): `scribe export-hlo` writes a prefill module that returns every
position's logits and a decode module, with manifest.json. XLA compiles both (the
text form and the proto form), the weights come from model.safetensors (read here
with NumPy, placed as the manifest says), and:
  - prefill logits of every golden prompt equal golden.json's (within 1e-4),
  - a greedy loop (prefill, then decode steps feeding the caches back) gives the
    golden tokens, and each step's logits equal golden.json's step_logits.

  run_models.py --scribe PATH --data DIR --work DIR
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xla_shim  # noqa: E402

TOL = 1e-4


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[base + b:base + end], dtype=np.float32).reshape(e["shape"])
    return out


def inputs_for(module, weights, given):
    """The module's arguments in parameter order: weights by name, the rest from `given`."""
    args = []
    for p in module["parameters"]:
        shape = [d["extent"] for d in p["shape"]]
        name = p["name"]
        if name in given:
            a = given[name]
        else:
            w = weights.get(name, weights.get("transformer." + name))
            assert w is not None, f"no weight for parameter {name}"
            a = w.reshape(shape)
        assert list(a.shape) == shape, (name, a.shape, shape)
        args.append(np.ascontiguousarray(a))
    return args


def check_model(scribe, folder, work):
    golden = json.load(open(os.path.join(folder, "golden.json")))
    prompts = golden["prompts"]
    n_new = len(prompts[0]["greedy"])
    config = json.load(open(os.path.join(folder, "config.json")))
    positions = config["n_positions"]
    bucket = max(len(p["ids"]) for p in prompts)
    bucket = 1 << (bucket - 1).bit_length()
    out_dir = os.path.join(work, os.path.basename(folder))
    subprocess.run([scribe, "export-hlo", folder, "--out", out_dir, "--buckets", str(bucket), "--capacity", str(positions),
                    "--all-logits"], check=True, stdout=subprocess.DEVNULL)
    manifest = json.load(open(os.path.join(out_dir, "manifest.json")))
    prefill_m, decode_m = manifest["modules"]
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    heads, hidden = config["n_head"], config["n_embd"]
    caches = [p["name"] for p in prefill_m["parameters"] if p["name"].startswith("cache.")]
    worst = 0.0
    for form in ("hlo", "pb"):
        prefill = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, prefill_m[{"hlo": "text", "pb": "proto"}[form]])))
        decode = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, decode_m[{"hlo": "text", "pb": "proto"}[form]])))
        for p in prompts:
            ids = np.zeros((1, bucket), np.int32)
            ids[0, :len(p["ids"])] = p["ids"]
            given = {"ids": ids, "lengths": np.array([len(p["ids"])], np.int32)}
            for c in caches:
                given[c] = np.zeros((1, positions, heads, hidden // heads), np.float32)
            outs = xla_shim.execute(prefill, [inputs_for(prefill_m, weights, given)])[0]
            logits = outs[0][0, :len(p["ids"])]
            diff = float(np.abs(logits - np.array(p["logits"], np.float32)).max())
            worst = max(worst, diff)
            assert diff < TOL, f"{folder} ({form}): prefill logits differ by {diff}"
            # Greedy: the first token from the prompt's last position, then decode steps.
            tokens = [int(np.argmax(logits[-1]))]
            cache_values = dict(zip(caches, outs[1:]))
            for step in range(1, n_new):
                given = {"ids": np.array([[tokens[-1]]], np.int32),
                         "positions": np.array([len(p["ids"]) + step - 1], np.int32), **cache_values}
                outs = xla_shim.execute(decode, [inputs_for(decode_m, weights, given)])[0]
                row = outs[0][0]
                diff = float(np.abs(row - np.array(p["step_logits"][step], np.float32)).max())
                worst = max(worst, diff)
                assert diff < TOL, f"{folder} ({form}): decode step {step} logits differ by {diff}"
                tokens.append(int(np.argmax(row)))
                cache_values = dict(zip(caches, outs[1:]))
            assert tokens == p["greedy"], f"{folder} ({form}): greedy {tokens} != golden {p['greedy']}"
    print(f"ok: {os.path.basename(folder)}: {len(prompts)} prompts, prefill and {n_new - 1} decode steps, "
          f"text and proto, max |logit diff| {worst:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scribe", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    for m in ("gpt2-tiny-a", "gpt2-tiny-b"):
        check_model(a.scribe, os.path.join(a.data, m), a.work)


if __name__ == "__main__":
    main()
