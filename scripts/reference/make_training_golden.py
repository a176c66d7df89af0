#!/usr/bin/env python3
"""Make the training goldens of the tiny checkpoints in tests/data: 20 optimizer steps of
PyTorch (Hugging Face transformers, float32, eager attention, one thread, dropout off) from
the folder's weights, on batches drawn here, with two optimizers:

  adamw  torch.optim.AdamW(lr 3e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.1 on the
         weights of rank >= 2, none on biases and norm scales), transformers'
         get_cosine_schedule_with_warmup(5 warmup steps, 20 in all),
         torch.nn.utils.clip_grad_norm_(1.0), 2 micro-batches per step (loss / 2 each)
  sgd    torch.optim.SGD(lr 0.1, momentum 0.9, weight decay 1e-3 on the same weights),
         get_linear_schedule_with_warmup(2, 20), no clipping, 1 batch per step

    .venv-ref/bin/python scripts/reference/make_training_golden.py [--only NAME[,NAME]]

For each folder it writes training/<optimizer>/model.safetensors (every parameter after the
20th step, float32, under the folder's own names) and training/<optimizer>/steps.json:

  {"options": {...}, "batches": [[{"ids": [[...], ...], "lengths": [...]}, ...], ...],
   "steps": [{"loss": "...", "grad_norm": "...", "lr": "..."}, ...], versions, generator}

batches[s][j] is micro-batch j of step s: rows of `seq` ids drawn uniformly below vocab_size,
each row's first `lengths[r]` real and the rest padding (the end-of-text id, attention_mask
0, label -100). A step's loss is the mean of its micro-batches' losses, grad_norm the global
2-norm before clipping (clip_grad_norm_'s return value), lr the rate the step used.
The C++ tests and tests/xla/run_models.py run the same steps with Scribe and compare.

Without --only it also writes tests/data/optimizers.json: 12 steps of the optimizer's other
branches (SGD without momentum, with dampening, Nesterov; AdamW with beta1 < 0.5, a clip that
always clips; constant schedule with warmup; cosine with a least rate, min_lr) on a small
least-squares problem.
"""
import json
import sys
from pathlib import Path

import numpy as np
import safetensors
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_gradient_golden import parse_folders  # noqa: E402 (the same folders and flags)

STEPS, ROWS, SEQ = 20, 2, 12
RUNS = {
    "adamw": {"optimizer": "adamw", "lr": 3e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1,
              "schedule": "cosine", "warmup": 5, "total": STEPS, "clip": 1.0, "accumulate": 2},
    "sgd": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": False, "weight_decay": 1e-3,
            "schedule": "linear", "warmup": 2, "total": STEPS, "clip": 0.0, "accumulate": 1},
}


def optimizer_of(params, o):
    """torch.optim's optimizer and transformers' schedule for the options `o`; weight decay
    on the parameters of rank >= 2 only, as Hugging Face's Trainer groups them."""
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": o["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    if o["optimizer"] == "adamw":
        opt = torch.optim.AdamW(groups, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])
    else:
        opt = torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"], dampening=o["dampening"],
                              nesterov=o["nesterov"])
    if o["schedule"] == "constant":
        return opt, transformers.get_constant_schedule_with_warmup(opt, num_warmup_steps=o["warmup"])
    if o.get("min_lr", 0) > 0:
        return opt, transformers.get_cosine_with_min_lr_schedule_with_warmup(
            opt, num_warmup_steps=o["warmup"], num_training_steps=o["total"], min_lr=o["min_lr"])
    make = {"cosine": transformers.get_cosine_schedule_with_warmup,
            "linear": transformers.get_linear_schedule_with_warmup}[o["schedule"]]
    return opt, make(opt, num_warmup_steps=o["warmup"], num_training_steps=o["total"])


