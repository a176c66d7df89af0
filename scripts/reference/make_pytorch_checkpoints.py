#!/usr/bin/env python3
"""Makes tests/data/pytorch/: checkpoints in torch.save's format (pytorch_model.bin), as
Hugging Face repositories without safetensors hold them, each with a safetensors copy of
the same tensors that tests/unit/test_pytorch.cpp compares Scribe's reader against.

    .venv-ref/bin/python scripts/reference/make_pytorch_checkpoints.py

Written (torch.save, the writer every such repository was made with):
  gpt2-bin/           tests/data/gpt2-tiny-a as transformers 4.x's save_pretrained
                      wrote it before safetensors: torch.save(model.state_dict()),
                      an OrderedDict with its _metadata, lm_head.weight sharing the
                      token embedding's storage; config and tokenizer files copied.
  llama-bin-sharded/  tests/data/llama-tiny-gqa in bf16 in two shards of plain dicts
                      (transformers' sharded save: {name: tensor.contiguous()}) and
                      pytorch_model.bin.index.json.
  llama-bf16.safetensors  the same bf16 tensors (safetensors.torch.save_file).
  views.bin           tensors of every dtype Scribe reads, stored as views a state
                      dict may hold: a transposed matrix, slices at offsets of a
                      shared storage, an expanded (stride 0) row, a 0-d scalar, an
                      empty tensor, an nn.Parameter; pickle protocol 4 (STACK_GLOBAL,
                      MEMOIZE, FRAME), which torch.save writes when asked.
  views-p2.bin        the same at torch.save's default protocol 2.
  views.safetensors   each of those tensors made contiguous: what the reader must give.
  legacy.bin          a tensor in torch.save's legacy format (torch < 1.6), which the
                      reader refuses with a message.
Seeded: running the script again writes the same tensors (the archives' record names
are fixed; torch writes a random serialization id into each).
"""
import collections
import json
import pathlib
import shutil

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
OUT = DATA / "pytorch"
TEXT_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"]


def copy_text(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for f in TEXT_FILES:
        if (src / f).exists():
            shutil.copy(src / f, dst / f)


def gpt2():
    src = DATA / "gpt2-tiny-a"
    dst = OUT / "gpt2-bin"
    copy_text(src, dst)
    model = AutoModelForCausalLM.from_pretrained(src)
    state = model.state_dict()
    assert isinstance(state, collections.OrderedDict) and hasattr(state, "_metadata")
    assert state["lm_head.weight"].data_ptr() == state["transformer.wte.weight"].data_ptr(), "tied weights share a storage"
    torch.save(state, dst / "pytorch_model.bin")


def llama():
    src = DATA / "llama-tiny-gqa"
    dst = OUT / "llama-bin-sharded"
    copy_text(src, dst)
    model = AutoModelForCausalLM.from_pretrained(src, torch_dtype=torch.bfloat16)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    names = sorted(state)
    half = len(names) // 2
    shards = {"pytorch_model-00001-of-00002.bin": names[:half], "pytorch_model-00002-of-00002.bin": names[half:]}
    weight_map = {}
    for file, keys in shards.items():
        torch.save({k: state[k] for k in keys}, dst / file)
        weight_map.update({k: file for k in keys})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (dst / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    save_file({k: v.clone() for k, v in state.items()}, OUT / "llama-bf16.safetensors")


def views():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(6, 10, generator=g)
    shared = torch.arange(40, dtype=torch.float64)
    param = torch.nn.Parameter(torch.randn(3, 4, generator=g, dtype=torch.float16))
    tensors = collections.OrderedDict([
        ("transposed", base.t()),                              # strides (1, 10)
        ("rows", base[2:5]),                                   # offset 20, contiguous
        ("column", base[:, 3]),                                # offset 3, stride 10
        ("shared.a", shared[5:15].view(2, 5)),                 # two views of one f64 storage
        ("shared.b", shared[30:]),
        ("expanded", torch.randn(1, 5, generator=g).expand(4, 5)),  # stride 0
        ("scalar", torch.tensor(2.5)),
        ("empty", torch.zeros(0, 3)),
        ("param", param),
        ("bf16", torch.randn(2, 3, generator=g).to(torch.bfloat16)),
        ("f16", torch.randn(5, generator=g).to(torch.float16)),
        ("i64", torch.tensor([[-(2 ** 40), 7], [0, 2 ** 62]], dtype=torch.int64)),
        ("i32", torch.tensor([-5, 1 << 30], dtype=torch.int32)),
        ("i8", torch.tensor([-128, 127, 3], dtype=torch.int8)),
        ("u8", torch.tensor([0, 255, 9], dtype=torch.uint8)),
        ("bool", torch.tensor([[True, False], [False, True]])),
        ("mask", torch.tril(torch.ones(4, 4, dtype=torch.bool)).view(1, 1, 4, 4)),
    ])
    torch.save(tensors, OUT / "views.bin", pickle_protocol=4)
    torch.save(tensors, OUT / "views-p2.bin")
    save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, OUT / "views.safetensors")
    torch.save({"w": torch.ones(2, 2)}, OUT / "legacy.bin", _use_new_zipfile_serialization=False)


def main():
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    gpt2()
    llama()
    views()
    for p in sorted(OUT.rglob("*")):
        if p.is_file():
            print(p.relative_to(ROOT), p.stat().st_size)


if __name__ == "__main__":
    main()
