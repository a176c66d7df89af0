"""Times Scribe's exported training step with XLA's CPU backend, for bench/train_bench.cpp.

    python xla_train.py DIR THREADS

DIR holds step.hlo (the step graph runtime::trainer runs: forward, backward,
clipping, AdamW) and params.json: the module's parameters in order, each
{"name", "dtype", "shape", "source"} with source "weight:<file>:<tensor>" (float32
in a safetensors file), "zeros" (the optimizer state) or "file:<path>" (raw bytes:
the batch), and the aliases [{"output", "parameter"}]. The module is compiled once;
each step feeds the aliased outputs (the updated weights and state) back as the
next step's inputs, as a training loop does. Writes DIR/xla_THREADS.json: the
median seconds of a step after one warm-up, the first step's loss, the compile seconds and the
peak memory (the highest resident set size during the steps less the size before
the first, sampled every millisecond, as torch_train.py measures it). THREADS=1
pins the process to one core before XLA starts.
"""
import json
import os
import statistics
import sys
import time

directory, threads = sys.argv[1], int(sys.argv[2])
if threads == 1:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "xla"))

import numpy as np  # noqa: E402
import xla_shim  # noqa: E402
from peak_rss import PeakRss  # noqa: E402


def safetensors_tensor(path, name, cache={}):
    if path not in cache:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        cache[path] = (np.memmap(path, dtype=np.uint8, mode="r"), header, 8 + n)
    data, header, base = cache[path]
    e = header[name]
    assert e["dtype"] == "F32", (name, e["dtype"])
    b, end = e["data_offsets"]
    return np.frombuffer(data[base + b:base + end], dtype=np.float32)


manifest = json.load(open(os.path.join(directory, "params.json")))
dtypes = {"f32": np.float32, "s32": np.int32}
inputs = []
for p in manifest["parameters"]:
    shape = [d for d in p["shape"]]
    kind, _, rest = p["source"].partition(":")
    if kind == "weight":
        file, _, tensor = rest.partition(":")
        inputs.append(np.array(safetensors_tensor(file, tensor).reshape(shape)))
    elif kind == "zeros":
        inputs.append(np.zeros(shape, dtypes[p["dtype"]]))
    else:
        inputs.append(np.fromfile(rest, dtype=dtypes[p["dtype"]]).reshape(shape))

started = time.perf_counter()
compiled = xla_shim.compile_module(xla_shim.load(os.path.join(directory, "step.hlo")))
compile_s = time.perf_counter() - started
args = xla_shim.place(compiled, [inputs])
del inputs
aliases = [(a["output"], a["parameter"]) for a in manifest["aliases"]]



def step():
    t = time.perf_counter()
    outs = xla_shim.run_placed(compiled, args)
    for o, p in aliases:  # the updated weights and state are the next step's inputs
        args[p] = outs[o][0]
    return time.perf_counter() - t, float(np.asarray(outs[0][0]))


with PeakRss() as peak:
    _, loss = step()  # warm-up; its loss is the first step's, from the checkpoint's weights
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < 10.0 and len(times) < 20):
        times.append(step()[0])
with open(os.path.join(directory, f"xla_{threads}.json"), "w") as f:
    json.dump({"step_seconds": statistics.median(times), "steps": len(times), "loss": loss, "compile_seconds": compile_s,
               "peak_bytes": peak.bytes}, f)
