#!/usr/bin/env python3
"""The bad-input catalogue (issue 14): every hostile input `scribe` may be given is
refused with exit status 1 and a message that names the thing (the file, the
tensor, the field, the flag, the value), or, for the few valid edge cases, works.

    python3 tests/hostile/catalogue.py --scribe SCRIBE --data tests/data --work WORK [-k SUBSTRING]
    python3 tests/hostile/catalogue.py --write-seeds tests/hostile/seeds

Each case builds a model folder in WORK/<case> (a copy of a tiny checkpoint from
tests/data with one thing broken: a safetensors header or its data, the index of
a sharded checkpoint, a field of config.json, a tokenizer file, a pre-sharded
folder, a flag), runs `scribe` on it with a timeout, and checks:
  - the exit status (1 for an error; a timeout is a hang and fails);
  - the words its error must say (substrings of stderr);
  - that nothing crashed or leaked through: no "Segmentation", no sanitizer
    report, no "terminate called", no "std::" (a C++ exception not turned into
    a message), no raw escape bytes, and never the marker bytes planted in a
    file outside the folder that a symlink points to (a message must not echo a
    file's bytes).
It prints "ok NAME" or "FAIL NAME: why" per case, then "N passed, M failed", and
exits 1 when any case failed. Python's standard library only.

--write-seeds DIR writes the catalogue's small malformed files as fuzz seeds
(tests/fuzz/run.sh copies DIR/TARGET/* into the corpus of fuzz target TARGET):
DIR/config/<case>.json, DIR/safetensors/<case>, DIR/index/<case>.json,
DIR/tokenizer/<case> (as fuzz_tokenizer.cpp reads its input: '0' + a
tokenizer.json, or '1' + vocab.json + NUL + merges.txt) and DIR/json/<case>.
"""

import argparse
import concurrent.futures
import json
import os
import resource
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bin  # noqa: E402  (pytorch_model.bin archives, written opcode by opcode)

MARKER = b"SECRETBYTES"  # planted outside the model folders; must never be printed
FORBIDDEN = ["Segmentation", "AddressSanitizer", "LeakSanitizer", "runtime error:", "terminate called", "std::",
             "Aborted", "core dumped"]
FAMILY_MODEL = {"gpt2": "gpt2-tiny-a", "opt": "opt-tiny", "gptj": "gptj-tiny", "llama": "llama-tiny-gqa",
                "mistral": "mistral-tiny"}
SEED_LIMIT = {"safetensors": 4096, "config": 4096, "index": 4096, "tokenizer": 4096, "json": 32768, "pytorch": 8192}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# What one run may use: a hostile input must be refused before it costs more. The
# plain program gets an address-space limit (an allocation past it throws, which
# fails the case); a sanitized one, whose shadow memory needs terabytes of address
# space, gets AddressSanitizer's own limits instead.
MEMORY_LIMIT_MB = 4096


class SkipSeed(Exception):
    """A setup that needs the scribe program, run by --write-seeds without one."""


# ---------------------------------------------------------------------------
# safetensors bytes

def st_split(b):
    """(header dict, data bytes) of a safetensors file."""
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def st_join(header, data, raw=None):
    """A safetensors file from a header (a dict, or raw header bytes) and its data."""
    text = raw if raw is not None else json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def st_tensors(h):
    """The tensor names of a header in the order of their bytes."""
    return sorted((k for k in h if k != "__metadata__"), key=lambda k: (h[k]["data_offsets"][0], k))


def st_rebuild(h, data, drop=(), add=()):
    """The file with tensors `drop` removed and `add` ((name, dtype, shape, bytes)) appended, offsets redone."""
    out, blob, at = {}, b"", 0
    if "__metadata__" in h:
        out["__metadata__"] = h["__metadata__"]
    parts = [(k, h[k]["dtype"], h[k]["shape"], data[h[k]["data_offsets"][0]:h[k]["data_offsets"][1]])
             for k in st_tensors(h) if k not in drop] + list(add)
    for name, dt, shape, b in parts:
        out[name] = {"dtype": dt, "shape": shape, "data_offsets": [at, at + len(b)]}
        blob += b
        at += len(b)
    return st_join(out, blob)


def small_safetensors():
    """A valid safetensors file of a few bytes (the base of the safetensors seeds)."""
    h = {"__metadata__": {"format": "pt"},
         "a.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
         "a.bias": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]},
         "b.weight": {"dtype": "F16", "shape": [2, 2], "data_offsets": [24, 32]},
         "c.weight": {"dtype": "BF16", "shape": [4], "data_offsets": [32, 40]}}
    return h, bytes(range(40))


# ---------------------------------------------------------------------------
# tokenizer files

def small_tokenizer():
    """A valid byte-level BPE tokenizer.json small enough to be a fuzz seed."""
    vocab = {"<|endoftext|>": 0, "a": 1, "b": 2, "h": 3, "e": 4, "\u0120": 5, "ab": 6, "he": 7, "\u0120a": 8,
             "c": 9, "d": 10, "x": 11, "y": 12}
    return {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": 0, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": ["a b", "h e", "\u0120 a"]}}


def small_vocab_merges():
    return ({"<|endoftext|>": 0, "a": 1, "b": 2, "h": 3, "e": 4, "\u0120": 5, "ab": 6, "he": 7, "\u0120a": 8},
            "#version: 0.2\na b\nh e\n\u0120 a\n")


def dumps(v):
    return json.dumps(v, ensure_ascii=False).encode() if not isinstance(v, bytes) else v


def deep(levels, objects=False):
    if objects:
        return b'{"a":' * levels + b"1" + b"}" * levels
    return b"[" * levels + b"]" * levels


def with_duplicate_key(obj, key):
    """JSON text of `obj` (a dict) with `key` written twice."""
    text = json.dumps(obj, ensure_ascii=False)
    assert text.startswith("{")
    return ("{" + json.dumps(key) + ":" + json.dumps(obj[key], ensure_ascii=False) + "," + text[1:]).encode()


# ---------------------------------------------------------------------------
# a case's folder

