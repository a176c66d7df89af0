#!/usr/bin/env python3
"""What a decode step costs from Python against the C++ path, same model, same run,
same process.

C++:    scribe.cli(["generate", MODEL, "--prompt", P, "--max-new-tokens", N, "--greedy",
        "--no-stop", ...]): the `scribe` program's own command, run in this process,
        and its "decode: ... (X ms per step" line (its stderr, captured).
Python: scribe.Decoder.generate(P, N, stop_at_eos=False), timed from Python
        around the whole call (wall clock), less its prefill: everything the
        package adds to a step is inside that figure (argument conversion,
        the per-token callback that checks for Ctrl-C with the GIL, the
        results handed to NumPy).

Both run in one process, so neither pays a process start or meets other page
caches; runs alternate (C++, Python, C++, ...) and the median of each is
reported, with the Python-side overhead per step in percent (the issue's target:
< 2 %). Also printed: the part of Python's wall time outside the C++ generate
call's own prefill and decode timers, per step.

    PYTHONPATH=build/python .venv/bin/python bench/python_bench.py \\
        --model models/demo-gpt2 [--tokens 128] [--runs 5] [--threads 2] [--dtype f32]
"""
import argparse
import json
import re
import statistics
import os
import tempfile
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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

    def program_step_ms():
        # The command's stderr (its timing lines) into a file, its stdout (the text)
        # away: fds 2 and 1 themselves, as C++ writes them.
        with tempfile.TemporaryFile(mode="w+") as err, open(os.devnull, "w") as null:
            sys.stdout.flush()
            sys.stderr.flush()
            saved, saved_out = os.dup(2), os.dup(1)
            os.dup2(err.fileno(), 2)
            os.dup2(null.fileno(), 1)
            try:
                scribe.cli(["generate", a.model, "--prompt", a.prompt, "--max-new-tokens", str(a.tokens), "--greedy",
                            "--no-stop", "--dtype", a.dtype, "--threads", str(a.threads)])
            finally:
                os.dup2(saved, 2)
                os.dup2(saved_out, 1)
                os.close(saved)
                os.close(saved_out)
            err.seek(0)
            text = err.read()
        m = re.search(r"decode: .*\(([0-9.]+) ms per step", text)
        if not m:
            sys.exit(f"no decode line in the command's output:\n{text}")
        return float(m.group(1))

    cpp, py, outside = [], [], []
    for _ in range(a.runs):
        cpp.append(program_step_ms())
        t0 = time.perf_counter()
        out = lm.generate(a.prompt, a.tokens, stop_at_eos=False)
        wall = time.perf_counter() - t0
        py.append((wall - out.prefill_seconds) / out.decode_steps * 1e3)
        outside.append((wall - out.prefill_seconds - out.decode_seconds) / out.decode_steps * 1e3)

    c, p = statistics.median(cpp), statistics.median(py)
    print(f"model {a.model}, {a.dtype}, {a.threads} threads, {a.tokens} new tokens, median of {a.runs} alternating runs")
    print(f"  C++ (scribe generate):           {c:.3f} ms per decode step  (runs: {', '.join(f'{x:.3f}' for x in cpp)})")
    print(f"  Python (Decoder.generate, wall): {p:.3f} ms per decode step  (runs: {', '.join(f'{x:.3f}' for x in py)})")
    print(f"  Python-side overhead: {100 * (p - c) / c:+.2f} %")
    print(f"  of which outside the C++ call's timers: {statistics.median(outside) * 1e3:.1f} us per step")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"cpp_ms": c, "python_ms": p, "overhead_percent": 100 * (p - c) / c, "cpp_runs": cpp, "python_runs": py}, f)


if __name__ == "__main__":
    main()
