"""The exported decoder graphs, run by XLA, against Hugging Face's golden outputs.

For each tiny checkpoint in tests/data (made by scripts/reference/make_golden.py
with transformers: GPT-2, OPT pre- and post-LN, GPT-J, LLaMA grouped- and
multi-query, Mistral with a sliding window): `scribe export-hlo` writes a prefill module that returns every
position's logits and a decode module, with manifest.json. XLA compiles both (the
text form and the proto form), the weights come from model.safetensors (read here
with NumPy, placed as the manifest says), and:
  - prefill logits of every golden prompt equal golden.json's (within 1e-4),
  - a greedy loop (prefill, then decode steps feeding the caches back) gives the
    golden tokens, and each step's logits equal golden.json's step_logits;
  - speculative decoding's verify module (`--speculate 4`), fed 5 golden tokens at
    once after the prefill, gives each one's step_logits (TP 1 and 2, proto form).
The same at tensor-parallel degrees 2 and 4 (`export-hlo --tp N`): XLA runs the
module on N replicas (N fake CPU devices), each with its shards of the weights
(cut here with NumPy as the manifest's "split" says, the vocabulary padded with
zero rows) and its heads of the cache; every replica's logits must equal the
golden (TP 1, Hugging Face) logits. And the training step (`export-hlo --train`):
the loss and the gradient of every weight equal PyTorch's loss.backward() on the
same batch (tests/data/<model>/gradients), at TP 1, 2 and 4 (check_train; the step modules are
run from both forms at TP 1 and from the proto form elsewhere: see PROTO); and 20
optimizer steps of the exported step modules (`export-hlo --train --optimizer ...`: AdamW
with warmup, cosine decay, clipping, weight decay and 2 micro-batches; SGD with momentum)
equal torch.optim's on the same batches (tests/data/<model>/training, check_optimizer); the step of 2
data-parallel replicas (`--dp 2`), run on 2 replicas each with its row of every micro-batch, equals the
single-process step on both rows (check_data_parallel), and so does the step of a 2 x 2 data x
tensor-parallel mesh on 4 replicas (check_mesh); the step in the mixed-precision modes
(`--precision bf16-sr|bf16-master|autocast`) follows the f32 step with bf16 weights, f32 masters and
bf16 products, and its stochastic rounding is seeded (check_precision). And the q8 modules
(`export-hlo --dtype q8`, and q4) of each family's checkpoint in tests/data/quant: s8 (u8) weights
with f16 block scales, quantized here as llama.cpp does, give the logits transformers
gives with llama.cpp's Q8_0 weights and inputs (check_q8), at TP 1 and 2.

  run_models.py --scribe PATH --data DIR --work DIR
"""
import argparse
import json
import os
import subprocess
import sys

import ml_dtypes
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xla_shim  # noqa: E402

xla_shim.default_level = xla_shim.FAST_COMPILE

TOL = 1e-4
VERIFY = 5  # tokens of the exported verify module (export-hlo --speculate 4)

