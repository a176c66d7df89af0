"""The exported decoder graphs, run by XLA, against Hugging Face's golden outputs.

For each tiny checkpoint in tests/data (made by scripts/reference/make_golden.py
with transformers: GPT-2, OPT pre- and post-LN, GPT-J, LLaMA grouped- and
multi-query, Mistral with a sliding window): `scribe export-hlo` writes a prefill module that returns every
position's logits and a decode module, with manifest.json. XLA compiles both (the
text form and the proto form), the weights come from model.safetensors (read here
with NumPy, placed as the manifest says), and:
  - prefill logits of every golden prompt equal golden.json's (within 1e-4),
  - a greedy loop (prefill, then decode steps feeding the caches back) gives the
    golden tokens, and each step's logits equal golden.json's step_logits.
The same at tensor-parallel degrees 2 and 4 (`export-hlo --tp N`): XLA runs the
module on N replicas (N fake CPU devices), each with its shards of the weights
(cut here with NumPy as the manifest's "split" says, the vocabulary padded with
zero rows) and its heads of the cache; every replica's logits must equal the
golden (TP 1, Hugging Face) logits. And the training step (`export-hlo --train`):
the loss and the gradient of every weight equal PyTorch's loss.backward() on the
same batch (tests/data/<model>/gradients), at TP 1, 2 and 4 (check_train).

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


def shard(w, p, tp, rank):
    """Rank `rank`'s part of the full weight w for parameter p (its per-rank shape)."""
    shape = [d["extent"] for d in p["shape"]]
    if "split" not in p:
        return w.reshape(shape)
    axis = [d["name"] for d in p["shape"]].index(p["split"])
    full = list(shape)
    full[axis] = w.size // int(np.prod([e for i, e in enumerate(shape) if i != axis]))
    w = w.reshape(full)
    each = shape[axis]
    pad = [(0, 0)] * len(shape)
    pad[axis] = (0, each * tp - full[axis])  # the vocabulary's zero rows
    w = np.pad(w, pad)
    return np.take(w, range(rank * each, (rank + 1) * each), axis=axis)


def inputs_for(module, weights, given, tp=1, rank=0):
    """The module's arguments in parameter order: weights by name (rank's shards), the rest from `given`."""
    args = []
    for p in module["parameters"]:
        shape = [d["extent"] for d in p["shape"]]
        name = p["name"]
        if name in given:
            a = given[name]
            if isinstance(a, list):  # one per rank
                a = a[rank]
        else:
            w = next((weights[p + name] for p in ("", "transformer.", "model.") if p + name in weights), None)
            assert w is not None, f"no weight for parameter {name}"
            a = shard(w, p, tp, rank)
        assert list(a.shape) == shape, (name, a.shape, shape)
        args.append(np.ascontiguousarray(a))
    return args


def check_model(scribe, folder, work, tp=1):
    golden = json.load(open(os.path.join(folder, "golden.json")))
    prompts = golden["prompts"]
    n_new = len(prompts[0]["greedy"])
    config = json.load(open(os.path.join(folder, "config.json")))
    positions = config.get("n_positions", config.get("max_position_embeddings"))
    bucket = max(len(p["ids"]) for p in prompts)
    bucket = 1 << (bucket - 1).bit_length()
    out_dir = os.path.join(work, f"{os.path.basename(folder)}-tp{tp}")
    subprocess.run([scribe, "export-hlo", folder, "--out", out_dir, "--buckets", str(bucket), "--capacity", str(positions),
                    "--all-logits", "--tp", str(tp)], check=True, stdout=subprocess.DEVNULL)
    manifest = json.load(open(os.path.join(out_dir, "manifest.json")))
    prefill_m, decode_m = manifest["modules"]
    assert manifest["tp"] == tp and prefill_m["num_replicas"] == tp and prefill_m["ranks"] == list(range(tp))
    assert prefill_m["replica_groups"] == ([list(range(tp))] if tp > 1 else [])
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    caches = [p for p in prefill_m["parameters"] if p["name"].startswith("cache.")]
    worst = 0.0
    ranks = range(tp)

    def run(module, compiled, given):
        """Runs every replica; checks they agree; returns replica 0's outputs and each replica's caches."""
        outs = xla_shim.execute(compiled, [inputs_for(module, weights, given, tp, r) for r in ranks])
        for r in ranks[1:]:
            assert np.array_equal(outs[r][0], outs[0][0]), f"{folder}: replica {r}'s logits differ from replica 0's"
        # Outputs 1... are the caches: each updates (is aliased to) the parameter it is named after.
        named = {o["index"]: o["name"] for o in module["outputs"]}
        return outs[0][0], {named[k]: [outs[r][k] for r in ranks] for k in range(1, len(module["outputs"]))}

    for form in ("hlo", "pb"):
        prefill = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, prefill_m[{"hlo": "text", "pb": "proto"}[form]])), tp)
        decode = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, decode_m[{"hlo": "text", "pb": "proto"}[form]])), tp)
        for p in prompts:
            ids = np.zeros((1, bucket), np.int32)
            ids[0, :len(p["ids"])] = p["ids"]
            given = {"ids": ids, "lengths": np.array([len(p["ids"])], np.int32)}
            for c in caches:  # this rank's heads of the cache, as the manifest says
                given[c["name"]] = np.zeros([d["extent"] for d in c["shape"]], np.float32)
            logits, cache_values = run(prefill_m, prefill, given)
            logits = logits[0, :len(p["ids"])]
            diff = float(np.abs(logits - np.array(p["logits"], np.float32)).max())
            worst = max(worst, diff)
            assert diff < TOL, f"{folder} ({form}, tp {tp}): prefill logits differ by {diff}"
            # Greedy: the first token from the prompt's last position, then decode steps.
            tokens = [int(np.argmax(logits[-1]))]
            for step in range(1, n_new):
                given = {"ids": np.array([[tokens[-1]]], np.int32),
                         "positions": np.array([len(p["ids"]) + step - 1], np.int32), **cache_values}
                logits, cache_values = run(decode_m, decode, given)
                row = logits[0]
                diff = float(np.abs(row - np.array(p["step_logits"][step], np.float32)).max())
                worst = max(worst, diff)
                assert diff < TOL, f"{folder} ({form}, tp {tp}): decode step {step} logits differ by {diff}"
                tokens.append(int(np.argmax(row)))
            assert tokens == p["greedy"], f"{folder} ({form}, tp {tp}): greedy {tokens} != golden {p['greedy']}"
    print(f"ok: {os.path.basename(folder)} at TP {tp} ({tp} replica(s)): {len(prompts)} prompts, prefill and "
          f"{n_new - 1} decode steps, text and proto, max |logit diff| {worst:.2e}")


