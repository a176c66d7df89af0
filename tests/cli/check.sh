#!/usr/bin/env bash
# The `scribe` program end to end on the tiny golden checkpoints: greedy text equal
# to Hugging Face's (golden.json), the tokens/s lines, export-hlo's files and
# manifest, inspect, --help, and clear errors (exit 1, a message naming the thing).
#   check.sh SCRIBE DATA_DIR WORK_DIR
set -euo pipefail
scribe=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/common.sh"

# Greedy continuation of tiny-b's first golden prompt ("The" -> its 12 tokens).
want=$(python3 -c "import json,sys; p=json.load(open('$data/gpt2-tiny-b/golden.json'))['prompts'][0]; sys.stdout.write(p['text']+p['greedy_text'])")
got=$("$scribe" generate "$data/gpt2-tiny-b" --prompt The --greedy --no-stop --max-new-tokens 12 --threads 1 2>"$work/gen.err")
[ "$got" = "$want" ] || fail "greedy text: got '$got', want '$want'"
grep -q "prefill: 1 prompt tokens" "$work/gen.err" || fail "no prefill tokens/s line"
grep -q "decode:  11 tokens in 11 steps" "$work/gen.err" || fail "no decode tokens/s line"
grep -q "loading weights \[#*\] 100%" "$work/gen.err" || fail "no progress bar"
echo "ok: generate equals Hugging Face's greedy text: $got"

# A batch of two prompts, sampled with a seed: the same twice.
a=$("$scribe" generate "$data/gpt2-tiny-a" --prompt "The old" --prompt "He" --seed 5 --top-p 0.9 --max-new-tokens 8 --quiet)
b=$("$scribe" generate "$data/gpt2-tiny-a" --prompt "The old" --prompt "He" --seed 5 --top-p 0.9 --max-new-tokens 8 --quiet)
[ "$a" = "$b" ] || fail "sampling with a seed is not repeatable"
[ "$(echo "$a" | grep -c '^\[[01]\] ')" = 2 ] || fail "batch output: $a"
echo "ok: a seeded batch repeats"

"$scribe" export-hlo "$data/gpt2-tiny-a" --out "$work/hlo" --buckets 8,16 --capacity 32 --batch 2 >/dev/null
for f in prefill_8.hlo prefill_8.pb prefill_16.hlo prefill_16.pb decode.hlo decode.pb manifest.json; do
  [ -s "$work/hlo/$f" ] || fail "export-hlo did not write $f"
done
python3 - "$work/hlo/manifest.json" <<'PY' || fail "manifest"
import json, sys
m = json.load(open(sys.argv[1]))
assert [x["name"] for x in m["modules"]] == ["prefill_8", "prefill_16", "decode"], m["modules"]
d = m["modules"][2]
names = [p["name"] for p in d["parameters"]]
# Parameters numbered in the order of their names, each reported with its number.
assert names == sorted(names) and {"wte.weight", "cache.1.value", "positions", "ids"} <= set(names), names
assert [p["number"] for p in d["parameters"]] == list(range(len(names))), d["parameters"]
assert d["outputs"][0]["name"] == "logits" and [x["extent"] for x in d["outputs"][0]["shape"]] == [2, 301]
assert len(d["aliases"]) == 4 and d["outputs"][1]["name"] == "cache.0.key"
PY
grep -q "input_output_alias" "$work/hlo/decode.hlo" || fail "decode.hlo has no aliases"
echo "ok: export-hlo wrote 3 modules and the manifest"

"$scribe" export-hlo "$data/gpt2-tiny-a" --out "$work/train" --train --buckets 8 --batch 2 >/dev/null
for f in train_8.hlo train_8.pb manifest.json; do
  [ -s "$work/train/$f" ] || fail "export-hlo --train did not write $f"
done
python3 - "$work/train/manifest.json" <<'PY' || fail "train manifest"
import json, sys
m = json.load(open(sys.argv[1]))
(t,) = m["modules"]
assert t["kind"] == "train" and t["bucket"] == 8, t
names = {p["name"] for p in t["parameters"]}
assert {"ids", "lengths", "wte.weight"} <= names and not any(n.startswith("cache.") for n in names), names
outs = [o["name"] for o in t["outputs"]]
assert outs[0] == "loss" and t["outputs"][0]["shape"] == [] and t["outputs"][0]["dtype"] == "f32", t["outputs"][0]
weights = sorted(n for n in names if n not in ("ids", "lengths"))
assert sorted(o[len("grad."):] for o in outs[1:]) == weights, outs
wte = next(o for o in t["outputs"] if o["name"] == "grad.wte.weight")
assert [d["extent"] for d in wte["shape"]] == [301, 36], wte
PY
expect_error "--train and --all-logits do not go together" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --all-logits
expect_error "--train needs buckets of at least 2 positions" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --buckets 1
echo "ok: export-hlo --train wrote the training step: the loss and every weight's gradient"

