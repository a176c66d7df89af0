#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs, tests/fuzz/corpus/<target>/ (standard
library only; the tokenizer seeds take texts from tests/data/tokenizer/cases.json):

    python3 tests/fuzz/make_corpus.py

Seeds are small on purpose: libFuzzer mutates them, and its speed falls with
their size. The first byte of a tokenizer seed picks the mode (fuzz_tokenizer.cpp):
'0' tokenizer.json, '1' vocab.json NUL merges.txt, '2' text to encode.
"""
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def safetensors(header, data=b""):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    dtypes = [("BOOL", 1), ("I8", 1), ("U8", 1), ("I32", 4), ("I64", 8), ("U32", 4), ("F16", 2), ("BF16", 2), ("F32", 4), ("F64", 8)]
    every, at = {}, 0
    for i, (t, n) in enumerate(dtypes):
        every[f"t{i}"] = {"dtype": t, "shape": [1], "data_offsets": [at, at + n]}
        at += n
    return {
        "f32_2x2": safetensors({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, struct.pack("<4f", 1, 2, 3, 4)),
        "metadata_two_tensors": safetensors(
            {"__metadata__": {"format": "pt"}, "a": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
             "b.weight": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [6, 10]}}, bytes(range(10))),
        "every_dtype": safetensors(every, bytes(at)),
        "empty_tensor": safetensors({"e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [0, 0]},
                                     "s": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]}}, bytes(8)),
        "empty_header": safetensors({}),
        "overlap": safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)),
        "bad_length": struct.pack("<Q", 1 << 40) + b"{}",
    }


def tokenizer_seeds():
    small = {
        "version": "1.0",
        "added_tokens": [
            {"id": 5, "content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
            {"id": 6, "content": "<m>", "single_word": True, "lstrip": True, "rstrip": True, "normalized": True, "special": False},
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4}, "merges": [["a", "b"], ["Ġ", "ab"]]},
    }
    strings = json.loads(json.dumps(small))
    strings["model"]["merges"] = ["a b", "Ġ ab"]
    strings["model"].update(ignore_merges=True, unk_token="a")
    strings["pre_tokenizer"]["add_prefix_space"] = True
    seeds = {
        "json_small": b"0" + json.dumps(small).encode(),
        "json_string_merges": b"0" + json.dumps(strings, ensure_ascii=False).encode(),
        "vocab_merges_small": b"1" + json.dumps({"a": 0, "b": 1, "ab": 2, "Ġ": 3, "<|endoftext|>": 4}).encode()
                              + b"\0#version: 0.2\na b\n",
        "text_invalid_utf8": b"2ab\xff\xfe caf\xc3\xa9\xa9 \xed\xa0\x80 \xf0\x9f\x98 it's  \n\n",
    }
    cases = json.loads((ROOT / "tests" / "data" / "tokenizer" / "cases.json").read_text(encoding="utf-8"))
    for i in [1, 2, 4, 10, 17, 20, 21, 23, 24, 25, 28, 34]:
        seeds[f"text_{i:02d}"] = b"2" + cases[i]["text"].encode()
    return seeds


def main():
    for target, seeds in (("safetensors", safetensors_seeds()), ("tokenizer", tokenizer_seeds())):
        d = HERE / "corpus" / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (d / name).write_bytes(data)
        print(f"{d}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
