"""Times an exported HLO module with XLA's CPU backend, for bench/block_bench.cpp.

    python xla_block.py DIR THREADS

Reads DIR/block.hlo and the inputs listed in DIR/inputs.json (raw f32 files),
compiles the module once, runs it repeatedly and writes the median seconds to
DIR/xla_THREADS.json and the first output to DIR/xla_out_THREADS.bin. THREADS=1
pins the process to one core before XLA starts, so its thread pool shares it.
"""
import json
import os
import sys
import time

directory, threads = sys.argv[1], int(sys.argv[2])
if threads == 1:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "xla"))

import numpy as np  # noqa: E402
import xla_shim  # noqa: E402

with open(os.path.join(directory, "inputs.json")) as f:
    manifest = json.load(f)
inputs = [np.fromfile(m["file"], dtype=np.float32).reshape(m["shape"]) for m in manifest]
compiled = xla_shim.compile_module(xla_shim.load(os.path.join(directory, "block.hlo")))
args = xla_shim.place(compiled, [inputs])  # inputs placed once, like the CPU backend's borrowed ones
out = np.asarray(xla_shim.run_placed(compiled, args)[0][0])  # warm up

once = time.perf_counter()
xla_shim.run_placed(compiled, args)
once = time.perf_counter() - once
times = []
for _ in range(max(5, min(200, int(1.0 / max(once, 1e-6))))):
    t = time.perf_counter()
    xla_shim.run_placed(compiled, args)
    times.append(time.perf_counter() - t)
times.sort()
out.astype(np.float32).tofile(os.path.join(directory, f"xla_out_{threads}.bin"))
with open(os.path.join(directory, f"xla_{threads}.json"), "w") as f:
    json.dump({"median_s": times[len(times) // 2], "reps": len(times)}, f)
