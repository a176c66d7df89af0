#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs, tests/fuzz/corpus/<target>/ (standard
library only; the tokenizer seeds take texts from tests/data/tokenizer/cases.json,
the config seeds every family's real config.json from tests/data/*/ and
models/*/):

    python3 tests/fuzz/make_corpus.py

Each target's folder is rewritten whole (a seed no longer made here is removed).
Seeds are small on purpose: libFuzzer mutates them, and its speed falls with
their size; the exceptions are the nesting seeds of the json target (10^4 levels,
about 20 KB), which run.sh's larger -max_len for that target keeps whole. The
first byte of a tokenizer seed picks the mode (fuzz_tokenizer.cpp): '0'
tokenizer.json, '1' vocab.json NUL merges.txt, '2' text to encode; of a
wordpiece seed (fuzz_wordpiece.cpp): '0' a WordPiece tokenizer.json, '1' a
vocab.txt, '2' text NUL text.

The catalogue of hostile inputs (tests/hostile/seeds/<target>/, when it exists)
is not copied here: run.sh adds those files to each run's working corpus.
"""
import json
import pathlib
import shutil
import struct
import sys
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hostile"))
import torch_bin  # noqa: E402  (torch.save-style archives, written opcode by opcode)
DEPTH_LIMIT = 64  # io::json_depth_limit (include/scribe/io/json.hpp)


def dumps(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def nested(levels, inner="1", objects=False):
    """A JSON value `levels` arrays (or objects with a key "a") deep around `inner`."""
    if objects:
        return '{"a":' * levels + inner + "}" * levels
    return "[" * levels + inner + "]" * levels


def with_field(obj, key, raw_value):
    """`obj` as JSON text with one more field whose value is raw JSON text."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return (text[:-1] + ("," if obj else "") + json.dumps(key) + ":" + raw_value + "}").encode()


def safetensors(header, data=b""):
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_raw(header_text, data=b""):
    h = header_text.encode()
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
        # The header goes through io::parse_json: nesting past the limit, a tensor twice.
        "deep_metadata": safetensors_raw('{"__metadata__":{"x":' + nested(DEPTH_LIMIT - 1) + '}}'),
        "tensor_twice": safetensors_raw('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                        '"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"ab"),
        "control_names": safetensors({"\x1b[31mw": {"dtype": "\x1b]0;x\x07", "shape": [1], "data_offsets": [0, 1]}}, b"a"),
        # Names that reach the overlap message, one with a C1 CSI (U+009B, as UTF-8).
        "overlap_control_names": safetensors({"\u009b[31mw": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                                              "\x1bb": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, b"abc"),
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
    # Nesting and duplicate keys, which io::parse_json refuses: a field the
    # tokenizer ignores nested past the limit (the whole file is 1 level more),
    # and at it; a token twice in the vocabulary (with the same id or another);
    # "model" twice.
    seeds["json_deep_over_limit"] = b"0" + with_field(small, "truncation", nested(DEPTH_LIMIT, objects=True))
    seeds["json_deep_at_limit"] = b"0" + with_field(small, "truncation", nested(DEPTH_LIMIT - 1, objects=True))
    seeds["json_deep_1000"] = b"0" + with_field(small, "post_processor", nested(1000))
    text = json.dumps(small, separators=(",", ":"), ensure_ascii=False)
    seeds["json_vocab_key_twice"] = b"0" + text.replace('"vocab":{"a":0,', '"vocab":{"a":0,"a":0,', 1).encode()
    seeds["json_vocab_key_twice_ids_differ"] = b"0" + text.replace('"vocab":{"a":0,', '"vocab":{"a":7,"a":0,', 1).encode()
    seeds["json_model_twice"] = b"0" + with_field(small, "model", json.dumps(small["model"], separators=(",", ":"), ensure_ascii=False))
    # Strings an error message might echo: a terminal escape as a type.
    escape = json.loads(json.dumps(small))
    escape["pre_tokenizer"]["type"] = "\x1b[31mSplit\u009b"
    seeds["json_pre_tokenizer_escape"] = b"0" + dumps(escape)
    escape = json.loads(json.dumps(small))
    escape["model"]["type"] = "\x1b[31mWordPiece"
    seeds["json_model_type_escape"] = b"0" + dumps(escape)
    vocab = {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "<|endoftext|>": 4}
    seeds["vocab_key_twice"] = b"1" + with_field(vocab, "b", "1") + b"\0a b\n"
    seeds["vocab_deep_over_limit"] = b"1" + with_field(vocab, "x", nested(DEPTH_LIMIT)) + b"\0a b\n"
    seeds["vocab_deep_2000"] = b"1" + nested(2000).encode() + b"\0a b\n"
    seeds["vocab_crlf_controls"] = b"1" + dumps(vocab) + b"\0#version: 0.2\r\na b\r\n\x1b[31m b\n"
    cases = json.loads((ROOT / "tests" / "data" / "tokenizer" / "cases.json").read_text(encoding="utf-8"))
    for i in [1, 2, 4, 10, 17, 20, 21, 23, 24, 25, 28, 34]:
        seeds[f"text_{i:02d}"] = b"2" + cases[i]["text"].encode()
    # The family tokenizers (normalizers, Metaspace, Llama 3's Split, byte fallback,
    # decoder chains) whole, and texts of their corpus.
    for kind in ("llama2", "mistral", "metaspace", "llama3"):
        folder = ROOT / "tests" / "data" / "tokenizers" / kind
        seeds[f"json_{kind}"] = b"0" + (folder / "tokenizer.json").read_bytes()
        family_cases = json.loads((folder / "cases.json").read_text(encoding="utf-8"))
        for i in (60, 90, 120, 150, 200):
            seeds[f"text_{kind}_{i}"] = b"2" + family_cases[i]["text"].encode()
    return seeds


def wordpiece_seeds():
    """'0' a WordPiece tokenizer.json, '1' a vocab.txt, '2' text NUL text (fuzz_wordpiece.cpp)."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "mill", "##s", "##er", "cafe", ",", ".", "!", "東"]
    tok = {"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
                             "special": True} for i, t in enumerate(vocab[:5])],
           "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None,
                          "lowercase": True},
           "pre_tokenizer": {"type": "BertPreTokenizer"},
           "post_processor": None,
           "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
           "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                     "vocab": {t: i for i, t in enumerate(vocab)}}}
    seeds = {"json_small": b"0" + dumps(tok)}
    cased = json.loads(dumps(tok))
    cased["normalizer"].update(lowercase=False, strip_accents=False, handle_chinese_chars=False)
    seeds["json_cased"] = b"0" + dumps(cased)
    seeds["vocab_txt"] = b"1" + "".join(t + "\n" for t in vocab).encode()
    seeds["vocab_txt_crlf"] = b"1" + "".join(t + "\r\n" for t in vocab).encode()
    for i, (a, b) in enumerate([("The miller's mills!", "Caf\u00e9 cr\u00e8me"), ("\u6771\u4eac and \ud55c\uad6d\uc5b4", ""),
                                ("e\u0301 \u0130stanbul \u03a3\u039f\u03a6\u0399\u0391", "[CLS] inside [SEP]"),
                                ("a" * 120, "mill " * 30), ("\t\x00\x07 \u200b\ufffd", "\U0001F600!")]):
        seeds[f"pair_{i}"] = b"2" + a.encode() + b"\0" + b.encode()
    seeds["single"] = b"2" + "The old mill, by the river.".encode()
    return seeds


def config_seeds():
    seeds = {}
    # Every family's real configs, byte for byte.
    for f in sorted(ROOT.glob("tests/data/*/config.json")) + sorted(ROOT.glob("models/*/config.json")):
        seeds[f"real_{f.parent.name}.json"] = f.read_bytes()
    minimal = {
        "gpt2": {"vocab_size": 5, "n_positions": 4, "n_embd": 6, "n_layer": 1, "n_head": 3},
        "opt": {"model_type": "opt", "vocab_size": 7, "max_position_embeddings": 8, "hidden_size": 8, "num_attention_heads": 2,
                "ffn_dim": 12, "num_hidden_layers": 2, "word_embed_proj_dim": 4, "do_layer_norm_before": True},
        "gptj": {"model_type": "gptj", "vocab_size": 9, "n_positions": 8, "n_embd": 16, "n_head": 2, "n_layer": 1, "rotary_dim": 4},
        "llama": {"model_type": "llama", "vocab_size": 11, "max_position_embeddings": 16, "hidden_size": 16, "intermediate_size": 24,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 1},
        "mistral": {"model_type": "mistral", "vocab_size": 11, "max_position_embeddings": 16, "hidden_size": 16,
                    "intermediate_size": 24, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 6,
                    "num_hidden_layers": 1, "sliding_window": 4},
    }
    for family, c in minimal.items():
        seeds[f"minimal_{family}.json"] = dumps(c)
    llama = minimal["llama"]
    # The options each family reads.
    seeds["llama_options.json"] = dumps({**llama, "attention_bias": True, "tie_word_embeddings": True, "rms_norm_eps": 1e-5,
                                         "hidden_act": "silu", "mlp_bias": False, "partial_rotary_factor": 1.0,
                                         "bos_token_id": 1, "eos_token_id": [2, 3], "use_sliding_window": False, "sliding_window": 2})
    seeds["llama_rope_llama3.json"] = dumps({**llama, "rope_theta": 500000.0, "rope_scaling": {
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})
    seeds["llama_rope_linear.json"] = dumps({**llama, "rope_parameters": {"type": "linear", "factor": 2.0, "rope_theta": 1e4}})
    seeds["gptj_rope_options.json"] = dumps({**minimal["gptj"], "rope_scaling": {"rope_type": "linear", "factor": 4},
                                             "activation_function": "gelu_pytorch_tanh", "layer_norm_epsilon": 1e-6})
    seeds["opt_post_ln.json"] = dumps({**minimal["opt"], "do_layer_norm_before": False, "_remove_final_layer_norm": True,
                                       "activation_function": "gelu", "enable_bias": True, "word_embed_proj_dim": 8})
    seeds["gpt2_options.json"] = dumps({**minimal["gpt2"], "n_inner": 10, "activation_function": "relu", "bos_token_id": 4,
                                        "eos_token_id": 0, "scale_attn_weights": True, "tie_word_embeddings": True})
    # Huge numbers: at 2^31 - 1, past it, past 2^63 and 2^64, floats, and many layers.
    gpt2 = minimal["gpt2"]
    for name, raw in (("2e31m1", "2147483647"), ("2e31", "2147483648"), ("2e63", "9223372036854775808"),
                      ("2e64", "18446744073709551616"), ("1e308", "1e308"), ("1e400", "1e400"), ("neg", "-2147483648")):
        seeds[f"huge_n_embd_{name}.json"] = with_field({k: v for k, v in gpt2.items() if k != "n_embd"}, "n_embd", raw)
    seeds["huge_layers_1e9.json"] = dumps({**gpt2, "n_layer": 10**9})
    seeds["huge_heads_llama.json"] = dumps({**llama, "hidden_size": 2147483646, "num_attention_heads": 1073741823,
                                            "num_key_value_heads": 1073741823, "intermediate_size": 2147483647})
    seeds["huge_head_dim_llama.json"] = dumps({**llama, "head_dim": 2147483646, "num_attention_heads": 2147483647,
                                               "num_key_value_heads": 1})
    seeds["huge_vocab_token.json"] = dumps({**gpt2, "vocab_size": 2147483647, "eos_token_id": 2147483646})
    # Nesting and duplicate keys (refused by io::parse_json), and a config at the limit.
    seeds["deep_over_limit.json"] = with_field(gpt2, "task_specific_params", nested(DEPTH_LIMIT, objects=True))
    seeds["deep_at_limit.json"] = with_field(gpt2, "task_specific_params", nested(DEPTH_LIMIT - 1, objects=True))
    seeds["deep_1000.json"] = with_field(llama, "rope_scaling", nested(1000))
    seeds["key_twice.json"] = with_field(gpt2, "n_layer", "2")
    seeds["key_twice_nested.json"] = with_field(llama, "rope_scaling", '{"rope_type":"linear","factor":2,"factor":3}')
    # Strings that an error message might echo: control bytes, a terminal escape.
    seeds["model_type_escape.json"] = dumps({**gpt2, "model_type": "\x1b[31mgpt2\x07"})
    seeds["activation_escape.json"] = dumps({**gpt2, "activation_function": "\x1b]0;title\x07\u009b"})
    seeds["not_object.json"] = b"[1, 2, 3]"
    return seeds


def index_seeds():
    def index(weight_map, **extra):
        return dumps({"metadata": {"total_size": 1234}, **extra, "weight_map": weight_map})
    valid = {"wte.weight": "model-00001-of-00002.safetensors", "h.0.ln_1.weight": "model-00001-of-00002.safetensors",
             "ln_f.weight": "model-00002-of-00002.safetensors"}
    seeds = {
        "valid": index(valid),
        "valid_one_tensor": dumps({"weight_map": {"a": "model.safetensors"}}),
        "empty_weight_map": index({}),
        "no_weight_map": dumps({"metadata": {}}),
        "weight_map_array": dumps({"weight_map": [["a", "b.safetensors"]]}),
        "not_string": index({"a": 1, "b": None, "c": ["x"]}),
        "traversal_dotdot": index({"a": "../secret.safetensors"}),
        "traversal_absolute": index({"a": "/etc/passwd"}),
        "traversal_sub": index({"a": "sub/dir.safetensors"}),
        "dot_names": index({"a": ".", "b": ".."}),
        "empty_name": index({"a": ""}),
        "nul_in_name": index({"a": "model\u0000.safetensors"}),
        "control_names": index({"\x1b[2Jtensor": "\x1b[31m..", "t\u009b": "ok.safetensors"}),
        "key_twice": b'{"weight_map":' + with_field(valid, "wte.weight", '"model-00002-of-00002.safetensors"') + b"}",
        "deep_over_limit": index(valid)[:-1] + b',"x":' + nested(DEPTH_LIMIT).encode() + b"}",
        "deep_at_limit": index(valid)[:-1] + b',"x":' + nested(DEPTH_LIMIT - 1).encode() + b"}",
        "deep_2000": b'{"weight_map":' + nested(2000).encode() + b"}",
    }
    return seeds


def json_seeds():
    limit = DEPTH_LIMIT
    over = limit + 10**4
    seeds = {
        "arrays_at_limit": nested(limit).encode(),
        "objects_at_limit": nested(limit, objects=True).encode(),
        "arrays_over_limit": nested(limit + 1).encode(),
        "objects_over_limit": nested(limit + 1, objects=True).encode(),
        "mixed_at_limit": ('[{"a":' * (limit // 2) + "null" + "}]" * (limit // 2)).encode(),
        "arrays_10000_over": nested(over).encode(),
        "unclosed_10000_over": b"[" * over,
        "key_twice": b'{"a": 1, "b": 2, "a": 3}',
        "key_twice_nested": b'{"x": [{"k": 1}, {"k": 2, "k": 2}]}',
        "keys_differ_by_escape": b'{"a": 1, "\\u0061": 2}',
        "escapes": '{"s": "\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/", "é": "😀"}'.encode(),
        "lone_surrogate": b'["\\ud800"]',
        "invalid_utf8": b'["\xff\xfe", "\xc3"]',
        "control_in_string": b'["a\x01b"]',
        "numbers": b"[0, -0, 1e308, -1e-308, 18446744073709551615, -9223372036854775808, 1.5e-400, 123456789012345678901234567890]",
        "number_overflow": b"[1e400]",
        "literals": b"[true, false, null, {}, []]",
        "bom": b"\xef\xbb\xbf{}",
        "trailing": b"{} {}",
        "comment": b"/* c */ {}",
        "empty": b"",
        "whitespace": b" \t\r\n ",
    }
    return seeds