class Ctx:
    def __init__(self, case, root, data, scribe, seeds_only=False):
        self.case, self.root, self.data, self.scribe, self.seeds_only = case, root, data, scribe, seeds_only
        self.seeds = []  # (kind, bytes)

    def p(self, *parts):
        return os.path.join(self.root, *parts)

    def seed(self, kind, b):
        self.seeds.append((kind, b))

    def model(self, name="gpt2-tiny-a", sub="model"):
        """A copy of tests/data/NAME (without its golden outputs)."""
        dst = self.p(sub)
        shutil.copytree(os.path.join(self.data, name), dst, ignore=shutil.ignore_patterns("golden.json"))
        return dst

    def orig(self, name="gpt2-tiny-a"):
        """The unchanged checkpoint in tests/data (only read)."""
        return os.path.join(self.data, name)

    def write(self, path, b, seed=None):
        if os.path.lexists(path):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        with open(path, "wb") as f:
            f.write(b)
        if seed:
            self.seed(seed, b)
        return path

    def remove(self, path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def fifo(self, path):
        if os.path.lexists(path):
            self.remove(path)
        os.mkfifo(path)

    def directory(self, path):
        if os.path.lexists(path):
            self.remove(path)
        os.mkdir(path)
        with open(os.path.join(path, "inside"), "wb") as f:
            f.write(b"x")

    def symlink(self, path, target):
        if os.path.lexists(path):
            self.remove(path)
        os.symlink(target, path)

    def secret(self, content=None):
        """A file outside every model folder that starts with the marker bytes."""
        os.makedirs(self.p("outside"), exist_ok=True)
        path = self.p("outside", "secret")
        with open(path, "wb") as f:
            f.write(content if content is not None else MARKER + b" private bytes\n" + MARKER + b"\n")
        return path

    def special(self, path, kind):
        """path made into something other than a plain file: a directory, a FIFO, a symlink to
        /dev/zero, /dev/null, to the secret outside the folder, to nowhere or to itself; or removed."""
        if kind == "directory":
            self.directory(path)
        elif kind == "fifo":
            self.fifo(path)
        elif kind in ("dev_zero", "dev_null"):
            self.symlink(path, "/dev/" + kind[4:])
        elif kind == "secret":
            self.symlink(path, self.secret())
        elif kind == "dangling":
            self.symlink(path, self.p("nowhere", os.path.basename(path)))
        elif kind == "loop":
            self.symlink(path, os.path.basename(path))
        elif kind == "missing":
            os.unlink(path)
        else:
            raise ValueError(kind)

    def sparse(self, path, size, head=b""):
        if os.path.lexists(path):
            self.remove(path)
        with open(path, "wb") as f:
            f.write(head)
            f.truncate(size)

    # config.json
    def config(self, d, change, seed=True):
        """config.json of folder d changed: change(dict) edits it in place, or returns the new bytes."""
        path = os.path.join(d, "config.json")
        with open(path) as f:
            c = json.load(f)
        r = change(c)
        b = r if isinstance(r, bytes) else json.dumps(c, indent=2).encode()
        self.write(path, b, seed="config" if seed else None)
        return d

    # safetensors
    def st(self, d, corrupt, file="model.safetensors", seed=True):
        """The file rewritten as corrupt(header, data) -> bytes; the seed is the same corruption of a small file."""
        path = os.path.join(d, file)
        with open(path, "rb") as f:
            h, data = st_split(f.read())
        self.write(path, corrupt(h, data))
        if seed:
            try:
                self.seed("safetensors", corrupt(*small_safetensors()))
            except (KeyError, IndexError, ValueError):
                pass
        return d

    # pytorch_model.bin
    def torch(self, d, make, seed=True):
        """model.safetensors of folder d replaced by pytorch_model.bin = make(tensors, storages) -> bytes
        (the state dict's tensors as torch_bin describes them, each in its own storage); the seed
        is the same made from torch_bin.small()."""
        path = os.path.join(d, "model.safetensors")
        with open(path, "rb") as f:
            h, data = st_split(f.read())
        os.unlink(path)
        tensors, storages = [], {}
        for i, name in enumerate(st_tensors(h)):
            kind, size = torch_bin.STORAGE[h[name]["dtype"]]
            b, e = h[name]["data_offsets"]
            storages[str(i)] = data[b:e]
            tensors.append({"name": name, "type": kind, "key": str(i), "numel": (e - b) // size, "offset": 0,
                            "size": h[name]["shape"], "stride": torch_bin.row_major(h[name]["shape"])})
        self.write(os.path.join(d, "pytorch_model.bin"), make(tensors, storages))
        if seed:
            try:
                self.seed("pytorch", make(*torch_bin.small()))
            except (KeyError, IndexError, ValueError):
                pass
        return d

    # tokenizer.json
    def tok(self, d, change, seed=True):
        path = os.path.join(d, "tokenizer.json")
        with open(path, encoding="utf-8") as f:
            t = json.load(f)
        r = change(t)
        self.write(path, r if isinstance(r, bytes) else dumps(t))
        if seed:
            s = small_tokenizer()
            r = change(s)
            self.seed("tokenizer", b"0" + (r if isinstance(r, bytes) else dumps(s)))
        return d

    # vocab.json + merges.txt (tokenizer.json removed)
    def vm(self, d, change, seed=True):
        os.unlink(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "vocab.json"), encoding="utf-8") as f:
            v = json.load(f)
        with open(os.path.join(d, "merges.txt"), encoding="utf-8") as f:
            m = f.read()
        vb, mb = change(v, m)
        self.write(os.path.join(d, "vocab.json"), vb)
        self.write(os.path.join(d, "merges.txt"), mb)
        if seed:
            v, m = small_vocab_merges()
            vb, mb = change(v, m)
            self.seed("tokenizer", b"1" + vb + b"\0" + mb)
        return d

    # a sharded checkpoint: model.safetensors cut into two shards and an index
    def sharded(self, d):
        path = os.path.join(d, "model.safetensors")
        with open(path, "rb") as f:
            h, data = st_split(f.read())
        os.unlink(path)
        names = st_tensors(h)
        half = len(names) // 2
        shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
        wm = {}
        for file, part in shards.items():
            other = [n for n in names if n not in part]
            with open(os.path.join(d, file), "wb") as f:
                f.write(st_rebuild(h, data, drop=other))
            for n in part:
                wm[n] = file
        index = {"metadata": {"total_size": len(data)}, "weight_map": wm}
        self.write(os.path.join(d, "model.safetensors.index.json"), json.dumps(index, indent=2).encode())
        return index

    def index(self, d, change, seed=True):
        """A sharded folder whose index is change(index dict) (edited in place, or new bytes)."""
        idx = self.sharded(d)
        r = change(idx)
        b = r if isinstance(r, bytes) else json.dumps(idx, indent=2).encode()
        self.write(os.path.join(d, "model.safetensors.index.json"), b, seed="index" if seed else None)
        return d

    # a run of `scribe train` (2 steps, a checkpoint at each) and its text
    def trained(self, name="gpt2-tiny-a", sub="run"):
        if self.seeds_only:
            raise SkipSeed()
        text = self.write(self.p("text.txt"), b"The old man and the sea. Light shall be in the beginning.\n" * 40)
        out = self.p(sub)
        r = subprocess.run([self.scribe, "train", self.orig(name), "--data", text, "--out", out] + TRAIN_RUN + ["--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("scribe train failed: " + r.stderr.decode(errors="replace"))
        return out, text

    # a folder written by `scribe shard`
    def presharded(self, name="gpt2-tiny-a", tp=2, sub="sharded", extra=()):
        if self.seeds_only:
            raise SkipSeed()
        out = self.p(sub)
        r = subprocess.run([self.scribe, "shard", self.orig(name), "--tp", str(tp), "--out", out, *extra],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("scribe shard failed: " + r.stderr.decode(errors="replace"))
        return out


    # a folder written by `scribe compile`
    def compiled(self, name="gpt2-tiny-a", tp=1, sub="art"):
        if self.seeds_only:
            raise SkipSeed()
        out = self.p(sub)
        r = subprocess.run([self.scribe, "compile", self.orig(name), "--tp", str(tp), "--out", out, "--buckets", "8,16", "--threads", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("scribe compile failed: " + r.stderr.decode(errors="replace"))
        return out


# ---------------------------------------------------------------------------
# the cases

CASES = []


class Case:
    def __init__(self, name, area, setup, rc, words, stdin=b"", timeout=30, stdout_words=(), not_words=()):
        self.name, self.area, self.setup, self.rc, self.words = name, area, setup, rc, list(words)
        self.stdin, self.timeout, self.stdout_words, self.not_words = stdin, timeout, list(stdout_words), list(not_words)


def case(name, area, setup, rc=1, words=(), **kw):
    assert all(c.name != name for c in CASES), name
    if isinstance(words, str):
        words = [words]
    CASES.append(Case(name, area, setup, rc, words, **kw))


GEN = ["--max-new-tokens", "2", "--prompt", "Hi", "--threads", "1"]
TRAIN_RUN = ["--steps", "2", "--save-every", "1", "--batch", "2", "--seq", "16", "--threads", "1"]


def gen(d, *extra):
    return ["generate", d] + GEN + list(extra)


# --- safetensors -------------------------------------------------------------

def st_case(name, corrupt, words, model="gpt2-tiny-a", cmd="inspect", rc=1, seed=True):
    def setup(x):
        d = x.st(x.model(model), corrupt, seed=seed)
        return gen(d) if cmd == "generate" else [cmd, d]
    case("safetensors_" + name, "safetensors", setup, rc, words)


def first(h):
    return st_tensors(h)[0]


def second(h):
    return st_tensors(h)[1]


def last(h):
    return st_tensors(h)[-1]


def edit_first(change):
    def corrupt(h, data):
        change(h[first(h)])
        return st_join(h, data)
    return corrupt


def set_len(n):
    return lambda h, data: struct.pack("<Q", n) + st_join(h, data)[8:]


def st_raw(header_bytes):
    return lambda h, data: st_join(None, data, raw=header_bytes)


def setup_safetensors_cases():
    st_case("empty", lambda h, d: b"", "0 bytes is too short for a safetensors header")
    st_case("5_bytes", lambda h, d: b"\x10\0\0\0\0", "5 bytes is too short for a safetensors header")
    st_case("truncated_data", lambda h, d: st_join(h, d)[:-100], "outside the data section", cmd="generate")
    st_case("truncated_header", lambda h, d: st_join(h, d)[:8 + 100],
            "the header length (the first 8 bytes) runs past the end of the file")
    st_case("header_length_past_end", lambda h, d: set_len(len(st_join(h, d)) - 7)(h, d), "runs past the end of the file")
    st_case("header_length_2_64", set_len(2 ** 64 - 1), "runs past the end of the file")
    st_case("header_length_2_63", set_len(2 ** 63), "runs past the end of the file")

    def over_limit(x):  # a sparse 101 MiB file whose header length is 100 MiB + 8: past the header limit
        d = x.model()
        x.sparse(os.path.join(d, "model.safetensors"), (101 << 20) + 64, struct.pack("<Q", (100 << 20) + 8) + b"{")
        return ["inspect", d]
    case("safetensors_header_length_over_limit", "safetensors", over_limit, 1,
         ["model.safetensors", "header length", "more than 104857600 bytes"])
    st_case("header_zero_length", st_raw(b""), ["model.safetensors (header): not valid JSON"])
    st_case("header_not_json", st_raw(b"this is not JSON at all"), ["(header): not valid JSON"])
    st_case("header_nul_bytes", st_raw(b"\0" * 16), ["(header): not valid JSON"])
    st_case("header_bad_utf8", lambda h, d: st_join(None, d, raw=b'{"\xff\xfe":1}'), ["(header): not valid JSON"])
    st_case("header_not_object", st_raw(b"[1, 2, 3]"), "the header is not a JSON object")
    st_case("header_trailing_garbage", lambda h, d: st_join(None, d, raw=json.dumps(h).encode() + b"xyz"),
            ["(header): not valid JSON"])
    st_case("header_string", st_raw(b'"a string"'), "the header is not a JSON object")
    st_case("header_deep_1e5", st_raw(deep(100000)), ["(header)", "JSON nested deeper than 64 levels"], seed=False)
    st_case("header_deep_objects", st_raw(deep(1000, objects=True)), ["(header)", "nested deeper than 64 levels"])
    st_case("duplicate_tensor_key", lambda h, d: st_join(None, d, raw=with_duplicate_key(h, first(h))),
            ["(header)", "appears twice in one object"])
    st_case("dtype_unknown", edit_first(lambda t: t.update(dtype="F8_E4M3")),
            ['has dtype "F8_E4M3", which Scribe does not read'])
    st_case("dtype_garbage", edit_first(lambda t: t.update(dtype="Q4\u001b[31m")),
            ["has dtype", "which Scribe does not read"])
    st_case("dtype_not_string", edit_first(lambda t: t.update(dtype=32)), "has no dtype string")
    st_case("dtype_missing", edit_first(lambda t: t.pop("dtype")), "has no dtype string")
    st_case("dtype_i32_weight", edit_first(lambda t: t.update(dtype="I32")),
            ["transformer.h.0.attn.c_attn.bias", "weights must be F32, F16 or BF16"], cmd="generate")
    st_case("dtype_u8_size_mismatch", edit_first(lambda t: t.update(dtype="U8")), ["but its data_offsets span 432"])
    st_case("dtype_f16_size_mismatch", edit_first(lambda t: t.update(dtype="F16")), ["but its data_offsets span 432"])

    def transpose_wte(h, d):
        t = h["transformer.wte.weight"]
        t["shape"] = t["shape"][::-1]
        return st_join(h, d)
    st_case("shape_mismatch", transpose_wte, ["wte.weight", "is [36, 301] but config.json needs [301, 36]"], cmd="generate",
            seed=False)
    st_case("shape_negative", edit_first(lambda t: t.update(shape=[-108])), "shape entry that is not a non-negative integer")
    st_case("shape_float", edit_first(lambda t: t.update(shape=[108.0])), "shape entry that is not a non-negative integer")
    st_case("shape_string", edit_first(lambda t: t.update(shape=["108"])), "shape entry that is not a non-negative integer")
    st_case("shape_1e400", lambda h, d: st_join(None, d, raw=json.dumps(h).replace("[108]", "[1e400]", 1).encode()),
            ["(header): not valid JSON", "number overflow parsing '1e400'"])
    st_case("shape_not_array", edit_first(lambda t: t.update(shape=108)), "has no shape array")
    st_case("shape_2_49", edit_first(lambda t: t.update(shape=[2 ** 49])), "impossibly large shape")
    st_case("shape_2_64_minus_1", edit_first(lambda t: t.update(shape=[2 ** 64 - 1])), "impossibly large shape")
    st_case("shape_product_2_50", edit_first(lambda t: t.update(shape=[2 ** 25, 2 ** 25])), "impossibly large shape")
    st_case("shape_zero_times_2_60", edit_first(lambda t: t.update(shape=[0, 2 ** 60])), "impossibly large shape")
    st_case("shape_many_dims", edit_first(lambda t: t.update(shape=[2] * 60)), "impossibly large shape")
    st_case("offsets_reversed", edit_first(lambda t: t.update(data_offsets=t["data_offsets"][::-1])),
            "that end before they begin")
    st_case("offsets_past_end", edit_first(lambda t: t.update(data_offsets=[10 ** 9, 10 ** 9 + 432])),
            "outside the data section")
    st_case("offsets_2_64", edit_first(lambda t: t.update(data_offsets=[2 ** 64 - 432, 2 ** 64 - 1])),
            "outside the data section")
    st_case("offsets_negative", edit_first(lambda t: t.update(data_offsets=[-432, 0])),
            "data offset that is not a non-negative integer")
    st_case("offsets_float", edit_first(lambda t: t.update(data_offsets=[0.0, 432.0])),
            "data offset that is not a non-negative integer")
    st_case("offsets_not_pair", edit_first(lambda t: t.update(data_offsets=[0])), "has no data_offsets pair")
    st_case("offsets_three", edit_first(lambda t: t.update(data_offsets=[0, 216, 432])), "has no data_offsets pair")

    def overlap(h, d):  # the second tensor's range starts inside the first's, same length as before
        a, b = first(h), second(h)
        h[b]["data_offsets"] = [h[b]["data_offsets"][0] - 4, h[b]["data_offsets"][1] - 4]
        return st_join(h, d)
    st_case("offsets_overlap", overlap, "overlap")

    def same_range(h, d):  # two tensors of the same size on the same bytes
        names = [n for n in st_tensors(h) if h[n]["shape"] == h[first(h)]["shape"] and h[n]["dtype"] == h[first(h)]["dtype"]]
        n2 = names[1] if len(names) > 1 else second(h)
        h[n2]["shape"] = h[first(h)]["shape"]
        h[n2]["dtype"] = h[first(h)]["dtype"]
        h[n2]["data_offsets"] = h[first(h)]["data_offsets"]
        return st_join(h, d)
    st_case("offsets_alias", same_range, "overlap", seed=False)

    def hole(h, d):  # 4 bytes after the first tensor that belong to none
        a = first(h)
        end = h[a]["data_offsets"][1]
        for n in st_tensors(h)[1:]:
            h[n]["data_offsets"] = [o + 4 for o in h[n]["data_offsets"]]
        return st_join(h, d[:end] + b"\0\0\0\0" + d[end:])
    st_case("offsets_hole", hole, "of the data belong to no tensor")
    st_case("offsets_not_covering", lambda h, d: st_join(h, d + b"\0" * 8), "at the end of the data belong to no tensor")
    st_case("tensor_not_object", lambda h, d: st_join(dict(h, **{first(h): [1, 2]}), d), "is not an object")
    st_case("tensor_unknown_field", edit_first(lambda t: t.update(extra=1)), "has an unknown field `extra`")
    st_case("metadata_not_object", lambda h, d: st_join(dict(h, __metadata__=["pt"]), d), "__metadata__ is not an object")
    st_case("metadata_value_not_string", lambda h, d: st_join(dict(h, __metadata__={"format": 1}), d),
            "__metadata__ `format` is not a string")
    st_case("metadata_value_object", lambda h, d: st_join(dict(h, __metadata__={"nested": {"a": "b"}}), d),
            "__metadata__ `nested` is not a string")
    st_case("tensor_missing", lambda h, d: st_rebuild(h, d, drop=["transformer.ln_f.bias"]),
            ["tensor `ln_f.bias` is missing"], cmd="generate", seed=False)
    st_case("tensor_extra", lambda h, d: st_rebuild(h, d, add=[("transformer.h.7.mlp.extra.weight", "F32", [2], b"\0" * 8)]),
            ["unexpected tensor `transformer.h.7.mlp.extra.weight`"], seed=False)
    st_case("tensor_name_long", lambda h, d: st_rebuild(h, d, add=[("n" * 20000, "F32", [2], b"\0" * 8)]),
            ["unexpected tensor `nnnnnnnn", "...`"], seed=False)
    st_case("tensor_name_escape", lambda h, d: st_rebuild(h, d, add=[("evil\u001b[2J\u0007name", "F32", [2], b"\0" * 8)]),
            ["unexpected tensor `evil\\x1b[2J\\x07name`"])
    st_case("ignored_tensor_ok", lambda h, d: st_rebuild(h, d, add=[("transformer.h.0.attn.masked_bias", "F32", [], b"\0" * 4)]),
            [], cmd="generate", rc=0, seed=False)
    st_case("empty_tensor", lambda h, d: st_rebuild(h, d, add=[("z", "F32", [0, 5], b"")]), ["unexpected tensor `z`"],
            seed=False)

    def fill(names, value):
        def corrupt(h, d):
            d = bytearray(d)
            for n in names:
                b, e = h[n]["data_offsets"]
                d[b:e] = struct.pack("<f", value) * ((e - b) // 4)
            return st_join(h, bytes(d))
        return corrupt
    st_case("nan_weights", fill(["transformer.ln_f.weight", "transformer.ln_f.bias"], float("nan")), ["not finite"],
            cmd="generate", seed=False)
    st_case("inf_embeddings", fill(["transformer.wte.weight"], float("inf")), ["not finite"], cmd="generate", seed=False)

    def nan_check_finite(x):
        d = x.st(x.model(), fill(["transformer.h.1.mlp.c_fc.weight"], float("nan")), seed=False)
        return gen(d, "--check-finite")
    case("safetensors_nan_layer_check_finite", "safetensors", nan_check_finite, 1,
         ["input `h.1.mlp.c_fc.weight` holds a non-finite value"])

    def nan_llama(x):
        d = x.st(x.model("llama-tiny-gqa"), fill(["model.norm.weight"], float("nan")), seed=False)
        return gen(d)
    case("safetensors_nan_llama", "safetensors", nan_llama, 1, ["not finite"])

    # --dtype q8: a matrix that cannot be held in 8-bit blocks (a NaN, or values
    # beyond what an f16 block scale holds) is refused at load, naming the weight.
    def q8_unquantizable(value):
        def setup(x):
            d = x.st(x.model("mistral-tiny"), fill(["model.layers.0.self_attn.q_proj.weight"], value), seed=False)
            return gen(d, "--dtype", "q8")
        return setup
    for label, value in (("nan", float("nan")), ("inf", float("inf")), ("huge", 1e7)):
        case("safetensors_q8_" + label, "safetensors", q8_unquantizable(value), 1,
             ["weight `layers.0.self_attn.q_proj.weight`: row 0", "cannot be stored in 8-bit blocks"])

    def special(kind):
        def setup(x):
            d = x.model()
            x.special(os.path.join(d, "model.safetensors"), kind)
            return gen(d) if kind in ("fifo", "dangling") else ["inspect", d]
        return setup
    case("safetensors_is_directory", "safetensors", special("directory"), 1, ["model.safetensors", "is a directory"])
    case("safetensors_fifo", "safetensors", special("fifo"), 1, ["model.safetensors", "is a FIFO, not a regular file"])
    case("safetensors_dev_zero", "safetensors", special("dev_zero"), 1, ["model.safetensors", "is a character device"])
    case("safetensors_dev_null", "safetensors", special("dev_null"), 1, ["model.safetensors", "is a character device"])
    case("safetensors_dangling_symlink", "safetensors", special("dangling"), 1, ["model.safetensors", "no such file"])
    case("safetensors_symlink_loop", "safetensors", special("loop"), 1, ["model.safetensors", "cannot open"])
    case("safetensors_missing", "safetensors", special("missing"), 1, ["no model.safetensors or model.safetensors.index.json"])

    def symlink_elsewhere(x):  # the Hugging Face cache: model.safetensors a symlink to a blob elsewhere
        d = x.model()
        os.makedirs(x.p("blobs"))
        shutil.move(os.path.join(d, "model.safetensors"), x.p("blobs", "0123abcd"))
        os.symlink(os.path.join("..", "blobs", "0123abcd"), os.path.join(d, "model.safetensors"))
        return gen(d)
    case("safetensors_symlink_elsewhere_ok", "safetensors", symlink_elsewhere, 0, [])

    def symlink_secret(x):
        d = x.model()
        x.symlink(os.path.join(d, "model.safetensors"), x.secret())
        return gen(d)
    case("safetensors_symlink_secret", "safetensors", symlink_secret, 1, ["model.safetensors", "runs past the end"])

    def symlink_secret_big(x):  # a large secret: its first 8 bytes as a length fit, the header is the secret's text
        d = x.model()
        body = MARKER + b"x" * 64
        x.symlink(os.path.join(d, "model.safetensors"), x.secret(struct.pack("<Q", len(body)) + body))
        return gen(d)
    case("safetensors_symlink_secret_text", "safetensors", symlink_secret_big, 1, ["model.safetensors (header): not valid JSON"])

    def unreadable(x):
        d = x.model()
        os.chmod(os.path.join(d, "model.safetensors"), 0)
        return ["inspect", d]
    # As root chmod 000 does not stop reads: the file is read and the model works.
    case("safetensors_unreadable", "safetensors", unreadable, 0 if IS_ROOT else 1, [] if IS_ROOT else ["Permission denied"])


# --- the index of a sharded checkpoint ----------------------------------------

def idx_case(name, change, words, cmd="inspect", rc=1, seed=True):
    def setup(x):
        d = x.index(x.model(), change, seed=seed)
        return gen(d) if cmd == "generate" else [cmd, d]
    case("index_" + name, "index", setup, rc, words)


def first_key(i):
    return sorted(i["weight_map"])[0]


def setup_index_cases():
    idx_case("valid_two_shards_ok", lambda i: None, [], cmd="generate", rc=0, seed=False)
    idx_case("not_json", lambda i: b"{weight_map: nope", ["model.safetensors.index.json: not valid JSON"])
    idx_case("empty_file", lambda i: b"", ["model.safetensors.index.json: not valid JSON"])
    idx_case("not_object", lambda i: b"[1, 2]", ['no "weight_map" object'])
    idx_case("no_weight_map", lambda i: i.pop("weight_map") and None, ['no "weight_map" object'])
    idx_case("weight_map_array", lambda i: i.update(weight_map=["model-00001-of-00002.safetensors"]),
             ['no "weight_map" object'])
    idx_case("weight_map_empty", lambda i: i.update(weight_map={}), ['the "weight_map" is empty'])
    idx_case("value_number", lambda i: i["weight_map"].update({first_key(i): 1}), ["is not a file name"])
    idx_case("value_null", lambda i: i["weight_map"].update({first_key(i): None}), ["is not a file name"])
    for tag, bad in [("dotdot_slash", "../model.safetensors"), ("absolute", "/etc/passwd"), ("dotdot", ".."),
                     ("dot", "."), ("subfolder", "sub/model.safetensors"), ("empty_name", ""),
                     ("nul_byte", "model\u0000.safetensors")]:
        idx_case("path_" + tag, lambda i, bad=bad: i["weight_map"].update({first_key(i): bad}),
                 ["names a file outside the folder"])
    idx_case("missing_shard_file", lambda i: i["weight_map"].update({first_key(i): "model-00009-of-00009.safetensors"}),
             ["model-00009-of-00009.safetensors", "no such file"])
    idx_case("escape_in_shard_name", lambda i: i["weight_map"].update({first_key(i): "shard\u001b[2J.safetensors"}),
             ["no such file"])

    def wrong_shard(i):  # a tensor of shard 2 mapped to shard 1
        k = sorted(n for n, f in i["weight_map"].items() if f.startswith("model-00002"))[0]
        i["weight_map"][k] = "model-00001-of-00002.safetensors"
    idx_case("tensor_in_wrong_shard", wrong_shard, ["is mapped to model-00001-of-00002.safetensors, which does not hold it"],
             seed=False)
    idx_case("tensor_not_mapped", lambda i: i["weight_map"].pop("transformer.ln_f.bias") and None,
             ["tensor `ln_f.bias` is missing"], seed=False)
    idx_case("duplicate_key", lambda i: b'{"weight_map":' + with_duplicate_key(i["weight_map"], first_key(i)) + b"}",
             ["appears twice in one object"])
    idx_case("deep", lambda i: b'{"weight_map":' + deep(100000) + b"}", ["nested deeper than 64 levels"], seed=False)
    idx_case("deep_objects", lambda i: b'{"weight_map":' + deep(200, objects=True) + b"}", ["nested deeper than 64 levels"])

    def special(kind):
        def setup(x):
            d = x.model()
            x.sharded(d)
            f = os.path.join(d, "model.safetensors.index.json") if kind.startswith("index") else \
                os.path.join(d, "model-00002-of-00002.safetensors")
            if kind.endswith("dir"):
                x.directory(f)
            elif kind.endswith("fifo"):
                x.fifo(f)
            elif kind.endswith("secret"):
                x.symlink(f, x.secret())
            elif kind.endswith("zero"):
                x.symlink(f, "/dev/zero")
            return gen(d)
        return setup
    case("index_is_directory", "index", special("index_dir"), 1, ["model.safetensors.index.json", "is a directory"])
    case("index_fifo", "index", special("index_fifo"), 1, ["model.safetensors.index.json", "is a FIFO"])
    case("index_symlink_secret", "index", special("index_secret"), 1, ["model.safetensors.index.json: not valid JSON"])
    case("index_shard_is_directory", "index", special("shard_dir"), 1, ["model-00002-of-00002.safetensors", "is a directory"])
    case("index_shard_fifo", "index", special("shard_fifo"), 1, ["model-00002-of-00002.safetensors", "is a FIFO"])
    case("index_shard_dev_zero", "index", special("shard_zero"), 1, ["model-00002-of-00002.safetensors", "character device"])
    case("index_shard_symlink_secret", "index", special("shard_secret"), 1, ["model-00002-of-00002.safetensors", "runs past"])


# --- pytorch_model.bin (torch.save's zip archive of a state dict) -------------

def pt_case(name, make, words, cmd="inspect", rc=1, seed=True, model="gpt2-tiny-a"):
    def setup(x):
        d = x.torch(x.model(model), make, seed=seed)
        return gen(d) if cmd == "generate" else [cmd, d]
    case("pytorch_" + name, "pytorch", setup, rc, words)


def whole(tensors, storages, **kw):
    return torch_bin.archive(torch_bin.state_pickle(tensors), storages, **kw)


def with_pickle(edit, **kw):
    """An archive whose data.pkl is edit(the state dict's pickle)."""
    return lambda t, s: torch_bin.archive(edit(torch_bin.state_pickle(t)), s, **kw)


def changed(field, value, which=0):
    def make(t, s):
        t[which][field] = value
        return whole(t, s)
    return make


def setup_pytorch_cases():
    REBUILD = b"ctorch._utils\n_rebuild_tensor_v2\n"
    pt_case("valid_ok", whole, [], cmd="generate", rc=0, seed=False)
    pt_case("valid_plain_dict_ok", lambda t, s: torch_bin.archive(torch_bin.state_pickle(t, ordered=False), s), [],
            cmd="generate", rc=0, seed=False)
    pt_case("valid_rebuild_v1_ok", lambda t, s: torch_bin.archive(torch_bin.state_pickle(t, rebuild="_rebuild_tensor"), s), [],
            rc=0, seed=False)
    pt_case("empty_file", lambda t, s: b"", ["pytorch_model.bin: not a zip archive"])
    pt_case("not_zip", lambda t, s: b"GARBAGE" * 100, ["pytorch_model.bin: not a zip archive"])
    pt_case("legacy_pickle", lambda t, s: b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19." + b"\0" * 64, ["legacy format (torch < 1.6)"])
    pt_case("truncated", lambda t, s: whole(t, s)[:len(whole(t, s)) // 2], ["no end-of-central-directory record"])
    pt_case("truncated_end", lambda t, s: whole(t, s)[:-5], ["no end-of-central-directory record"])
    pt_case("compressed", lambda t, s: whole(t, s, compress=True), ["is compressed (method 8)", "stores entries uncompressed"])
    pt_case("big_endian", lambda t, s: whole(t, s, byteorder=b"big"), ['byteorder is "big"', "little-endian"])
    pt_case("no_byteorder_ok", lambda t, s: whole(t, s, byteorder=None), [], rc=0, seed=False)
    pt_case("two_folders", lambda t, s: whole(t, s, extra=[("other/x", b"1")]), ["entries in two folders"])
    pt_case("entry_outside_folder", lambda t, s: whole(t, s, extra=[("loose", b"1")]), ["entry `loose` is outside the archive's folder"])
    pt_case("no_data_pkl", lambda t, s: torch_bin.archive(b"", s, folder="archive").replace(b"archive/data.pkl", b"archive/data.pkX"),
            ["no archive/data.pkl"])
    pt_case("torchscript", lambda t, s: torch_bin.archive(b"", {}, extra=[("archive/constants.pkl", b"")]).replace(
        b"archive/data.pkl", b"archive/dat_.pkl"), ["TorchScript archive"])

    def damaged_crc(t, s):
        b = bytearray(whole(t, s))
        at = b.index(b"storage")
        b[at] = ord("S")
        return bytes(b)
    pt_case("data_pkl_crc", damaged_crc, ["data.pkl does not match its CRC-32"])

    pt_case("encrypted", lambda t, s: set_flag(whole(t, s), 1), ["is encrypted"])
    pt_case("huge_entry_count", lambda t, s: set_eocd_count(whole(t, s), 0xfffe), ["claims 65534 entries"])
    pt_case("entry_twice", lambda t, s: quietly(torch_bin.archive, torch_bin.state_pickle(t), s, extra=[("archive/version", b"3\n")]),
            ["is in the archive twice"])
    # The pickle: code and anything else but the tensor-rebuilding names is refused.
    pt_case("global_os_system", with_pickle(lambda p: p.replace(REBUILD, b"cos\nsystem\n", 1)),
            ["`os.system`", "never runs code"])
    pt_case("global_builtins_eval", with_pickle(lambda p: p.replace(REBUILD, b"cbuiltins\neval\n", 1)),
            ["`builtins.eval`", "never runs code"])
    pt_case("stack_global_exec", with_pickle(lambda p: p.replace(REBUILD, b"\x8c\x08builtins\x8c\x04exec\x93", 1)),
            ["`builtins.exec`"])
    pt_case("global_posix_escape", with_pickle(lambda p: p.replace(REBUILD, b"cposix\nsys\x1b[2Jtem\n", 1)),
            ["`posix.sys\\x1b[2Jtem`"])
    pt_case("opcode_inst", with_pickle(lambda p: p.replace(REBUILD, b"ios\nsystem\n", 1)), ["opcode 0x69 (INST)"])
    pt_case("opcode_newobj", with_pickle(lambda p: p[:2] + b"\x81" + p[2:]), ["opcode 0x81 (NEWOBJ)"])
    pt_case("opcode_long4", with_pickle(lambda p: p[:2] + b"\x8b\x05\0\0\0" + p[2:]), ["opcode 0x8b (LONG4)"])
    pt_case("protocol_1", with_pickle(lambda p: b"\x80\x01" + p[2:]), ["pickle protocol 1"])
    pt_case("no_stop", with_pickle(lambda p: p[:-1]), ["the pickle ends without STOP"])
    pt_case("stop_early", with_pickle(lambda p: p[:2] + b"NN." + p[2:]), ["STOP with 2 items on the stack"])
    pt_case("none_state", with_pickle(lambda p: p[:2] + b"N." + p[2:]), ["the pickle holds None, not a state dict"])
    pt_case("binget_unknown", with_pickle(lambda p: p[:-2] + b"h\x07" + p[-2:]), ["BINGET of memo entry 7, which was never put"])
    pt_case("stack_underflow", with_pickle(lambda p: p[:2] + b"R" + p[2:]), ["more items than the stack holds"])
    pt_case("storage_short", lambda t, s: whole(t, dict(s, **{"0": s["0"][:-4]})), ["but the archive's entry has"])
    pt_case("storage_missing", lambda t, s: whole(t, {k: v for k, v in s.items() if k != "1"}),
            ["which the archive does not hold (no archive/data/1)"])
    pt_case("storage_key_path", changed("key", "../../etc/passwd"), ["is not a plain record name"])
    pt_case("storage_int16", changed("type", "ShortStorage"), ["torch.ShortStorage", "does not read"])
    pt_case("storage_class_unknown", changed("type", "Evil"), ["`torch.Evil`"])
    pt_case("view_past_storage", changed("offset", 10), ["reaches past the end of its storage"])
    pt_case("negative_offset", changed("offset", -3), ["negative storage offset"])
    pt_case("stride_past_storage", lambda t, s: changed("stride", [t[0]["stride"][0], 2] if len(t[0]["stride"]) > 1 else [2])(t, s),
            ["reaches past the end of its storage"])
    pt_case("shape_2_48", changed("size", [2 ** 48 + 1]), ["outside 0 .. 2^48"])
    pt_case("shape_product_huge", lambda t, s: shaped(t, s, [2 ** 30, 2 ** 30], [2 ** 30, 1]), ["impossibly large shape"])
    pt_case("shape_17_dims", changed("size", [1] * 17), ["more than 16"])
    pt_case("integer_72_bits", changed("offset", 2 ** 70), ["wider than 64 bits"])
    pt_case("stride_zero_gather_huge", lambda t, s: shaped(t, s, [2 ** 20, 2 ** 20], [0, 0]),
            ["strided view", "more bytes than the file has"])

    def rows_of(t, s):  # size and stride of a 2-d tensor swapped: its own shape transposed, strided
        x = next(v for v in t if len(v["size"]) == 2 and v["size"][0] != v["size"][1])
        x["size"] = x["size"][::-1]
        x["stride"] = [1, x["size"][1]]
        return whole(t, s)
    pt_case("transposed_shape_wrong", rows_of, ["pytorch_model.bin: tensor `", "but config.json needs"], seed=False)
    pt_case("tensor_missing", lambda t, s: whole([v for v in t if v["name"] != "transformer.ln_f.bias"], s),
            ["pytorch_model.bin: tensor `ln_f.bias` is missing"], seed=False)
    pt_case("tensor_twice", lambda t, s: whole(t + t[:1], s), ["holds `", "twice"])
    pt_case("not_a_dict", with_pickle(lambda p: b"\x80\x02]."), ["holds a list, not a state dict"])
    pt_case("wrapped_state_dict", with_pickle(lambda p: b"\x80\x02}X\x0a\0\0\0state_dict" + p[2:-1] + b"s."),
            ["`state_dict` is a dict, not a tensor"])
    pt_case("key_not_string", with_pickle(lambda p: b"\x80\x02}K\x01N" + b"s."), ["a key that is an integer"])
    pt_case("nested_tuples_1e6", with_pickle(lambda p: b"\x80\x02N" + b"\x85" * 1000000 + b"."),
            ["holds a tuple, not a state dict"], seed=False)
    pt_case("dict_in_itself", with_pickle(lambda p: b"\x80\x02}q\x00X\x01\0\0\0ah\x00s."), ["`a` is a dict, not a tensor"])
    pt_case("hooks_not_empty", with_pickle(lambda p: p.replace(b"\x89ccollections\nOrderedDict\n)R",
                                                               b"\x89}X\x01\0\0\0aNs", 1)), ["backward hooks"])

    # The folder: the file itself, an index of .bin shards, safetensors preferred.
    def special(kind):
        def setup(x):
            d = x.model()
            os.unlink(os.path.join(d, "model.safetensors"))
            x.special(os.path.join(d, "pytorch_model.bin"), kind)
            return ["inspect", d]
        return setup
    case("pytorch_is_directory", "pytorch", special("directory"), 1, ["pytorch_model.bin", "is a directory"])
    case("pytorch_fifo", "pytorch", special("fifo"), 1, ["pytorch_model.bin", "is a FIFO"])
    case("pytorch_symlink_secret", "pytorch", special("secret"), 1, ["pytorch_model.bin: not a zip archive"])
    case("pytorch_dev_zero", "pytorch", special("dev_zero"), 1, ["pytorch_model.bin", "character device"])

    def safetensors_preferred(x):
        d = x.model()
        x.write(os.path.join(d, "pytorch_model.bin"), b"not read: model.safetensors comes first")
        return gen(d)
    case("pytorch_safetensors_preferred_ok", "pytorch", safetensors_preferred, 0, [])

    def sharded(change):
        def setup(x):
            d = x.model()
            with open(os.path.join(d, "model.safetensors"), "rb") as f:
                h, data = st_split(f.read())
            os.unlink(os.path.join(d, "model.safetensors"))
            names = st_tensors(h)
            wm = {}
            for i, part in enumerate((names[:len(names) // 2], names[len(names) // 2:])):
                file = "pytorch_model-%05d-of-00002.bin" % (i + 1)
                x.write(os.path.join(d, file), torch_bin.from_safetensors(st_rebuild(h, data, drop=[n for n in names if n not in part])))
                wm.update({n: file for n in part})
            index = {"metadata": {}, "weight_map": wm}
            change(d, index)
            x.write(os.path.join(d, "pytorch_model.bin.index.json"), json.dumps(index).encode())
            return gen(d)
        return setup
    case("pytorch_index_two_shards_ok", "pytorch", sharded(lambda d, i: None), 0, [])
    case("pytorch_index_missing_shard", "pytorch",
         sharded(lambda d, i: os.unlink(os.path.join(d, "pytorch_model-00002-of-00002.bin"))),
         1, ["pytorch_model-00002-of-00002.bin", "no such file"])
    case("pytorch_index_outside", "pytorch",
         sharded(lambda d, i: i["weight_map"].update({sorted(i["weight_map"])[0]: "../pytorch_model.bin"})),
         1, ["pytorch_model.bin.index.json", "names a file outside the folder"])
    case("pytorch_index_shard_garbage", "pytorch",
         sharded(lambda d, i: open(os.path.join(d, "pytorch_model-00001-of-00002.bin"), "wb").write(b"PK\x03\x04" + b"junk" * 20)),
         1, ["pytorch_model-00001-of-00002.bin", "no end-of-central-directory record"])


def shaped(tensors, storages, size, stride):
    """The archive with the first tensor given this size and stride."""
    tensors[0]["size"], tensors[0]["stride"] = size, stride
    return whole(tensors, storages)


def quietly(f, *args, **kw):
    """f(...) without the warnings zipfile gives for what a hostile archive does on purpose."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kw)


def set_flag(b, bit):
    """The zip's first central-directory entry with general-purpose flag `bit` set."""
    b = bytearray(b)
    at = b.index(b"PK\x01\x02")
    flags = struct.unpack("<H", b[at + 8:at + 10])[0] | bit
    b[at + 8:at + 10] = struct.pack("<H", flags)
    return bytes(b)


def set_eocd_count(b, n):
    """The zip's end record claiming n entries (on this disk and in all)."""
    b = bytearray(b)
    at = b.rindex(b"PK\x05\x06")
    b[at + 8:at + 12] = struct.pack("<HH", n, n)
    return bytes(b)


# --- config.json of every family ----------------------------------------------

REQUIRED = {
    "gpt2": ["vocab_size", "n_positions", "n_layer", "n_embd", "n_head"],
    "opt": ["vocab_size", "max_position_embeddings", "num_hidden_layers", "hidden_size", "num_attention_heads", "ffn_dim"],
    "gptj": ["vocab_size", "n_positions", "n_layer", "n_embd", "n_head"],
    "llama": ["vocab_size", "max_position_embeddings", "num_hidden_layers", "hidden_size", "intermediate_size",
              "num_attention_heads"],
    "mistral": ["vocab_size", "max_position_embeddings", "num_hidden_layers", "hidden_size", "intermediate_size",
                "num_attention_heads"],
}
# Bad values of an integer field, as JSON text, and the words the error shows of each.
BAD_INTEGERS = [("zero", "0", "got 0"), ("negative", "-4", "got -4"), ("float", "4.5", "got 4.5"),
                ("string", '"4"', 'got "4"'), ("2_31", "2147483648", "got 2147483648"),
                ("2_63", "9223372036854775808", "got 9223372036854775808"),
                ("2_64", "18446744073709551616", "got 1.8446744073709552e+19"),
                ("1e400", "1e400", None), ("bool", "true", "got true"),
                ("array", "[4]", "got an array of 1 values")]


def raw_field(field, text):
    """A config change that sets `field` to the raw JSON `text`."""
    def change(c):
        c[field] = "@@RAW@@"
        return json.dumps(c, indent=2).replace('"@@RAW@@"', text).encode()
    return change


def cfg_case(name, family, change, words, cmd="inspect", rc=1, seed=True, model=None, **kw):
    def setup(x):
        d = x.config(x.model(model or FAMILY_MODEL[family]), change, seed=seed)
        return gen(d) if cmd == "generate" else [cmd, d]
    case("config_%s_%s" % (family, name), "config", setup, rc, words, **kw)


def setup_config_cases():
    for fam, fields in REQUIRED.items():
        for f in fields:
            cfg_case("missing_" + f, fam, lambda c, f=f: c.pop(f) and None, ["config.json", "missing field `%s`" % f])
        for k, (tag, text, shown) in enumerate(BAD_INTEGERS):
            f = fields[k % len(fields)]
            cfg_case("%s_%s" % (f, tag), fam, raw_field(f, text),
                     ["config.json", "field `%s` must be a positive integer below 2^31" % f, shown] if shown else
                     ["config.json: not valid JSON", "number overflow parsing '%s'" % text])
        cfg_case("model_type_number", fam, lambda c: c.update(model_type=7), ["model_type must be a string, got 7"])
        cfg_case("eos_out_of_vocab", fam, lambda c: c.update(eos_token_id=c["vocab_size"]),
                 ["field `eos_token_id` must be a token id below vocab_size"])
        cfg_case("layers_1e9", fam, lambda c: c.update({REQUIRED[fam_of(c)][2]: 10 ** 9}),
                 ["config has 1000000000 layers, but the checkpoint holds only", "tensors"], cmd="generate")
        cfg_case("vocab_2_31_minus_1", fam, lambda c: c.update(vocab_size=2 ** 31 - 1), ["needs [2147483647"])

    # whole-file problems
    for fam in ("gpt2", "llama"):
        cfg_case("not_json", fam, lambda c: b'{"model_type": gpt2', ["config.json: not valid JSON"])
        cfg_case("not_object", fam, lambda c: b"[1, 2, 3]", ["config.json: not a JSON object"])
    cfg_case("empty_file", "opt", lambda c: b"", ["config.json: not valid JSON"])
    cfg_case("deep_1e5", "gpt2", lambda c: deep(100000), ["config.json", "nested deeper than 64 levels"], seed=False)
    cfg_case("deep_field", "llama", raw_field("rope_scaling", deep(200, objects=True).decode()),
             ["config.json", "nested deeper than 64 levels"])
    cfg_case("duplicate_key", "gpt2", lambda c: with_duplicate_key(c, "n_layer"), ['key "n_layer" appears twice'])
    cfg_case("duplicate_key", "mistral", lambda c: with_duplicate_key(c, "sliding_window"),
             ['key "sliding_window" appears twice'])
    cfg_case("bad_utf8", "gptj", lambda c: b'{"model_type": "gptj", "n_embd\xff": 3}', ["config.json: not valid JSON"])
    cfg_case("model_type_unknown", "gpt2", lambda c: c.update(model_type="bloom"),
             ['model_type "bloom" is not supported (gpt2, gptj, opt, llama, mistral)'])
    cfg_case("model_type_escape", "opt", lambda c: c.update(model_type="x\u001b[31m"), ["model_type", "is not supported"])
    cfg_case("model_type_absent_is_gpt2", "gpt2", lambda c: c.pop("model_type") and None, [], rc=0)
    cfg_case("model_type_swapped", "gpt2", lambda c: c.update(model_type="opt"), ["missing field `max_position_embeddings`"])
    # pad_token_id is the embedding's padding_idx (OPT, LLaMA, Mistral): a row of the table, negatives counted from the end.
    for fam, vocab in (("opt", 307), ("llama", 317)):
        pad = "field `pad_token_id` must be a token id below vocab_size %d" % vocab
        cfg_case("pad_token_id_word", fam, lambda c: c.update(pad_token_id="one"), [pad])
        cfg_case("pad_token_id_vocab", fam, lambda c, v=vocab: c.update(pad_token_id=v), [pad, "got %d" % vocab])
        cfg_case("pad_token_id_below_minus_vocab", fam, lambda c, v=vocab: c.update(pad_token_id=-v - 1), [pad])
        cfg_case("pad_token_id_2_63", fam, lambda c: c.update(pad_token_id=2**63), [pad])
        cfg_case("pad_token_id_float", fam, lambda c: c.update(pad_token_id=1.5), [pad])
        cfg_case("pad_token_id_minus_1_ok", fam, lambda c: c.update(pad_token_id=-1), [], rc=0)
        cfg_case("pad_token_id_null_ok", fam, lambda c: c.update(pad_token_id=None), [], rc=0)
    cfg_case("nan_literal", "gpt2", raw_field("layer_norm_epsilon", "NaN"), ["config.json: not valid JSON"])
    cfg_case("long_string_value", "gpt2", lambda c: c.update(activation_function="x" * 100000),
             ['activation_function "xxxxxxxx', '..." is not supported'], seed=False)
    cfg_case("trailing_garbage", "llama", lambda c: json.dumps(c).encode() + b" {}", ["config.json: not valid JSON"])

    def cfg_file(kind):
        def setup(x):
            d = x.model()
            f = os.path.join(d, "config.json")
            if kind == "missing":
                os.unlink(f)
            elif kind == "dir":
                x.directory(f)
            elif kind == "fifo":
                x.fifo(f)
            elif kind == "dev_zero":
                x.symlink(f, "/dev/zero")
            elif kind == "secret":
                x.symlink(f, x.secret())
            elif kind == "huge":
                x.sparse(f, (16 << 20) + 1, b"{")
            return gen(d)
        return setup
    case("config_missing", "config", cfg_file("missing"), 1, ["config.json", "no such file"])
    case("config_is_directory", "config", cfg_file("dir"), 1, ["config.json", "is a directory"])
    case("config_fifo", "config", cfg_file("fifo"), 1, ["config.json", "is a FIFO"])
    case("config_dev_zero", "config", cfg_file("dev_zero"), 1, ["config.json", "is a character device"])
    case("config_symlink_secret", "config", cfg_file("secret"), 1, ["config.json: not valid JSON"])
    case("config_huge", "config", cfg_file("huge"), 1, ["config.json", "16777217 bytes, more than the 16777216"])

    # GPT-2
    cfg_case("n_embd_not_divisible", "gpt2", lambda c: c.update(n_head=5), ["n_embd 36 is not divisible by n_head 5"])
    cfg_case("activation_unsupported", "gpt2", lambda c: c.update(activation_function="swiglu"),
             ['activation_function "swiglu" is not supported'])
    cfg_case("activation_not_string", "gpt2", lambda c: c.update(activation_function=1),
             ["field `activation_function` must be a string, got 1"])
    cfg_case("layer_norm_epsilon_zero", "gpt2", lambda c: c.update(layer_norm_epsilon=0),
             ["field `layer_norm_epsilon` must be a positive number, got 0"])
    cfg_case("layer_norm_epsilon_string", "gpt2", lambda c: c.update(layer_norm_epsilon="1e-5"),
             ["field `layer_norm_epsilon` must be a positive number"])
    for opt, val, why in [("scale_attn_by_inverse_layer_idx", True, "scale_attn_by_inverse_layer_idx = true is not supported"),
                          ("reorder_and_upcast_attn", True, "reorder_and_upcast_attn = true is not supported"),
                          ("add_cross_attention", True, "add_cross_attention = true is not supported"),
                          ("tie_word_embeddings", False, "tie_word_embeddings = false is not supported"),
                          ("scale_attn_weights", False, "scale_attn_weights = false is not supported")]:
        cfg_case(opt, "gpt2", lambda c, opt=opt, val=val: c.update({opt: val}), [why])
    cfg_case("n_inner_zero", "gpt2", lambda c: c.update(n_inner=0), ["field `n_inner` must be a positive integer"])
    cfg_case("n_inner_wrong", "gpt2", lambda c: c.update(n_inner=100), ["mlp.c_fc.weight", "config.json needs [36, 100]"])
    cfg_case("n_embd_2_31_minus_1", "gpt2", lambda c: c.update(n_embd=2 ** 31 - 1, n_head=1), ["config.json needs"])
    cfg_case("n_layer_3", "gpt2", lambda c: c.update(n_layer=3), ["tensor `h.2.ln_1.weight` is missing"])
    cfg_case("n_layer_1", "gpt2", lambda c: c.update(n_layer=1), ["unexpected tensor `transformer.h.1."])
    cfg_case("n_positions_changed", "gpt2", lambda c: c.update(n_positions=128), ["wpe.weight", "needs [128, 36]"])
    cfg_case("eos_negative", "gpt2", lambda c: c.update(eos_token_id=-1), ["field `eos_token_id` must be a token id"])
    cfg_case("eos_string", "gpt2", lambda c: c.update(eos_token_id="0"), ["field `eos_token_id` must be a token id"])
    cfg_case("eos_list_out_of_vocab", "gpt2", lambda c: c.update(eos_token_id=[5000, 0]),
             ["field `eos_token_id` must be a token id below vocab_size 301"])
    cfg_case("bos_2_64", "gpt2", raw_field("bos_token_id", "18446744073709551615"),
             ["field `bos_token_id` must be a token id below vocab_size 301"])
    cfg_case("vocab_smaller_than_tokenizer", "gpt2", lambda c: c.update(vocab_size=300),
             ["vocab_size is 300 but the tokenizer has 301 tokens"], cmd="generate")

    # OPT
    cfg_case("hidden_not_divisible", "opt", lambda c: c.update(num_attention_heads=3),
             ["hidden_size 40 is not divisible by num_attention_heads 3"])
    cfg_case("do_layer_norm_before_string", "opt", lambda c: c.update(do_layer_norm_before="yes"),
             ["field `do_layer_norm_before` must be true or false"])
    cfg_case("do_layer_norm_before_flipped", "opt", lambda c: c.update(do_layer_norm_before=False),
             ["unexpected tensor", "final_layer_norm"], cmd="generate")
    cfg_case("remove_final_layer_norm", "opt", lambda c: c.update(_remove_final_layer_norm=True),
             ["unexpected tensor", "decoder.final_layer_norm"])
    cfg_case("enable_bias_false", "opt", lambda c: c.update(enable_bias=False), ["enable_bias = false is not supported"])
    cfg_case("elementwise_affine_false", "opt", lambda c: c.update(layer_norm_elementwise_affine=False),
             ["layer_norm_elementwise_affine = false is not supported"])
    cfg_case("tie_word_embeddings_false", "opt", lambda c: c.update(tie_word_embeddings=False),
             ["tie_word_embeddings = false is not supported"])
    cfg_case("word_embed_proj_dim_zero", "opt", lambda c: c.update(word_embed_proj_dim=0),
             ["field `word_embed_proj_dim` must be a positive integer"])
    cfg_case("word_embed_proj_dim_changed", "opt", lambda c: c.update(word_embed_proj_dim=24),
             ["project_in.weight` is missing"])
    cfg_case("activation_unsupported", "opt", lambda c: c.update(activation_function="tanh"),
             ['activation_function "tanh" is not supported'])

    # GPT-J
    cfg_case("rotary_dim_odd", "gptj", lambda c: c.update(rotary_dim=7), ["rotary_dim 7 must be even and at most the head's 12"])
    cfg_case("rotary_dim_too_big", "gptj", lambda c: c.update(rotary_dim=16), ["rotary_dim 16 must be even and at most"])
    cfg_case("rotary_dim_zero", "gptj", lambda c: c.update(rotary_dim=0), ["field `rotary_dim` must be a positive integer"])
    cfg_case("tie_word_embeddings_true", "gptj", lambda c: c.update(tie_word_embeddings=True),
             ["tie_word_embeddings = true is not supported"])
    cfg_case("n_embd_not_divisible", "gptj", lambda c: c.update(n_head=5), ["n_embd 48 is not divisible by n_head 5"])
    cfg_case("rope_scaling_not_object", "gptj", lambda c: c.update(rope_scaling="linear"),
             ['rope settings must be an object, got "linear"'])
    cfg_case("rope_theta_negative", "gptj", lambda c: c.update(rope_theta=-10000.0),
             ["field `rope_theta` must be a positive number"])
    cfg_case("rope_theta_tiny", "gptj", lambda c: c.update(rope_theta=1e-300),
             ["rotary frequency", "finite, positive", "1e-300"], not_words=["theta 0.000000"])
    cfg_case("rope_theta_huge", "gptj", lambda c: c.update(rope_theta=1e308),
             ["rotary frequency", "finite, positive", "1e+308"], not_words=["00000000000000000000"])
    cfg_case("n_embd_huge_rotary", "gptj", lambda c: c.update(n_embd=2 ** 31 - 2, n_head=1, rotary_dim=2 ** 31 - 2),
             ["config.json needs"])
    cfg_case("activation_unsupported", "gptj", lambda c: c.update(activation_function="mish"),
             ['activation_function "mish" is not supported'])

    # LLaMA
    cfg_case("heads_not_divisible_by_kv", "llama", lambda c: c.update(num_key_value_heads=3),
             ["num_attention_heads 8 is not divisible by num_key_value_heads 3"])
    cfg_case("kv_heads_more_than_heads", "llama", lambda c: c.update(num_key_value_heads=16),
             ["num_attention_heads 8 is not divisible by num_key_value_heads 16"])
    cfg_case("kv_heads_zero", "llama", lambda c: c.update(num_key_value_heads=0),
             ["field `num_key_value_heads` must be a positive integer"])
    cfg_case("head_dim_odd", "llama", lambda c: c.update(head_dim=7), ["head_dim 7 must be even for rotary embeddings"])
    cfg_case("no_head_dim_not_divisible", "llama", lambda c: (c.pop("head_dim"), c.update(hidden_size=50)) and None,
             ["hidden_size 50 is not divisible by num_attention_heads 8"])
    cfg_case("head_dim_huge", "llama", lambda c: c.update(head_dim=2 ** 31 - 2), ["q_proj.weight", "config.json needs"])
    cfg_case("hidden_act_gelu", "llama", lambda c: c.update(hidden_act="gelu"), ['hidden_act "gelu" is not supported'])
    cfg_case("mlp_bias_true", "llama", lambda c: c.update(mlp_bias=True), ["mlp_bias = true is not supported"])
    cfg_case("partial_rotary_factor", "llama", lambda c: c.update(partial_rotary_factor=0.5),
             ["partial_rotary_factor 0.5 is not supported"])
    cfg_case("attention_bias_string", "llama", lambda c: c.update(attention_bias="no"),
             ["field `attention_bias` must be true or false"])
    cfg_case("attention_bias_true", "llama", lambda c: c.update(attention_bias=True), ["q_proj.bias` is missing"])
    cfg_case("rms_norm_eps_negative", "llama", lambda c: c.update(rms_norm_eps=-1e-6),
             ["field `rms_norm_eps` must be a positive number"])
    cfg_case("rope_parameters_not_object", "llama", lambda c: c.update(rope_parameters=[1, 2]),
             ["rope settings must be an object, got an array of 2 values"])
    cfg_case("rope_type_unknown", "llama", lambda c: c["rope_parameters"].update(rope_type="yarn", factor=2.0),
             ['rope_type "yarn" is not supported (default, linear, llama3)'])
    cfg_case("rope_type_number", "llama", lambda c: c["rope_parameters"].update(rope_type=3), ["rope_type must be a string, got 3"])
    cfg_case("rope_linear_no_factor", "llama", lambda c: c["rope_parameters"].update(rope_type="linear"),
             ['rope scaling "linear" needs a `factor`'])
    cfg_case("rope_factor_zero", "llama", lambda c: c["rope_parameters"].update(rope_type="linear", factor=0),
             ["rope field `factor` must be a positive number, got 0"])
    cfg_case("rope_factor_string", "llama", lambda c: c["rope_parameters"].update(rope_type="linear", factor="2"),
             ["rope field `factor` must be a positive number"])
    cfg_case("rope_factor_tiny", "llama", lambda c: c["rope_parameters"].update(rope_type="linear", factor=1e-320),
             ["rotary frequency", "finite, positive"], not_words=["factor 0.000000"])
    cfg_case("rope_theta_negative", "llama", lambda c: c["rope_parameters"].update(rope_theta=-1.0),
             ["rope field `rope_theta` must be a positive number"])
    cfg_case("rope_theta_tiny", "llama", lambda c: c["rope_parameters"].update(rope_theta=1e-300),
             ["rotary frequency", "finite, positive", "1e-300"], not_words=["theta 0.000000"])
    cfg_case("rope_theta_huge", "llama", lambda c: c["rope_parameters"].update(rope_theta=1e308),
             ["rotary frequency", "finite, positive", "1e+308"], not_words=["00000000000000000000"])
    cfg_case("rope_theta_1e400", "llama", lambda c: json.dumps(c).replace("10000.0", "1e400").encode(),
             ["config.json: not valid JSON", "number overflow parsing '1e400'"])
    cfg_case("rope_scaling_and_top_level", "llama",
             lambda c: (c.pop("rope_parameters"), c.update(rope_scaling={"type": "dynamic", "factor": 2.0})) and None,
             ['rope_type "dynamic" is not supported'])
    cfg_case("llama3_high_not_above_low", "llama", lambda c: c["rope_parameters"].update(rope_type="llama3", factor=8.0,
                                                                                      low_freq_factor=4.0, high_freq_factor=4.0),
             ["rope scaling llama3 needs high_freq_factor > low_freq_factor"])
    cfg_case("llama3_original_1e300", "llama", lambda c: c["rope_parameters"].update(original_max_position_embeddings=1e300),
             ["config.json: ", "original_max_position_embeddings", "1e+300"], not_words=["00000000000000000000"],
             model="llama-tiny-mqa")
    cfg_case("llama3_original_fraction", "llama", lambda c: c["rope_parameters"].update(original_max_position_embeddings=0.5),
             ["config.json: ", "original_max_position_embeddings", "0.5"], model="llama-tiny-mqa")
    cfg_case("llama3_factor_missing", "llama", lambda c: c["rope_parameters"].pop("factor") and None,
             ['rope scaling "llama3" needs a `factor`'], model="llama-tiny-mqa")
    cfg_case("tie_word_embeddings_string", "llama", lambda c: c.update(tie_word_embeddings="false"),
             ["field `tie_word_embeddings` must be true or false"])
    cfg_case("tie_word_embeddings_dropped", "llama", lambda c: c.update(tie_word_embeddings=False),
             ["lm_head.weight` is missing"], model="llama-tiny-mqa")

    # Mistral
    cfg_case("sliding_window_zero", "mistral", lambda c: c.update(sliding_window=0),
             ["field `sliding_window` must be a positive integer"])
    cfg_case("sliding_window_negative", "mistral", lambda c: c.update(sliding_window=-8),
             ["field `sliding_window` must be a positive integer"])
    cfg_case("sliding_window_huge", "mistral", raw_field("sliding_window", "18446744073709551616"),
             ["field `sliding_window` must be a positive integer"])
    cfg_case("use_sliding_window_string", "mistral", lambda c: c.update(use_sliding_window="yes"),
             ["field `use_sliding_window` must be true or false"])
    cfg_case("model_type_mixtral", "mistral", lambda c: c.update(model_type="mixtral"),
             ['model_type "mixtral" is not supported'])
    cfg_case("heads_not_divisible_by_kv", "mistral", lambda c: c.update(num_key_value_heads=3),
             ["num_attention_heads 4 is not divisible by num_key_value_heads 3"])


def fam_of(c):
    t = c.get("model_type", "gpt2")
    return t if t in REQUIRED else "gpt2"


# --- a draft model for speculative decoding (generate --draft) ---------------------

def setup_draft_cases():
    def draft(change, target="gpt2-tiny-a", source="gpt2-tiny-a", extra=()):
        def setup(x):
            t = x.model(target)
            d = x.model(source, sub="draft")
            change(x, d)
            return gen(t, "--draft", d, *extra)
        return setup

    def keep(x, d):
        pass

    def no_tokenizer(x, d):
        for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
            if os.path.exists(os.path.join(d, f)):
                os.unlink(os.path.join(d, f))

    case("draft_config_malformed", "draft", draft(lambda x, d: x.write(os.path.join(d, "config.json"), b'{"n_layer": 2,')), 1,
         ["draft/config.json", "not valid JSON"])
    case("draft_weights_truncated", "draft",
         draft(lambda x, d: x.write(os.path.join(d, "model.safetensors"), open(os.path.join(d, "model.safetensors"), "rb").read()[:5000])),
         1, ["draft/model.safetensors"])
    case("draft_is_a_file", "draft", lambda x: gen(x.model(), "--draft", x.write(x.p("file"), b"x")), 1,
         ["--draft", "is a file, not a folder"])
    case("draft_other_tokenizer", "draft", draft(keep, source="gpt2-tiny-b"), 1, ["the draft must share the model's tokenizer"])
    # Without a tokenizer, the vocabulary decides: a draft reading every id the tokenizer has runs;
    # one reading fewer is refused.
    case("draft_without_tokenizer_wider_ok", "draft", draft(no_tokenizer, source="gpt2-tiny-b"), 0, [])
    case("draft_without_tokenizer_narrower", "draft", draft(no_tokenizer, target="gpt2-tiny-b"), 1,
         ["more than the draft's vocabulary of 301 ids", "share a tokenizer"])
    case("draft_speculate_huge", "draft", draft(keep, extra=("--speculate", "99999999999999999999")), 1, ["--speculate"])
    case("draft_speculate_text", "draft", draft(keep, extra=("--speculate", "four")), 1, ["--speculate"])
    def nan_draft(x):  # the draft runs from the second new token on
        t, d = x.model(), x.model(sub="draft")
        x.st(d, lambda h, data: st_join(h, b"\xff\xff\xff\x7f" * (len(data) // 4)), seed=False)
        return ["generate", t, "--prompt", "Hi", "--threads", "1", "--max-new-tokens", "6", "--draft", d]
    case("draft_nan_weights", "draft", nan_draft, 1, ["the draft's logits at position", "are not finite"])


# --- generation_config.json (its eos_token_id: where generation stops) ------------

def setup_generation_config_cases():
    def write(text, model="gpt2-tiny-a"):
        def setup(x):
            d = x.model(model)
            x.write(os.path.join(d, "generation_config.json"), text, seed="json")
            return gen(d)
        return setup
    case("generation_config_malformed", "generation_config",
         write(b'{"max_new_tokens": -1, "eos_token_id": "x", "do_sample": ['), 1, ["generation_config.json", "not valid JSON"])
    case("generation_config_eos_string", "generation_config", write(b'{"eos_token_id": "x"}'), 1,
         ["generation_config.json: field `eos_token_id` must be a token id below vocab_size"])
    case("generation_config_eos_outside", "generation_config", write(b'{"eos_token_id": [0, 1000000]}'), 1,
         ["generation_config.json: field `eos_token_id`", "or a list of them, got 1000000 (entry 1)"])
    case("generation_config_eos_empty_list", "generation_config", write(b'{"eos_token_id": []}'), 1,
         ["generation_config.json: field `eos_token_id`"])
    case("generation_config_not_object", "generation_config", write(b'[1, 2]'), 1, ["generation_config.json: not a JSON object"])
    case("generation_config_other_fields_ignored", "generation_config",
         write(b'{"max_new_tokens": -1, "do_sample": "maybe", "eos_token_id": null}'), 0, [])
    case("generation_config_eos_list_ok", "generation_config", write(b'{"eos_token_id": [0, 2, 5]}', "llama-tiny-gqa"), 0, [])

    def fifo(x):
        d = x.model("llama-tiny-gqa")
        x.fifo(os.path.join(d, "generation_config.json"))
        return gen(d)
    case("generation_config_fifo", "generation_config", fifo, 1, ["generation_config.json", "is a FIFO, not a regular file"])

    # A decoder folder's tokenizer_config.json: its bos/eos tokens and add_bos_token / add_eos_token.
    def tok_config(text):
        def setup(x):
            d = x.model()
            x.write(os.path.join(d, "tokenizer_config.json"), text, seed="json")
            return gen(d)
        return setup
    case("decoder_tokenizer_config_malformed", "generation_config", tok_config(b'{"add_bos_token": tr'), 1,
         ["tokenizer_config.json", "not valid JSON"])
    case("decoder_tokenizer_config_add_bos_string", "generation_config", tok_config(b'{"add_bos_token": "yes"}'), 1,
         ["tokenizer_config.json: `add_bos_token` is not true or false"])
    case("decoder_tokenizer_config_bos_unknown", "generation_config",
         tok_config(b'{"add_bos_token": true, "bos_token": "<nope>"}'), 1,
         ['tokenizer_config.json: the bos_token "<nope>" is not in the tokenizer\'s vocabulary'])
    case("decoder_tokenizer_config_add_eos_without_token", "generation_config", tok_config(b'{"add_eos_token": true}'), 1,
         ["tokenizer_config.json: `add_eos_token` is set but `eos_token` names no token"])
    case("decoder_tokenizer_config_add_bos_ok", "generation_config",
         tok_config(b'{"add_bos_token": true, "bos_token": {"content": "<|endoftext|>"}}'), 0, [])


# --- tokenizers ----------------------------------------------------------------

def tok_case(name, change, words, rc=1, seed=True, model="gpt2-tiny-a"):
    def setup(x):
        return gen(x.tok(x.model(model), change, seed=seed))
    case("tokenizer_json_" + name, "tokenizer", setup, rc, words)


def vm_case(name, change, words, rc=1, seed=True):
    def setup(x):
        return gen(x.vm(x.model(), change, seed=seed))
    case("tokenizer_vocab_merges_" + name, "tokenizer", setup, rc, words)


def model_update(**kw):
    return lambda t: t["model"].update(kw)


def a_token(t, i=0):
    """A token of the vocabulary that no merge uses, and its id (the i-th from the end)."""
    used = set()
    for m in t["model"]["merges"]:
        pair = m.split(" ") if isinstance(m, str) else m
        used.update(pair)
        used.add("".join(pair))
    used.update(a["content"] for a in t.get("added_tokens") or [])
    free = sorted((v, k) for k, v in t["model"]["vocab"].items() if k not in used)
    return free[-1 - i][1], free[-1 - i][0]


def setup_tokenizer_cases():
    def small(x, vocab_merges=False):  # the seeds' small tokenizers work (so that their mutations reach the checks)
        d = x.model()
        if vocab_merges:
            os.unlink(os.path.join(d, "tokenizer.json"))
            v, m = small_vocab_merges()
            x.write(os.path.join(d, "vocab.json"), dumps(v))
            x.write(os.path.join(d, "merges.txt"), m.encode())
        else:
            x.write(os.path.join(d, "tokenizer.json"), dumps(small_tokenizer()))
        return ["generate", d, "--max-new-tokens", "2", "--prompt", "ab he"]
    case("tokenizer_json_small_ok", "tokenizer", small, 0, [])

    def byte_missing(x):  # a prompt byte the small vocabulary cannot spell, and no unk_token
        return small(x)[:-1] + ["Hi"]
    case("tokenizer_json_byte_not_in_vocab", "tokenizer", byte_missing, 1,
         ["tokenizer.json: the vocabulary has no token for the byte 0x48"])
    case("tokenizer_vocab_merges_small_ok", "tokenizer", lambda x: small(x, True), 0, [])
    tok_case("not_json", lambda t: b'{"model": {"type": "BPE"', ["tokenizer.json: not valid JSON"])
    tok_case("not_object", lambda t: b'"BPE"', ["tokenizer.json: not a JSON object"])
    tok_case("deep_1e5", lambda t: b'{"model":' + deep(100000) + b"}", ["tokenizer.json", "nested deeper than 64 levels"],
             seed=False)
    tok_case("deep_added_tokens", lambda t: t.update(added_tokens=json.loads(deep(80))),
             ["tokenizer.json", "nested deeper than 64 levels"])

    def dup_vocab(t):
        text = dumps(t).decode()
        tok, tid = a_token(t)
        key = json.dumps(tok, ensure_ascii=False) + ":"
        return text.replace('"vocab":{' if '"vocab":{' in text else '"vocab": {',
                            ('"vocab": {' + key + str(tid) + ","), 1).encode()
    tok_case("duplicate_vocab_key", dup_vocab, ["appears twice in one object", "/model/vocab/"])
    tok_case("model_wordpiece", model_update(type="WordPiece"), ['the model is "WordPiece", not BPE'])
    tok_case("model_unigram", lambda t: t.update(model={"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0}),
             ['the model is "Unigram", not BPE'])
    tok_case("model_type_number", model_update(type=1), ["the model is of no type, not BPE"])
    tok_case("model_missing", lambda t: t.pop("model") and None, ['tokenizer.json: no "model"'])
    tok_case("model_not_object", lambda t: t.update(model="BPE"), ['"model" is not an object'])
    tok_case("bpe_dropout", model_update(dropout=0.1), ["the model has BPE dropout (0.1)"])
    tok_case("bpe_dropout_string", model_update(dropout="0.1"), ["the model has BPE dropout"])
    tok_case("continuing_subword_prefix", model_update(continuing_subword_prefix="##"),
             ["the model has a continuing_subword_prefix"])
    tok_case("end_of_word_suffix", model_update(end_of_word_suffix="</w>"), ["the model has a end_of_word_suffix"])
    tok_case("byte_fallback", model_update(byte_fallback=True), ["the model has byte_fallback"])
    tok_case("byte_fallback_string", model_update(byte_fallback="yes"), ["the model's `byte_fallback` is not true or false"])
    tok_case("unk_token_number", model_update(unk_token=5), ["the model's unk_token is not a string"])
    tok_case("pre_tokenizer_llama3_split", lambda t: t.update(pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}),
        ["the pre-tokenizer Split's pattern", "is not supported (only GPT-2's and Llama 3's patterns are)"])
    tok_case("pre_tokenizer_split", lambda t: t.update(pre_tokenizer={"type": "Split", "pattern": {"String": " "},
                                                                     "behavior": "Removed", "invert": False}),
             ["the pre-tokenizer is Split, which is not supported"])
    tok_case("pre_tokenizer_metaspace_scheme", lambda t: t.update(pre_tokenizer={"type": "Metaspace", "replacement": "\u2581",
                                                                                "prepend_scheme": "sometimes", "split": False}),
             ['prepend_scheme is "sometimes", not "always", "first" or "never"'])
    tok_case("pre_tokenizer_metaspace_empty", lambda t: t.update(pre_tokenizer={"type": "Metaspace", "replacement": ""}),
             ["the pre-tokenizer Metaspace's replacement is empty"])
    tok_case("pre_tokenizer_no_type", lambda t: t.update(pre_tokenizer={"typ": "ByteLevel"}),
             ["the pre-tokenizer is (no type), which is not supported"])
    tok_case("pre_tokenizer_flag_string", lambda t: t["pre_tokenizer"].update(add_prefix_space="no"),
             ["the pre-tokenizer's `add_prefix_space` is not true or false"])
    tok_case("normalizer_nfc", lambda t: t.update(normalizer={"type": "NFC"}), ["the normalizer NFC is not supported"])
    tok_case("normalizer_not_object", lambda t: t.update(normalizer=3), ["the normalizer (not an object) is not supported"])
    tok_case("decoder_wordpiece", lambda t: t.update(decoder={"type": "WordPiece", "prefix": "##"}),
             ["the decoder WordPiece is not supported"])
    tok_case("decoder_missing", lambda t: t.update(decoder=None), ["the decoder is missing"])
    tok_case("decoder_strip_huge", lambda t: t.update(decoder={"type": "Strip", "content": " ", "start": 10**12, "stop": 0}),
             ["the decoder Strip's `start` is not a count from 0 to 1024"])
    tok_case("decoder_replace_regex", lambda t: t.update(decoder={"type": "Replace", "pattern": {"Regex": " +"}, "content": " "}),
             ["replaces a Regex pattern, which is not supported"])
    tok_case("normalizer_sequence_lowercase", lambda t: t.update(normalizer={"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"}, {"type": "Lowercase"}]}), ["the normalizer Lowercase is not supported"])
    tok_case("normalizer_prepend_number", lambda t: t.update(normalizer={"type": "Prepend", "prepend": 5}),
             ["the normalizer Prepend has no string `prepend`"])
    tok_case("merge_one_token", lambda t: t["model"]["merges"].insert(0, "h"), ["merge 0 is not two tokens separated by one space"])
    tok_case("merge_three_tokens", lambda t: t["model"]["merges"].insert(1, "h e l"),
             ["merge 1 is not two tokens separated by one space"])
    tok_case("merge_number", lambda t: t["model"]["merges"].insert(0, 17), ["merge 0 is neither"])
    tok_case("merge_pair_of_numbers", lambda t: t["model"]["merges"].insert(0, [1, 2]), ["merge 0 is neither"])
    tok_case("merges_not_array", model_update(merges="h e"), ["the model's merges are not an array"])
    tok_case("merges_missing", lambda t: t["model"].pop("merges") and None, ["the model has no merges"])
    tok_case("merge_token_unknown", lambda t: t["model"]["merges"].insert(0, "zzq h"),
             ['the merge\'s token "zzq" is not in the vocabulary'])
    tok_case("merge_result_unknown", lambda t: t["model"]["merges"].insert(0, "b b"),
             ['the merge\'s result "bb" is not in the vocabulary'])
    tok_case("vocab_missing", lambda t: t["model"].pop("vocab") and None, ["the model has no vocab"])
    tok_case("vocab_not_object", model_update(vocab=["a", "b"]), ["the model's vocab is not a JSON object of token -> id"])
    tok_case("vocab_id_string", lambda t: t["model"]["vocab"].update({a_token(t)[0]: "7"}), ["is not an integer"])
    tok_case("vocab_id_negative", lambda t: t["model"]["vocab"].update({a_token(t)[0]: -1}), ["is -1, outside 0.."])
    tok_case("vocab_id_2_40", lambda t: t["model"]["vocab"].update({a_token(t)[0]: 2 ** 40}), ["outside 0.."])
    tok_case("vocab_id_2_64", lambda t: t["model"]["vocab"].update({a_token(t)[0]: 2 ** 64 - 1}), ["outside 0.."])

    def hole(t):
        tok, tid = a_token(t, 3)
        del t["model"]["vocab"][tok]
    tok_case("vocab_ids_with_hole", hole, ["without gaps"])

    def dup_id(t):
        tok, tid = a_token(t)
        tok2, _ = a_token(t, 1)
        t["model"]["vocab"][tok2] = tid
    tok_case("vocab_two_tokens_one_id", dup_id, ["both have id"])
    tok_case("added_tokens_not_array", lambda t: t.update(added_tokens={"id": 0}), ["added_tokens is not an array"])
    tok_case("added_token_not_object", lambda t: t["added_tokens"].append("<pad>"), ["is not an object"])
    tok_case("added_token_no_content", lambda t: t["added_tokens"].append({"id": 5}), ["has no content string"])
    tok_case("added_token_id_negative", lambda t: t["added_tokens"].append({"id": -1, "content": "<x>"}),
             ["added token 1 has no id in 0.."])
    tok_case("added_token_id_2_40", lambda t: t["added_tokens"].append({"id": 2 ** 40, "content": "<x>"}),
             ["added token 1 has no id in 0.."])
    tok_case("added_token_id_string", lambda t: t["added_tokens"].append({"id": "3", "content": "<x>"}),
             ["added token 1 has no id in 0.."])
    tok_case("added_token_id_far", lambda t: t["added_tokens"].append({"id": 100000, "content": "<x>"}),
             ["has id 100000", "without gaps"])
    tok_case("added_token_id_conflict", lambda t: t["added_tokens"].append({"id": 5, "content": t["added_tokens"][0]["content"]}),
             ["but the vocabulary gives it"])
    tok_case("added_token_empty", lambda t: t["added_tokens"].append({"id": len(t["model"]["vocab"]), "content": ""}),
             ["is empty"])
    tok_case("added_token_flag_string", lambda t: t["added_tokens"][0].update(lstrip="no"), ["`lstrip` is not true or false"])

    def more_ids(t):
        n = len(t["model"]["vocab"])
        t["added_tokens"] += [{"id": n, "content": "<extra0>", "special": True}, {"id": n + 1, "content": "<extra1>"}]
    tok_case("more_ids_than_model", more_ids, ["vocab_size is 301 but the tokenizer has 303 tokens"], seed=False)

    def fewer_ids(t):  # the model's vocabulary padded past the tokenizer's (GPT-J, OPT): those ids are never chosen
        vocab = t["model"]["vocab"]
        last = max(vocab, key=vocab.get)
        t["model"]["merges"] = [m for m in t["model"]["merges"] if last != "".join(m.split(" ") if isinstance(m, str) else m)]
        del vocab[last]
    tok_case("fewer_ids_than_model_ok", fewer_ids, ["the model has 301 token ids, its tokenizer 300; the 1 without text are never generated"],
             rc=0, seed=False)

    def special(kind):
        def setup(x):
            d = x.model()
            f = os.path.join(d, "tokenizer.json")
            if kind == "fifo":
                x.fifo(f)
            elif kind == "dev_zero":
                x.symlink(f, "/dev/zero")
            elif kind == "dir":
                x.directory(f)
            elif kind == "secret":
                x.symlink(f, x.secret())
            elif kind == "dangling":
                x.symlink(f, x.p("nowhere.json"))
            elif kind == "huge":
                x.sparse(f, (512 << 20) + 1, b"{")
            elif kind == "none":
                for n in ("tokenizer.json", "vocab.json", "merges.txt"):
                    os.unlink(os.path.join(d, n))
            elif kind == "merges_fifo":
                os.unlink(f)
                x.fifo(os.path.join(d, "merges.txt"))
            elif kind == "vocab_dev_zero":
                os.unlink(f)
                x.symlink(os.path.join(d, "vocab.json"), "/dev/zero")
            elif kind == "merges_secret":
                os.unlink(f)
                x.symlink(os.path.join(d, "merges.txt"), x.secret())
            elif kind == "vocab_secret":
                os.unlink(f)
                x.symlink(os.path.join(d, "vocab.json"), x.secret())
            elif kind == "no_merges":
                os.unlink(f)
                os.unlink(os.path.join(d, "merges.txt"))
            elif kind == "no_vocab":
                os.unlink(f)
                os.unlink(os.path.join(d, "vocab.json"))
            elif kind == "vm_ok":
                os.unlink(f)
            return gen(d)
        return setup
    case("tokenizer_json_fifo", "tokenizer", special("fifo"), 1, ["tokenizer.json", "is a FIFO"])
    case("tokenizer_json_dev_zero", "tokenizer", special("dev_zero"), 1, ["tokenizer.json", "is a character device"])
    case("tokenizer_json_directory", "tokenizer", special("dir"), 1, ["tokenizer.json", "is a directory"])
    case("tokenizer_json_symlink_secret", "tokenizer", special("secret"), 1, ["tokenizer.json: not valid JSON"])
    case("tokenizer_json_dangling_symlink", "tokenizer", special("dangling"), 1, ["tokenizer.json", "no such file"])
    case("tokenizer_json_huge", "tokenizer", special("huge"), 1, ["tokenizer.json", "more than the 536870912"])
    case("tokenizer_none", "tokenizer", special("none"), 1, ["no tokenizer (neither tokenizer.json nor vocab.json + merges.txt)"])
    case("tokenizer_vocab_merges_ok", "tokenizer", special("vm_ok"), 0, [])
    case("tokenizer_vocab_without_merges", "tokenizer", special("no_merges"), 1, ["vocab.json without merges.txt"])
    case("tokenizer_merges_without_vocab", "tokenizer", special("no_vocab"), 1, ["merges.txt without vocab.json"])
    case("tokenizer_merges_fifo", "tokenizer", special("merges_fifo"), 1, ["merges.txt", "is a FIFO"])
    case("tokenizer_vocab_dev_zero", "tokenizer", special("vocab_dev_zero"), 1, ["vocab.json", "is a character device"])
    case("tokenizer_vocab_symlink_secret", "tokenizer", special("vocab_secret"), 1, ["vocab.json: not valid JSON"])
    case("tokenizer_merges_symlink_secret", "tokenizer", special("merges_secret"), 1, ["merges.txt: line 1 is not a merge"])

    vm_case("merge_line_one_token", lambda v, m: (dumps(v), (m + "abc\n").encode()), ["is not a merge (two tokens separated"])
    vm_case("merge_line_three_tokens", lambda v, m: (dumps(v), (m + "a b c\n").encode()), ["is not a merge"])
    vm_case("merge_line_leading_space", lambda v, m: (dumps(v), (m + " a\n").encode()), ["is not a merge"])
    vm_case("merge_line_binary", lambda v, m: (dumps(v), m.encode() + b"\xff\x00 \x1b[2J\n"), ["is not in the vocabulary"])
    vm_case("merge_token_unknown", lambda v, m: (dumps(v), (m + "zzq h\n").encode()),
            ['the merge\'s token "zzq" is not in the vocabulary'])
    vm_case("merge_result_unknown", lambda v, m: (dumps(v), (m + "b b\n").encode()),
            ['the merge\'s result "bb" is not in the vocabulary'])
    vm_case("vocab_not_json", lambda v, m: (b'{"a": 0,', m.encode()), ["vocab.json: not valid JSON"])
    vm_case("vocab_array", lambda v, m: (b'["a", "b"]', m.encode()), ["vocab.json: the file is not a JSON object of token -> id"])
    vm_case("vocab_deep", lambda v, m: (deep(500), m.encode()), ["vocab.json", "nested deeper than 64 levels"])
    vm_case("vocab_duplicate_key", lambda v, m: (with_duplicate_key(v, "a"), m.encode()), ['key "a" appears twice'])
    vm_case("vocab_id_float", lambda v, m: (dumps(dict(v, a=1.5)), m.encode()), ['the id of token "a" is not an integer'])
    vm_case("vocab_hole", lambda v, m: (dumps({k: (i if i < 1 else i + 1) for k, i in v.items()}), m.encode()),
            ["without gaps"])


# --- pre-sharded folders ---------------------------------------------------------

def setup_presharded_cases():
    def ps(kind, tp=2, cmd="generate", extra=()):
        def setup(x):
            d = x.presharded()
            r0, r1 = os.path.join(d, "model.tp2-rank0.safetensors"), os.path.join(d, "model.tp2-rank1.safetensors")
            if kind == "missing_rank1":
                os.unlink(r1)
            elif kind == "meta_degree":
                x.st(d, lambda h, data: st_join(dict(h, __metadata__=dict(h["__metadata__"], **{"scribe.tp_degree": "4"})), data),
                     file="model.tp2-rank0.safetensors", seed=False)
            elif kind == "meta_rank":
                x.st(d, lambda h, data: st_join(dict(h, __metadata__=dict(h["__metadata__"], **{"scribe.rank": "1"})), data),
                     file="model.tp2-rank0.safetensors", seed=False)
            elif kind == "meta_none":
                x.st(d, lambda h, data: st_join({k: v for k, v in h.items() if k != "__metadata__"}, data),
                     file="model.tp2-rank1.safetensors", seed=False)
            elif kind == "meta_escape":
                x.st(d, lambda h, data: st_join(dict(h, __metadata__=dict(h["__metadata__"], **{"scribe.rank": "\u001b[2J"})), data),
                     file="model.tp2-rank1.safetensors", seed=False)
            elif kind == "wrong_shape":
                def corrupt(h, data):
                    h["wte.weight"]["shape"] = h["wte.weight"]["shape"][::-1]
                    return st_join(h, data)
                x.st(d, corrupt, file="model.tp2-rank1.safetensors", seed=False)
            elif kind == "unsharded_tensor":  # rank 0 given the whole of a split weight
                def corrupt(h, data):
                    with open(os.path.join(x.orig(), "model.safetensors"), "rb") as f:
                        fh, fd = st_split(f.read())
                    b, e = fh["transformer.h.0.mlp.c_fc.weight"]["data_offsets"]
                    return st_rebuild(h, data, drop=["h.0.mlp.c_fc.weight"],
                                      add=[("h.0.mlp.c_fc.weight", "F32", fh["transformer.h.0.mlp.c_fc.weight"]["shape"], fd[b:e])])
                x.st(d, corrupt, file="model.tp2-rank0.safetensors", seed=False)
            elif kind == "extra_tensor":
                x.st(d, lambda h, data: st_rebuild(h, data, add=[("h.0.attn.extra", "F32", [4], b"\0" * 16)]),
                     file="model.tp2-rank0.safetensors", seed=False)
            elif kind == "missing_tensor":
                x.st(d, lambda h, data: st_rebuild(h, data, drop=["ln_f.weight"]), file="model.tp2-rank1.safetensors",
                     seed=False)
            elif kind == "rank1_fifo":
                x.fifo(r1)
            elif kind == "rank0_dir":
                x.directory(r0)
            elif kind == "rank1_truncated":
                with open(r1, "rb") as f:
                    b = f.read()
                x.write(r1, b[:len(b) // 2])
            elif kind == "config_layers":
                x.config(d, lambda c: c.update(n_layer=3), seed=False)
            elif kind == "bad_digits":
                os.rename(r0, os.path.join(d, "model.tp9999999-rank0.safetensors"))
                os.unlink(r1)
            return [cmd, d] + (GEN if cmd == "generate" else []) + list(extra) + (["--tp", str(tp)] if tp else [])
        return setup
    P = "presharded"
    case("presharded_valid_ok", P, ps("none"), 0, [])
    case("presharded_export_ok", P, ps("none", cmd="export-hlo", extra=["--out", "hlo", "--buckets", "8", "--capacity", "16"]), 0, [])
    case("presharded_at_tp4", P, ps("none", tp=4), 1,
         ["pre-sharded for tensor-parallel degree 2", "give --tp 2 (this run asked for 4)"])
    case("presharded_at_tp1", P, ps("none", tp=1), 1, ["pre-sharded for tensor-parallel degree 2", "give --tp 2"])
    case("presharded_no_tp", P, ps("none", tp=None), 1, ["pre-sharded for tensor-parallel degree 2", "give --tp 2"])
    case("presharded_inspect_tp4", P, ps("none", tp=4, cmd="inspect"), 1, ["pre-sharded for tensor-parallel degree 2"])
    case("presharded_export_tp1", P, ps("none", tp=1, cmd="export-hlo"), 1, ["pre-sharded for tensor-parallel degree 2"])
    case("presharded_missing_rank1", P, ps("missing_rank1"), 1,
         ["pre-sharded for 2 ranks, but model.tp2-rank1.safetensors (rank 1) is missing"])
    case("presharded_meta_degree", P, ps("meta_degree"), 1,
         ["model.tp2-rank0.safetensors", "__metadata__ says tp_degree 4, rank 0; this is rank 0 of 2"])
    case("presharded_meta_rank", P, ps("meta_rank"), 1, ["__metadata__ says tp_degree 2, rank 1; this is rank 0 of 2"])
    case("presharded_meta_missing", P, ps("meta_none"), 1, ["__metadata__ says tp_degree (none), rank (none)"])
    case("presharded_meta_escape", P, ps("meta_escape"), 1, ["__metadata__ says tp_degree 2, rank \\x1b[2J"])
    case("presharded_wrong_shape", P, ps("wrong_shape"), 1, ["model.tp2-rank1.safetensors", "wte.weight", "but rank 1's part needs"])
    case("presharded_unsharded_tensor", P, ps("unsharded_tensor"), 1, ["h.0.mlp.c_fc.weight", "but rank 0's part needs [36, 72]"])
    case("presharded_extra_tensor", P, ps("extra_tensor"), 1, ["model.tp2-rank0.safetensors", "unexpected tensor `h.0.attn.extra`"])
    case("presharded_missing_tensor", P, ps("missing_tensor"), 1, ["tensor `ln_f.weight` is missing (rank 1"])
    case("presharded_rank1_fifo", P, ps("rank1_fifo"), 1, ["model.tp2-rank1.safetensors", "is a FIFO"])
    case("presharded_rank0_directory", P, ps("rank0_dir"), 1, ["model.tp2-rank0.safetensors", "is a directory"])
    case("presharded_rank1_truncated", P, ps("rank1_truncated"), 1, ["model.tp2-rank1.safetensors", "outside the data section"])
    case("presharded_config_changed", P, ps("config_layers"), 1, ["tensor `h.2.ln_1.weight` is missing (rank 0"])
    case("presharded_bad_degree_digits", P, ps("bad_digits"), 1, ["no model.safetensors or model.safetensors.index.json"])

    # Pre-sharded in q8 (Mistral-tiny: q/k/v, gate and up in 8-bit blocks): each
    # rank file's I8 blocks and F16 scales checked, the format named in metadata.
    def q8(kind, extra=(), fmt="q8"):
        def setup(x):
            d = x.presharded(name="mistral-tiny", extra=["--dtype", fmt])
            r1 = "model.tp2-rank1.safetensors"
            w = "layers.0.mlp.up_proj.weight"
            if kind == "scale_nan":
                def corrupt(h, data):
                    b = h[w + ".scale"]["data_offsets"][0] + 2 * 5  # block 5
                    return st_join(h, data[:b] + b"\x00\x7e" + data[b + 2:])
                x.st(d, corrupt, file=r1, seed=False)
            elif kind == "scale_inf":
                def corrupt(h, data):
                    b = h[w + ".scale"]["data_offsets"][0]
                    return st_join(h, data[:b] + b"\x00\xfc" + data[b + 2:])
                x.st(d, corrupt, file=r1, seed=False)
            elif kind == "scale_missing":
                x.st(d, lambda h, data: st_rebuild(h, data, drop=[w + ".scale"]), file=r1, seed=False)
            elif kind in ("q_as_u8", "q_as_i8"):
                def corrupt(h, data):
                    h[w]["dtype"] = "U8" if kind == "q_as_u8" else "I8"
                    return st_join(h, data)
                x.st(d, corrupt, file=r1, seed=False)
            elif kind == "q_flat":
                def corrupt(h, data):
                    n = 1
                    for e in h[w]["shape"]:
                        n *= e
                    h[w]["shape"] = [n]
                    return st_join(h, data)
                x.st(d, corrupt, file=r1, seed=False)
            elif kind in ("format_q4", "format_q5"):
                x.st(d, lambda h, data: st_join(dict(h, __metadata__=dict(h["__metadata__"], **{"scribe.weights": kind[-2:]})), data),
                     file=r1, seed=False)
            elif kind == "format_dropped":
                x.st(d, lambda h, data: st_join(dict(h, __metadata__={k: v for k, v in h["__metadata__"].items()
                                                                      if k != "scribe.weights"}), data), file=r1, seed=False)
            return ["generate", d] + GEN + list(extra) + ["--tp", "2"]
        return setup
    case("presharded_q8_ok", P, q8("none"), 0, [])
    case("presharded_q8_as_bf16", P, q8("none", ["--dtype", "bf16"]), 1,
         ["holds q8 weights (written by `scribe shard --dtype q8`), so it runs in q8 only: give --dtype q8"])
    case("presharded_q8_scale_nan", P, q8("scale_nan"), 1,
         ["model.tp2-rank1.safetensors: tensor `layers.0.mlp.up_proj.weight.scale` holds a NaN or an infinity (block 5)"])
    case("presharded_q8_scale_inf", P, q8("scale_inf"), 1, ["`layers.0.mlp.up_proj.weight.scale` holds a NaN or an infinity (block 0)"])
    case("presharded_q8_scale_missing", P, q8("scale_missing"), 1,
         ["tensor `layers.0.mlp.up_proj.weight.scale` is missing (rank 1 of a LLaMA with 2 layers, in q8, needs it)"])
    case("presharded_q8_q_as_u8", P, q8("q_as_u8"), 1, ["tensor `layers.0.mlp.up_proj.weight` is u8[", "in q8 needs s8["])
    case("presharded_q8_q_flat", P, q8("q_flat"), 1, ["tensor `layers.0.mlp.up_proj.weight` is s8[", "in q8 needs s8["])
    case("presharded_q8_format_q4", P, q8("format_q4"), 1, ["model.tp2-rank1.safetensors: q4 weights, but rank 0's file holds q8 ones"])
    case("presharded_q8_format_q5", P, q8("format_q5"), 1, ['__metadata__ says scribe.weights "q5"; Scribe knows "q8" and "q4"'])
    case("presharded_q8_format_dropped", P, q8("format_dropped"), 1,
         ["model.tp2-rank1.safetensors: float weights, but rank 0's file holds q8 ones"])
    # Pre-sharded in q4: U8 blocks of 16 bytes.
    case("presharded_q4_ok", P, q8("none", fmt="q4"), 0, [])
    case("presharded_q4_as_q8", P, q8("none", ["--dtype", "q8"], fmt="q4"), 1,
         ["holds q4 weights (written by `scribe shard --dtype q4`), so it runs in q4 only: give --dtype q4"])
    case("presharded_q4_q_as_i8", P, q8("q_as_i8", fmt="q4"), 1, ["tensor `layers.0.mlp.up_proj.weight` is s8[", "in q4 needs u8["])
    case("presharded_q4_q_flat", P, q8("q_flat", fmt="q4"), 1, ["tensor `layers.0.mlp.up_proj.weight` is u8[", "in q4 needs u8["])
    case("presharded_q4_scale_nan", P, q8("scale_nan", fmt="q4"), 1,
         ["model.tp2-rank1.safetensors: tensor `layers.0.mlp.up_proj.weight.scale` holds a NaN or an infinity (block 5)"])
    case("presharded_q4_format_dropped", P, q8("format_dropped", fmt="q4"), 1,
         ["model.tp2-rank1.safetensors: float weights, but rank 0's file holds q4 ones"])


# --- every flag of every command ---------------------------------------------------

# --- compiled artifacts (scribe compile) -------------------------------------------

def setup_artifact_cases():
    def art(kind, cmd="generate", extra=()):
        def setup(x):
            d = x.compiled()
            desc, packs = os.path.join(d, "artifact.json"), os.path.join(d, "packs.tp1-rank0.safetensors")

            def edit(**change):
                with open(desc) as f:
                    j = json.load(f)
                j.update(change)
                x.write(desc, json.dumps(j).encode())

            if kind == "not_json":
                x.write(desc, b'{"format": "scribe-artifact", "version": 1,')
            elif kind == "huge":
                x.write(desc, b"{" + b" " * (2 << 20) + b"}")
            elif kind == "array":
                x.write(desc, b"[1, 2, 3]")
            elif kind == "version_string":
                edit(version="1")
            elif kind == "version_later":
                edit(version=2)
            elif kind == "tp_float":
                edit(tp=1e30)
            elif kind == "tp_huge":
                edit(tp=4096)
            elif kind == "dtype_escape":
                edit(dtype="\u001b[2Jf32")
            elif kind == "buckets_many":
                edit(buckets=[8] * 5000)
            elif kind == "buckets_negative":
                edit(buckets=[-8, 16])
            elif kind == "family_other":
                edit(family="OPT")
            elif kind == "key_edited":
                edit(key="0" * 32)
            elif kind == "batch_edited":
                edit(batch=2)
            elif kind == "machine_other":
                # Another CPU's kernels than this one's (which the artifact names).
                with open(desc) as f:
                    here = json.load(f)["machine"]
                edit(machine="gemm avx2 6x16 kc 256; bf16 products in f32 panels" if "avx512" in here
                     else "gemm avx512 8x48 kc 256; bf16 products in bf16 pairs")
            elif kind == "desc_dir":
                x.special(desc, "directory")
            elif kind == "desc_fifo":
                x.special(desc, "fifo")
            elif kind == "config_edited":
                x.config(d, lambda c: c.update(layer_norm_epsilon=0.001), seed=False)
            elif kind == "packs_missing":
                os.unlink(packs)
            elif kind == "packs_fifo":
                x.special(packs, "fifo")
            elif kind == "packs_truncated":
                with open(packs, "rb") as f:
                    b = f.read()
                x.write(packs, b[:len(b) // 2])
            elif kind == "packs_meta_rank":
                x.st(d, lambda h, data: st_join(dict(h, __metadata__=dict(h["__metadata__"], **{"scribe.rank": "1"})), data),
                     file="packs.tp1-rank0.safetensors", seed=False)
            elif kind == "packs_meta_none":
                x.st(d, lambda h, data: st_join({k: v for k, v in h.items() if k != "__metadata__"}, data),
                     file="packs.tp1-rank0.safetensors", seed=False)
            elif kind in ("pack_short", "pack_reshaped"):
                def corrupt(h, data):  # the first F32 pack: one float short, or its shape claimed otherwise
                    name = next(n for n in st_tensors(h) if h[n]["dtype"] == "F32" and "@panels" in n)
                    b, e = h[name]["data_offsets"]
                    if kind == "pack_short":
                        return st_rebuild(h, data, drop=[name], add=[(name, "F32", [(e - b) // 4 - 1], data[b:e - 4])])
                    h[name]["shape"] = [2, (e - b) // 8]
                    return st_join(h, data)
                x.st(d, corrupt, file="packs.tp1-rank0.safetensors", seed=False)
            elif kind == "pack_rows_as_f32":  # a row pack's bytes claimed as another dtype
                def corrupt(h, data):
                    name = next(n for n in h if n != "__metadata__" and "@rows" in n)
                    h[name]["dtype"] = "I32"
                    return st_join(h, data)
                x.st(d, corrupt, file="packs.tp1-rank0.safetensors", seed=False)
            elif kind == "pack_unknown":  # a pack nothing asks for is never read
                x.st(d, lambda h, data: st_rebuild(h, data, add=[("os.system@rows.f32.k2s1.n2s2", "F32", [2, 2], b"\0" * 16)]),
                     file="packs.tp1-rank0.safetensors", seed=False)
            return [cmd, d] + (GEN if cmd == "generate" else []) + list(extra)
        return setup
    A = "artifact"
    case("artifact_valid_ok", A, art("none"), 0, [])
    case("artifact_not_json", A, art("not_json"), 1, ["artifact.json", "not valid JSON"])
    case("artifact_huge", A, art("huge"), 1, ["artifact.json", "the artifact's description"])
    case("artifact_array", A, art("array"), 1, ["artifact.json: not a Scribe artifact"])
    case("artifact_version_string", A, art("version_string"), 1,
         ['artifact format version "1", but this Scribe reads version 1 only', "scribe compile"])
    case("artifact_version_later", A, art("version_later"), 1, ["artifact format version 2", "compile the model again with this Scribe"])
    case("artifact_tp_float", A, art("tp_float"), 1, ['"tp" must be an integer'])
    case("artifact_tp_huge", A, art("tp_huge"), 1, ["tp degree 4096 does not divide"])
    case("artifact_dtype_escape", A, art("dtype_escape"), 1, ['"dtype" is "\\x1b[2Jf32", not f32, f16, bf16, q8 or q4'])
    case("artifact_buckets_many", A, art("buckets_many"), 1, ['"buckets" must be a list of at most 4096 lengths'])
    case("artifact_buckets_negative", A, art("buckets_negative"), 1, ['"buckets" holds -8, not a positive length'])
    case("artifact_family_other", A, art("family_other"), 1, ["compiled for a OPT model, but config.json is GPT-2's"])
    case("artifact_key_edited", A, art("key_edited"), 1, ["its key does not match config.json", "scribe compile"])
    case("artifact_batch_edited", A, art("batch_edited"), 1, ["its key does not match"])
    case("artifact_machine_other", A, art("machine_other"), 1, ["compiled for another CPU's kernels", "on this machine: scribe compile"])
    case("artifact_description_directory", A, art("desc_dir"), 1, ["artifact.json", "is a directory"])
    case("artifact_description_fifo", A, art("desc_fifo"), 1, ["artifact.json", "is a FIFO"])
    case("artifact_config_edited", A, art("config_edited"), 1, ["its key does not match config.json"])
    case("artifact_packs_missing", A, art("packs_missing"), 1, ["packs.tp1-rank0.safetensors is missing (rank 0's packs)", "scribe compile"])
    case("artifact_packs_fifo", A, art("packs_fifo"), 1, ["packs.tp1-rank0.safetensors", "is a FIFO"])
    case("artifact_packs_truncated", A, art("packs_truncated"), 1, ["packs.tp1-rank0.safetensors"])
    case("artifact_packs_meta_rank", A, art("packs_meta_rank"), 1, ["not the packs of rank 0 of 1"])
    case("artifact_packs_meta_none", A, art("packs_meta_none"), 1, ["not the packs of rank 0 of 1"])
    case("artifact_pack_short", A, art("pack_short"), 1, ["packs.tp1-rank0.safetensors: pack `", "bytes, but the packed form"])
    case("artifact_pack_reshaped", A, art("pack_reshaped"), 0, [])  # the bytes are the pack's whatever shape the header claims
    case("artifact_pack_rows_as_i32", A, art("pack_rows_as_f32"), 0, [])
    case("artifact_pack_unknown", A, art("pack_unknown"), 0, [])
    case("artifact_tp_flag_other", A, art("none", extra=["--tp", "2"]), 1, ["is compiled for --tp 1 --dtype f32, not --tp 2 --dtype f32"])
    case("artifact_compile_out_file", A, lambda x: ["compile", x.orig(), "--out", x.write(x.p("file"), b"x")], 1,
         ["is a file, not a folder"])
    case("artifact_compile_batch_zero", A, lambda x: ["compile", x.orig(), "--out", x.p("o"), "--batch", "0"], 1,
         ["--batch must be between 1 and 1024, not 0"])
    case("artifact_compile_into_model", A, lambda x: (lambda m: ["compile", m, "--out", m])(x.model()), 1,
         ["another folder than the model's"])


def setup_flag_cases():
    F = "flags"

    def run(*argv, model="gpt2-tiny-a"):
        def setup(x):
            return [a.replace("@M", x.orig(model)).replace("@W", x.root) for a in argv]
        return setup

    def g(name, extra, words, rc=1, model="gpt2-tiny-a", stdin=b"", base=None):
        argv = ["generate", "@M"] + (GEN if base is None else base) + list(extra)
        case("generate_" + name, F, run(*argv, model=model), rc, words, stdin=stdin)

    mnt = "--max-new-tokens must be between 1 and 2147483647"
    g("unknown_flag", ["--tempo", "3"], ["unknown option --tempo for `scribe generate`"])
    g("single_dash_flag", ["-t", "3"], ['unexpected argument "-t"'])
    g("extra_argument", ["another-model"], ['unexpected argument "another-model"'])
    g("greedy_with_value", ["--greedy", "3"], ['unexpected argument "3"'])
    g("missing_value", ["--max-new-tokens"], ["--max-new-tokens needs a value"], base=["--prompt", "Hi"])
    g("prompt_missing_value", ["--prompt"], ["--prompt needs a value"], base=[])
    g("max_new_tokens_word", ["--max-new-tokens", "lots"], ['--max-new-tokens takes an integer, not "lots"'])
    g("max_new_tokens_float", ["--max-new-tokens", "2.5"], ['--max-new-tokens takes an integer, not "2.5"'])
    g("max_new_tokens_space", ["--max-new-tokens", " 2"], ["--max-new-tokens takes an integer"])
    g("max_new_tokens_empty", ["--max-new-tokens", ""], ['--max-new-tokens takes an integer, not ""'])
    g("max_new_tokens_zero", ["--max-new-tokens", "0"], [mnt, "not 0"])
    g("max_new_tokens_negative", ["--max-new-tokens", "-5"], [mnt, "not -5"])
    g("max_new_tokens_huge", ["--max-new-tokens", "9223372036854775000"], [mnt])
    g("max_new_tokens_2_64", ["--max-new-tokens", "18446744073709551616"], [mnt])
    g("max_new_tokens_past_positions", ["--max-new-tokens", "100"],
      ["+ 100 new tokens exceeds the model's 64 positions; ask for at most"])
    for v, words in [("nan", "--temperature must be a number between 0 and 1e+06, not nan"),
                     ("inf", "--temperature must be a number between 0 and 1e+06, not inf"),
                     ("-1", "--temperature must be a number between 0 and 1e+06, not -1"),
                     ("1e30", "--temperature must be a number between 0 and 1e+06, not 1e30"),
                     ("warm", '--temperature takes a number, not "warm"'),
                     ("0x", '--temperature takes a number, not "0x"')]:
        g("temperature_" + v.replace("-", "minus_"), ["--temperature", v], [words])
    g("temperature_zero_ok", ["--temperature", "0"], [], rc=0)
    for v, words in [("nan", "--top-p must be a number between 0 and 1, not nan"),
                     ("1.5", "--top-p must be a number between 0 and 1, not 1.5"),
                     ("-0.5", "--top-p must be a number between 0 and 1, not -0.5"),
                     ("inf", "--top-p must be a number between 0 and 1, not inf")]:
        g("top_p_" + v.replace("-", "minus_").replace(".", "_"), ["--top-p", v], [words])
    g("top_p_zero", ["--top-p", "0"], ["--top-p must be above 0 (and at most 1), not 0"])
    g("top_k_negative", ["--top-k", "-1"], ["--top-k must be between 0 and 2147483647, not -1"])
    g("top_k_2_31", ["--top-k", "2147483648"], ["--top-k must be between 0 and 2147483647"])
    g("top_k_word", ["--top-k", "all"], ['--top-k takes an integer, not "all"'])
    g("seed_negative", ["--seed", "-1"], ["--seed must be between 0 and 9223372036854775807, not -1"])
    g("seed_2_64", ["--seed", "18446744073709551616"], ["--seed must be between 0 and 9223372036854775807"])
    g("seed_word", ["--seed", "lucky"], ['--seed takes an integer, not "lucky"'])
    g("dtype_f64", ["--dtype", "f64"], ['--dtype takes f32, f16, bf16, q8 or q4, not "f64"'])
    g("dtype_empty", ["--dtype", ""], ['--dtype takes f32, f16, bf16, q8 or q4, not ""'])
    g("dtype_bf16_ok", ["--dtype", "bf16"], [], rc=0)
    g("threads_minus_1", ["--threads", "-1"], ["--threads must be between 0 and 1024, not -1"])
    g("threads_2_63", ["--threads", "9223372036854775808"], ["--threads must be between 0 and 1024"])
    g("threads_huge", ["--threads", "100000"], ["--threads must be between 0 and 1024, not 100000"])
    g("threads_word", ["--threads", "many"], ['--threads takes an integer, not "many"'])
    for v, words in [("8,,16", '--buckets takes positive integers (below 2^31) separated by commas, not "8,,16"'),
                     ("0", '--buckets takes positive integers (below 2^31) separated by commas, not "0"'),
                     ("abc", '--buckets takes positive integers (below 2^31) separated by commas, not "abc"'),
                     ("-8", '--buckets takes positive integers'),
                     ("2147483648", "--buckets takes positive integers (below 2^31)"),
                     ("128", "bucket 128 must be between 1 and the model's"),
                     ("", "--buckets")]:
        g("buckets_" + (v.replace(",", "_").replace("-", "minus_") or "empty"), ["--buckets", v], [words])
    g("buckets_too_small_for_prompt", ["--buckets", "1"], ["longer than the largest prefill bucket"],
      base=["--max-new-tokens", "2", "--prompt", "Hello world"])
    g("tp_3", ["--tp", "3"], ["tp degree 3 does not divide n_head (4); degrees that do: 1, 2, 4"])
    g("threads_zero_ok", ["--threads", "0"], [], rc=0)
    g("tp_0", ["--tp", "0"], ["--tp must be between 1 and 1024, not 0"])
    g("tp_100000", ["--tp", "100000"], ["--tp must be between 1 and 1024, not 100000"])
    g("tp_minus_1", ["--tp", "-1"], ["--tp must be between 1 and 1024, not -1"])
    g("tp_2_ok", ["--tp", "2"], [], rc=0)
    g("collective_timeout_zero", ["--collective-timeout", "0"], ["--collective-timeout must be a number between 0.001 and 86400"])
    g("collective_timeout_nan", ["--collective-timeout", "nan"], ["--collective-timeout must be a number between"])
    g("collective_timeout_huge", ["--collective-timeout", "1e300"], ["--collective-timeout must be a number between"])
    g("collective_timeout_word", ["--collective-timeout", "soon"], ['--collective-timeout takes a number, not "soon"'])
    for v, words in [("1e30", "--memory-budget must be between 1 byte and 8E"),
                     ("nan", '--memory-budget takes a size in bytes, or with K, M or G (512M, 2G), not "nan"'),
                     ("inf", '--memory-budget takes a size in bytes'),
                     ("0", '--memory-budget takes a size in bytes'),
                     ("-5M", '--memory-budget takes a size in bytes'),
                     ("12Q", '--memory-budget takes a size in bytes'),
                     ("0.1", "--memory-budget must be between 1 byte"),
                     ("1", "memory: each of the 1 rank(s) would need"),
                     ("1K", "memory: each of the 1 rank(s) would need")]:
        g("memory_budget_" + v.replace("-", "minus_").replace(".", "_"), ["--memory-budget", v], [words])
    g("prompt_empty", [], ['the prompt "" encodes to no tokens'], base=["--max-new-tokens", "2", "--prompt", ""])
    g("prompt_too_long", [], ["tokens but the model has 64 positions"],
      base=["--max-new-tokens", "2", "--prompt", "word " * 80])
    g("prompt_invalid_utf8_ok", [], [], rc=0, base=["--max-new-tokens", "2", "--prompt", "\udcff\udcfe abc"])
    g("prompt_and_prompt_file", ["--prompt-file", "@W/p.txt"], ["give either --prompt or --prompt-file, not both"])
    g("batch_of_prompts_ok", ["--prompt", "The", "--prompt", "He"], [], rc=0)
    g("help_ok", ["--help"], [], rc=0)
    g("no_stop_quiet_greedy_ok", ["--no-stop", "--quiet", "--greedy"], [], rc=0)

    def pf(name, kind, rc=1, words=(), stdin=b""):
        def setup(x):
            f = x.p("prompt.txt")
            if kind == "missing":
                pass
            elif kind == "dir":
                x.directory(f)
            elif kind == "fifo":
                x.fifo(f)
            elif kind == "dev_zero":
                x.symlink(f, "/dev/zero")
            elif kind == "empty":
                x.write(f, b"")
            elif kind == "huge":
                x.sparse(f, (64 << 20) + 1, b"Hi")
            elif kind == "stdin":
                f = "-"
            elif kind == "long":  # longer than a command line may be (ARG_MAX), and than the model's positions
                x.write(f, b"word " * 600000)
            elif kind == "binary":
                x.write(f, b"\0\xff\xfe\x1b[2J text\n")
            return ["generate", x.orig(), "--max-new-tokens", "2", "--prompt-file", f]
        case("generate_prompt_file_" + name, F, setup, rc, words, stdin=stdin)
    pf("missing", "missing", words=["prompt.txt", "no such file"])
    pf("directory", "dir", words=["prompt.txt", "is a directory"])
    pf("fifo", "fifo", words=["prompt.txt", "is a FIFO"])
    pf("dev_zero", "dev_zero", words=["prompt.txt", "is a character device"])
    pf("empty", "empty", words=["encodes to no tokens"])
    pf("huge", "huge", words=["prompt.txt", "more than the 67108864"])
    pf("stdin_ok", "stdin", rc=0, stdin=b"Hello")
    pf("binary_ok", "binary", rc=0)
    pf("too_long", "long", words=["generate: prompt 0 has", "tokens but the model has 64 positions"])
    pf("stdin_empty", "stdin", words=["encodes to no tokens"], stdin=b"")

    # export-hlo
    def e(name, extra, words, rc=1, out=True):
        argv = ["export-hlo", "@M"] + (["--out", "@W/hlo"] if out else []) + list(extra)
        case("export_" + name, F, run(*argv), rc, words)
    e("ok", ["--buckets", "8,16", "--capacity", "32", "--batch", "2", "--all-logits", "--dtype", "bf16", "--tp", "2"], [], rc=0)
    e("help_ok", ["--help"], [], rc=0)
    e("unknown_flag", ["--prompt", "x"], ["unknown option --prompt for `scribe export-hlo`"])
    e("out_missing_value", ["--out"], ["--out needs a value"], out=False)
    e("buckets_double_comma", ["--buckets", "8,,16"], ['--buckets takes positive integers (below 2^31) separated by commas, not "8,,16"'])
    e("buckets_zero", ["--buckets", "0"], ["--buckets takes positive integers"])
    e("buckets_word", ["--buckets", "abc"], ['not "abc"'])
    e("buckets_past_capacity", ["--buckets", "32", "--capacity", "16"], ["bucket 32 is longer than the KV cache's 16 positions"])
    e("buckets_past_positions", ["--buckets", "128"], ["bucket 128 is longer than the KV cache's 64 positions"])
    e("batch_zero", ["--batch", "0"], ["--batch must be between 1 and 1024, not 0"])
    e("batch_negative", ["--batch", "-2"], ["--batch must be between 1 and 1024, not -2"])
    e("batch_2_62", ["--batch", "4611686018427387904"], ["--batch must be between 1 and 1024"])
    e("batch_2_31_minus_1", ["--batch", "2147483647"], ["--batch must be between 1 and 1024, not 2147483647"])
    e("batch_1024_over_budget", ["--batch", "1024", "--memory-budget", "1M"], ["memory:", "would need", "--batch 1024"])
    e("batch_word", ["--batch", "two"], ['--batch takes an integer, not "two"'])
    # A batch the memory plan allows (its KV cache fits the machine, or the budget given) must still not make a
    # decode graph of millions of instructions: refused naming --batch (or exported quickly).
    e("batch_100000", ["--batch", "100000", "--buckets", "8"], ["--batch"])
    e("batch_2_31_minus_1_budget_8E", ["--batch", "2147483647", "--memory-budget", "8000000000000000000", "--buckets", "8"],
      ["--batch"])
    e("capacity_zero", ["--capacity", "0"], ["--capacity must be between 1 and 64, not 0"])
    e("capacity_past_positions", ["--capacity", "65"], ["--capacity must be between 1 and 64, not 65"])
    e("capacity_huge", ["--capacity", "99999999999999999999"], ["--capacity must be between 1 and 64"])
    e("dtype_f64", ["--dtype", "f64"], ['--dtype takes f32, f16, bf16, q8 or q4, not "f64"'])
    e("tp_3", ["--tp", "3"], ["tp degree 3 does not divide n_head (4)"])
    e("tp_0", ["--tp", "0"], ["--tp must be between 1 and 1024, not 0"])
    e("tp_100000", ["--tp", "100000"], ["--tp must be between 1 and 1024, not 100000"])
    e("memory_budget_1", ["--memory-budget", "1"], ["memory:", "would need"])
    e("memory_budget_nan", ["--memory-budget", "nan"], ['--memory-budget takes a size in bytes'])
    e("memory_budget_1e30", ["--memory-budget", "1e30"], ["--memory-budget must be between 1 byte and 8E"])
    # The optimizer's flags (export-hlo --train --optimizer ...).
    t = ["--train", "--buckets", "8", "--schedule", "constant"]
    e("train_step_ok", t + ["--optimizer", "sgd", "--momentum", "0.9", "--nesterov", "--accumulate", "3"], [], rc=0)
    e("optimizer_without_train", ["--optimizer", "adamw"], ["make a training step: add --train"])
    e("optimizer_lamb", t + ["--optimizer", "lamb"], ['--optimizer takes adamw or sgd, not "lamb"'])
    e("optimizer_escape", t + ["--optimizer", "x\x1b[31m"], ["--optimizer takes adamw or sgd"])
    e("schedule_cyclic", ["--train", "--buckets", "8", "--schedule", "cyclic"], ['--schedule takes constant, linear or cosine, not "cyclic"'])
    e("schedule_linear_no_steps", ["--train", "--buckets", "8", "--lr", "1e-3"], ["give the run's length with --steps N"])
    for flag, v, words in [("lr", "nan", "--lr must be a number between 0 and"), ("lr", "-1", "--lr must be a number between 0 and"),
                           ("lr", "fast", '--lr takes a number, not "fast"'), ("clip", "inf", "--clip must be a number between 0 and"),
                           ("beta1", "1", "--beta1 must be a number between 0 and"), ("eps", "0", "--eps must be a number between"),
                           ("weight-decay", "-0.1", "--weight-decay must be a number between 0 and"),
                           ("warmup", "-1", "--warmup must be between 0 and 2147483647"),
                           ("steps", "0", "--steps must be between 1 and 2147483647"),
                           ("accumulate", "0", "--accumulate must be between 1 and"),
                           ("accumulate", "99999999999999999999", "--accumulate must be between 1 and")]:
        e("%s_%s" % (flag.replace("-", "_"), v.replace("-", "minus_").replace(".", "_")), t + ["--" + flag, v], [words])
    e("warmup_past_steps", ["--train", "--buckets", "8", "--warmup", "20", "--steps", "10"], ["--warmup 20 is longer than --steps 10"])
    e("momentum_with_adamw", t + ["--momentum", "0.9"], ["--momentum is SGD's; --optimizer is adamw"])
    e("beta2_with_sgd", t + ["--optimizer", "sgd", "--beta2", "0.9"], ["--beta2 is AdamW's; --optimizer is sgd"])
    e("dampening_2", t + ["--optimizer", "sgd", "--dampening", "2"], ["--dampening must be a number between 0 and 1"])
    e("nesterov_without_momentum", t + ["--optimizer", "sgd", "--nesterov"], ["Nesterov momentum needs a momentum > 0"])

    def out_onto(kind):
        def setup(x):
            f = x.p("taken")
            if kind == "file":
                x.write(f, b"not a folder")
                out = f
            elif kind == "under_file":
                x.write(f, b"not a folder")
                out = os.path.join(f, "hlo")
            elif kind == "dev_null":
                out = "/dev/null"
            return ["export-hlo", x.orig(), "--out", out, "--buckets", "8"]
        return setup
    case("export_out_existing_file", F, out_onto("file"), 1, ["--out", "taken"], not_words=["filesystem error"])
    case("export_out_under_a_file", F, out_onto("under_file"), 1, ["--out", "taken"], not_words=["filesystem error"])
    case("export_out_dev_null", F, out_onto("dev_null"), 1, ["--out", "/dev/null"], not_words=["filesystem error"])

    # inspect
    def i(name, extra, words, rc=1, model="gpt2-tiny-a"):
        case("inspect_" + name, F, run("inspect", "@M", *extra, model=model), rc, words)
    i("ok", ["--batch", "4", "--capacity", "32", "--dtype", "f16", "--tp", "2", "--memory-budget", "1"], [], rc=0)
    i("help_ok", ["--help"], [], rc=0)
    i("unknown_flag", ["--out", "x"], ["unknown option --out for `scribe inspect`"])
    i("missing_value", ["--batch"], ["--batch needs a value"])
    i("batch_zero", ["--batch", "0"], ["--batch must be between 1 and 1024, not 0"])
    i("batch_2_62", ["--batch", "4611686018427387904"], ["--batch must be between 1 and 1024"])
    i("batch_1024_ok", ["--batch", "1024"], [], rc=0)
    i("capacity_past_positions", ["--capacity", "1000"], ["--capacity must be between 1 and 64, not 1000"])
    i("dtype_f64", ["--dtype", "f64"], ['--dtype takes f32, f16, bf16, q8 or q4, not "f64"'])
    i("tp_3", ["--tp", "3"], ["tp degree 3 does not divide num_attention_heads (8)"], model="llama-tiny-gqa")
    i("tp_0", ["--tp", "0"], ["--tp must be between 1 and 1024, not 0"])
    i("memory_budget_inf", ["--memory-budget", "inf"], ["--memory-budget takes a size in bytes"])

    # shard
    def s(name, extra, words, rc=1, out=True):
        argv = ["shard", "@M"] + (["--out", "@W/sh"] if out else []) + list(extra)
        case("shard_" + name, F, run(*argv), rc, words)
    s("ok", ["--tp", "2", "--dtype", "f16"], [], rc=0)
    s("help_ok", ["--help"], [], rc=0)
    s("no_tp", [], ["scribe shard needs --tp N and --out DIR"])
    s("no_out", ["--tp", "2"], ["scribe shard needs --tp N and --out DIR"], out=False)
    s("tp_0", ["--tp", "0"], ["--tp must be between 1 and 1024, not 0"])
    s("tp_3", ["--tp", "3"], ["tp degree 3 does not divide n_head (4)"])
    s("tp_word", ["--tp", "two"], ['--tp takes an integer, not "two"'])
    s("dtype_f64", ["--tp", "2", "--dtype", "f64"], ['--dtype takes f32, f16, bf16, q8 or q4, not "f64"'])
    s("dtype_q8_ok", ["--tp", "2", "--dtype", "q8"], [], rc=0)
    s("tp_1_q8_ok", ["--tp", "1", "--dtype", "q8"], [], rc=0)
    s("unknown_flag", ["--tp", "2", "--batch", "2"], ["unknown option --batch for `scribe shard`"])
    s("missing_value", ["--tp"], ["--tp needs a value"])

    def shard_onto(kind):
        def setup(x):
            d = x.model()
            if kind == "self":
                out = d
            elif kind == "symlink":
                out = x.p("alias")
                os.symlink(d, out)
            elif kind == "file":
                out = x.write(x.p("taken"), b"x")
            return ["shard", d, "--tp", "2", "--out", out]
        return setup
    case("shard_out_is_model", F, shard_onto("self"), 1, ["--out must be another folder than the model's"])
    case("shard_out_symlink_to_model", F, shard_onto("symlink"), 1, ["--out must be another folder than the model's"])
    case("shard_out_existing_file", F, shard_onto("file"), 1, ["--out", "taken"], not_words=["filesystem error"])

    # the program
    case("no_command", F, run(), 2, [], stdout_words=["commands:"])
    case("unknown_command", F, run("frobnicate", "@M"), 2, ['unknown command "frobnicate"'])
    case("help_ok", F, run("--help"), 0, [], stdout_words=["commands:"])

    def model_path(kind):
        def setup(x):
            if kind == "file":
                m = x.write(x.p("model.bin"), b"weights")
            elif kind == "missing":
                m = x.p("no-such-model")
            elif kind == "fifo":
                m = x.p("model.fifo")
                x.fifo(m)
            elif kind == "empty":
                m = ""
            elif kind == "no_config":
                m = x.model()
                os.unlink(os.path.join(m, "config.json"))
            elif kind == "empty_dir":
                m = x.p("empty")
                os.mkdir(m)
            return ["generate", m, "--max-new-tokens", "2"]
        return setup
    case("model_path_is_a_file", F, model_path("file"), 1, ["model.bin is a file, not a folder"])
    case("model_path_missing", F, model_path("missing"), 1, ["no-such-model does not exist"])
    case("model_path_fifo", F, model_path("fifo"), 1, ["model.fifo", "not a folder"])
    case("model_path_empty", F, model_path("empty"), 1, ["does not exist"])
    case("model_folder_without_config", F, model_path("no_config"), 1, ["config.json", "no such file"])
    case("model_folder_empty", F, model_path("empty_dir"), 1, ["config.json", "no such file"])


def setup_train_cases():
    T = "train"

    def text(x):
        return x.write(x.p("text.txt"), b"The old man and the sea. Light shall be in the beginning.\n" * 40)

    def tr(name, argv, words, rc=1):
        def setup(x):
            return ["train", x.orig("gpt2-tiny-a"), "--out", x.p("out")] + [
                a.replace("@T", text(x) if a == "@T" else a).replace("@W", x.root) for a in argv]
        case("train_" + name, T, setup, rc, words)

    base = ["--data", "@T", "--steps", "1", "--batch", "2", "--seq", "16", "--threads", "1"]
    tr("seq_1", ["--data", "@T", "--seq", "1"], ["--seq must be between 2 and"])
    tr("seq_huge", ["--data", "@T", "--seq", "99999999999999"], ["--seq must be between 2 and"])
    tr("batch_0", base + ["--batch", "0"], ["--batch must be between 1 and"])
    tr("val_fraction_high", base + ["--val-fraction", "0.9"], ["--val-fraction must be a number between 0 and 0.5"])
    tr("val_fraction_nan", base + ["--val-fraction", "nan"], ["--val-fraction must be a number between 0 and 0.5, not nan"])
    tr("steps_0", base + ["--steps", "0"], ["--steps must be between 1 and"])
    tr("epochs_word", ["--data", "@T", "--epochs", "many"], ['--epochs takes an integer, not "many"'])
    tr("eval_every_negative", base + ["--eval-every", "-3"], ["--eval-every must be between 1 and"])
    tr("lr_inf", base + ["--lr", "inf"], ["--lr must be a number between 0 and 1e+30, not inf"])
    tr("min_lr_above_lr", base + ["--schedule", "cosine", "--lr", "1e-4", "--min-lr", "1e-3"], ["--min-lr 0.001 is above --lr 0.0001"])
    tr("unknown_flag", base + ["--epoch", "2"], ["unknown option --epoch for `scribe train`"])
    tr("memory_budget_tiny", base + ["--memory-budget", "1K"], ["training needs about", "more than --memory-budget"])
    tr("data_missing_value", ["--data"], ["--data needs a value"])
    tr("out_is_a_file", base + ["--out", "@T"], ["is a file, not a folder"])
    tr("dp_0", base + ["--dp", "0"], ["--dp must be between 1 and 1024, not 0"])
    tr("dp_huge", base + ["--dp", "99999999999"], ["--dp must be between 1 and 1024"])
    tr("dp_word", base + ["--dp", "two"], ['--dp takes an integer, not "two"'])
    tr("dp_uneven_batch", base + ["--dp", "3"], ["--batch 2 (the global batch) does not split evenly over 3 data-parallel ranks"])
    tr("bucket_size_0", base + ["--dp", "2", "--bucket-size", "0"], ['--bucket-size takes a size in bytes'])
    tr("bucket_size_nan", base + ["--dp", "2", "--bucket-size", "nan"], ['--bucket-size takes a size in bytes, or with K, M or G (512M, 2G), not "nan"'])
    tr("collective_timeout_negative", base + ["--dp", "2", "--collective-timeout", "-1"], ["--collective-timeout must be a number between 0.001 and 86400"])
    tr("tp_0", base + ["--tp", "0"], ["--tp must be between 1 and 1024, not 0"])
    tr("tp_word", base + ["--tp", "half"], ['--tp takes an integer, not "half"'])
    tr("tp_not_dividing_heads", base + ["--tp", "3"], ["tp degree 3 does not divide n_head (4); degrees that do: 1, 2, 4"])
    tr("tp_times_dp_huge", base + ["--tp", "64", "--dp", "64"], ["--dp 64 x --tp 64 ranks are more than 1024"])
    tr("precision_unknown", base + ["--precision", "fp8"], ['--precision "fp8" is not a precision: give f32, bf16, bf16-sr, bf16-master or autocast'])
    tr("precision_empty", base + ["--precision", ""], ['--precision "" is not a precision'])
    tr("precision_case", base + ["--precision", "BF16"], ['--precision "BF16" is not a precision'])

    def data_path(kind):
        def setup(x):
            if kind == "fifo":
                d = x.p("text.fifo")
                x.fifo(d)
            elif kind == "dir":
                d = x.p("texts")
                os.mkdir(d)
            else:
                d = x.write(x.p("bytes.txt"), bytes(range(256)) * 64)  # not UTF-8: byte-level BPE takes any bytes
            return ["train", x.orig("gpt2-tiny-a"), "--data", d, "--out", x.p("out")] + base[2:]
        return setup
    case("train_data_fifo", T, data_path("fifo"), 1, ["text.fifo", "FIFO"])
    case("train_data_directory", T, data_path("dir"), 1, ["texts", "a directory"])
    case("train_data_any_bytes", T, data_path("bytes"), 0, [], stdout_words=["trained 1 steps"])

    def resume(kind):
        def setup(x):
            out, t = x.trained()
            ck = os.path.join(out, "checkpoint-1")
            state = os.path.join(ck, "trainer_state.json")
            def edit_state(**fields):
                s = json.load(open(state))
                s.update(fields)
                x.write(state, json.dumps(s).encode())
            if kind == "state_not_json":
                x.write(state, b'{"step": 1,')
            elif kind == "state_step_negative":
                edit_state(step=-4)
            elif kind == "state_step_string":
                edit_state(step="one")
            elif kind == "state_weights_changed":
                w = json.load(open(state))["weights"]
                w[0][1] = [1, 2]
                edit_state(weights=w)
            elif kind == "state_step_past":
                edit_state(step=7)
            elif kind == "optimizer_missing":
                os.unlink(os.path.join(ck, "optimizer.safetensors"))
            elif kind == "optimizer_tensor_missing":
                x.st(ck, lambda h, data: st_rebuild(h, data, drop=["optimizer.exp_avg.wte.weight"]), file="optimizer.safetensors",
                     seed=False)
            elif kind == "optimizer_step_mismatch":
                edit_state(step=0)
            elif kind == "weights_missing":
                os.unlink(os.path.join(ck, "model.safetensors"))
            elif kind == "no_checkpoint":
                ck = x.p("nothing")
                os.mkdir(ck)
            return ["train", "--resume", ck, "--data", t, "--out", out] + TRAIN_RUN
        return setup
    for kind, words in [("state_not_json", ["trainer_state.json", "not valid JSON"]),
                        ("state_step_negative", ["trainer_state.json", "`step` must be a step number, got -4"]),
                        ("state_step_string", ["trainer_state.json", "`step` must be a step number"]),
                        ("state_weights_changed", ["is a checkpoint of another model"]),
                        ("state_step_past", ["optimizer.step is 1, trainer_state.json says 7"]),
                        ("optimizer_missing", ["optimizer.safetensors", "no such file"]),
                        ("optimizer_tensor_missing", ["optimizer.safetensors", "optimizer.exp_avg.wte.weight is missing"]),
                        ("optimizer_step_mismatch", ["optimizer.step is 1, trainer_state.json says 0"]),
                        ("weights_missing", ["checkpoint-1", "no model.safetensors"]),
                        ("no_checkpoint", ["nothing", "neither a checkpoint"])]:
        case("train_resume_" + kind, T, resume(kind), 1, words)

    # config fields the training reads
    cfg_case("dropout_above_1", "gpt2", lambda c: c.update(attn_pdrop=1.5), ["field `attn_pdrop` must be a number from 0 to 1, got 1.5"])
    cfg_case("dropout_negative", "opt", lambda c: c.update(dropout=-0.1), ["field `dropout` must be a number from 0 to 1"])
    cfg_case("dropout_string", "llama", lambda c: c.update(attention_dropout="0.1"), ["field `attention_dropout` must be a number"])
    cfg_case("layerdrop", "opt", lambda c: c.update(layerdrop=0.5), ["layerdrop 0.5 is not supported"])
    cfg_case("initializer_range_zero", "gpt2", lambda c: c.update(initializer_range=0), ["field `initializer_range` must be a positive number"])
    cfg_case("init_std_negative", "opt", lambda c: c.update(init_std=-1), ["field `init_std` must be a positive number"])


# --- encoders (issue 20) -------------------------------------------------------

def setup_encoder_cases():
    E = "encoder"
    CLS = ["--threads", "1"]

    def enc_cfg(name, change, words, model="bert-tiny-cls", rc=1):
        def setup(x):
            return ["classify", x.config(x.model(model), change, seed=False), "--text", "Hi"] + CLS
        case("encoder_config_" + name, E, setup, rc, words)

    enc_cfg("id2label_key_word", lambda c: c.update(id2label={"zero": "a", "1": "b", "2": "c"}),
            ['id2label key "zero" must be a label id from 0 to 2'])
    enc_cfg("id2label_not_object", lambda c: c.update(id2label=["a", "b"]), ["id2label must be an object of label names by id"])
    enc_cfg("id2label_value_number", lambda c: c.update(id2label={"0": 1, "1": "b", "2": "c"}), ['id2label["0"] must be a string'])
    enc_cfg("num_labels_disagrees", lambda c: c.update(num_labels=7), ["num_labels 7 disagrees with id2label's 3 labels"])
    enc_cfg("relative_positions", lambda c: c.update(position_embedding_type="relative_key_query"),
            ['position_embedding_type "relative_key_query" is not supported'])
    enc_cfg("question_answering", lambda c: c.update(architectures=["BertForQuestionAnswering"]),
            ["architecture BertForQuestionAnswering is not supported"])
    enc_cfg("architectures_string", lambda c: c.update(architectures="BertModel"), ["architectures must be a list of class names"])
    enc_cfg("is_decoder", lambda c: c.update(is_decoder=True), ["is_decoder = true is not supported"])
    enc_cfg("type_vocab_huge", lambda c: c.update(type_vocab_size=2 ** 40), ["field `type_vocab_size` must be a positive integer below 2^31"])
    enc_cfg("hidden_not_divisible", lambda c: c.update(hidden_size=37), ["hidden_size 37 is not divisible by num_attention_heads 4"])
    enc_cfg("hidden_act_unknown", lambda c: c.update(hidden_act="quick_gelu"), ['hidden_act "quick_gelu" is not supported'])
    enc_cfg("problem_type_unknown", lambda c: c.update(problem_type="ranking"), ['problem_type "ranking" is not supported'])
    enc_cfg("layers_more_than_tensors", lambda c: c.update(num_hidden_layers=100000), ["the config has 100000 layers"])
    enc_cfg("hidden_mismatch", lambda c: c.update(hidden_size=40), ["tensor `bert.embeddings.word_embeddings.weight` is [", "but config.json needs ["])
    enc_cfg("roberta_no_positions", lambda c: c.update(max_position_embeddings=2), ["leaves no positions after pad_token_id 1"],
            model="roberta-tiny-cls")
    enc_cfg("distilbert_heads_zero", lambda c: c.update(n_heads=0), ["field `n_heads` must be a positive integer"], model="distilbert-tiny-cls")
    enc_cfg("pad_token_outside", lambda c: c.update(pad_token_id=100000), ["field `pad_token_id` must be a token id below vocab_size"])

    def no_classifier(x):
        d = x.model("bert-tiny-cls")
        x.st(d, lambda h, data: st_rebuild(h, data, drop=("classifier.weight",)), seed=False)
        return ["classify", d, "--text", "Hi"] + CLS
    case("encoder_weights_classifier_missing", E, no_classifier, 1, ["tensor `classifier.weight` is missing"])

    def classic(change, words, name):
        def setup(x):
            d = x.model("bert-tiny-cls")
            os.unlink(os.path.join(d, "tokenizer.json"))
            with open(os.path.join(d, "vocab.txt"), "rb") as f:
                v = f.read()
            x.write(os.path.join(d, "vocab.txt"), change(v))
            return ["classify", d, "--text", "Hi there"] + CLS
        case("encoder_vocab_txt_" + name, E, setup, 1 if words else 0, words)
    classic(lambda v: v, [], "ok")
    classic(lambda v: v.replace(b"[UNK]\n", b"[UNKNOWN]\n"), ['the unknown token "[UNK]" is not in the vocabulary'], "no_unk")
    classic(lambda v: v.replace(b"[CLS]\n", b"[C]\n"), ['the special token "[CLS]" is not in the vocabulary'], "no_cls")
    classic(lambda v: b"", ["the vocabulary is empty"], "empty")
    classic(lambda v: v.replace(b"[MASK]\n", b"\xff\xfe\n"), [], "invalid_utf8_line")

    def wp(name, change, words, rc=1):
        def setup(x):
            return ["classify", x.tok(x.model("bert-tiny-cls"), change, seed=False), "--text", "Hi"] + CLS
        case("encoder_tokenizer_json_" + name, E, setup, rc, words)
    wp("vocab_id_huge", lambda t: t["model"]["vocab"].update({"the": 2 ** 40}), ["has id"])
    wp("vocab_id_repeated", lambda t: t["model"]["vocab"].update({"the": 0}), ["both have id 0"])
    wp("max_chars_negative", lambda t: t["model"].update(max_input_chars_per_word=-1), ["max_input_chars_per_word must be a positive integer"])
    wp("prefix_number", lambda t: t["model"].update(continuing_subword_prefix=5), ["continuing_subword_prefix is not a string"])
    wp("normalizer_nfkc", lambda t: t.update(normalizer={"type": "NFKC"}), ["the normalizer NFKC is not supported for WordPiece"])
    wp("normalizer_flag_string", lambda t: t["normalizer"].update(lowercase="yes"), ["the normalizer's lowercase is not true or false"])
    wp("pre_tokenizer_whitespace", lambda t: t.update(pre_tokenizer={"type": "Whitespace"}), ["the pre-tokenizer is Whitespace, not BertPreTokenizer"])
    wp("decoder_bytelevel", lambda t: t.update(decoder={"type": "ByteLevel"}), ["the decoder is ByteLevel, not WordPiece"])
    wp("template_special_outside", lambda t: t["post_processor"]["special_tokens"]["[CLS]"].update(ids=[10 ** 9]),
       ['the template\'s special token "[CLS]" has an id outside the vocabulary'])
    wp("template_item_unknown", lambda t: t["post_processor"]["single"].append({"Mystery": {}}),
       ["the template's item Mystery is neither Sequence nor SpecialToken"])
    wp("template_sequence_c", lambda t: t["post_processor"]["pair"].append({"Sequence": {"id": "C", "type_id": 0}}),
       ['the template\'s sequence "C" is neither A nor B'])
    wp("post_processor_bytelevel", lambda t: t.update(post_processor={"type": "ByteLevel"}), ["the post-processor ByteLevel is not supported"])
    wp("bert_processing_bad", lambda t: t.update(post_processor={"type": "BertProcessing", "sep": ["[SEP]"], "cls": ["[CLS]", 2]}),
       ["the post-processor's sep must be [token, id]"])
    wp("added_token_outside", lambda t: t["added_tokens"].append({"id": 99999, "content": "[X]", "special": True}),
       ['added token "[X]" has id 99999, outside the vocabulary'])
    wp("model_unigram", lambda t: t["model"].update(type="Unigram"), ['the model is "Unigram"'])

    def flags(name, argv, words, rc=1, model="bert-tiny-cls", cmd="classify", stdin=b""):
        def setup(x):
            return [cmd, x.orig(model)] + [a.replace("@W", x.root) for a in argv]
        case("encoder_flag_" + name, E, setup, rc, words, stdin=stdin)
    flags("no_text", CLS, ["give a text: --text TEXT"])
    flags("pairs_uneven", ["--text", "a", "--text", "b", "--pair", "c"] + CLS, ["2 --text but 1 --pair"])
    flags("top_negative", ["--text", "a", "--top", "-1"] + CLS, ["--top must be between 0 and"])
    flags("dtype_q8", ["--text", "a", "--dtype", "q8"] + CLS, ["encoders run in f32, f16 or bf16"])
    flags("bucket_too_long", ["--text", "a", "--buckets", "4096"] + CLS, ["bucket 4096 must be between 1 and the model's 48 positions"])
    flags("tp_3", ["--text", "a", "--tp", "3"] + CLS, ["tp degree 3 does not divide num_attention_heads (4)"])
    flags("text_too_long", ["--text", "mill " * 200] + CLS, ["tokens but the model reads at most 48; give --truncate"])
    flags("text_too_long_truncated", ["--text", "mill " * 5000, "--truncate"] + CLS, [], rc=0)
    flags("text_invalid_utf8", ["--text", "caf\udcff\udcfe"] + CLS, [], rc=0)
    flags("text_controls", ["--text", "a\x01b\x7fc\u200b"] + CLS, [], rc=0)
    flags("text_empty", ["--text", ""] + CLS, [], rc=0)
    flags("batch_file_missing", ["--batch-file", "@W/none.tsv"] + CLS, ["none.tsv"])
    flags("batch_file_three_texts", ["--batch-file", "-"] + CLS, ["line 1 has more than two tab-separated texts"], stdin=b"a\tb\tc\n")
    flags("batch_file_blank", ["--batch-file", "-"] + CLS, ["holds no inputs"], stdin=b"\n\n")
    flags("batch_file_and_text", ["--batch-file", "-", "--text", "a"] + CLS, ["give either --text (and --pair) or --batch-file"], stdin=b"a\n")
    flags("pooling_max", ["--text", "a", "--pooling", "max"] + CLS, ["--pooling takes mean or cls"], cmd="embed", model="bert-tiny-embed")
    flags("embed_out_is_folder", ["--text", "a", "--out", "@W"] + CLS, ["cannot write the file"], cmd="embed", model="bert-tiny-embed")
    flags("classify_no_head", ["--text", "a"] + CLS, ["the model has no classifier"], model="bert-tiny-embed")
    flags("classify_decoder", ["--text", "a"] + CLS, ['model_type "gpt2" is not an encoder Scribe runs'], model="gpt2-tiny-a")
    flags("generate_encoder", ["--prompt", "a"] + CLS, ['model_type "bert" is an encoder, not a decoder'], cmd="generate")
    flags("export_train", ["--train", "--out", "@W/hlo"], ["--train is for decoders"], cmd="export-hlo")
    flags("export_capacity", ["--capacity", "8", "--out", "@W/hlo"], ["--capacity is for decoders"], cmd="export-hlo")

    def pooling_config(x):
        d = x.model("bert-tiny-embed")
        x.write(os.path.join(d, "1_Pooling", "config.json"), b'{"pooling_mode_max_tokens": true}')
        return ["embed", d, "--text", "a"] + CLS
    case("encoder_pooling_config_max", E, pooling_config, 1, ["the pooling is neither mean nor cls", "give --pooling"])


def build_cases():
    setup_safetensors_cases()
    setup_index_cases()
    setup_pytorch_cases()
    setup_config_cases()
    setup_generation_config_cases()
    setup_draft_cases()
    setup_tokenizer_cases()
    setup_presharded_cases()
    setup_artifact_cases()
    setup_flag_cases()
    setup_train_cases()
    setup_encoder_cases()


# ---------------------------------------------------------------------------
# running

def check(c, proc_rc, out, err):
    why = []
    text = err.decode("utf-8", errors="replace")
    if proc_rc != c.rc:
        why.append("exit status %s, want %s" % (proc_rc, c.rc))
    for w in c.words:
        if w not in text:
            why.append("stderr lacks %r" % w)
    for w in c.not_words:
        if w in text:
            why.append("stderr has %r" % w)
    for w in c.stdout_words:
        if w not in out.decode("utf-8", errors="replace"):
            why.append("stdout lacks %r" % w)
    for bad in FORBIDDEN:
        if bad in text or bad.encode() in out:
            why.append("output has %r" % bad)
    if MARKER in out or MARKER in err:
        why.append("output echoes the marker bytes of a file outside the folder")
    for b in (b"\x1b", b"\x07", b"\x00"):
        if b in err:
            why.append("stderr has a raw control byte %r" % b)
    if c.rc == 1 and not err.startswith(b"scribe: ") and b"\nscribe: " not in err:
        why.append("stderr has no 'scribe: ' error line")
    if c.rc == 1 and len(err) > 4000:
        why.append("stderr is %d bytes long" % len(err))
    return why


def run_case(c, args):
    root = os.path.join(args.work, c.name)
    if os.path.lexists(root):
        for dirpath, dirnames, _ in os.walk(root):  # undo chmod 000
            for n in dirnames:
                os.chmod(os.path.join(dirpath, n), 0o755)
        shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    x = Ctx(c.name, root, args.data, args.scribe)
    try:
        argv = c.setup(x)
    except Exception as e:  # noqa: BLE001 - a broken setup is a failed case
        return False, "setup failed: %s: %s" % (type(e).__name__, e), 0.0
    start = time.monotonic()
    p = subprocess.Popen([args.scribe] + argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=root, env=args.env)
    if not args.sanitized:
        try:
            limit = MEMORY_LIMIT_MB << 20
            resource.prlimit(p.pid, resource.RLIMIT_AS, (limit, limit))
        except (OSError, ValueError):  # exited already
            pass
    try:
        out, err = p.communicate(c.stdin, timeout=c.timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return False, "hang: no exit within %d s: scribe %s" % (c.timeout, " ".join(map(repr_arg, argv))), \
            time.monotonic() - start
    p.stdout, p.stderr = out, err
    why = check(c, p.returncode, p.stdout, p.stderr)
    took = time.monotonic() - start
    if not why:  # a passed case's folder goes (some hold sparse files of hundreds of MiB, FIFOs); a failed one stays
        shutil.rmtree(root, ignore_errors=True)
    if args.verbose and not why:
        last = p.stderr.decode("utf-8", errors="backslashreplace").strip().splitlines()
        return True, "  [%d] %s" % (p.returncode, last[-1][:300] if last else ""), took
    if why:
        last = p.stderr.decode("utf-8", errors="backslashreplace").strip().splitlines()
        said = last[-1] if last else "(nothing)"
        return False, "; ".join(why) + " | scribe %s | said: %s" % (" ".join(map(repr_arg, argv)), said[:400]), took
    return True, "", took


def repr_arg(a):
    return a if a and all(ch.isalnum() or ch in "-_./,=:@+" for ch in a) else repr(a)


def write_seeds(dest, data):
    kinds = ("config", "safetensors", "index", "tokenizer", "json", "pytorch")
    for k in kinds:
        d = os.path.join(dest, k)
        if os.path.isdir(d):
            for n in os.listdir(d):
                os.unlink(os.path.join(d, n))
        os.makedirs(d, exist_ok=True)
    counts = {k: 0 for k in kinds}
    total = 0
    with tempfile.TemporaryDirectory(prefix="scribe-seeds-") as tmp:
        for c in CASES:
            root = os.path.join(tmp, c.name)
            os.makedirs(root)
            x = Ctx(c.name, root, data, None, seeds_only=True)
            try:
                c.setup(x)
            except SkipSeed:
                continue
            for n, (kind, b) in enumerate(x.seeds):
                if len(b) > SEED_LIMIT[kind]:
                    continue
                name = c.name + ("" if n == 0 else "_%d" % n) + (".json" if kind in ("config", "index") else "")
                with open(os.path.join(dest, kind, name), "wb") as f:
                    f.write(b)
                counts[kind] += 1
                total += len(b)
                # A JSON file the JSON reader must refuse is a seed for it too.
                text = b[1:] if kind == "tokenizer" and b[:1] == b"0" else b
                if kind in ("config", "index", "tokenizer") and text is not None and json_refused(text):
                    with open(os.path.join(dest, "json", c.name), "wb") as f:
                        f.write(b)
                    counts["json"] += 1
                    total += len(b)
    # Extra JSON reader seeds: nesting past the limit, of both kinds.
    for name, b in [("deep_arrays_1e4", deep(10000)), ("deep_objects_2000", deep(2000, objects=True)),
                    ("deep_65", deep(65)), ("deep_64", deep(64))]:
        with open(os.path.join(dest, "json", name), "wb") as f:
            f.write(b)
        counts["json"] += 1
        total += len(b)
    print("wrote %s seeds (%d bytes) to %s" % (", ".join("%d %s" % (counts[k], k) for k in kinds), total, dest))


def json_refused(b):
    """Whether io::parse_json must refuse the text: not JSON, a key twice in one object, or nested past 64 levels."""
    def pairs(kv):
        keys = [k for k, _ in kv]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        return dict(kv)

    def depth(v):
        if isinstance(v, dict):
            return 1 + max([depth(x) for x in v.values()] or [0])
        if isinstance(v, list):
            return 1 + max([depth(x) for x in v] or [0])
        return 0
    try:
        return depth(json.loads(b, object_pairs_hook=pairs)) > 64
    except (ValueError, RecursionError):
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scribe", help="the scribe program")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"),
                    help="tests/data")
    ap.add_argument("--work", help="a folder for the cases' model folders (emptied case by case)")
    ap.add_argument("-k", dest="filter", help="run only the cases whose name contains this")
    ap.add_argument("-j", dest="jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("--list", action="store_true", help="list the cases and their areas")
    ap.add_argument("-v", dest="verbose", action="store_true", help="show the last line of stderr of every case")
    ap.add_argument("--write-seeds", metavar="DIR", help="write the malformed files as fuzz seeds to DIR and exit")
    args = ap.parse_args()
    args.data = os.path.abspath(args.data)
    build_cases()
    if args.write_seeds:
        write_seeds(args.write_seeds, args.data)
        return 0
    cases = [c for c in CASES if not args.filter or args.filter in c.name]
    if args.list:
        areas = {}
        for c in cases:
            areas[c.area] = areas.get(c.area, 0) + 1
            print("%-14s %s" % (c.area, c.name))
        print(", ".join("%s %d" % kv for kv in areas.items()) + "; %d cases" % len(cases))
        return 0
    if not args.scribe or not args.work:
        ap.error("--scribe and --work are needed (or --write-seeds DIR, or --list)")
    args.scribe = os.path.abspath(args.scribe)
    args.work = os.path.abspath(args.work)
    with open(args.scribe, "rb") as f:
        args.sanitized = b"__asan_init" in f.read()
    args.env = dict(os.environ)
    if args.sanitized:
        extra = "hard_rss_limit_mb=%d:max_allocation_size_mb=%d" % (MEMORY_LIMIT_MB, MEMORY_LIMIT_MB)
        args.env["ASAN_OPTIONS"] = ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), extra) if x)
    os.makedirs(args.work, exist_ok=True)
    start = time.monotonic()
    passed = failed = 0
    slow = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for c, (ok, why, took) in zip(cases, pool.map(lambda c: run_case(c, args), cases)):
            slow.append((took, c.name))
            if ok:
                passed += 1
                print("ok " + c.name + (why and "\n" + why), flush=True)
            else:
                failed += 1
                print("FAIL %s: %s" % (c.name, why), flush=True)
    slow.sort(reverse=True)
    print("# %d cases in %.1f s; slowest: %s" % (len(cases), time.monotonic() - start,
                                                 ", ".join("%s %.1f s" % (n, t) for t, n in slow[:3])))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