# The forms a check compiles (XLA's compile is most of this suite's time). The
# prefill and decode modules are run from the text and the proto form at TP 1 (at
# TP 2 and 4 from the proto form, their text form checked to be the same module
# once XLA has parsed it), and the training step from both at TP 1; the step
# modules' other checks (TP 2 and 4, optimizers, data parallel, the mesh) from the
# proto form, the one an accelerator's compiler is given. The text form of every op
# is also run by the conformance suite (run_suite.py).
BOTH = ("text", "proto")
PROTO = ("proto",)


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
        assert e["dtype"] in ("F32", "I32"), (name, e["dtype"])
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[base + b:base + end], dtype=np.float32 if e["dtype"] == "F32" else np.int32).reshape(e["shape"])
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
                    "--all-logits", "--tp", str(tp), "--speculate", str(VERIFY - 1)], check=True, stdout=subprocess.DEVNULL)
    manifest = json.load(open(os.path.join(out_dir, "manifest.json")))
    prefill_m, decode_m, verify_m = manifest["modules"]
    assert (prefill_m["kind"], decode_m["kind"], verify_m["kind"], verify_m["tokens"]) == ("prefill", "decode", "verify", VERIFY)
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

    # Both forms are run at TP 1; at TP 2 and 4 the proto form is, and the text form
    # must be the same module once XLA has parsed it (as XLA prints them).
    for m in (prefill_m, decode_m):
        text, proto = (xla_shim.load(os.path.join(out_dir, m[f])) for f in ("text", "proto"))
        assert xla_shim.parse_proto(text).to_string() == xla_shim.parse_proto(proto).to_string(), \
            f"{folder} (tp {tp}): the {m['kind']} module's text and proto forms differ"
    forms = ("text", "proto") if tp == 1 else ("proto",)
    for form in forms:
        prefill = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, prefill_m[form])), tp)
        decode = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, decode_m[form])), tp)
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
    # Speculative decoding's verify step (proto form, TP 1 and 2): after the prefill, the
    # first VERIFY golden tokens fed at once give each one's golden step logits.
    if tp <= 2:
        verify = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, verify_m["proto"])), tp)
        # (`prefill` is the proto form's, compiled by the loop's last pass.)
        for p in prompts:
            ids = np.zeros((1, bucket), np.int32)
            ids[0, :len(p["ids"])] = p["ids"]
            given = {"ids": ids, "lengths": np.array([len(p["ids"])], np.int32)}
            for c in caches:
                given[c["name"]] = np.zeros([d["extent"] for d in c["shape"]], np.float32)
            _, cache_values = run(prefill_m, prefill, given)
            given = {"ids": np.array([p["greedy"][:VERIFY]], np.int32), "positions": np.array([len(p["ids"])], np.int32), **cache_values}
            logits, _ = run(verify_m, verify, given)
            for i in range(VERIFY):
                diff = float(np.abs(logits[0, i] - np.array(p["step_logits"][i + 1], np.float32)).max())
                worst = max(worst, diff)
                assert diff < TOL, f"{folder} (verify, tp {tp}): token {i} of the verify step: logits differ by {diff}"
    print(f"ok: {os.path.basename(folder)} at TP {tp} ({tp} replica(s)): {len(prompts)} prompts, prefill and "
          f"{n_new - 1} decode steps, run from {' and '.join(forms)}{', a verify step of ' + str(VERIFY) + ' tokens' if tp <= 2 else ''}, "
          f"max |logit diff| {worst:.2e}")


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
    forms = BOTH if tp == 1 else PROTO
    for form in forms:
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
          f"{' and '.join(forms)}, max relative diff {worst:.2e}")


def key_bias(name, size):
    """The elements [begin, end) of a weight that are an attention key projection's bias: their
    gradient is zero in exact arithmetic, so Adam turns both sides' rounding noise into lr-sized
    steps (tests/unit/test_train.cpp says more); they are held only to Adam's largest steps."""
    if name.endswith("attn.c_attn.bias"):
        return size // 3, 2 * size // 3
    if name.endswith("k_proj.bias"):
        return 0, size
    return 0, 0


