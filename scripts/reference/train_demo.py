#!/usr/bin/env python3
"""The PyTorch cross-check of the README's demo model: a small GPT-2 on the King James Bible,
on one CPU core. The demo model itself (models/demo-gpt2) is trained by `scribe train`
(scripts/train_demo.sh) with this script's tokenizer, architecture and optimiser settings;
this script made the tokenizer, and trains the same model with PyTorch for the comparison in
the model's README (wall time for the same steps, validation loss).

What it writes: out/demo-pt/ (or --out)
    model.safetensors, config.json         GPT2LMHeadModel.save_pretrained(safe_serialization=True),
                                           float32 weights (about 17 MB; the LM head is tied to wte)
    tokenizer.json, vocab.json, merges.txt byte-level BPE (GPT-2 settings), <|endoftext|> special
    tokenizer_config.json                  so transformers' AutoTokenizer loads the folder
    README.md                              what it is, the text and its licence, the command,
                                           the losses, the time, the sizes, sample continuations
  and, in --work (default /tmp/scribe-demo-train): kjv.txt (the training text) and train.log.

The text: the King James Version (1611; public domain, its copyright long expired), from
Debian's package bible-kjv-text, read through the `bible` program of package bible-kjv
(its data file is a compressed custom format): `bible -f Gen1:1-Rev22:21` prints one verse a
line prefixed by its reference ("Ge1:1 In the beginning ..."); the script drops the references
and keeps one verse a line (31,102 verses, 4.1 MB of ASCII). If `bible` is missing the
script runs `apt-get install -y bible-kjv` when it is root, else it says what to install.

Steps and time (2-core machine, one core used):
  1. extract the text                        < 1 s
  2. train the BPE tokenizer (vocab 4000)    ~ 10 s
  3. tokenize (~1.04 M tokens, ~4 bytes a token; last 2% held out for validation)   ~ 5 s
  4. train GPT-2 (4 layers, n_embd 256, 8 heads, n_positions 256, gelu_new, dropout 0) with
     AdamW (lr 1e-3, betas 0.9/0.95, weight decay 0.1 on matrices), 100 warmup steps then a
     cosine to 1e-4, random windows of 128 tokens, batch 16, gradient clipping 1.0, on ONE
     thread (torch.set_num_threads(1)), time-boxed by --minutes (default 33): the cosine follows
     the fraction of the time budget used, so the run ends on schedule whatever the speed of
     the machine (--steps N makes it a fixed step count instead)
  5. save, reload from disk, validation loss, HF greedy and top-k samples of "In the beginning",
     README.md                                ~ 30 s

Run (from the repository root; about 35 minutes in all):
  bash -c 'source scripts/setup.sh && scribe_setup_reference'   # .venv-ref with torch etc.
  apt-get install -y bible-kjv                                    # as root, or via sudo
  nohup .venv-ref/bin/python scripts/reference/train_demo.py --steps 1604 > /tmp/train_demo.out 2>&1 &
  (--steps 1604: the steps of scripts/train_demo.sh; on a Zen 5 core 20.5 minutes, against
  16.4 for `scribe train`, both alone on the machine)
"""

import os

# One thread everywhere (the machine's other core belongs to others); set before torch loads.
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_v] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

EOT = "<|endoftext|>"
ROOT = Path(__file__).resolve().parents[2]
PROMPT = "In the beginning"


def log(msg: str, fh=None) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    if fh is not None:
        fh.write(line + "\n")
        fh.flush()


def get_text(work: Path) -> str:
    """The KJV text, one verse a line, from Debian's bible-kjv(-text)."""
    if shutil.which("bible") is None:
        if os.geteuid() == 0:
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", "bible-kjv"], check=True, env=env)
        else:
            sys.exit("train_demo: needs the `bible` program: sudo apt-get install bible-kjv")
    raw = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True,
                         text=True).stdout
    ref = re.compile(r"^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ ")
    verses = []
    for line in raw.splitlines():
        m = ref.match(line)
        assert m, line
        verses.append(line[m.end():].strip())
    assert len(verses) == 31102, len(verses)
    text = "\n".join(verses) + "\n"
    (work / "kjv.txt").write_text(text)
    return text


