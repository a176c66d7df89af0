"""XLA conformance: every exported case, as HLO text and as HloModuleProto, is
parsed, compiled and run by XLA (CPU) and compared with the NumPy reference and
with Scribe's CPU backend run on the same graph and the same inputs.

The cases directory comes from SCRIBE_CASES (written by gen_cases, whose path is
SCRIBE_GEN); the examples' outputs are checked by test_examples.py.
"""
import json
import os
import subprocess
import zlib

import numpy as np
import pytest

import reference
import xla_shim

xla_shim.default_level = xla_shim.FAST_COMPILE

CASES_DIR = os.environ.get("SCRIBE_CASES", "")


def _load_cases():
    path = os.path.join(CASES_DIR, "cases.json")
    if not CASES_DIR or not os.path.exists(path):
        raise RuntimeError(f"no cases.json in SCRIBE_CASES={CASES_DIR!r}; run gen_cases first")
    with open(path) as f:
        return json.load(f)


CASES = _load_cases()


def _inputs(case):
    rng = np.random.default_rng(zlib.crc32(case["name"].encode()))
    return [reference.make_inputs(case, rng) for _ in range(case["replicas"])]


def _by_number(case, arrays):
    """A replica's inputs (in the order the case made them) in parameter-number order."""
    return [a for _, a in sorted(zip((inp["number"] for inp in case["inputs"]), arrays), key=lambda p: p[0])]


def _run_cpu_backend():
    """Writes every case's inputs, runs them all on the CPU backend at once, and
    returns a loader for its outputs."""
    gen = os.environ.get("SCRIBE_GEN", "")
    if not gen:
        raise RuntimeError("SCRIBE_GEN (the gen_cases program) is not set; run through run_suite.py")
    for case in CASES:
        d = os.path.join(CASES_DIR, "inputs", case["name"])
        os.makedirs(d, exist_ok=True)
        for r, arrays in enumerate(_inputs(case)):
            for inp, a in zip(case["inputs"], arrays):
                np.ascontiguousarray(a).tofile(os.path.join(d, f"r{r}_{inp['number']}.bin"))
    subprocess.run([gen, "--cpu", CASES_DIR], check=True)

    def load(case, r, k):
        spec = case["outputs"][k]
        path = os.path.join(CASES_DIR, "cpu", case["name"], f"r{r}_{k}.bin")
        shape = tuple(d["extent"] for d in spec["dims"])
        return np.fromfile(path, dtype=reference.np_dtype(spec["dtype"])).reshape(shape)
    return load


CPU_OUTPUT = _run_cpu_backend()

# Tolerances: (rtol, atol) for a single rounding of the result, and for composite
# ops whose intermediates round too (reductions, dots, softmax, expressions).
SINGLE = {"f16": (2e-3, 2e-3), "bf16": (1.6e-2, 1.6e-2), "f32": (2e-6, 1e-6), "f64": (1e-12, 1e-12)}
COMPOSITE = {"f16": (1e-2, 1e-2), "bf16": (6e-2, 6e-2), "f32": (1e-5, 1e-5), "f64": (1e-10, 1e-10)}
COMPOSITE_KINDS = {"dot", "reduce", "softmax", "expression", "all_reduce", "scatter"}
# Gradient cases: the reference is central differences (step 1e-5) of an exact
# forward pass, good to about 1e-9 of the loss's scale.
GRADIENT = {"f32": (1e-5, 1e-6), "f64": (1e-6, 1e-7)}


def compare(case, got, want, out_spec, where):
    names = [d["name"] for d in out_spec["dims"]]
    shape = tuple(d["extent"] for d in out_spec["dims"])
    assert got.shape == shape, f"{where}: XLA gave shape {got.shape}, the graph declares {shape}"
    assert got.dtype == reference.np_dtype(out_spec["dtype"]), f"{where}: dtype {got.dtype} vs {out_spec['dtype']}"
    exp = want.to(names)
    dt = out_spec["dtype"]
    if dt in reference.FLOATS:
        kind = case["op"]["kind"]
        rtol, atol = (GRADIENT if kind == "gradient" else COMPOSITE if kind in COMPOSITE_KINDS else SINGLE)[dt]
        # The reference is exact; compare with its value rounded to the output dtype.
        exp = exp.astype(reference.np_dtype(dt)).astype(np.float64)
        np.testing.assert_allclose(got.astype(np.float64), exp, rtol=rtol, atol=atol, err_msg=where)
    else:
        np.testing.assert_array_equal(got, exp.astype(got.dtype), err_msg=where)


