#!/usr/bin/env python3
"""What a decode step costs from Python against the C++ path, same model, same run.

C++:    `scribe generate MODEL --prompt P --max-new-tokens N --greedy --no-stop`
        and its own "decode: ... (X ms per step" line.
Python: scribe.Decoder.generate(P, N, stop_at_eos=False), timed from Python
        around the whole call (wall clock), less its prefill: everything the
        package adds to a step is inside that figure (argument conversion,
        the per-token callback that checks for Ctrl-C with the GIL, the
        results handed to NumPy).

Runs alternate (C++, Python, C++, ...) and the median of each is reported,
with the Python-side overhead per step in percent (the issue's target: < 2 %).

    PYTHONPATH=build/python .venv/bin/python bench/python_bench.py \\
        --scribe build/tools/scribe --model models/demo-gpt2 [--tokens 128] [--runs 5] [--threads 2] [--dtype f32]
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scribe", required=True, help="the scribe program (build/tools/scribe)")
    ap.add_argument("--model", required=True, help="a decoder folder")
    ap.add_argument("--prompt", default="In the beginning")
    ap.add_argument("--tokens", type=int, default=128, help="new tokens a run (default 128)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()

    import scribe

    lm = scribe.Decoder.from_pretrained(a.model, dtype=a.dtype, threads=a.threads)
    lm.generate(a.prompt, a.tokens, stop_at_eos=False)  # graphs built, caches warm

    cpp, py = [], []
    for _ in range(a.runs):
        r = subprocess.run([a.scribe, "generate", a.model, "--prompt", a.prompt, "--max-new-tokens", str(a.tokens), "--greedy",
                            "--no-stop", "--dtype", a.dtype, "--threads", str(a.threads)], capture_output=True, text=True, check=True)
        m = re.search(r"decode: .*\(([0-9.]+) ms per step", r.stderr)
        if not m:
            sys.exit(f"no decode line in the program's output:\n{r.stderr}")
        cpp.append(float(m.group(1)))

        t0 = time.perf_counter()
        out = lm.generate(a.prompt, a.tokens, stop_at_eos=False)
        wall = time.perf_counter() - t0
        py.append((wall - out.prefill_seconds) / out.decode_steps * 1e3)

    c, p = statistics.median(cpp), statistics.median(py)
    print(f"model {a.model}, {a.dtype}, {a.threads} threads, {a.tokens} new tokens, median of {a.runs} alternating runs")
    print(f"  C++ (scribe generate):           {c:.3f} ms per decode step  (runs: {', '.join(f'{x:.3f}' for x in cpp)})")
    print(f"  Python (Decoder.generate, wall): {p:.3f} ms per decode step  (runs: {', '.join(f'{x:.3f}' for x in py)})")
    print(f"  Python-side overhead: {100 * (p - c) / c:+.2f} %")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cpp_ms": c, "python_ms": p, "overhead_percent": 100 * (p - c) / c, "cpp_runs": cpp, "python_runs": py}, f)


if __name__ == "__main__":
    main()
