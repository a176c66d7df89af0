#!/usr/bin/env python3
"""Start-up of `scribe generate`: from a Hugging Face folder against from the
artifact `scribe compile` made of it, at TP 1 and TP 2, in bf16.

    start_bench.py --scribe SCRIBE --model FOLDER --tokenizer-from DIR --dir WORK [--json OUT]
                   [--repeats 5] [--dtype bf16] [--threads 2]

FOLDER is a checkpoint (decoder_bench's GPT-2 124M: config.json and
model.safetensors); its tokenizer files come from DIR (the demo model's), so
WORK/model holds the checkpoint (hard links, or copies) and a tokenizer. WORK/art-tp1 and
WORK/art-tp2 are compiled from it (`scribe compile --dtype bf16`).

Each measurement is a whole process, as a user starts one: the wall time of
`scribe generate SRC --prompt ... --max-new-tokens 1` (start to first token:
load, graphs, prefill), the page cache warm (one untimed run first), runs of the
folder and the artifact interleaved, the median of --repeats. Then the decode
rate of each (64 new tokens), so a faster start is not paid for in decode.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time


def run(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"start_bench: {' '.join(cmd)} failed:\n{p.stderr}")
    return took, p.stdout, p.stderr


def link_or_copy(src, dst):
    if os.path.exists(dst):
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scribe", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokenizer-from", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--json")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.model, "model.safetensors")):
        sys.exit(f"start_bench: {a.model} has no model.safetensors (make it with bench/make_gpt2_124m.py)")

    model = os.path.join(a.dir, "model")
    os.makedirs(model, exist_ok=True)
    for n in ("config.json", "model.safetensors"):
        link_or_copy(os.path.join(a.model, n), os.path.join(model, n))
    for n in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        if os.path.exists(os.path.join(a.tokenizer_from, n)):
            shutil.copyfile(os.path.join(a.tokenizer_from, n), os.path.join(model, n))

    common = ["--dtype", a.dtype, "--threads", str(a.threads), "--prompt", "Hello there"]
    rows = []
    for tp in (1, 2):
        art = os.path.join(a.dir, f"art-tp{tp}")
        took, out, _ = run([a.scribe, "compile", model, "--out", art, "--tp", str(tp), "--dtype", a.dtype, "--threads", str(a.threads)])
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(art) for f in fs)
        print(f"compiled --tp {tp} in {took:.1f} s: {size / 2**20:.0f} MiB", flush=True)
        sources = {"folder": model, "artifact": art}
        first = {k: [] for k in sources}
        for k, src in sources.items():  # warm the page cache
            run([a.scribe, "generate", src, "--tp", str(tp), "--max-new-tokens", "1", "--quiet"] + common)
        for _ in range(a.repeats):
            for k, src in sources.items():
                took, _, _ = run([a.scribe, "generate", src, "--tp", str(tp), "--max-new-tokens", "1", "--quiet"] + common)
                first[k].append(took)
        decode = {}
        for k, src in sources.items():
            _, _, err = run([a.scribe, "generate", src, "--tp", str(tp), "--max-new-tokens", "64", "--no-stop", "--temperature", "0"] + common)
            m = re.search(r"decode: .* ([0-9.]+) tokens/s", err)
            decode[k] = float(m.group(1)) if m else None
        row = {"tp": tp, "dtype": a.dtype, "threads": a.threads, "artifact_mib": round(size / 2**20, 1),
               "folder_first_token_s": statistics.median(first["folder"]), "artifact_first_token_s": statistics.median(first["artifact"]),
               "folder_runs_s": first["folder"], "artifact_runs_s": first["artifact"],
               "folder_decode_tokens_per_s": decode["folder"], "artifact_decode_tokens_per_s": decode["artifact"]}
        row["speedup"] = row["folder_first_token_s"] / row["artifact_first_token_s"]
        rows.append(row)

    print(f"\nstart to first token, GPT-2 124M in {a.dtype}, {a.threads} threads (median of {a.repeats} processes; page cache warm)")
    print(f"{'tp':>3} {'folder s':>10} {'artifact s':>11} {'faster':>8} {'decode tok/s folder':>20} {'artifact':>9}")
    for r in rows:
        print(f"{r['tp']:>3} {r['folder_first_token_s']:>10.3f} {r['artifact_first_token_s']:>11.3f} {r['speedup']:>7.1f}x "
              f"{r['folder_decode_tokens_per_s'] or 0:>20.1f} {r['artifact_decode_tokens_per_s'] or 0:>9.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"start": rows}, f, indent=2)


if __name__ == "__main__":
    main()