def check_train(scribe, folder, work, tp=1):
    """The training-step module (`export-hlo --train`): the causal-LM loss and every
    weight's gradient of the right-padded batch in gradients/loss.json equal PyTorch's
    (gradients/model.safetensors, made by scripts/reference/make_gradient_golden.py);
    at TP N each replica's gradient is its shard of the golden one."""
    batch = json.load(open(os.path.join(folder, "gradients", "loss.json")))
    ids = np.array(batch["ids"], np.int32)
    lengths = np.array(batch["lengths"], np.int32)
    out_dir = os.path.join(work, f"{os.path.basename(folder)}-train-tp{tp}")
    subprocess.run([scribe, "export-hlo", folder, "--out", out_dir, "--train", "--buckets", str(ids.shape[1]),
                    "--batch", str(ids.shape[0]), "--tp", str(tp)], check=True, stdout=subprocess.DEVNULL)
    module = json.load(open(os.path.join(out_dir, "manifest.json")))["modules"][0]
    assert module["kind"] == "train" and module["num_replicas"] == tp
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    golden = read_safetensors(os.path.join(folder, "gradients", "model.safetensors"))
    params = {p["name"]: p for p in module["parameters"]}
    worst = 0.0
    for form in ("text", "proto"):
        compiled = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, module[form])), tp)
        outs = xla_shim.execute(compiled, [inputs_for(module, weights, {"ids": ids, "lengths": lengths}, tp, r)
                                           for r in range(tp)])
        for r in range(tp):
            loss = float(outs[r][0])
            assert abs(loss - float(batch["loss"])) <= 1e-5 * abs(float(batch["loss"])), \
                f"{folder} ({form}, tp {tp}, replica {r}): loss {loss} != PyTorch's {batch['loss']}"
            for o in module["outputs"][1:]:
                name = o["name"][len("grad."):]
                full = next(golden[p + name] for p in ("", "transformer.", "model.") if p + name in golden)
                want = shard(full, params[name], tp, r)
                got = outs[r][o["index"]]
                diff = float(np.abs(got - want).max())
                scale = float(np.abs(want).max())
                worst = max(worst, diff / max(scale, 1e-30))
                assert diff <= 1e-4 * scale + 1e-6, \
                    f"{folder} ({form}, tp {tp}, replica {r}): gradient of {name} differs by {diff} (largest {scale})"
    print(f"ok: {os.path.basename(folder)} training step at TP {tp}: loss and {len(module['outputs']) - 1} gradients, "
          f"text and proto, max relative diff {worst:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scribe", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    for m in ("gpt2-tiny-a", "gpt2-tiny-b", "opt-tiny", "opt-tiny-post", "gptj-tiny", "llama-tiny-gqa", "llama-tiny-mqa",
              "mistral-tiny"):
        for tp in (1, 2, 4):
            check_model(a.scribe, os.path.join(a.data, m), a.work, tp)
            check_train(a.scribe, os.path.join(a.data, m), a.work, tp)


if __name__ == "__main__":
    main()