def train_tokenizer(text: str, vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
    assert tok.get_vocab_size() == vocab_size
    return tok


def lr_at(step: int, progress: float, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


@torch.no_grad()
def eval_loss(model, data: torch.Tensor, ctx: int, batch: int, n_batches: int) -> float:
    model.eval()
    g = torch.Generator().manual_seed(1234)
    losses = []
    for _ in range(n_batches):
        starts = torch.randint(0, len(data) - ctx - 1, (batch,), generator=g)
        x = torch.stack([data[s:s + ctx] for s in starts])
        losses.append(float(model(x, labels=x).loss))
    model.train()
    return sum(losses) / len(losses)


def folder_size(folder: Path) -> dict:
    return {f.name: f.stat().st_size for f in sorted(folder.iterdir()) if f.is_file()}


def main() -> int:
    ap = argparse.ArgumentParser(description="Train the demo GPT-2 on the KJV, one CPU core.")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "demo-pt")
    ap.add_argument("--work", type=Path, default=Path("/tmp/scribe-demo-train"))
    ap.add_argument("--minutes", type=float, default=33.0, help="training time box")
    ap.add_argument("--steps", type=int, default=0, help="fixed step count instead of a time box")
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    fh = open(args.work / "train.log", "w")
    t_start = time.time()
    versions = dict(torch=torch.__version__, transformers=transformers.__version__,
                    tokenizers=tokenizers.__version__, numpy=np.__version__)
    log(f"versions {versions}; threads {torch.get_num_threads()}; args {vars(args)}", fh)

    # 1-3: text, tokenizer, ids.
    text = get_text(args.work)
    log(f"text: {len(text)} bytes, {text.count(chr(10))} verses", fh)
    tok = train_tokenizer(text, args.vocab)
    for stale in ("model.safetensors", "generation_config.json"):
        (args.out / stale).unlink(missing_ok=True)
    tok.save(str(args.out / "tokenizer.json"))
    tok.model.save(str(args.out))
    eot = tok.token_to_id(EOT)
    GPT2TokenizerFast(vocab_file=str(args.out / "vocab.json"),
                      merges_file=str(args.out / "merges.txt"),
                      tokenizer_file=str(args.out / "tokenizer.json"),
                      bos_token=EOT, eos_token=EOT, unk_token=EOT,
                      add_prefix_space=False).save_pretrained(str(args.out))
    hf_tok = GPT2TokenizerFast.from_pretrained(str(args.out))
    ids = []
    for enc in tok.encode_batch(text.splitlines(keepends=True)):
        ids.extend(enc.ids)
    data = torch.tensor(ids, dtype=torch.long)
    n_val = len(data) // 50
    train_data, val_data = data[:-n_val], data[-n_val:]
    log(f"tokenizer: vocab {tok.get_vocab_size()}, eos id {eot}; {len(data)} tokens "
        f"({len(text) / len(data):.2f} bytes/token); train {len(train_data)}, val {len(val_data)}", fh)

    # 4: model and training.
    config = GPT2Config(vocab_size=args.vocab, n_positions=256, n_embd=256, n_layer=4, n_head=8,
                        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, bos_token_id=eot, eos_token_id=eot)
    model = GPT2LMHeadModel(config)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params} parameters (LM head tied)", fh)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(args.seed)
    budget = args.minutes * 60.0
    t0 = time.time()
    step, running, history = 0, [], []
    while True:
        elapsed = time.time() - t0
        progress = step / args.steps if args.steps else elapsed / budget
        if progress >= 1.0:
            break
        lr = lr_at(step, progress, args)
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(train_data) - args.ctx - 1, (args.batch,), generator=g)
        x = torch.stack([train_data[s:s + args.ctx] for s in starts])
        loss = model(x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        step += 1
        if step % 25 == 0:
            el = time.time() - t0
            avg = sum(running[-25:]) / len(running[-25:])
            history.append((step, avg))
            log(f"step {step:5d}  loss {avg:.4f}  lr {lr:.2e}  elapsed {el / 60:6.2f} min  "
                f"{el / step:.3f} s/step", fh)
        if step % 500 == 0:
            log(f"step {step:5d}  val loss {eval_loss(model, val_data, args.ctx, args.batch, 10):.4f}", fh)
    train_s = time.time() - t0
    final_train = sum(running[-50:]) / max(1, len(running[-50:]))
    log(f"training done: {step} steps, {step * args.batch * args.ctx} tokens seen "
        f"({step * args.batch * args.ctx / len(train_data):.2f} epochs), {train_s / 60:.1f} min, "
        f"train loss (last 50 steps) {final_train:.4f}", fh)

    # 5: save, reload, evaluate, sample.
    model.eval()
    model.save_pretrained(str(args.out), safe_serialization=True)
    (args.out / "generation_config.json").unlink(missing_ok=True)
    os.chmod(args.out / "model.safetensors", 0o644)  # safetensors writes 0600
    model = GPT2LMHeadModel.from_pretrained(str(args.out)).eval()
    val = eval_loss(model, val_data, args.ctx, args.batch, 40)
    log(f"validation loss (held-out last 2%, 40 x {args.batch} windows of {args.ctx}) {val:.4f}", fh)
    enc = hf_tok(PROMPT, return_tensors="pt")
    with torch.no_grad():
        greedy = model.generate(**enc, do_sample=False, max_new_tokens=60, pad_token_id=eot)
        torch.manual_seed(1234)
        topk = model.generate(**enc, do_sample=True, top_k=40, temperature=0.8,
                              max_new_tokens=60, pad_token_id=eot)
    greedy_text = hf_tok.decode(greedy[0])
    topk_text = hf_tok.decode(topk[0])
    log(f"greedy: {greedy_text!r}", fh)
    log(f"top-k:  {topk_text!r}", fh)

    sizes = folder_size(args.out)
    sizes.pop("README.md", None)
    total_s = time.time() - t_start
    hist_lines = "\n".join(f"| {s} | {l:.3f} |" for s, l in history[::max(1, len(history) // 12)])
    weights_mb = sizes["model.safetensors"] / 1e6
    readme = f"""# demo-gpt2: a small GPT-2 trained on the King James Bible

A {n_params / 1e6:.2f} M-parameter GPT-2 (`GPT2LMHeadModel`) for the Scribe README's demo. It
was trained from scratch on one CPU core in {train_s / 60:.0f} minutes, so it writes text in the
style of the King James Bible (often repeating its stock phrases), not sense.

Made by `scripts/reference/train_demo.py` (see the top of that script for each step):

    bash -c 'source scripts/setup.sh && scribe_setup_reference'
    apt-get install -y bible-kjv
    .venv-ref/bin/python scripts/reference/train_demo.py

## Training text and licence

The King James Version (Authorized Version, 1611) of the Bible: public domain (its copyright
expired long ago; Debian's `bible-kjv-text` copyright file says the same). It was read from
Debian's package `bible-kjv-text` through the `bible` program of `bible-kjv`
(`bible -f Gen1:1-Rev22:21`), references removed, one verse a line: {len(text)} bytes,
31,102 verses. The text itself is not stored here; the script regenerates it.

## Model

| | |
| --- | --- |
| architecture | GPT-2: {config.n_layer} layers, n_embd {config.n_embd}, {config.n_head} heads (head_dim {config.n_embd // config.n_head}), n_inner 4*n_embd, n_positions {config.n_positions}, `gelu_new`, layer_norm_epsilon {config.layer_norm_epsilon}, LM head tied to `wte` |
| parameters | {n_params} |
| weights | `model.safetensors`, **float32**, {weights_mb:.1f} MB (float32 fits the 20 MB limit, so no conversion) |
| tokenizer | byte-level BPE (GPT-2 settings: ByteLevel pre-tokenizer with GPT-2's regex, add_prefix_space=false, ByteLevel decoder) trained with `tokenizers` on the same text; vocab {args.vocab}; `<|endoftext|>` is id {eot} (bos = eos); {len(text) / len(data):.2f} bytes per token |
| files | {", ".join(f"`{k}` {v / 1e3:.0f} kB" for k, v in sizes.items())}; total {sum(sizes.values()) / 1e6:.1f} MB |

## Training

| | |
| --- | --- |
| data | {len(data)} tokens; the last 2% ({n_val} tokens, the end of Revelation) held out |
| optimiser | AdamW, lr {args.lr} after {args.warmup} warmup steps, cosine to {args.min_lr}, betas 0.9/0.95, weight decay 0.1 on matrices, gradient clip 1.0, dropout 0 |
| batches | {args.batch} random windows of {args.ctx} tokens |
| compute | one CPU thread (`torch.set_num_threads(1)`), {train_s / 60:.1f} minutes ({'fixed ' + str(args.steps) + ' steps' if args.steps else 'time box ' + str(args.minutes) + ' minutes'}); whole script {total_s / 60:.1f} minutes |
| steps | {step} ({step * args.batch * args.ctx} tokens, {step * args.batch * args.ctx / len(train_data):.2f} epochs) |
| final loss | train {final_train:.3f} (mean of the last 50 steps), validation {val:.3f} (nats/token) |
| versions | torch {versions['torch']}, transformers {versions['transformers']}, tokenizers {versions['tokenizers']} |

Loss (mean of 25 steps):

| step | loss |
| --- | --- |
{hist_lines}

## Samples (Hugging Face `generate`, prompt "{PROMPT}", 60 new tokens)

Greedy (`do_sample=False`):

> {greedy_text.replace(chr(10), chr(10) + '> ')}

Top-k sampling (`do_sample=True, top_k=40, temperature=0.8`, `torch.manual_seed(1234)`):

> {topk_text.replace(chr(10), chr(10) + '> ')}
"""
    (args.out / "README.md").write_text(readme)
    (args.work / "summary.json").write_text(json.dumps(dict(
        steps=step, train_minutes=train_s / 60, final_train_loss=final_train, val_loss=val,
        greedy=greedy_text, topk=topk_text, sizes=sizes, versions=versions), indent=1))
    log(f"wrote {args.out}: {sizes}; total {total_s / 60:.1f} min", fh)
    assert sum(sizes.values()) <= 20_000_000
    return 0


if __name__ == "__main__":
    sys.exit(main())
