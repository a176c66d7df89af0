"""Graphs from Python (scribe.Graph over the untyped core): a block built with
named dimensions runs on the CPU as NumPy computes it, its HLO runs in XLA
(jaxlib, tests/xla/xla_shim.py) with the same results, shapes are checked with
Scribe's messages, inputs are borrowed and outputs handed over (by address),
and gradients equal the analytic ones."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import scribe

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "xla"))
import xla_shim  # noqa: E402

T, H, F = 5, 8, 12  # tokens, hidden, ffn: odd sizes


def block(g):
    """A pre-norm MLP block: x + W2 gelu(W1 layer_norm(x) + b1)."""
    x = g.parameter("x", "f32", tokens=T, hidden=H)
    gamma = g.parameter("gamma", "f32", hidden=H)
    w1 = g.parameter("w1", "f32", hidden=H, ffn=F)
    b1 = g.parameter("b1", "f32", ffn=F)
    w2 = g.parameter("w2", "f32", ffn=F, hidden=H)
    mean = x.mean("hidden").broadcast(**x.dims)
    centred = x - mean
    var = (centred * centred).mean("hidden").broadcast(**x.dims)
    normed = centred * (var + 1e-5).rsqrt() * gamma.broadcast(**x.dims)
    h = normed.dot(w1, "hidden") + b1.broadcast(tokens=T, ffn=F)
    gelu = 0.5 * h * (1.0 + (h / math.sqrt(2.0)).erf())
    y = x + gelu.dot(w2, "ffn")
    return y


def inputs(seed=0):
    r = np.random.default_rng(seed)
    return {"x": r.standard_normal((T, H)).astype(np.float32), "gamma": (1 + 0.1 * r.standard_normal(H)).astype(np.float32),
            "w1": (0.3 * r.standard_normal((H, F))).astype(np.float32), "b1": (0.1 * r.standard_normal(F)).astype(np.float32),
            "w2": (0.3 * r.standard_normal((F, H))).astype(np.float32)}


def numpy_block(a):
    x = a["x"].astype(np.float64)
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    n = (x - mu) / np.sqrt(var + 1e-5) * a["gamma"]
    h = n @ a["w1"] + a["b1"]
    erf = np.vectorize(math.erf)
    return x + (0.5 * h * (1 + erf(h / math.sqrt(2)))) @ a["w2"]


def test_a_block_runs_as_numpy_computes_it():
    g = scribe.Graph("mlp")
    y = block(g)
    assert y.dims == {"tokens": T, "hidden": H} and y.dtype == "f32"
    g.outputs(y)
    a = inputs()
    (out,) = g.run(a, threads=2)
    assert out.dtype == np.float32 and out.shape == (T, H)
    np.testing.assert_allclose(out, numpy_block(a), atol=1e-5, rtol=1e-5)
    assert g.input_names == ["b1", "gamma", "w1", "w2", "x"]  # by name, as JAX flattens a dict


def test_its_hlo_runs_in_xla(tmp_path):
    g = scribe.Graph("mlp")
    y = block(g)
    loss = (y * y).sum()
    g.outputs(y, loss)
    a = inputs(1)
    want = g.run(a)
    ordered = [a[n] for n in g.input_names]
    text_path, proto_path = g.export(tmp_path)
    assert Path(text_path).read_text() == g.hlo_text() and Path(proto_path).read_bytes() == g.hlo_proto()
    for path in (text_path, proto_path):
        (got,) = xla_shim.run_file(str(path), [ordered])
        assert len(got) == 2
        np.testing.assert_allclose(got[0], want[0], atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5)


def test_shapes_are_checked_with_scribes_messages():
    g = scribe.Graph("bad")
    x = g.parameter("x", "f32", tokens=4, hidden=8)
    w = g.parameter("w", "f32", hidden=6, ffn=3)
    with pytest.raises(scribe.ScribeError, match=r"dot: cannot contract `hidden` \(8\) with `hidden` \(6\)"):
        x.dot(w, "hidden")
    v = g.parameter("v", "f32", tokens=4, width=8)
    with pytest.raises(scribe.ScribeError, match="add: "):
        x + v
    with pytest.raises(ValueError, match="has no dimension 'ffn'"):
        x.sum("ffn")
    with pytest.raises(scribe.ScribeError, match="parameter: the name `x` is used twice"):
        g.parameter("x", "f32", tokens=4)
    with pytest.raises(ValueError, match="unknown dtype 'f8'"):
        g.parameter("z", "f8", tokens=4)
    n = len(g)
    with pytest.raises(scribe.ScribeError):
        x.exp().dot(w, "hidden")
    assert len(g) == n + 1  # the exp was added; the bad dot was not
    g = scribe.Graph("inputs")
    x = g.parameter("x", "f32", tokens=4, hidden=8)
    g.outputs(x.exp())
    with pytest.raises(ValueError, match=r"no array for \['x'\]"):
        g.run()
    with pytest.raises(ValueError, match=r"input 'x' has dimension 1 of 7 but the parameter is f32\[tokens=4, hidden=8\]"):
        g.run(x=np.zeros((4, 7), np.float32))
    with pytest.raises(TypeError, match="input 'x' is complex128"):
        g.run(x=np.zeros((4, 8), np.complex128))
    with pytest.raises(ValueError, match="threads must be 0"):
        g.run(x=np.zeros((4, 8), np.float32), threads=-1)
    with pytest.raises(scribe.ScribeError, match="at most 1024"):
        g.run(x=np.zeros((4, 8), np.float32), threads=100000)
    with pytest.raises(scribe.ScribeError, match="export: cannot write /proc/no/such/inputs.hlo"):
        g.export("/proc/no/such")
    big = g.full(1.0, "f32", a=2**40, b=2**40)
    g.outputs(big.sum())
    with pytest.raises(scribe.ScribeError, match="too many elements"):
        g.run(x=np.zeros((4, 8), np.float32))


def address(a):
    return a.__array_interface__["data"][0]


def test_inputs_are_borrowed_and_outputs_handed_over():
    g = scribe.Graph("copies")
    x = g.parameter("x", "f32", tokens=4, hidden=8)
    g.outputs(x, x.reshape(all=32), x * 2.0)
    a = np.arange(32, dtype=np.float32).reshape(4, 8)
    same, flat, doubled = g.run(x=a)
    # An output that is the input's elements is the input's memory: borrowed, never copied.
    assert address(same) == address(a) and address(flat) == address(a)
    assert not same.flags.writeable and same.base is not None
    # A computed output is Scribe's own buffer, owned by the array handed over.
    assert not doubled.flags.owndata and type(doubled.base).__name__ == "PyCapsule"
    np.testing.assert_array_equal(doubled, 2 * a)
    del a
    np.testing.assert_array_equal(same, np.arange(32, dtype=np.float32).reshape(4, 8))  # still alive
    # An input of another dtype or layout is converted first (a copy), and still right.
    b = np.arange(32, dtype=np.float64).reshape(4, 8)
    same, _, doubled = g.run(x=b)
    assert address(same) != address(b)
    np.testing.assert_array_equal(doubled, 2 * b)
    c = np.arange(32, dtype=np.float32).reshape(8, 4).T
    same, _, _ = g.run(x=c)
    assert address(same) != address(c)
    np.testing.assert_array_equal(same, c)


def test_gradients_equal_the_analytic_ones():
    g = scribe.Graph("grad")
    x = g.parameter("x", "f32", tokens=T, hidden=H)
    w = g.parameter("w", "f32", hidden=H, ffn=F)
    h = x.dot(w, "hidden").tanh()
    loss = (h * h).sum()
    dw, dx = g.grad(loss, [w, x])
    assert dw.dims == w.dims and dx.dims == x.dims
    g.outputs(loss, dw, dx)
    a = inputs(2)
    lv, dwv, dxv = g.run(x=a["x"], w=a["w1"])
    xv, wv = a["x"].astype(np.float64), a["w1"].astype(np.float64)
    t = np.tanh(xv @ wv)
    upstream = 2 * t * (1 - t * t)
    np.testing.assert_allclose(lv, (t * t).sum(), rtol=1e-5)
    np.testing.assert_allclose(dwv, xv.T @ upstream, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(dxv, upstream @ wv.T, atol=1e-4, rtol=1e-4)
    with pytest.raises(scribe.ScribeError, match="grad: the loss must be a float scalar"):
        g.grad(h, [w])


def test_bf16_and_integer_values():
    import ml_dtypes  # the suite's environment has it (tests/xla/requirements.txt)
    g = scribe.Graph("types")
    table = g.parameter("table", "bf16", vocab=6, hidden=4)
    ids = g.parameter("ids", "s32", tokens=3)
    rows = table.gather(ids, "vocab")
    g.outputs(rows, rows.convert("f32").sum())
    t = np.arange(24, dtype=np.float32).reshape(6, 4).astype(ml_dtypes.bfloat16)
    got, total = g.run(table=t, ids=np.array([5, 0, 2], np.int32))
    assert rows.dims == {"hidden": 4, "tokens": 3}  # the table's other dimensions, then the ids'
    assert got.dtype == ml_dtypes.bfloat16 and got.shape == (4, 3)
    np.testing.assert_array_equal(got.astype(np.float32), t.astype(np.float32)[[5, 0, 2]].T)
    assert total == t.astype(np.float32)[[5, 0, 2]].sum()
