#!/usr/bin/env python3
"""The PyTorch peer of bench/encoder_bench: the Hugging Face sequence classifier of a
folder (AutoModelForSequenceClassification), eager, on the CPU.

    torch_encoder.py FOLDER [--threads T] [--dtypes f32,bf16] [--seq 128] [--batches 1,8]
                     [--budget SECONDS] [--json FILE]

For each dtype: from_pretrained(dtype=...), eval, torch.set_num_threads(T), then for each
batch: one forward of `batch` sequences of `seq` tokens (input_ids, attention_mask of
ones, token_type_ids of zeros; the logits), after one warm-up, repeated while they fit
in --budget seconds (at least 3): batch / median seconds = sequences/s. Token i of every
sequence is (i * 7919 + 13) mod vocab, as encoder_bench makes it. A dtype that fails is
recorded with its error text. Prints a JSON object (and writes it to --json FILE).
"""
import argparse
import json
import statistics
import time

DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--budget", type=float, default=3.0)
    ap.add_argument("--json")
    a = ap.parse_args()
    import torch
    import transformers
    torch.set_num_threads(a.threads)
    out = {"torch": torch.__version__, "transformers": transformers.__version__, "threads": a.threads, "seq": a.seq, "dtypes": {}}
    for name in a.dtypes.split(","):
        try:
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                a.folder, dtype=getattr(torch, DTYPES[name]), attn_implementation="sdpa").eval()
            vocab = model.config.vocab_size
            cells = {}
            for batch in (int(b) for b in a.batches.split(",")):
                ids = torch.tensor([[(i * 7919 + 13) % vocab for i in range(a.seq)]] * batch, dtype=torch.long)
                args = dict(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))
                with torch.inference_mode():
                    model(**args)
                    times, start = [], time.perf_counter()
                    while len(times) < 3 or (time.perf_counter() - start < a.budget and len(times) < 50):
                        t0 = time.perf_counter()
                        model(**args)
                        times.append(time.perf_counter() - t0)
                s = statistics.median(times)
                cells[str(batch)] = {"sequences_per_s": batch / s, "ms": s * 1e3, "reps": len(times)}
            out["dtypes"][name] = cells
        except Exception as e:  # a dtype the CPU's kernels lack
            out["dtypes"][name] = {"error": f"{type(e).__name__}: {e}"}
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
