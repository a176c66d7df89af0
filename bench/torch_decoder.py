#!/usr/bin/env python3
"""The PyTorch peer of bench/decoder_bench: the Hugging Face causal LM of any folder
(AutoModelForCausalLM: GPT2LMHeadModel, LlamaForCausalLM, ...), eager, on the CPU.

    torch_decoder.py FOLDER [--threads T] [--dtypes f32,f16,bf16] [--prompt-tokens 128]
                  [--decode-steps 32] [--budget SECONDS] [--json FILE]

For each dtype: loads FOLDER with from_pretrained(dtype=...), eval, torch.set_num_threads(T),
then measures, after one warm-up,
  prefill  one forward of the prompt (use_cache=True, logits of the last position only,
           as generate() and Scribe's decoder ask for): prompt tokens / median seconds
  decode   --decode-steps KV-cached forwards of one token each, greedy, each run from a
           copy of the prompt's cache: steps / median seconds of the loop
Medians over repetitions (at least 3, more while they fit in --budget seconds; one
where a single run takes longer than that). The
prompt is token i = (i * 7919 + 13) mod vocab, as decoder_bench makes it. A dtype that
fails (fp16 kernels missing on a CPU, say) is recorded with its error text instead
of numbers. Prints a JSON object (and writes it to --json FILE).
"""
import argparse
import copy
import json
import statistics
import sys
import time

DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


def median_seconds(f, budget, min_reps=3, max_reps=20):
    """f() (which returns its own seconds) once as warm-up, then repeated until `budget`
    seconds are spent, min_reps..max_reps times; one timed run only where the warm-up
    alone took longer than `budget` (fp16 prefill on a CPU without fp16 arithmetic)."""
    if f() > budget:
        min_reps = 1
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < budget):
        times.append(f())
    return statistics.median(times), len(times)


def measure(torch, model, prompt, steps, budget):
    ids = torch.tensor([prompt], dtype=torch.long)
    last = {}

    def prefill():
        t0 = time.perf_counter()
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        seconds = time.perf_counter() - t0
        last["out"] = out
        return seconds

    pre, pre_reps = median_seconds(prefill, budget)
    # Every decode run starts from a copy of the prompt's cache (the copy is not timed).
    first = last["out"]
    tokens = []

    def decode():
        past = copy.deepcopy(first.past_key_values)
        tok = first.logits[:, -1].argmax(-1, keepdim=True)
        made = [int(tok)]
        t0 = time.perf_counter()
        for _ in range(steps):
            out = model(input_ids=tok, past_key_values=past, use_cache=True)
            past = out.past_key_values
            tok = out.logits[:, -1].argmax(-1, keepdim=True)
            made.append(int(tok))
        seconds = time.perf_counter() - t0
        tokens[:] = made
        return seconds

    dec, dec_reps = median_seconds(decode, budget)
    return {
        "prefill_tokens_per_s": len(prompt) / pre, "prefill_ms": pre * 1e3, "prefill_reps": pre_reps,
        "decode_tokens_per_s": steps / dec, "decode_ms_per_token": dec * 1e3 / steps, "decode_reps": dec_reps,
        "greedy_tokens": tokens,  # the prefill's token, then one per decode step
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtypes", default="f32,f16,bf16")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--decode-steps", type=int, default=32)
    ap.add_argument("--budget", type=float, default=4.0, help="seconds per measurement, beyond the minimum reps")
    ap.add_argument("--json")
    a = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(a.threads)
    report = {"torch": torch.__version__, "transformers": transformers.__version__, "threads": a.threads,
              "torch_threads": torch.get_num_threads(), "prompt_tokens": a.prompt_tokens,
              "decode_steps": a.decode_steps, "runs": {}}
    for name in a.dtypes.split(","):
        t0 = time.perf_counter()
        try:
            model = AutoModelForCausalLM.from_pretrained(a.folder, dtype=getattr(torch, DTYPES[name])).eval()
            vocab = model.config.vocab_size
            prompt = [(i * 7919 + 13) % vocab for i in range(a.prompt_tokens)]
            with torch.inference_mode():
                r = measure(torch, model, prompt, a.decode_steps, a.budget)
            r["attn_implementation"] = getattr(model.config, "_attn_implementation", None)
            r["model_class"] = type(model).__name__
            del model
        except Exception as e:  # recorded, not fatal: the other dtypes still run
            r = {"error": f"{type(e).__name__}: {e}".strip()[:500]}
        r["wall_s"] = time.perf_counter() - t0
        report["runs"][name] = r
        if "error" in r:
            print(f"torch {name} {a.threads} thr: error: {r['error']}", file=sys.stderr)
        else:
            print(f"torch {name} {a.threads} thr: prefill {r['prefill_tokens_per_s']:.1f} tok/s, "
                  f"decode {r['decode_tokens_per_s']:.1f} tok/s ({r['wall_s']:.0f} s)", file=sys.stderr)
    text = json.dumps(report, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
