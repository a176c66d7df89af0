"""The examples' HLO, text and proto, run by XLA against NumPy references.

The examples write their modules into SCRIBE_EXAMPLES; parameter shapes are read
from the module XLA parsed, parameter order is the examples' documented order.
"""
import math
import os
import re

import numpy as np
import pytest

import xla_shim

EXAMPLES = os.environ.get("SCRIBE_EXAMPLES", "")


def parameter_shapes(proto):
    header = xla_shim.parse_proto(proto).to_string().splitlines()[0]
    params = re.search(r"entry_computation_layout=\{\((.*)\)->", header).group(1)
    return [tuple(int(d) for d in dims.split(",") if d) for dims in re.findall(r"f32\[([\d,]*)\]", params)]


def run(name, fmt, make_inputs):
    path = os.path.join(EXAMPLES, f"{name}.{fmt}")
    proto = xla_shim.load(path)
    rng = np.random.default_rng(7)
    inputs = make_inputs(rng, parameter_shapes(proto))
    (outputs,) = xla_shim.execute(xla_shim.compile_module(proto), [inputs])
    return inputs, outputs


@pytest.mark.parametrize("fmt", ["hlo", "pb"])
def test_lm_head(fmt):
    def make(rng, shapes):
        return [rng.standard_normal(s).astype(np.float32) for s in shapes]

    (hidden, weight), (logits,) = run("lm_head", fmt, make)
    # hidden[hidden, tokens, batch], weight[hidden, vocab] -> logits[vocab, tokens, batch]
    want = np.einsum("hv,htb->vtb", weight.astype(np.float64), hidden.astype(np.float64))
    np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("fmt", ["hlo", "pb"])
def test_custom_block(fmt):
    def make(rng, shapes):
        out = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        out[3] *= 0.2  # keep the GELU inputs in a range where its shape matters
        return out

    (x, gamma, beta, w_in, b_in, w_out, b_out), (y,) = run("custom_block", fmt, make)
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=0, keepdims=True)
    var = ((x64 - mu) ** 2).mean(axis=0, keepdims=True)
    ln = (x64 - mu) / np.sqrt(var + 1e-5) * gamma[:, None, None] + beta[:, None, None]
    h = np.einsum("hf,htb->ftb", w_in, ln) + b_in[:, None, None]
    gelu = 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
    want = x64 + np.einsum("fh,ftb->htb", w_out, gelu) + b_out[:, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
