#!/usr/bin/env bash
# scribe generate --draft: speculative decoding through the program. The demo model
# with a draft made of its first 2 layers (written here), and a tiny LLaMA with its
# first layer: greedy text equal to the model's own at TP 1, TP 2 (threads) and under
# mpirun -np 2; the acceptance and speed-up lines; seeded sampling repeats; export-hlo
# --speculate writes the verify module; clear errors for bad drafts and flags.
#   speculative.sh SCRIBE DATA_DIR WORK_DIR
set -euo pipefail
scribe=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/common.sh"
demo=$(cd "$(dirname "$0")/../../models/demo-gpt2" && pwd)

first_layers() {  # first_layers SRC DST N: a folder of SRC's first N layers (config, weights, tokenizer)
  python3 - "$1" "$2" "$3" <<'PY'
import json, os, re, shutil, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(dst, exist_ok=True)
c = json.load(open(os.path.join(src, "config.json")))
for k in ("n_layer", "num_hidden_layers"):
    if k in c:
        c[k] = n
json.dump(c, open(os.path.join(dst, "config.json"), "w"))
data = open(os.path.join(src, "model.safetensors"), "rb").read()
size = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + size])
out, blobs, at = {}, [], 0
for name, e in header.items():
    if name == "__metadata__":
        continue
    m = re.search(r"(?:^|\.)(?:h|layers)\.(\d+)\.", name)
    if m and int(m.group(1)) >= n:
        continue
    b, end = e["data_offsets"]
    blob = data[8 + size + b:8 + size + end]
    out[name] = {"dtype": e["dtype"], "shape": e["shape"], "data_offsets": [at, at + len(blob)]}
    at += len(blob)
    blobs.append(blob)
text = json.dumps(out).encode()
text += b" " * ((8 - len(text) % 8) % 8)
open(os.path.join(dst, "model.safetensors"), "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
    if os.path.exists(os.path.join(src, f)):
        shutil.copy(os.path.join(src, f), dst)
PY
}
first_layers "$demo" "$work/demo-2" 2
first_layers "$data/llama-tiny-gqa" "$work/llama-1" 1

want=$("$scribe" generate "$demo" --greedy --max-new-tokens 40 --threads 1 --quiet)
for k in 1 3 6; do
  got=$("$scribe" generate "$demo" --greedy --max-new-tokens 40 --threads 1 --draft "$work/demo-2" --speculate $k 2>"$work/err") \
    || fail "--speculate $k: $(cat "$work/err")"
  [ "$got" = "$want" ] || fail "--speculate $k: got '$got', want '$want'"
  grep -q "^speculative: K $k; the draft proposed [0-9]* tokens, [0-9]* accepted" "$work/err" || fail "no acceptance line: $(cat "$work/err")"
  grep -q "^speed-up: [0-9.]*x over the model decoding alone" "$work/err" || fail "no speed-up line: $(cat "$work/err")"
  grep -q "^draft .*demo-2: GPT-2, 2 layers" "$work/err" || fail "no draft line: $(cat "$work/err")"
done
echo "ok: greedy text with a draft equals the model's own (K 1, 3, 6), with the acceptance and speed-up lines"

got=$("$scribe" generate "$demo" --greedy --max-new-tokens 40 --tp 2 --draft "$work/demo-2" --quiet) || fail "--tp 2 with a draft"
[ "$got" = "$want" ] || fail "--tp 2 with a draft: got '$got', want '$want'"
command -v mpirun >/dev/null || fail "mpirun not found (the setup installs openmpi-bin)"
got=$(mpirun -np 2 "$scribe" generate "$demo" --greedy --max-new-tokens 40 --draft "$work/demo-2" --speculate 4 2>"$work/err") \
  || fail "mpirun -np 2 with a draft: $(cat "$work/err")"
[ "$got" = "$want" ] || fail "mpirun -np 2 with a draft: got '$got', want '$want'"
llama=$("$scribe" generate "$data/llama-tiny-gqa" --prompt The --greedy --no-stop --max-new-tokens 20 --quiet)
got=$("$scribe" generate "$data/llama-tiny-gqa" --prompt The --greedy --no-stop --max-new-tokens 20 --draft "$work/llama-1" --tp 2 --quiet)
[ "$got" = "$llama" ] || fail "llama with a 1-layer draft at --tp 2: got '$got', want '$llama'"
echo "ok: the same at TP 2 (threads), under mpirun -np 2, and for LLaMA"

a=$("$scribe" generate "$demo" --seed 3 --max-new-tokens 30 --draft "$work/demo-2" --quiet)
b=$("$scribe" generate "$demo" --seed 3 --max-new-tokens 30 --draft "$work/demo-2" --quiet)
[ "$a" = "$b" ] || fail "seeded sampling with a draft: '$a' vs '$b'"
echo "ok: seeded sampling with a draft repeats"

"$scribe" export-hlo "$demo" --out "$work/hlo" --buckets 16 --capacity 64 --speculate 4 >/dev/null
python3 - "$work/hlo/manifest.json" <<'PY' || fail "export-hlo --speculate: manifest"
import json, sys
m = json.load(open(sys.argv[1]))
v = [x for x in m["modules"] if x["kind"] == "verify"]
assert len(v) == 1 and v[0]["name"] == "verify_5" and v[0]["tokens"] == 5, v
p = {x["name"]: [d["extent"] for d in x["shape"]] for x in v[0]["parameters"]}
assert p["ids"] == [1, 5] and p["positions"] == [1], p
assert [d["extent"] for d in v[0]["outputs"][0]["shape"]] == [1, 5, 4000]
assert len(v[0]["aliases"]) == 8
PY
echo "ok: export-hlo --speculate 4 writes verify_5 (ids [1, 5], logits [1, 5, vocab], the caches aliased)"

expect_error "--speculate goes with --draft DIR" generate "$demo" --speculate 4
expect_error "--draft-dtype goes with --draft DIR" generate "$demo" --draft-dtype bf16
expect_error "--draft $work/none does not exist" generate "$demo" --draft "$work/none"
expect_error "--speculate must be" generate "$demo" --draft "$work/demo-2" --speculate 0
expect_error "--speculate must be" generate "$demo" --draft "$work/demo-2" --speculate 65
expect_error "runs one prompt at a time" generate "$demo" --draft "$work/demo-2" --prompt a --prompt b
expect_error "the draft must share the model's tokenizer" generate "$demo" --draft "$data/gpt2-tiny-a"
expect_error "is an encoder, not a decoder" generate "$demo" --draft "$data/bert-tiny-cls"
expect_error "does not go with --train" export-hlo "$demo" --out "$work/x" --train --speculate 2
expect_error "more than the KV cache's 4 positions" export-hlo "$demo" --out "$work/x" --buckets 4 --capacity 4 --speculate 4
echo "ok: bad drafts and flags are refused with what to do"
