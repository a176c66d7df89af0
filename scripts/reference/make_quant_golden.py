#!/usr/bin/env python3
"""Makes tests/data/quant/q8_0.safetensors and q4_0.safetensors: f32 rows and their
Q8_0 and Q4_0 quantizations as llama.cpp's Python package `gguf` computes them
(gguf.quants.quantize, the NumPy twin of ggml's quantize_row_q8_0_ref and
quantize_row_q4_0_ref), which tests/unit/test_quantized.cpp compares Scribe's q8
and q4 weights against byte for byte.

    .venv-ref/bin/python scripts/reference/make_quant_golden.py
    (any Python with `pip install gguf numpy` does)

Tensors written:
  w      f32 [rows, 256]  the rows: normal values at several scales, and blocks
                          that test the rules (all zeros, one non-zero value,
                          values at exactly half a step, the largest magnitude
                          negative, subnormal and tiny values, huge ones)
  q      i8  [rows, 256]  gguf's quantized values
  d      f16 [rows, 8]    gguf's block scales (one per 32 values)
q4_0.safetensors holds the same rows but the huge block (its Q4_0 scale, max / 8,
would overflow f16: Scribe refuses such a weight) replaced by values up to 5e5,
plus a row of blocks whose largest magnitude appears with both signs (the first
one sets the scale's sign) and blocks on the rounding's edges:
  w      f32 [rows, 256]
  q      u8  [rows, 8, 16]    gguf's packed four-bit values (element i low, 16 + i high)
  d      f16 [rows, 8]
The rows are made from a fixed seed, so running the script again writes the
same files.
"""
import json
import pathlib
import struct

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import quantize

K = 256
OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "quant"


def rows():
    rng = np.random.default_rng(20261202)
    out = [rng.standard_normal(K).astype(np.float32) * s for s in (1.0, 0.02, 1e-3, 30.0)]
    r = np.zeros(K, np.float32)
    r[33] = -0.75                                   # a block with one value, negative
    r[64:96] = np.arange(32, dtype=np.float32) - 16  # integers: steps of d = 16/127
    r[96:128] = (np.arange(32, dtype=np.float32) + 0.5) / 127 * 32  # halfway between steps
    r[128:160] = rng.uniform(-1e-30, 1e-30, 32)     # tiny: the f16 scale underflows
    r[160:192] = rng.uniform(-1e-40, 1e-40, 32).astype(np.float32)  # subnormal f32
    r[192:224] = rng.uniform(-6e6, 6e6, 32)         # huge: the f16 scale near its top
    r[224:256] = -np.abs(rng.standard_normal(32))   # all negative
    out.append(r.astype(np.float32))
    return np.stack(out)


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    w = rows()
    with np.errstate(all="ignore"):  # gguf divides by zero for all-zero blocks, as ggml does (and guards it)
        packed = quantize(w, GGMLQuantizationType.Q8_0)  # [rows, K / 32 * 34] bytes
    blocks = packed.reshape(w.shape[0], K // 32, 34)
    d = blocks[:, :, :2].copy().view(np.uint16).reshape(w.shape[0], K // 32)
    q = blocks[:, :, 2:].copy().view(np.int8).reshape(w.shape[0], K)
    OUT.mkdir(parents=True, exist_ok=True)
    write_safetensors(OUT / "q8_0.safetensors", {"w": ("F32", w), "q": ("I8", q), "d": ("F16", d)})
    print("wrote", OUT / "q8_0.safetensors")

    w4 = w.copy()
    rng = np.random.default_rng(20261203)
    w4[-1, 192:224] = rng.uniform(-5e5, 5e5, 32)
    r = np.zeros(K, np.float32)
    r[0:32] = rng.standard_normal(32)
    r[3], r[9] = 4.0, -4.0                          # the largest |w| twice: +4 comes first
    r[32:64] = rng.standard_normal(32)
    r[40], r[50] = -4.0, 4.0                        # -4 first
    r[64:96] = np.arange(32, dtype=np.float32) / 2 - 8  # halves: w / d + 8.5 on whole numbers
    r[96:128] = -(np.arange(32, dtype=np.float32) - 16) / 16  # the largest magnitude negative
    r[128:256] = rng.standard_normal(128) * 1e-2
    w4 = np.concatenate([w4, r[None, :]]).astype(np.float32)
    with np.errstate(all="ignore"):
        packed = quantize(w4, GGMLQuantizationType.Q4_0)  # [rows, K / 32 * 18] bytes
    blocks = packed.reshape(w4.shape[0], K // 32, 18)
    d4 = blocks[:, :, :2].copy().view(np.uint16).reshape(w4.shape[0], K // 32)
    q4 = blocks[:, :, 2:].copy()
    write_safetensors(OUT / "q4_0.safetensors", {"w": ("F32", w4), "q": ("U8", q4), "d": ("F16", d4)})
    print("wrote", OUT / "q4_0.safetensors")


if __name__ == "__main__":
    main()