def pytorch_seeds():
    """Small pytorch_model.bin archives: every dtype, a shared storage and a strided view,
    an OrderedDict and a plain dict, protocols 2 and 4 headers, _rebuild_tensor (v1), and
    a torch-written file of tests/data (the views at protocol 4); and data.pkl pickles
    alone: the same state dicts, and those torch wrote (protocols 4 and 2, and GPT-2's
    OrderedDict with its _metadata, cut at 8192 bytes)."""
    tensors, storages = torch_bin.small()
    seeds = {
        "small": torch_bin.archive(torch_bin.state_pickle(tensors), storages),
        "plain_dict": torch_bin.archive(torch_bin.state_pickle(tensors[:3], ordered=False), {"0": storages["0"]}),
        "protocol4": torch_bin.archive(torch_bin.state_pickle(tensors[3:5], protocol=4), {"1": storages["1"], "2": storages["2"]}),
        "rebuild_v1": torch_bin.archive(torch_bin.state_pickle(tensors[:1], rebuild="_rebuild_tensor"), {"0": storages["0"]}),
        "empty_state": torch_bin.archive(torch_bin.state_pickle([]), {}),
    }
    made_by_torch = ROOT / "tests" / "data" / "pytorch" / "views.bin"
    if made_by_torch.stat().st_size <= 8192:
        seeds["torch_views"] = made_by_torch.read_bytes()
    # data.pkl alone (fuzz_pytorch.cpp gives an input not starting "PK" to the pickle machine)
    seeds["pickle_small"] = torch_bin.state_pickle(tensors)
    seeds["pickle_plain_dict"] = torch_bin.state_pickle(tensors[:2], ordered=False)
    with zipfile.ZipFile(made_by_torch) as z:
        for name in z.namelist():
            if name.endswith("/data.pkl"):
                seeds["pickle_torch_views"] = z.read(name)
    for name in ("views-p2.bin", "gpt2-bin/pytorch_model.bin"):
        with zipfile.ZipFile(ROOT / "tests" / "data" / "pytorch" / name) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
            seeds["pickle_" + name.replace("/", "_").replace(".", "_")] = z.read(pkl)[:8192]
    return seeds


def main():
    targets = (("safetensors", safetensors_seeds()), ("tokenizer", tokenizer_seeds()), ("config", config_seeds()),
               ("index", index_seeds()), ("json", json_seeds()), ("wordpiece", wordpiece_seeds()),
               ("pytorch", pytorch_seeds()))
    for target, seeds in targets:
        d = HERE / "corpus" / target
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for name, data in seeds.items():
            (d / name).write_bytes(data)
        print(f"{d}: {len(seeds)} seeds, {sum(len(v) for v in seeds.values())} bytes")


if __name__ == "__main__":
    main()