def check_optimizer(scribe, folder, work, run):
    """20 optimizer steps of the exported step modules (`export-hlo --train --optimizer ...`),
    weights and optimizer state fed back through the aliased outputs, equal torch.optim's
    (tests/data/<model>/training/<run>, made by scripts/reference/make_training_golden.py):
    every step's loss, gradient norm, and every weight after the last."""
    record = json.load(open(os.path.join(folder, "training", run, "steps.json")))
    o = record["options"]
    rows, seq = len(record["batches"][0][0]["ids"]), len(record["batches"][0][0]["ids"][0])
    flags = ["--optimizer", o["optimizer"], "--lr", repr(o["lr"]), "--schedule", o["schedule"], "--warmup", str(o["warmup"]),
             "--steps", str(o["total"]), "--weight-decay", repr(o["weight_decay"]), "--clip", repr(o["clip"]),
             "--accumulate", str(o["accumulate"])]
    if o["optimizer"] == "adamw":
        flags += ["--beta1", repr(o["beta1"]), "--beta2", repr(o["beta2"]), "--eps", repr(o["eps"])]
    else:
        flags += ["--momentum", repr(o["momentum"]), "--dampening", repr(o["dampening"])] + (["--nesterov"] if o["nesterov"] else [])
    out_dir = os.path.join(work, f"{os.path.basename(folder)}-{run}")
    subprocess.run([scribe, "export-hlo", folder, "--out", out_dir, "--train", "--buckets", str(seq), "--batch", str(rows)] + flags,
                   check=True, stdout=subprocess.DEVNULL)
    manifest = json.load(open(os.path.join(out_dir, "manifest.json")))
    modules = {m["kind"]: m for m in manifest["modules"]}
    k = o["accumulate"]
    assert set(modules) == ({"train_step"} if k == 1 else {"train_first", "train_last"} | ({"train_middle"} if k > 2 else set()))
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    golden = read_safetensors(os.path.join(folder, "training", run, "model.safetensors"))
    last = modules["train_step" if k == 1 else "train_last"]
    furthest = sum(float(s["lr"]) for s in record["steps"]) * 0.1 / np.sqrt(0.001)
    worst = 0.0
    for form in PROTO:
        compiled = {kind: xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, m[form]))) for kind, m in modules.items()}
        values = {}
        for p in last["parameters"]:  # the weights as the folder has them, the state at zero
            shape = [d["extent"] for d in p["shape"]]
            if p["name"].startswith("optimizer."):
                values[p["name"]] = np.zeros(shape, np.int32 if p["dtype"] == "s32" else np.float32)
            elif p["name"] not in ("ids", "lengths") and not p["name"].startswith("accumulated."):
                values[p["name"]] = inputs_for({"parameters": [p]}, weights, {})[0]
        for s, (micro, want) in enumerate(zip(record["batches"], record["steps"])):
            loss = 0.0
            for j, b in enumerate(micro):
                kind = "train_step" if k == 1 else "train_first" if j == 0 else "train_last" if j == k - 1 else "train_middle"
                module = modules[kind]
                given = dict(values, ids=np.array(b["ids"], np.int32), lengths=np.array(b["lengths"], np.int32))
                outs = xla_shim.execute(compiled[kind], [inputs_for(module, {}, given)])[0]
                for out in module["outputs"]:
                    if out["name"] not in ("loss", "grad_norm"):
                        values[out["name"]] = outs[out["index"]]
                loss += float(outs[0]) / k
                if kind in ("train_step", "train_last"):
                    norm = float(outs[1])
            where = f"{folder} {run} ({form}) step {s}"
            assert abs(loss - float(want["loss"])) <= 2e-5 * abs(float(want["loss"])), f"{where}: loss {loss} != {want['loss']}"
            assert abs(norm - float(want["grad_norm"])) <= 1e-4 * float(want["grad_norm"]), \
                f"{where}: gradient norm {norm} != {want['grad_norm']}"
        assert int(values["optimizer.step"]) == len(record["steps"])
        for name in (p["name"] for p in last["parameters"]):
            if name.startswith("optimizer.") or name in ("ids", "lengths") or name.startswith("accumulated."):
                continue
            want = next(golden[p + name] for p in ("", "transformer.", "model.") if p + name in golden).reshape(-1)
            got = values[name].reshape(-1)
            kb, ke = key_bias(name, got.size) if o["optimizer"] == "adamw" else (0, 0)
            keep = np.ones(got.size, bool)
            keep[kb:ke] = False
            assert np.all(np.abs(got[~keep] - want[~keep]) <= 2 * furthest), f"{folder} {run} ({form}): {name}'s key bias"
            diff = float(np.abs(got[keep] - want[keep]).max()) if keep.any() else 0.0
            scale = float(np.abs(want).max())
            worst = max(worst, diff / scale)
            assert diff <= 2e-5 * scale + 1e-7, f"{folder} {run} ({form}): {name} differs by {diff} (largest {scale})"
    print(f"ok: {os.path.basename(folder)} {run}: {len(record['steps'])} optimizer steps through XLA (proto), "
          f"losses, gradient norms and weights as torch.optim's, max relative weight diff {worst:.2e}")


def quantize_q8(w):
    """llama.cpp's Q8_0 of rows w[rows, k] (as gguf.quants does it): per block of 32,
    d = max|w| / 127 in f32, q = round(w / d) half away from zero; d stored as f16."""
    blocks = w.reshape(w.shape[0], -1, 32).astype(np.float32)
    d = np.abs(blocks).max(axis=2, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
        v = blocks * inv
        whole = np.trunc(v)
        q = np.where(np.isfinite(v), whole + np.sign(v) * (np.abs(v - whole) >= 0.5), 0)
    return np.clip(q, -127, 127).astype(np.int8).reshape(w.shape), d[:, :, 0].astype(np.float16)


def quantize_q4(w):
    """llama.cpp's Q4_0 of rows w[rows, k] (as ggml's quantize_row_q4_0_ref does it): per block
    of 32, m = the first element of largest |w|, d = m / -8 and id = 1 / d in f32, each
    element's bits min(15, trunc(w * id + 8.5)); byte i of a block holds element i in its low
    four bits and element 16 + i in its high four; d stored as f16."""
    blocks = w.reshape(w.shape[0], -1, 32).astype(np.float32)
    m = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=2)[:, :, None], axis=2)
    d = m / np.float32(-8)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
        bits = np.minimum(15, np.trunc(blocks * inv + np.float32(8.5))).astype(np.uint8)
    packed = bits[:, :, :16] | (bits[:, :, 16:] << np.uint8(4))
    return packed, d[:, :, 0].astype(np.float16)


