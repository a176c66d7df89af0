"""Writes torch.save-style archives (pytorch_model.bin) with the standard library only,
opcode by opcode, so that the hostile-input catalogue and the fuzz seeds can make
every variant of one, well-formed or not. (The checkpoints the reader is proved
against are written by torch itself: scripts/reference/make_pytorch_checkpoints.py.)

    state_pickle(tensors, ordered=True, protocol=2) -> bytes of data.pkl
    archive(pkl, storages, folder="archive", ...)   -> bytes of the zip
    from_safetensors(st_bytes)                      -> a pytorch_model.bin of the same tensors

A tensor is a dict: name, type (a torch storage class name, e.g. "FloatStorage"), key
(the storage's record name), numel (the storage's elements), offset, size, stride.
"""
import io
import json
import struct
import zipfile

STORAGE = {"F32": ("FloatStorage", 4), "F16": ("HalfStorage", 2), "BF16": ("BFloat16Storage", 2),
           "F64": ("DoubleStorage", 8), "I64": ("LongStorage", 8), "I32": ("IntStorage", 4),
           "I8": ("CharStorage", 1), "U8": ("ByteStorage", 1), "BOOL": ("BoolStorage", 1)}


def text(s):
    b = s.encode() if isinstance(s, str) else s
    return b"X" + struct.pack("<I", len(b)) + b


def integer(v):
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    if -2 ** 31 <= v < 2 ** 31:
        return b"J" + struct.pack("<i", v)
    n = (v.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)


def global_(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def tuple_(items):
    return b"(" + b"".join(items) + b"t"


def tensor(t, rebuild="_rebuild_tensor_v2"):
    storage = tuple_([text("storage"), global_("torch", t["type"]), text(t["key"]), text("cpu"), integer(t["numel"])])
    args = [storage + b"Q", integer(t["offset"]), tuple_([integer(x) for x in t["size"]]),
            tuple_([integer(x) for x in t["stride"]])]
    if rebuild == "_rebuild_tensor_v2":
        args += [b"\x89", global_("collections", "OrderedDict") + b")R"]
    return global_("torch._utils", rebuild) + tuple_(args) + b"R"


def state_pickle(tensors, ordered=True, protocol=2, rebuild="_rebuild_tensor_v2"):
    out = b"\x80" + bytes([protocol])
    out += global_("collections", "OrderedDict") + b")R" if ordered else b"}"
    out += b"(" + b"".join(text(t["name"]) + tensor(t, rebuild) for t in tensors) + b"u"
    return out + b"."


def archive(pkl, storages, folder="archive", byteorder=b"little", compress=False, extra=()):
    """A zip of folder/data.pkl, folder/byteorder, folder/data/<key> for each storage."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as z:
        def put(name, data):  # with a fixed date, so that the same archive is the same bytes
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
        put(folder + "/data.pkl", pkl)
        if byteorder is not None:
            put(folder + "/byteorder", byteorder)
        for key, data in storages.items():
            put(folder + "/data/" + key, data)
        for name, data in extra:
            put(name, data)
        put(folder + "/version", b"3\n")
    return buf.getvalue()


def row_major(shape):
    stride, n = [], 1
    for e in reversed(shape):
        stride.insert(0, n)
        n *= e
    return stride


def from_safetensors(st):
    """The tensors of a safetensors file as a torch.save archive, one storage each."""
    n = struct.unpack("<Q", st[:8])[0]
    header = json.loads(st[8:8 + n])
    data = st[8 + n:]
    tensors, storages = [], {}
    for i, (name, h) in enumerate((k, v) for k, v in header.items() if k != "__metadata__"):
        kind, size = STORAGE[h["dtype"]]
        b, e = h["data_offsets"]
        key = str(i)
        storages[key] = data[b:e]
        tensors.append({"name": name, "type": kind, "key": key, "numel": (e - b) // size, "offset": 0,
                        "size": h["shape"], "stride": row_major(h["shape"])})
    return archive(state_pickle(tensors), storages)


def small():
    """(tensors, storages) of a small well-formed state dict: every dtype, a shared storage, a strided view."""
    tensors = [
        {"name": "w", "type": "FloatStorage", "key": "0", "numel": 6, "offset": 0, "size": [2, 3], "stride": [3, 1]},
        {"name": "w.t", "type": "FloatStorage", "key": "0", "numel": 6, "offset": 0, "size": [3, 2], "stride": [1, 3]},
        {"name": "tail", "type": "FloatStorage", "key": "0", "numel": 6, "offset": 4, "size": [2], "stride": [1]},
        {"name": "h", "type": "HalfStorage", "key": "1", "numel": 2, "offset": 0, "size": [2], "stride": [1]},
        {"name": "b", "type": "BFloat16Storage", "key": "2", "numel": 1, "offset": 0, "size": [], "stride": []},
        {"name": "mask", "type": "BoolStorage", "key": "3", "numel": 4, "offset": 0, "size": [1, 1, 2, 2], "stride": [4, 4, 2, 1]},
        {"name": "ids", "type": "LongStorage", "key": "4", "numel": 2, "offset": 0, "size": [2], "stride": [1]},
        {"name": "empty", "type": "FloatStorage", "key": "5", "numel": 0, "offset": 0, "size": [0, 4], "stride": [4, 1]},
    ]
    storages = {"0": struct.pack("<6f", 1, 2, 3, 4, 5, 6), "1": b"\x00\x3c\x00\xc0", "2": b"\x80\x3f",
                "3": b"\x01\x00\x01\x01", "4": struct.pack("<2q", -1, 2 ** 40), "5": b""}
    return tensors, storages
