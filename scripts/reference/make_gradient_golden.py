#!/usr/bin/env python3
"""Make the gradient goldens of the tiny checkpoints in tests/data: the causal-LM loss
of a right-padded batch and the gradient of every parameter, from Hugging Face
transformers on PyTorch (float32, eager attention, one thread, dropout off).

    .venv-ref/bin/python scripts/reference/make_gradient_golden.py [--only NAME[,NAME]]

For each folder made by make_golden.py it writes, next to the checkpoint:

  gradients/model.safetensors   d(loss)/d(parameter) for every tensor of the folder's
                                model.safetensors, under the same name and shape, float32
                                (a tied LM head's gradient is in the embedding's: both uses)
  gradients/loss.json           {"ids": [[...], [...]], "lengths": [n0, n1], "loss": "...",
                                 versions, "generator": this script}

The batch is the folder's two longest golden prompts (golden.json), right-padded with the
end-of-text id to the longer one, with attention_mask 1 on the real tokens and labels
equal to the ids with -100 on the padding: model(input_ids, attention_mask, labels).loss is
the mean cross-entropy of each real next token (transformers shifts the labels), and
loss.backward() gives the gradients. The C++ tests compare Scribe's loss and gradients of
the same batch with these, on the CPU backend and through XLA, at TP 1, 2 and 4.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import safetensors
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
FOLDERS = ["gpt2-tiny-a", "gpt2-tiny-b", "opt-tiny", "opt-tiny-post", "gptj-tiny",
           "llama-tiny-gqa", "llama-tiny-mqa", "mistral-tiny"]


def make_one(folder: Path) -> None:
    golden = json.loads((folder / "golden.json").read_text())
    prompts = sorted((p["ids"] for p in golden["prompts"]), key=len, reverse=True)[:2]
    pad = golden["eos_token_id"]
    n = len(prompts[0])
    ids = torch.full((2, n), pad, dtype=torch.long)
    mask = torch.zeros((2, n), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, :len(p)] = torch.tensor(p)
        mask[i, :len(p)] = 1
    labels = ids.masked_fill(mask == 0, -100)

    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager",
                                                              dtype=torch.float32)
    model.eval()  # dropout off; gradients still flow
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()

    with safe_open(str(folder / "model.safetensors"), "pt") as st:
        names = list(st.keys())
    grads = {}
    for name in names:
        p = model.get_parameter(name)
        assert p.grad is not None, (folder.name, name)
        grads[name] = p.grad.detach().to(torch.float32).contiguous()
    out_dir = folder / "gradients"
    out_dir.mkdir(exist_ok=True)
    save_file(grads, str(out_dir / "model.safetensors"))
    (out_dir / "model.safetensors").chmod(0o644)
    record = {
        "generator": "scripts/reference/make_gradient_golden.py",
        "transformers": transformers.__version__, "torch": torch.__version__,
        "safetensors": safetensors.__version__, "numpy": np.__version__,
        "ids": ids.tolist(), "lengths": [len(p) for p in prompts],
        "loss": repr(float(out.loss)),
    }
    (out_dir / "loss.json").write_text(json.dumps(record, separators=(",", ":")) + "\n")
    norms = sorted((float(g.norm()), k) for k, g in grads.items())
    print(f"== {folder.name}: loss {float(out.loss):.6f}, {len(grads)} gradients, "
          f"norms {norms[0][0]:.2e} ({norms[0][1]}) .. {norms[-1][0]:.2e} ({norms[-1][1]}), "
          f"{(out_dir / 'model.safetensors').stat().st_size} bytes")


def parse_folders(description):
    """--data DIR and --only NAME[,NAME] (the golden folders to make), as the golden scripts
    take them: returns the parsed arguments and the folder names, checked."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--only", metavar="NAME[,NAME]", help="only these folders: " + ", ".join(FOLDERS))
    args = ap.parse_args()
    names = FOLDERS
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in FOLDERS]
        if unknown or not names:
            ap.error(f"unknown folder name(s) {unknown}; known: {', '.join(FOLDERS)}")
    return args, names


def main() -> int:
    args, names = parse_folders(__doc__.split("\n")[0])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for name in names:
        make_one(args.data / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
