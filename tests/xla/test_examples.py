"""The examples' HLO, text and proto, run by XLA against NumPy references.

The examples write their modules into SCRIBE_EXAMPLES; each parameter's name and
shape are read from the module XLA parsed, and its input is given by name (a
graph numbers its parameters in the order of their names).
"""
import math
import os
import re

import numpy as np
import pytest

import xla_shim

xla_shim.default_level = xla_shim.FAST_COMPILE

EXAMPLES = os.environ.get("SCRIBE_EXAMPLES", "")


def parameters(proto):
    """[(name, shape)] in parameter-number order, from the module's entry computation."""
    text = xla_shim.parse_proto(proto).to_string()
    found = {}
    for name, dims, number in re.findall(r"^\s*(?:ROOT )?%?([\w.\-]+) = f32\[([\d,]*)\]\S* parameter\((\d+)\)", text, re.M):
        found[int(number)] = (name, tuple(int(d) for d in dims.split(",") if d))
    return [found[k] for k in range(len(found))]


def run(name, fmt, make_inputs):
    """make_inputs(rng, {name: shape}) -> {name: array}; returns (inputs by name, outputs)."""
    path = os.path.join(EXAMPLES, f"{name}.{fmt}")
    proto = xla_shim.load(path)
    rng = np.random.default_rng(7)
    params = parameters(proto)
    inputs = make_inputs(rng, dict(params))
    assert sorted(inputs) == sorted(n for n, _ in params), (sorted(inputs), params)
    (outputs,) = xla_shim.execute(xla_shim.compile_module(proto), [[inputs[n] for n, _ in params]])
    return inputs, outputs


def normal(rng, shapes):
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}


@pytest.mark.parametrize("fmt", ["hlo", "pb"])
def test_parameters_are_numbered_by_name(fmt):
    names = [n for n, _ in parameters(xla_shim.load(os.path.join(EXAMPLES, f"custom_block.{fmt}")))]
    assert names == sorted(names) and len(names) == 7, names


@pytest.mark.parametrize("fmt", ["hlo", "pb"])
def test_lm_head(fmt):
    i, (logits,) = run("lm_head", fmt, normal)
    # hidden[hidden, tokens, batch], weight[hidden, vocab] -> logits[vocab, tokens, batch]
    want = np.einsum("hv,htb->vtb", i["weight"].astype(np.float64), i["hidden"].astype(np.float64))
    np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt", ["hlo", "pb"])
def test_custom_block(fmt):
    def make(rng, shapes):
        out = normal(rng, shapes)
        out["mlp.w_in"] *= 0.2  # keep the GELU inputs in a range where its shape matters
        return out

    i, (y,) = run("custom_block", fmt, make)
    x64 = i["x"].astype(np.float64)
    gamma, beta, w_in, b_in, w_out, b_out = (i[n] for n in ("ln.weight", "ln.bias", "mlp.w_in", "mlp.b_in",
                                                             "mlp.w_out", "mlp.b_out"))
    mu = x64.mean(axis=0, keepdims=True)
    var = ((x64 - mu) ** 2).mean(axis=0, keepdims=True)
    ln = (x64 - mu) / np.sqrt(var + 1e-5) * gamma[:, None, None] + beta[:, None, None]
    h = np.einsum("hf,htb->ftb", w_in, ln) + b_in[:, None, None]
    gelu = 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
    want = x64 + np.einsum("fh,ftb->htb", w_out, gelu) + b_out[:, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt", ["hlo", "pb"])
def test_first_gradient(fmt):
    """One SGD step of the tutorial's MLP: the loss and the updated weights, against
    the same step with its gradients worked out by hand in NumPy (float64)."""
    i, (loss, w1, b1, w2, b2) = run("first_gradient", fmt, normal)
    x, y = i["x"].astype(np.float64), i["y"].astype(np.float64)
    W1, B1, W2, B2 = (i[n].astype(np.float64) for n in ("w1", "b1", "w2", "b2"))
    z = x @ W1 + B1
    h = np.tanh(z)
    pred = h @ W2 + B2
    err = pred - y
    want_loss = (err ** 2).mean()
    d_pred = 2 * err / err.size
    d_w2, d_b2 = h.T @ d_pred, d_pred.sum(axis=0)
    d_z = (d_pred @ W2.T) * (1 - h ** 2)
    d_w1, d_b1 = x.T @ d_z, d_z.sum(axis=0)
    lr = 0.1
    np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
    for got, want in ((w1, W1 - lr * d_w1), (b1, B1 - lr * d_b1), (w2, W2 - lr * d_w2), (b2, B2 - lr * d_b2)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