def check_q8(scribe, folder, work, tp=1, fmt="q8"):
    """The q8 (q4) modules (`export-hlo --dtype q8`, q4) of a folder of tests/data/quant: s8 (u8)
    weights and f16 block scales, quantized here with NumPy as llama.cpp does; the modules
    quantize their products' inputs themselves. Prefill logits of every position and a decode
    step's equal q8_logits.safetensors (q4_logits): transformers run with the Q8_0 (Q4_0)
    weights and Q8_0 inputs (scripts/reference/make_q8_models.py)."""
    ids = [5, 17, 2, 41, 8, 30, 11, 3, 60, 12, 7, 64]
    want = read_safetensors(os.path.join(folder, f"{fmt}_logits.safetensors"))["logits"]
    stored, quantize = ("s8", quantize_q8) if fmt == "q8" else ("u8", quantize_q4)
    manifests = {}
    for dtype in ("f32", fmt):
        out_dir = os.path.join(work, f"{os.path.basename(folder)}-{dtype}-tp{tp}")
        subprocess.run([scribe, "export-hlo", folder, "--out", out_dir, "--buckets", "16", "--capacity", "32", "--all-logits",
                        "--dtype", dtype, "--tp", str(tp)], check=True, stdout=subprocess.DEVNULL)
        manifests[dtype] = (out_dir, json.load(open(os.path.join(out_dir, "manifest.json"))))
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    declared = {p["name"]: p for p in manifests["f32"][1]["modules"][0]["parameters"]}
    q8_params = {p["name"]: p for p in manifests[fmt][1]["modules"][0]["parameters"]}
    quantized = [{} for _ in range(tp)]
    for name, p in q8_params.items():
        if p["dtype"] != stored:
            continue
        f = declared[name]  # the weight as the f32 module reads it: its dims, its split
        names = [d["name"] for d in f["shape"]]
        outs = [d["name"] for d in p["shape"][:-2]]
        order = [names.index(n) for n in outs] + [i for i, n in enumerate(names) if n not in outs]
        full = next(weights[x + name] for x in ("", "transformer.", "model.") if x + name in weights)
        for r in range(tp):
            moved = np.transpose(shard(full, f, tp, r), order)  # this rank's part, [out..., in...]
            q, d = quantize(moved.reshape(-1, int(np.prod(moved.shape[len(outs):]))))
            quantized[r][name] = q.reshape([e["extent"] for e in p["shape"]])
            quantized[r][name + ".scale"] = d.reshape([e["extent"] for e in q8_params[name + ".scale"]["shape"]])
    assert quantized[0], f"{folder}: the {fmt} modules have no {stored} weights"
    out_dir, manifest = manifests[fmt]
    prefill_m, decode_m = manifest["modules"]
    prefill = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, prefill_m["proto"])), tp)
    decode = xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, decode_m["proto"])), tp)
    caches = [p for p in prefill_m["parameters"] if p["name"].startswith("cache.")]
    n = len(ids) - 1  # prefill all but the last token, then decode it
    given = {"ids": np.array([ids[:n] + [0] * (16 - n)], np.int32), "lengths": np.array([n], np.int32),
             **{c["name"]: np.zeros([d["extent"] for d in c["shape"]], np.float32) for c in caches}}
    for name in quantized[0]:
        given[name] = [quantized[r][name] for r in range(tp)]
    outs = xla_shim.execute(prefill, [inputs_for(prefill_m, weights, given, tp, r) for r in range(tp)])
    named = {o["index"]: o["name"] for o in prefill_m["outputs"]}
    step = {**{k: v for k, v in given.items() if k not in ("ids", "lengths")}, "ids": np.array([[ids[n]]], np.int32),
            "positions": np.array([n], np.int32)}
    for k in range(1, len(prefill_m["outputs"])):
        step[named[k]] = [outs[r][k] for r in range(tp)]
    after = xla_shim.execute(decode, [inputs_for(decode_m, weights, step, tp, r) for r in range(tp)])
    V = want.shape[1]
    worst = 0.0
    for r in range(tp):
        for what, got, rows in (("prefill", outs[r][0].reshape(-1, V)[:n], want[:n]), ("decode", after[r][0].reshape(-1, V), want[n:])):
            diff = float(np.abs(got - rows).max()) / float(np.abs(rows).max())
            worst = max(worst, diff)
            assert diff < TOL, f"{folder} ({fmt}, tp {tp}, replica {r}): {what} logits differ from transformers' by {diff}"
    print(f"ok: {os.path.basename(folder)} {fmt} at TP {tp}: {len(quantized[0]) // 2} {stored} weights with f16 scales, prefill and "
          f"a decode step equal transformers run by llama.cpp's {'Q8_0' if fmt == 'q8' else 'Q4_0'} rules (max relative diff {worst:.2e})")