# With the optimizer: first and last micro-batch modules, the state aliased.
"$scribe" export-hlo "$data/llama-tiny-gqa" --out "$work/step" --train --buckets 8 --batch 2 --optimizer adamw --lr 1e-3 \
  --schedule cosine --warmup 2 --steps 10 --weight-decay 0.1 --accumulate 2 >/dev/null
python3 - "$work/step/manifest.json" <<'PY' || fail "optimizer step manifest"
import json, sys
m = json.load(open(sys.argv[1]))
assert [x["kind"] for x in m["modules"]] == ["train_first", "train_last"], m["modules"]
first, last = m["modules"]
assert [o["name"] for o in first["outputs"]][:2] == ["loss", "accumulated.embed_tokens.weight"], first["outputs"]
names = [o["name"] for o in last["outputs"]]
assert names[:2] == ["loss", "grad_norm"] and "optimizer.step" in names and "optimizer.exp_avg_sq.lm_head.weight" in names, names
assert len(last["aliases"]) == len(names) - 2  # every weight and every state tensor updated in place
o = m["optimizer"]
assert o["optimizer"] == "adamw" and o["schedule"] == "cosine" and o["steps"] == 10 and o["accumulate"] == 2, o
assert "norm.weight" not in o["decayed"] and "lm_head.weight" in o["decayed"], o["decayed"]
PY
expect_error "--optimizer takes adamw or sgd, not \"lamb\"" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --optimizer lamb
expect_error "give the run's length with --steps N" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --optimizer sgd --schedule cosine
expect_error "--warmup 20 is longer than --steps 10" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --warmup 20 --steps 10
expect_error "it needs --train and an optimizer" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --dp 2
expect_error "tp degree 3 does not divide n_head (4)" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --optimizer adamw --dp 2 --tp 3
expect_error "--bucket-size goes with --dp" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --optimizer adamw --bucket-size 4K
expect_error "--precision is for a training step: add --train" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --precision bf16-sr
expect_error "--seed is for a training step: add --train" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --seed 3
expect_error "give --precision (the training step's arithmetic) or --dtype, not both" export-hlo "$data/gpt2-tiny-a" --out "$work/x" \
  --train --precision bf16 --dtype bf16
expect_error "--precision \"half\" is not a precision" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --precision half
expect_error "--momentum is SGD's; --optimizer is adamw" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --momentum 0.9
expect_error "Nesterov momentum needs a momentum > 0" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --optimizer sgd --nesterov --schedule constant
expect_error "--lr must be a number between 0 and" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --lr -1 --schedule constant
expect_error "--accumulate must be between 1 and" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --accumulate 0 --schedule constant
echo "ok: export-hlo --train --optimizer wrote the step modules with the state aliased, and refuses bad optimizer flags"

out=$("$scribe" inspect "$data/gpt2-tiny-a" --batch 2 --capacity 64)
contains "$out" "h.1.attn.c_attn.weight *f32 *\[36, 108\] *15552" || fail "inspect weights: $out"
contains "$out" "KV cache (f32, batch 2, 64 positions): 73728 bytes" || fail "inspect cache: $out"
echo "ok: inspect"

# Into a file first: grep -q stops reading at its match, and a help text longer
# than stdout's buffer would then end its writer with SIGPIPE, failing the pipe.
for cmd in generate export-hlo inspect; do
  "$scribe" $cmd --help >"$work/help.txt" || fail "$cmd --help exited $?"
  grep -q "usage: scribe $cmd" "$work/help.txt" || fail "$cmd --help"
done
"$scribe" export-hlo --help >"$work/help.txt"
grep -q -- "--optimizer NAME" "$work/help.txt" || fail "export-hlo --help does not list the optimizer's flags"
"$scribe" --help >"$work/help.txt" && grep -q "commands:" "$work/help.txt" || fail "--help"

long=$(printf 'word %.0s' $(seq 1 80))
expect_error "tokens but the model has 64 positions" generate "$data/gpt2-tiny-a" --prompt "$long"
expect_error "does not exist" generate "$work/no-such-model"
expect_error "--dtype takes f32, f16, bf16, q8 or q4" generate "$data/gpt2-tiny-a" --dtype f64
expect_error "--train and --dtype q8 do not go together" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --dtype q8
expect_error "--max-new-tokens takes an integer" generate "$data/gpt2-tiny-a" --max-new-tokens lots
expect_error "unknown option --tempo" generate "$data/gpt2-tiny-a" --tempo 3
expect_error "bucket 32 is longer than the KV cache's 16 positions" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --buckets 32 --capacity 16
echo "ok: bad arguments get clear errors"

