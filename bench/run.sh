#!/usr/bin/env bash
# Builds and runs every benchmark (Meson benchmark targets), serially, then merges
# their JSON reports into build/bench/report.json. Each benchmark prints its own
# table, every figure next to its peer (OpenBLAS, XLA, PyTorch) or limit (FMA peak, read
# bandwidth) measured in the same run.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"
scribe_setup_system
scribe_setup_bench  # cmake: decoder_bench builds llama.cpp, its peer, into build/bench/llama.cpp
scribe_setup_python
scribe_setup_reference  # PyTorch: the peer of decoder_bench, and what makes its checkpoints
scribe_build build -Dxla=auto -Dbenchmarks=true >/dev/null
# GPT-2 124M and a LLaMA of its size with random weights (~500 MB each, once) for
# decoder_bench, in the build folder.
"$SCRIBE_ROOT/.venv-ref/bin/python" "$SCRIBE_ROOT/bench/make_gpt2_124m.py" "$SCRIBE_ROOT/build/bench/gpt2-124m"
"$SCRIBE_ROOT/.venv-ref/bin/python" "$SCRIBE_ROOT/bench/make_llama_124m.py" "$SCRIBE_ROOT/build/bench/llama-124m"
meson test -C "$SCRIBE_ROOT/build" --benchmark --num-processes 1 --verbose
python3 - "$SCRIBE_ROOT/build/bench" <<'PY'
import json, os, platform, sys, time
d = sys.argv[1]
report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.processor() or platform.machine(),
          "cores": os.cpu_count()}
for name in ("gemm", "block", "gpt2", "llama", "bert", "tokenizer", "speculative", "start"):
    path = os.path.join(d, name + ".json")
    if os.path.exists(path):
        with open(path) as f:
            report[name] = json.load(f)
with open(os.path.join(d, "report.json"), "w") as f:
    json.dump(report, f, indent=2)
print("report:", os.path.join(d, "report.json"))
PY