def run_steps(out_dir, form, weights, batches, replicas, tp=1, level=None):
    """The exported optimizer-step modules in out_dir run over `batches` (each step's micro-batches,
    each [ids, lengths] of all rows) on `replicas` replicas: replica r is tensor-parallel rank r % tp
    (its shards of the weights) of data-parallel rank d = r // tp, given rows d::(replicas // tp).
    Returns each step's (loss, grad_norm) as replica 0 saw them and every replica's values.
    level: XLA's backend optimization level (xla_shim.compile_module; None: the suite's)."""
    manifest = json.load(open(os.path.join(out_dir, "manifest.json")))
    modules = {m["kind"]: m for m in manifest["modules"]}
    assert all(m["num_replicas"] == replicas for m in modules.values())
    k = len(batches[0])
    last = modules["train_step" if k == 1 else "train_last"]
    compiled = {kind: xla_shim.compile_module(xla_shim.load(os.path.join(out_dir, m[form])), replicas, level)
                for kind, m in modules.items()}
    values = [{} for _ in range(replicas)]
    for r, start in enumerate(values):
        for p in last["parameters"]:
            shape = [d["extent"] for d in p["shape"]]
            if p["name"].startswith("optimizer."):
                start[p["name"]] = np.zeros(shape, np.int32 if p["dtype"] == "s32" else np.float32)
            elif p["name"] not in ("ids", "lengths") and not p["name"].startswith("accumulated."):
                start[p["name"]] = inputs_for({"parameters": [p]}, weights, {}, tp, r % tp)[0]
                if p["dtype"] == "bf16":  # a bf16 model's weight (--precision bf16-...): the checkpoint's, rounded to nearest
                    start[p["name"]] = start[p["name"]].astype(ml_dtypes.bfloat16)
    dp = replicas // tp
    seen = []
    for micro in batches:
        loss, norm = 0.0, None
        for j, (ids, lengths) in enumerate(micro):
            kind = "train_step" if k == 1 else "train_first" if j == 0 else "train_last" if j == k - 1 else "train_middle"
            module = modules[kind]
            args = [inputs_for(module, {}, dict(values[r], ids=ids[r // tp::dp], lengths=lengths[r // tp::dp])) for r in range(replicas)]
            outs = xla_shim.execute(compiled[kind], args)
            for r in range(replicas):
                for out in module["outputs"]:
                    if out["name"] not in ("loss", "grad_norm"):
                        values[r][out["name"]] = outs[r][out["index"]]
            loss += float(outs[0][0]) / k
            if kind in ("train_step", "train_last"):
                norm = float(outs[0][1])
        seen.append((loss, norm))
    return seen, values


def golden_adamw(folder):
    """The golden AdamW run of 2 rows (tests/data/<model>/training/adamw) for the replica checks:
    its bucket, the export-hlo flags of its optimizer, its micro-batches with the rows
    made full length (so the replicas' mean loss is the batch's), and Adam's largest travel over it."""
    record = json.load(open(os.path.join(folder, "training", "adamw", "steps.json")))
    o = record["options"]
    rows, seq = len(record["batches"][0][0]["ids"]), len(record["batches"][0][0]["ids"][0])
    assert rows == 2
    flags = ["--train", "--buckets", str(seq), "--optimizer", "adamw", "--lr", repr(o["lr"]), "--schedule", o["schedule"],
             "--warmup", str(o["warmup"]), "--steps", str(o["total"]), "--weight-decay", repr(o["weight_decay"]),
             "--clip", repr(o["clip"]), "--accumulate", str(o["accumulate"])]
    batches = [[(np.array(b["ids"], np.int32), np.full(rows, seq, np.int32)) for b in micro] for micro in record["batches"]]
    furthest = sum(float(s["lr"]) for s in record["steps"]) * 0.1 / np.sqrt(0.001)
    return seq, flags, batches, furthest


def same_weight(w, got, want, furthest, bound, where):
    """Checks weight w after a run against one process's: within `bound` of its largest value, but
    its key-bias elements (key_bias) within twice `furthest`, Adam's largest travel. Returns the
    relative difference."""
    a, b = got.reshape(-1), want.reshape(-1)
    kb, ke = key_bias(w, a.size)
    keep = np.ones(a.size, bool)
    keep[kb:ke] = False
    assert np.all(np.abs(a[~keep] - b[~keep]) <= 2 * furthest), f"{where}: {w}'s key bias"
    diff = float(np.abs(a[keep] - b[keep]).max()) if keep.any() else 0.0
    scale = float(np.abs(b).max())
    assert diff <= bound * scale + 1e-7, f"{where}: {w} differs by {diff} (largest {scale})"
    return diff / scale


def check_data_parallel(scribe, folder, work):
    """The step module of 2 data-parallel replicas (`export-hlo --train --optimizer ... --dp 2`, gradients
    all-reduced in buckets of 2 KiB) run by XLA on 2 replicas, replica r given row r of every micro-batch
    of the golden AdamW run (tests/data/<model>/training/adamw, its rows made full length so that the
    replicas' mean loss is the batch's), against the single-process step module on both rows: every
    step's loss and gradient norm and every weight agree, and the replicas' weights are identical. The
    single-process module is check_optimizer's (torch.optim's steps); the CPU backend's data-parallel
    steps are tests/unit/test_data_parallel.cpp's."""
    seq, flags, batches, furthest = golden_adamw(folder)
    name = os.path.basename(folder)
    one_dir, dp_dir = os.path.join(work, f"{name}-dp1"), os.path.join(work, f"{name}-dp2")
    subprocess.run([scribe, "export-hlo", folder, "--out", one_dir, "--batch", "2"] + flags, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([scribe, "export-hlo", folder, "--out", dp_dir, "--batch", "1", "--dp", "2", "--bucket-size", "2K"] + flags,
                   check=True, stdout=subprocess.DEVNULL)
    assert "all-reduce" in open(os.path.join(dp_dir, f"train_{seq}_last.hlo")).read()
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    for form in PROTO:
        # (XLA's default level: its roundings of the two runs stay within the bound
        # over 20 Adam steps; at level 0 Mistral's embedding drifts to twice it.)
        want, one = run_steps(one_dir, form, weights, batches, 1, level=xla_shim.XLA_DEFAULT)
        got, dp = run_steps(dp_dir, form, weights, batches, 2, level=xla_shim.XLA_DEFAULT)
        for s, ((l1, n1), (l2, n2)) in enumerate(zip(want, got)):
            where = f"{folder} DP 2 ({form}) step {s}"
            assert abs(l2 - l1) <= 2e-5 * abs(l1), f"{where}: loss {l2} != one process's {l1}"
            assert abs(n2 - n1) <= 1e-4 * n1, f"{where}: gradient norm {n2} != one process's {n1}"
        assert int(dp[0]["optimizer.step"]) == len(batches)
        worst = 0.0
        for w, ref in one[0].items():
            if w.startswith("optimizer.") or w.startswith("accumulated."):  # a replica's own micro-batch gradients
                continue
            assert dp[0][w].tobytes() == dp[1][w].tobytes(), f"{folder} DP 2 ({form}): the replicas' {w} differ"
            worst = max(worst, same_weight(w, dp[0][w], ref, furthest, 2e-5, f"{folder} DP 2 ({form})"))
    print(f"ok: {name}: {len(batches)} AdamW steps of the DP 2 step module on 2 XLA replicas (proto), equal the "
          f"single-process module's on both rows, max relative weight diff {worst:.2e}; the replicas' weights identical")


def unshard(parts, p, extent):
    """The whole value of parameter p (manifest entry) from its tensor-parallel parts, in rank
    order: joined along p's split dimension and cut to `extent` there (shard's inverse)."""
    if "split" not in p:
        return parts[0]
    axis = [d["name"] for d in p["shape"]].index(p["split"])
    return np.take(np.concatenate(parts, axis=axis), range(extent), axis=axis)


def check_mesh(scribe, folder, work):
    """The step module of a 2 x 2 data x tensor-parallel mesh (`export-hlo --train --optimizer ...
    --dp 2 --tp 2`) run by XLA on 4 replicas, replica r being tensor-parallel rank r % 2 (its shards)
    of data-parallel rank r // 2 (row r // 2 of every micro-batch of the golden AdamW run), against
    the single-process module on both rows: every step's loss and gradient norm agree, the weights
    joined from the shards equal the single process's, and the data-parallel ranks' shards are
    identical. The layers' collectives combine {0,1} and {2,3}, the gradients' {0,2} and {1,3}. The
    CPU backend's mesh is tests/unit/test_parallel_training.cpp's."""
    seq, flags, batches, furthest = golden_adamw(folder)
    name = os.path.basename(folder)
    one_dir, mesh_dir = os.path.join(work, f"{name}-mesh1"), os.path.join(work, f"{name}-mesh2x2")
    subprocess.run([scribe, "export-hlo", folder, "--out", one_dir, "--batch", "2"] + flags, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([scribe, "export-hlo", folder, "--out", mesh_dir, "--batch", "1", "--dp", "2", "--tp", "2", "--bucket-size", "2K"]
                   + flags, check=True, stdout=subprocess.DEVNULL)
    manifest = json.load(open(os.path.join(mesh_dir, "manifest.json")))
    assert manifest["dp"] == 2 and manifest["tp"] == 2, manifest
    for m in manifest["modules"]:
        assert m["num_replicas"] == 4 and m["ranks"] == [0, 1, 2, 3], m
        assert m["replica_groups"] == [[0, 1], [2, 3]] and m["dp_groups"] == [[0, 2], [1, 3]], m
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    last = {m["kind"]: m for m in manifest["modules"]}["train_step" if len(batches[0]) == 1 else "train_last"]
    for form in PROTO:
        want, one = run_steps(one_dir, form, weights, batches, 1, level=xla_shim.XLA_DEFAULT)
        got, mesh = run_steps(mesh_dir, form, weights, batches, 4, tp=2, level=xla_shim.XLA_DEFAULT)
        for s, ((l1, n1), (l2, n2)) in enumerate(zip(want, got)):
            where = f"{folder} DP 2 x TP 2 ({form}) step {s}"
            assert abs(l2 - l1) <= 2e-5 * abs(l1), f"{where}: loss {l2} != one process's {l1}"
            assert abs(n2 - n1) <= 1e-4 * n1, f"{where}: gradient norm {n2} != one process's {n1}"
        worst = 0.0
        for p in last["parameters"]:
            w = p["name"]
            if w in ("ids", "lengths") or w.startswith("optimizer.") or w.startswith("accumulated."):
                continue
            for t in range(2):
                assert mesh[t][w].tobytes() == mesh[t + 2][w].tobytes(), f"{folder} mesh ({form}): the DP ranks' {w} shards differ"
            ref = one[0][w]
            axis = [d["name"] for d in p["shape"]].index(p["split"]) if "split" in p else 0
            # (The row-parallel products sum in another order than one rank's: 20 Adam steps
            # carry that rounding further than data parallelism's, as on the CPU.)
            whole = unshard([mesh[0][w], mesh[1][w]], p, ref.shape[axis])
            worst = max(worst, same_weight(w, whole, ref, furthest, 1e-4, f"{folder} mesh ({form})"))
    print(f"ok: {name}: {len(batches)} AdamW steps of the DP 2 x TP 2 step module on 4 XLA replicas (proto), equal the "
          f"single-process module's on both rows, max relative weight diff {worst:.2e}; the DP ranks' shards identical")


def check_precision(scribe, folder, work):
    """The AdamW step exported in each mixed-precision mode (`export-hlo --train --optimizer adamw
    --precision MODE`), 20 steps through XLA on the golden AdamW run's first micro-batches, against
    the f32 step's: bf16 weight parameters and outputs in the bf16 modes, f32 masters in
    optimizer.safetensors' layout for bf16-master (which end within a bf16 step of the model's
    weights), bf16 products in autocast; every mode's losses follow f32's within 3 %, and the
    stochastic rounding of bf16-sr, whose bits depend on the seed and the step only, is the same
    in a second run and another with another --seed differs. Bit-identity of the rounding with the
    CPU backend is test_conformance's (stochastic_round_bf16 against JAX's Threefry bits)."""
    record = json.load(open(os.path.join(folder, "training", "adamw", "steps.json")))
    o = record["options"]
    rows, seq = len(record["batches"][0][0]["ids"]), len(record["batches"][0][0]["ids"][0])
    flags = ["--train", "--buckets", str(seq), "--batch", str(rows), "--optimizer", "adamw", "--lr", repr(o["lr"]),
             "--schedule", o["schedule"], "--warmup", str(o["warmup"]), "--steps", str(o["total"]),
             "--weight-decay", repr(o["weight_decay"]), "--clip", repr(o["clip"])]
    weights = read_safetensors(os.path.join(folder, "model.safetensors"))
    batches = [[(np.array(micro[0]["ids"], np.int32), np.array(micro[0]["lengths"], np.int32))] for micro in record["batches"]]
    name = os.path.basename(folder)
    runs = {}
    for mode, seed in (("f32", 0), ("bf16-sr", 0), ("bf16-sr", 1), ("bf16-master", 0), ("autocast", 0)):
        out_dir = os.path.join(work, f"{name}-precision-{mode}-{seed}")
        subprocess.run([scribe, "export-hlo", folder, "--out", out_dir, "--precision", mode, "--seed", str(seed)] + flags,
                       check=True, stdout=subprocess.DEVNULL)
        manifest = json.load(open(os.path.join(out_dir, "manifest.json")))
        assert manifest["precision"] == mode and manifest["dtype"] == ("bf16" if mode.startswith("bf16") else "f32"), manifest
        text = open(os.path.join(out_dir, f"train_{seq}.hlo")).read()
        dots = [line for line in text.splitlines() if " dot(" in line]
        # every product's result (its operands' dtype): bf16 but in f32's mode
        assert dots and all(d.split("=", 1)[1].strip().startswith("bf16[") == (mode != "f32") for d in dots), f"{out_dir}: products"
        runs[(mode, seed)] = run_steps(out_dir, "proto", weights, batches, 1)
    want = [loss for loss, _ in runs[("f32", 0)][0]]
    for (mode, seed), (seen, values) in runs.items():
        got = [loss for loss, _ in seen]
        assert all(np.isfinite(got)) and all(abs(a - b) <= 0.03 * b for a, b in zip(got, want)), f"{name} {mode}: losses {got} vs f32's {want}"
        for w, v in values[0].items():
            if w.startswith("optimizer.master."):
                model = values[0][w[len("optimizer.master."):]].astype(np.float32)
                assert v.dtype == np.float32 and np.all(np.abs(v - model) <= np.abs(model) * 2.0 ** -8 + 1e-30), f"{name}: {w}"
            elif not w.startswith("optimizer.") and w not in ("ids", "lengths"):
                assert v.dtype == (ml_dtypes.bfloat16 if mode.startswith("bf16") else np.float32), (name, mode, w, v.dtype)
    assert any(k.startswith("optimizer.master.") for k in runs[("bf16-master", 0)][1][0])
    again = run_steps(os.path.join(work, f"{name}-precision-bf16-sr-0"), "proto", weights, batches, 1)[1][0]
    first, other = runs[("bf16-sr", 0)][1][0], runs[("bf16-sr", 1)][1][0]
    assert all(again[w].tobytes() == first[w].tobytes() for w in first), f"{name} bf16-sr: a second run rounds otherwise"
    assert any(other[w].tobytes() != first[w].tobytes() for w in first if not w.startswith("optimizer.")), f"{name}: --seed ignored"
    print(f"ok: {name}: {len(batches)} AdamW steps of the bf16-sr, bf16-master and autocast step modules in XLA follow f32's "
          f"(last losses " + ", ".join(f"{m}{' seed ' + str(k) if m == 'bf16-sr' else ''} {s[-1][0]:.4f}"
                                    for (m, k), (s, _) in runs.items()) + ")")


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
        for run in ("adamw", "sgd"):
            check_optimizer(a.scribe, os.path.join(a.data, m), a.work, run)
        check_data_parallel(a.scribe, os.path.join(a.data, m), a.work)
        if m in ("gpt2-tiny-a", "llama-tiny-gqa"):
            check_precision(a.scribe, os.path.join(a.data, m), a.work)
            check_mesh(a.scribe, os.path.join(a.data, m), a.work)
    # q8 and q4 weights: a tiny checkpoint of each family whose matrices are whole blocks of 32.
    for m in ("gpt2-q8", "opt-q8", "gptj-q8", "llama-q8"):
        for tp in (1, 2):
            for fmt in ("q8", "q4"):
                check_q8(a.scribe, os.path.join(a.data, "quant", m), a.work, tp, fmt)


if __name__ == "__main__":
    main()