def draw_batches(rng, vocab, pad, accumulate):
    out = []
    for _ in range(STEPS):
        micro = []
        for _ in range(accumulate):
            lengths = rng.integers(SEQ // 2, SEQ + 1, size=ROWS)
            ids = rng.integers(0, vocab, size=(ROWS, SEQ))
            for r, n in enumerate(lengths):
                ids[r, n:] = pad
            micro.append({"ids": ids.tolist(), "lengths": lengths.tolist()})
        out.append(micro)
    return out


def run(folder: Path, name: str, o: dict) -> None:
    golden = json.loads((folder / "golden.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    pad = golden["eos_token_id"]
    rng = np.random.default_rng([ord(c) for c in folder.name + "/" + name])  # the same draw every time
    batches = draw_batches(rng, config["vocab_size"], pad, o["accumulate"])

    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation="eager",
                                                              dtype=torch.float32)
    model.eval()  # dropout off
    with safe_open(str(folder / "model.safetensors"), "pt") as st:
        names = list(st.keys())
    params = [model.get_parameter(n) for n in names]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in params} == trainable, f"{folder.name}: the checkpoint's tensors are not the model's parameters"
    opt, sched = optimizer_of(params, o)

    steps = []
    for micro in batches:
        lr = opt.param_groups[0]["lr"]
        loss_sum = 0.0
        for b in micro:
            ids = torch.tensor(b["ids"], dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, n in enumerate(b["lengths"]):
                mask[r, :n] = 1
            labels = ids.masked_fill(mask == 0, -100)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            (loss / o["accumulate"]).backward()
            loss_sum += float(loss)
        norm = torch.nn.utils.clip_grad_norm_(params, o["clip"] if o["clip"] > 0 else float("inf"))
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        steps.append({"loss": repr(loss_sum / o["accumulate"]), "grad_norm": repr(float(norm)), "lr": repr(lr)})

    out_dir = folder / "training" / name
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({n: p.detach().to(torch.float32).contiguous() for n, p in zip(names, params)},
              str(out_dir / "model.safetensors"))
    (out_dir / "model.safetensors").chmod(0o644)
    record = {
        "generator": "scripts/reference/make_training_golden.py",
        "transformers": transformers.__version__, "torch": torch.__version__,
        "safetensors": safetensors.__version__, "numpy": np.__version__,
        "options": o, "batches": batches, "steps": steps,
    }
    (out_dir / "steps.json").write_text(json.dumps(record, separators=(",", ":")) + "\n")
    print(f"== {folder.name} {name}: loss {float(steps[0]['loss']):.4f} -> {float(steps[-1]['loss']):.4f}, "
          f"grad norm {float(steps[0]['grad_norm']):.3f} -> {float(steps[-1]['grad_norm']):.3f}")


# The optimizer's other branches on a small least-squares problem, 12 steps each:
# loss = mean((x . w + b - y)^2) over a fixed batch, w [4, 3] decayed, b [3] not.
OPTIMIZER_CASES = {
    "sgd_plain": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0, "dampening": 0.0, "nesterov": False,
                  "weight_decay": 0.0, "schedule": "constant", "warmup": 0, "total": 12, "clip": 0.0},
    "sgd_dampening": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.8, "dampening": 0.5, "nesterov": False,
                      "weight_decay": 0.01, "schedule": "linear", "warmup": 3, "total": 12, "clip": 0.0},
    "sgd_nesterov": {"optimizer": "sgd", "lr": 0.03, "momentum": 0.9, "dampening": 0.0, "nesterov": True,
                     "weight_decay": 0.05, "schedule": "cosine", "warmup": 0, "total": 12, "clip": 0.5},
    "adamw_low_beta": {"optimizer": "adamw", "lr": 0.1, "beta1": 0.3, "beta2": 0.6, "eps": 1e-6, "weight_decay": 0.2,
                       "schedule": "constant", "warmup": 2, "total": 12, "clip": 0.0},
    "adamw_clipped": {"optimizer": "adamw", "lr": 0.02, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0,
                      "schedule": "linear", "warmup": 0, "total": 12, "clip": 0.01},
    "adamw_cosine_min_lr": {"optimizer": "adamw", "lr": 0.02, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8,
                            "weight_decay": 0.1, "schedule": "cosine", "warmup": 2, "total": 12, "clip": 1.0,
                            "min_lr": 0.004},
}


def make_optimizer_cases(data: Path) -> None:
    rng = np.random.default_rng(20261201)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = rng.standard_normal((6, 3)).astype(np.float32)
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    b0 = rng.standard_normal(3).astype(np.float32)
    out = {"generator": "scripts/reference/make_training_golden.py", "torch": torch.__version__,
           "x": x.tolist(), "y": y.tolist(), "w": w0.tolist(), "b": b0.tolist(), "cases": {}}
    for name, o in OPTIMIZER_CASES.items():
        w = torch.tensor(w0, requires_grad=True)
        b = torch.tensor(b0, requires_grad=True)
        opt, sched = optimizer_of([w, b], o)
        steps = []
        for _ in range(o["total"]):
            lr = opt.param_groups[0]["lr"]
            loss = ((torch.tensor(x) @ w + b - torch.tensor(y)) ** 2).mean()
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_([w, b], o["clip"] if o["clip"] > 0 else float("inf"))
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            steps.append({"loss": repr(float(loss)), "grad_norm": repr(float(norm)), "lr": repr(lr)})
        out["cases"][name] = {"options": dict(o, accumulate=1), "steps": steps,
                              "w": w.detach().tolist(), "b": b.detach().tolist()}
        print(f"== optimizer case {name}: loss {float(steps[0]['loss']):.4f} -> {float(steps[-1]['loss']):.4f}")
    (data / "optimizers.json").write_text(json.dumps(out, separators=(",", ":")) + "\n")


def main() -> int:
    args, names = parse_folders(__doc__.split("\n")[0])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if not args.only:
        make_optimizer_cases(args.data)
    for name in names:
        for run_name, o in RUNS.items():
            run(args.data / name, run_name, o)
    return 0


if __name__ == "__main__":
    sys.exit(main())
