"""A safetensors file's tensors, for the checks the CLI tests write in Python:
tensors(path) is {name: (dtype, raw bytes)}, f32_values(path) the F32 ones'
values as tuples."""
import json
import struct


def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        s, end = e["data_offsets"]
        out[name] = (e["dtype"], b[8 + n + s:8 + n + end])
    return out


def f32_values(path):
    return {k: struct.unpack(f"<{len(raw) // 4}f", raw) for k, (dt, raw) in tensors(path).items() if dt == "F32"}
