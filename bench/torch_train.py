#!/usr/bin/env python3
"""The PyTorch peer of bench/train_bench: one whole training step of any folder's
AutoModelForCausalLM, float32, eager, on the CPU: model(ids, attention_mask,
labels).loss.backward() (Hugging Face's causal-LM loss), clip_grad_norm_(1.0) and
torch.optim.AdamW(lr 1e-5, weight decay 0.01 on the matrices, none on biases and
norms), as train_bench's step does.

    torch_train.py FOLDER [--threads T] [--batch 4] [--seq 256] [--autocast] [--budget SECONDS] [--json FILE]

--autocast runs the forward pass and the loss under torch.autocast("cpu", dtype=torch.bfloat16)
(f32 weights and optimizer, the matrix products in bf16), PyTorch's mixed-precision step.

Tokens are (i * 7919 + 13) mod vocab over the batch, as train_bench makes them, every
position real. After one warm-up step, the median seconds of several steps (gradients
set to None after each step, as optimizer.zero_grad() does), and the step's peak memory:
the highest resident set size during the steps (sampled by a thread every
millisecond) less the resident size before the first step, so the weights (loaded
before) are not counted and the activations, gradients and workspace are.
Prints a JSON object (and writes it to --json FILE).
"""
import argparse
import json
import statistics
import time

from peak_rss import PeakRss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--budget", type=float, default=20.0)
    ap.add_argument("--json")
    ap.add_argument("--autocast", action="store_true")
    a = ap.parse_args()
    import torch
    import transformers
    torch.set_num_threads(a.threads)
    model = transformers.AutoModelForCausalLM.from_pretrained(a.folder, dtype=torch.float32, attn_implementation="eager")
    model.eval()  # dropout off, as Scribe's step has none
    vocab = model.config.vocab_size
    n = a.batch * a.seq
    ids = torch.tensor([(i * 7919 + 13) % vocab for i in range(n)], dtype=torch.long).view(a.batch, a.seq)
    mask = torch.ones_like(ids)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.01},
                             {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}], lr=1e-5)

    def step():
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast):
            loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0, float(loss.detach())

    with PeakRss() as peak:
        first, loss = step()
        times = []
        start = time.perf_counter()
        while len(times) < 3 or (time.perf_counter() - start < a.budget and len(times) < 20):
            times.append(step()[0])
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "threads": a.threads,
           "batch": a.batch, "seq": a.seq, "autocast": a.autocast, "loss": loss, "step_seconds": statistics.median(times),
           "steps": len(times), "tokens_per_second": n / statistics.median(times),
           "peak_bytes": peak.bytes}
    text = json.dumps(out)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
