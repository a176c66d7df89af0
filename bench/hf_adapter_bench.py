#!/usr/bin/env python3
"""Tokens/s through Hugging Face's generate() driving Scribe (scribe.hf), against
plain Scribe and against transformers on PyTorch, same model, same run.

    scribe   scribe.Decoder.generate(prompt, N, stop_at_eos=False)
    adapter  HuggingFaceGenerationModelAdapter(decoder).generate(ids, generation_config=
             GenerationConfig(max_new_tokens=N, do_sample=False, eos_token_id=None)):
             transformers' loop, Scribe's model
    torch    AutoModelForCausalLM.from_pretrained(MODEL).generate(ids, same arguments),
             eager, float32, torch.set_num_threads(T)

Each is timed from Python around the whole call (wall clock): new tokens (every
row's) / seconds, prefill included; --batch B rows of different lengths, which
transformers gets padded on the left. Runs alternate (scribe, adapter, torch, scribe, ...) after one
warm-up each; medians are reported, with the adapter's cost per token over plain
Scribe's. The prompt is the text --prompt, tokenized by the folder's tokenizer
(without one, --prompt-tokens tokens as decoder_bench makes them).

    PYTHONPATH=build/python .venv-ref/bin/python bench/hf_adapter_bench.py \\
        --model models/demo-gpt2 [--tokens 128] [--batch 1] [--runs 5] [--threads 2] [--json FILE]
"""
import argparse
import json
import statistics
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a decoder folder (Hugging Face layout)")
    ap.add_argument("--prompt", default="In the beginning God created the heaven and the earth.")
    ap.add_argument("--prompt-tokens", type=int, default=16,
                    help="a folder without a tokenizer: the prompt is token i = (i * 7919 + 13) mod vocab, i < this (default 16)")
    ap.add_argument("--tokens", type=int, default=128, help="new tokens a run (default 128)")
    ap.add_argument("--batch", type=int, default=1, help="rows of different lengths, padded on the left (default 1)")
    ap.add_argument("--runs", type=int, default=5, help="runs of each (default 5)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    import scribe
    from scribe.hf import HuggingFaceGenerationModelAdapter

    torch.set_num_threads(a.threads)
    lm = scribe.Decoder.from_pretrained(a.model, dtype="f32", threads=a.threads)
    adapter = HuggingFaceGenerationModelAdapter(lm)
    reference = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    if lm.tokenizer is not None:
        ids = lm.tokenizer.encode(a.prompt)
    else:  # a folder without a tokenizer (bench/make_gpt2_124m.py's): decoder_bench's prompt
        ids = np.array([(i * 7919 + 13) % lm.vocab_size for i in range(a.prompt_tokens)], dtype=np.int32)
    # --batch B: row b is the prompt less its last b tokens (at least one), so the
    # rows differ in length; transformers gets them padded on the left.
    rows = [ids[: max(1, len(ids) - b)] for b in range(a.batch)]
    columns = max(len(r) for r in rows)
    tensor = torch.zeros((a.batch, columns), dtype=torch.long)
    mask = torch.zeros_like(tensor)
    for b, r in enumerate(rows):
        tensor[b, columns - len(r):] = torch.from_numpy(np.asarray(r, dtype=np.int64))
        mask[b, columns - len(r):] = 1
    made = a.batch * a.tokens
    # Exactly N tokens each: no end token (as stop_at_eos=False), rather than
    # min_new_tokens, a logits processor whose cost would be counted too.
    gc = GenerationConfig(max_new_tokens=a.tokens, do_sample=False, eos_token_id=None, pad_token_id=0)
    hf_args = dict(attention_mask=mask, generation_config=gc)

    def run_scribe():
        t0 = time.perf_counter()
        out = lm.generate(rows, a.tokens, stop_at_eos=False)
        s = time.perf_counter() - t0
        assert all(len(t) == a.tokens for t in out.tokens)
        return made / s, [t.tolist() for t in out.tokens]

    def run_transformers(model):
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(tensor, **hf_args)
        s = time.perf_counter() - t0
        assert out.shape[1] - columns == a.tokens
        return made / s, out[:, columns:].tolist()

    def run_adapter():
        return run_transformers(adapter)

    def run_torch():
        return run_transformers(reference)

    runs = {"scribe": run_scribe, "adapter": run_adapter, "torch": run_torch}
    rates = {k: [] for k in runs}
    tokens = {}
    for k, f in runs.items():
        tokens[k] = f()[1]  # warm-up: graphs built, caches warm
    for _ in range(a.runs):
        for k, f in runs.items():
            rates[k].append(f()[0])
    med = {k: statistics.median(v) for k, v in rates.items()}

    print(f"model {a.model}, f32, {a.threads} threads, batch {a.batch} (prompts of {len(rows[-1])}..{len(ids)} tokens), "
          f"{a.tokens} new tokens a row (greedy), "
          f"median of {a.runs} alternating runs, prefill included")
    names = {"scribe": "Scribe (Decoder.generate)", "adapter": "transformers generate() over Scribe",
             "torch": "transformers generate() on PyTorch"}
    for k in runs:
        print(f"  {names[k]:<38} {med[k]:9.1f} tokens/s  (runs: {', '.join(f'{x:.1f}' for x in rates[k])})")
    per_token = 1e3 * (1 / med["adapter"] - 1 / med["scribe"])
    print(f"  adapter / Scribe: {med['adapter'] / med['scribe']:.3f}  ({per_token:+.3f} ms a token in transformers' loop)")
    print(f"  adapter / PyTorch: {med['adapter'] / med['torch']:.2f}x")
    same = tokens["adapter"] == tokens["scribe"]
    print(f"  the adapter's tokens {'equal' if same else 'DIFFER FROM'} Scribe's; PyTorch's "
          f"{'equal' if tokens['torch'] == tokens['scribe'] else 'differ (float rounding on a long greedy run)'}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"tokens_per_second": med, "runs": rates, "adapter_ms_per_token_over_scribe": per_token,
                       "adapter_equals_scribe": same}, f, indent=2)


if __name__ == "__main__":
    main()