# q8 weights (Mistral-tiny: the projections that read hidden = 32 are whole blocks;
# o_proj (48) and the MLP's down projection (84) stay f32).
"$scribe" inspect "$data/mistral-tiny" --dtype q8 >"$work/inspect-q8.txt"
grep -Eq "^layers.0.self_attn.q_proj.weight +q8 +\[48, 32\] +1632$" "$work/inspect-q8.txt" || fail "inspect --dtype q8: $(grep q_proj "$work/inspect-q8.txt" | head -1)"
grep -Eq "^layers.0.self_attn.o_proj.weight +f32 " "$work/inspect-q8.txt" || fail "inspect --dtype q8: o_proj should stay f32"
"$scribe" generate "$data/mistral-tiny" --dtype q8 --prompt "The" --greedy --no-stop --max-new-tokens 6 --threads 1 >"$work/q8.txt" 2>"$work/q8.err" \
  || fail "generate --dtype q8: $(cat "$work/q8.err")"
grep -q "decode:  5 tokens" "$work/q8.err" || fail "generate --dtype q8 printed no decode line"
grep -q "of weights in q8 (matrices in 8-bit blocks" "$work/q8.err" || fail "generate --dtype q8 did not say the weights are q8"
"$scribe" export-hlo "$data/mistral-tiny" --dtype q8 --tp 2 --out "$work/hlo-q8" --buckets 8 --capacity 16 >/dev/null
python3 - "$work/hlo-q8/manifest.json" <<'PY' || fail "export-hlo --dtype q8 manifest"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["dtype"] == "q8", m["dtype"]
p = {x["name"]: x for x in m["modules"][0]["parameters"]}
q, s = p["layers.0.self_attn.q_proj.weight"], p["layers.0.self_attn.q_proj.weight.scale"]
assert q["dtype"] == "s8" and [d["name"] for d in q["shape"]] == ["heads", "head_dim", "q8_blocks", "q8_block"], q
assert s["dtype"] == "f16" and [d["extent"] for d in s["shape"]] == [2, 12, 1], s
assert q["split"] == "heads" and s["split"] == "heads", (q, s)
assert p["layers.0.self_attn.o_proj.weight"]["dtype"] == "f32"
PY
echo "ok: --dtype q8: inspect's bytes, generate, export-hlo's s8 weights and f16 scales at TP 2"

# q4 weights: the same matrices in 4-bit blocks, 18 bytes per 32 (q_proj: 48 x 32 -> 864).
"$scribe" inspect "$data/mistral-tiny" --dtype q4 >"$work/inspect-q4.txt"
grep -Eq "^layers.0.self_attn.q_proj.weight +q4 +\[48, 32\] +864$" "$work/inspect-q4.txt" || fail "inspect --dtype q4: $(grep q_proj "$work/inspect-q4.txt" | head -1)"
"$scribe" generate "$data/mistral-tiny" --dtype q4 --prompt "The" --greedy --no-stop --max-new-tokens 6 --threads 1 >"$work/q4.txt" 2>"$work/q4.err" \
  || fail "generate --dtype q4: $(cat "$work/q4.err")"
grep -q "of weights in q4 (matrices in 4-bit blocks" "$work/q4.err" || fail "generate --dtype q4 did not say the weights are q4"
"$scribe" export-hlo "$data/mistral-tiny" --dtype q4 --tp 2 --out "$work/hlo-q4" --buckets 8 --capacity 16 >/dev/null
python3 - "$work/hlo-q4/manifest.json" <<'PY' || fail "export-hlo --dtype q4 manifest"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["dtype"] == "q4", m["dtype"]
p = {x["name"]: x for x in m["modules"][0]["parameters"]}
q, s = p["layers.0.self_attn.q_proj.weight"], p["layers.0.self_attn.q_proj.weight.scale"]
assert q["dtype"] == "u8" and [d["name"] for d in q["shape"]] == ["heads", "head_dim", "q4_blocks", "q4_pair"], q
assert [d["extent"] for d in q["shape"]] == [2, 12, 1, 16], q
assert s["dtype"] == "f16" and q["split"] == "heads" and s["split"] == "heads", (q, s)
PY
expect_error "--train and --dtype q4 do not go together" export-hlo "$data/gpt2-tiny-a" --out "$work/x" --train --dtype q4
echo "ok: --dtype q4: inspect's bytes, generate, export-hlo's u8 weights and f16 scales at TP 2"
