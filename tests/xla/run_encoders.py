"""The exported encoder modules, run by XLA, against Hugging Face's golden outputs.

For each tiny encoder checkpoint in tests/data (made by
scripts/reference/make_encoder_golden.py with transformers: BERT and RoBERTa and
DistilBERT sequence classifiers, a BERT sentence-embedding model), `scribe
export-hlo` writes one module per bucket with manifest.json. XLA compiles each
(the text form and the proto form); the weights come from model.safetensors
(read here with NumPy, cut as the manifest's "split" says); every golden input,
right-padded into one batch of the bucket, must give golden.json's logits, mean
pooled and first-token vectors within 1e-4. The same at tensor-parallel degrees
2 and 4 (`export-hlo --tp N`: N replicas on N fake CPU devices, every replica's
outputs equal).

  run_encoders.py --scribe PATH --data DIR --work DIR
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xla_shim  # noqa: E402
from run_models import TOL, read_safetensors, shard  # noqa: E402

xla_shim.default_level = xla_shim.FAST_COMPILE

PREFIXES = ("", "bert.", "roberta.", "distilbert.")


def check_encoder(scribe, folder, work, tp):
    golden = json.load(open(os.path.join(folder, "golden.json")))
    rows = golden["inputs"]
    out_dir = os.path.join(work, f"{os.path.basename(folder)}-tp{tp}")
    batch = len(rows)
    subprocess.run([scribe, "export-hlo", folder, "--out", out_dir, "--batch", str(batch), "--tp", str(tp), "--buckets", "16,48"],
                   check=True, stdout=subprocess.DEVNULL)
    manifest = json.load(open(os.path.join(out_dir, "manifest.json")))
    assert manifest["kind"] == "encoder" and manifest["tp"] == tp and [m["bucket"] for m in manifest["modules"]] == [16, 48]
    module = manifest["modules"][1]  # the bucket that holds every input
    assert module["num_replicas"] == tp and module["replica_groups"] == ([list(range(tp))] if tp > 1 else [])
    names = [o["name"] for o in module["outputs"]]
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    config = json.load(open(os.path.join(folder, "config.json")))
    pad = config.get("pad_token_id", 0)
    ids = np.full((batch, 48), pad, np.int32)
    types = np.zeros((batch, 48), np.int32)
    lengths = np.zeros((batch,), np.int32)
    for b, r in enumerate(rows):
        ids[b, :len(r["ids"])] = r["ids"]
        types[b, :len(r["ids"])] = r["token_types"]
        lengths[b] = len(r["ids"])
    given = {"ids": ids, "token_types": types, "lengths": lengths}

    def args_for(rank):
        out = []
        for p in module["parameters"]:
            if p["name"] in given:
                out.append(given[p["name"]])
                continue
            w = next((weights[x + p["name"]] for x in PREFIXES if x + p["name"] in weights), None)
            assert w is not None, f"no weight for parameter {p['name']}"
            out.append(np.ascontiguousarray(shard(w, p, tp, rank)))
        return out

    worst = 0.0
    for form in ("text", "proto"):
        compiled = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, module[form])), tp)
        outs = xla_shim.execute(compiled, [args_for(r) for r in range(tp)])
        for r in range(1, tp):
            for k in range(len(names)):
                assert np.array_equal(outs[r][k], outs[0][k]), f"{folder}: replica {r}'s {names[k]} differs from replica 0's"
        got = dict(zip(names, outs[0]))
        for b, r in enumerate(rows):
            for key, want in (("mean", "mean"), ("first", "cls"), ("logits", "logits")):
                if key not in got:
                    continue
                diff = float(np.abs(got[key][b] - np.array(r[want], np.float32)).max())
                worst = max(worst, diff)
                assert diff < TOL, f"{folder} ({form}, tp {tp}): input {b}'s {key} differs by {diff}"
    print(f"ok: {os.path.basename(folder)} at TP {tp}: {batch} inputs padded to 48, {', '.join(names)}, text and proto, "
          f"max |diff| {worst:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scribe", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    for m in ("bert-tiny-cls", "roberta-tiny-cls", "distilbert-tiny-cls", "bert-tiny-embed"):
        for tp in (1, 2, 4):
            check_encoder(a.scribe, os.path.join(a.data, m), a.work, tp)


if __name__ == "__main__":
    main()