@pytest.mark.parametrize("fmt", ["hlo", "pb"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case, fmt):
    n = case["replicas"]
    arrays = _inputs(case)
    want = reference.expected(case, arrays)
    got = xla_shim.run_file(os.path.join(CASES_DIR, f"{case['name']}.{fmt}"), [_by_number(case, a) for a in arrays],
                            replicas=n)
    assert len(got) == n
    for r in range(n):
        assert len(got[r]) == len(case["outputs"]), f"{len(got[r])} outputs, expected {len(case['outputs'])}"
        for k, spec in enumerate(case["outputs"]):
            where = f"{case['name']}.{fmt} replica {r} output {k}"
            compare(case, got[r][k], want[r][k], spec, where)
            # The CPU backend, on the same graph and inputs, agrees with XLA.
            names = [d["name"] for d in spec["dims"]]
            cpu = reference.Named(CPU_OUTPUT(case, r, k), names)
            compare(case, cpu.a, reference.Named(got[r][k], names), spec, where + " (CPU backend vs XLA)")
            if case["op"]["kind"] == "random":  # made of integer ops: the same bits
                assert cpu.a.tobytes() == got[r][k].tobytes(), where + ": the CPU backend's bits differ from XLA's"


RANDOM_CASES = [c for c in CASES if c["op"]["kind"] == "random"]


@pytest.mark.parametrize("case", RANDOM_CASES, ids=[c["name"] for c in RANDOM_CASES])
def test_random_matches_jax(case):
    """Scribe's random numbers from the CPU backend equal, bit for bit, JAX's own
    threefry_2x32 on the same key and counters (offset + row-major position, as
    (high, low) words, the outputs xored), and with offset 0 jax.random.bits and
    jax.random.uniform (partitionable Threefry); and stochastic rounding adds the
    low 16 of those bits to x's before truncating to bf16."""
    import jax
    import jax.numpy as jnp
    from jax._src import prng

    jax.config.update("jax_threefry_partitionable", True)
    arrays = _inputs(case)[0]
    by_name = {inp["name"]: a for inp, a in zip(case["inputs"], arrays)}
    op = case["op"]
    key_words = [int(by_name["k0"]), int(by_name["k1"])] if op["key"] == "inputs" else op["key"]
    key_data = np.array(key_words, dtype=np.uint32)
    key = jax.random.wrap_key_data(key_data, impl="threefry2x32")
    for k, (part, spec) in enumerate(zip(op["parts"], case["outputs"])):
        shape = tuple(d["extent"] for d in spec["dims"])
        got = CPU_OUTPUT(case, 0, k)
        offset = part["offset"]
        offset = int(by_name[offset]) if isinstance(offset, str) else int(offset)
        n = int(np.prod(shape))
        counters = np.arange(n, dtype=np.uint64) + np.uint64(offset)
        hi = (counters >> np.uint64(32)).astype(np.uint32)
        lo = (counters & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        words = np.asarray(prng.threefry_2x32(key_data, np.concatenate([hi, lo])))
        first, second = words[:n], words[n:]
        where = f"{case['name']} output {k}"
        if part["fn"] == "bits":
            np.testing.assert_array_equal(got, (first ^ second).reshape(shape), err_msg=where)
            if offset == 0:
                np.testing.assert_array_equal(got, np.asarray(jax.random.bits(key, shape, jnp.uint32)), err_msg=where)
        elif part["fn"] == "round_bf16":  # x's bits plus the low 16 of JAX's bits, truncated to bf16
            x = np.asarray(by_name["x"], np.float32).reshape(-1)
            noise = (first ^ second).astype(np.uint64) & np.uint64(0xFFFF)
            summed = (x.view(np.uint32).astype(np.uint64) + noise) & np.uint64(0xFFFF0000)
            want = np.where(np.isnan(x), x, summed.astype(np.uint32).view(np.float32))
            want = want.astype(reference.np_dtype(spec["dtype"])).reshape(shape)
            assert got.tobytes() == want.tobytes(), f"{where}: differs from x rounded with JAX's bits"
        elif offset == 0:
            want = np.asarray(jax.random.uniform(key, shape, reference.np_dtype(spec["dtype"])))
            assert got.tobytes() == want.tobytes(), f"{where}: differs from jax.random.uniform"
        else:  # JAX has no offset: its uniform's mantissa bits from the same words
            bits = (first ^ second).astype(np.uint64)
            if spec["dtype"] == "f64":
                mant = ((first.astype(np.uint64) << np.uint64(32)) | second) >> np.uint64(12)
                want = (mant | np.uint64(0x3FF0000000000000)).view(np.float64) - 1.0
            else:
                mantissa, taken = {"f32": (23, 32), "f16": (10, 16), "bf16": (7, 8)}[spec["dtype"]]
                mant = (bits & np.uint64(2 ** taken - 1)) >> np.uint64(taken - mantissa)
                want = ((mant << np.uint64(23 - mantissa)) | np.uint64(0x3F800000)).astype(np.uint32).view(np.float32) - 1
            want = want.astype(reference.np_dtype(spec["dtype"])).reshape(shape)
            assert got.tobytes() == want.tobytes(), f"{where}: differs from JAX's bits made uniform"


def test_text_and_proto_are_the_same_module():
    """XLA parses both forms of every case into modules of the same structure."""
    for case in CASES:
        base = os.path.join(CASES_DIR, case["name"])
        a = xla_shim.parse_proto(xla_shim.load(base + ".hlo")).to_string()
        b = xla_shim.parse_proto(xla_shim.load(base + ".pb")).to_string()
        assert a == b, case["name"]
