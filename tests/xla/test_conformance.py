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
COMPOSITE_KINDS = {"dot", "reduce", "softmax", "expression", "all_reduce"}


def compare(case, got, want, out_spec, where):
    names = [d["name"] for d in out_spec["dims"]]
    shape = tuple(d["extent"] for d in out_spec["dims"])
    assert got.shape == shape, f"{where}: XLA gave shape {got.shape}, the graph declares {shape}"
    assert got.dtype == reference.np_dtype(out_spec["dtype"]), f"{where}: dtype {got.dtype} vs {out_spec['dtype']}"
    exp = want.to(names)
    dt = out_spec["dtype"]
    if dt in reference.FLOATS:
        rtol, atol = (COMPOSITE if case["op"]["kind"] in COMPOSITE_KINDS else SINGLE)[dt]
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


def test_text_and_proto_are_the_same_module():
    """XLA parses both forms of every case into modules of the same structure."""
    for case in CASES:
        base = os.path.join(CASES_DIR, case["name"])
        a = xla_shim.parse_proto(xla_shim.load(base + ".hlo")).to_string()
        b = xla_shim.parse_proto(xla_shim.load(base + ".pb")).to_string()
        assert a == b, case["name"]
