#!/usr/bin/env python3
"""The `tokenizers` peer of bench/tokenizer_bench: Hugging Face's Rust tokenizer,
one thread, encoding the benchmark text line by line as Scribe does.

    tokenizers_peer.py TEXT FOLDER... [--budget SECONDS] [--json FILE]

For each FOLDER/tokenizer.json, two ways: encode(line, add_special_tokens=False)
for every line of TEXT (UTF-8), and encode_batch(lines) (one call: no Python
between lines; one thread, TOKENIZERS_PARALLELISM is off), each repeated while the
runs fit in --budget seconds (at least 3); MB/s = the text's bytes / the median
run; and the number of ids the text makes (which Scribe's must equal).
"""
import argparse
import json
import os
import statistics
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("text")
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--budget", type=float, default=3.0)
    ap.add_argument("--json")
    a = ap.parse_args()
    import tokenizers
    data = open(a.text, "rb").read()
    lines = data.decode("utf-8").split("\n")
    out = {"tokenizers": tokenizers.__version__, "bytes": len(data), "results": {}}
    for folder in a.folders:
        tok = tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        result = {}
        for way, run in (("lines", lambda: sum(len(tok.encode(line, add_special_tokens=False).ids) for line in lines)),
                         ("batch", lambda: sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False)))):
            times, ids = [], 0
            start = time.perf_counter()
            while len(times) < 3 or time.perf_counter() - start < a.budget:
                t0 = time.perf_counter()
                ids = run()
                times.append(time.perf_counter() - t0)
            result[way] = {"mb_per_s": len(data) / statistics.median(times) / 1e6, "ids": ids, "runs": len(times)}
        out["results"][folder] = result
    print(json.dumps(out, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
