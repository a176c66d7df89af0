#!/usr/bin/env bash
# `scribe compile` and its artifacts: greedy text from an artifact equal to its
# folder's (GPT-2 and LLaMA, TP 1 and 2 as threads, TP 2 as MPI processes), the
# degree and dtype taken from the artifact, nothing converted or packed at load,
# the folder moved elsewhere still working, HLO that export-hlo would write, and
# refusals that say how to compile again.
#   artifact.sh SCRIBE DATA_DIR WORK_DIR
set -euo pipefail
scribe=$(realpath "$1") data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/common.sh"

for model in gpt2-tiny-a llama-tiny-gqa; do
  p=$(prompt $model)
  for tp in 1 2; do
    art="$work/$model-tp$tp"
    out=$("$scribe" compile "$data/$model" --out "$art" --tp $tp --dtype bf16 --buckets 8,16 --threads 1 2>"$work/err") \
      || fail "compile $model --tp $tp: $(cat "$work/err")"
    contains "$out" "compiled .* for --tp $tp --dtype bf16 (buckets 8,16, batch 1)" || fail "compile summary: $out"
    for f in artifact.json config.json tokenizer.json hlo/manifest.json hlo/decode.hlo hlo/prefill_8.pb \
             "model.tp$tp-rank0.safetensors" "packs.tp$tp-rank$((tp - 1)).safetensors"; do
      [ -f "$art/$f" ] || fail "$model --tp $tp: no $f in the artifact"
    done
    want=$("$scribe" generate "$data/$model" --prompt "$p" --greedy --no-stop --max-new-tokens 12 --tp $tp --dtype bf16 --buckets 8,16 --threads 1 2>/dev/null)
    got=$("$scribe" generate "$art" --prompt "$p" --greedy --no-stop --max-new-tokens 12 --threads 1 2>"$work/err") \
      || fail "generate the $model --tp $tp artifact: $(cat "$work/err")"
    [ "$got" = "$want" ] || fail "$model --tp $tp artifact: got '$got', want the folder's '$want'"
    grep -q "compiled artifact for --tp $tp" "$work/err" || fail "no artifact in the load line: $(cat "$work/err")"
    grep -q "in bf16" "$work/err" || fail "the artifact's dtype was not taken: $(cat "$work/err")"
  done
done
out=$("$scribe" inspect "$work/llama-tiny-gqa-tp2" --tp 2)
contains "$out" "compiled artifact: --tp 2 --dtype bf16, buckets 8,16, batch 1; kernels: gemm " || fail "inspect of an artifact: $out"
echo "ok: artifacts of GPT-2 and LLaMA at TP 1 and 2 generate their folders' text, at their own --tp and --dtype; inspect says what they are"

# Under MPI each process maps its own rank's files.
if command -v mpirun >/dev/null; then
  p=$(prompt gpt2-tiny-a)
  want=$("$scribe" generate "$data/gpt2-tiny-a" --prompt "$p" --greedy --no-stop --max-new-tokens 12 --tp 2 --dtype bf16 --buckets 8,16 --threads 1 2>/dev/null)
  got=$(mpirun -np 2 "$scribe" generate "$work/gpt2-tiny-a-tp2" --prompt "$p" --greedy --no-stop --max-new-tokens 12 --threads 1 2>"$work/err") \
    || fail "mpirun -np 2 on the artifact: $(cat "$work/err")"
  [ "$got" = "$want" ] || fail "mpirun artifact: got '$got', want '$want'"
  echo "ok: the TP 2 artifact runs as 2 MPI processes"
fi

# Moved (and its source gone from view), it still runs.
mv "$work/gpt2-tiny-a-tp1" "$work/moved"
p=$(prompt gpt2-tiny-a)
want=$("$scribe" generate "$data/gpt2-tiny-a" --prompt "$p" --greedy --no-stop --max-new-tokens 12 --dtype bf16 --buckets 8,16 --threads 1 2>/dev/null)
got=$(cd / && "$scribe" generate "$work/moved" --prompt "$p" --greedy --no-stop --max-new-tokens 12 --threads 1 2>/dev/null)
[ "$got" = "$want" ] || fail "moved artifact: got '$got', want '$want'"
echo "ok: a moved artifact runs"

# The HLO is what export-hlo writes for the same shapes.
"$scribe" export-hlo "$data/gpt2-tiny-a" --out "$work/hlo" --buckets 8,16 --tp 2 --dtype bf16 >/dev/null
for f in prefill_8.hlo prefill_16.hlo decode.hlo; do
  cmp -s "$work/hlo/$f" "$work/gpt2-tiny-a-tp2/hlo/$f" || fail "the artifact's $f differs from export-hlo's"
done
echo "ok: the artifact's HLO is export-hlo's"

# Compiled again into the same folder for another degree, nothing of the old one stays.
"$scribe" compile "$data/gpt2-tiny-a" --out "$work/gpt2-tiny-a-tp2" --tp 1 --buckets 8 --threads 1 >/dev/null 2>&1 \
  || fail "compiling over an artifact"
left=$(cd "$work/gpt2-tiny-a-tp2" && ls model.tp2-* packs.tp2-* hlo/prefill_16.hlo 2>/dev/null || true)
[ -z "$left" ] || fail "the earlier artifact's files stayed: $left"
"$scribe" generate "$work/gpt2-tiny-a-tp2" --prompt The --max-new-tokens 2 --threads 1 >/dev/null 2>&1 || fail "the recompiled artifact does not run"
echo "ok: compiling over an artifact replaces it whole"

# Refusals, each naming what to do.
art="$work/llama-tiny-gqa-tp2"
expect_error "is compiled for --tp 2 --dtype bf16, not --tp 1 --dtype bf16" generate "$art" --tp 1 --max-new-tokens 2
expect_error "not --tp 2 --dtype f32" generate "$art" --dtype f32 --max-new-tokens 2
python3 - "$art/artifact.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); j["version"] = 99; json.dump(j, open(sys.argv[1], "w"))
PY
expect_error "artifact format version 99, but this Scribe reads version 1 only; compile the model again with this Scribe: scribe compile $data/llama-tiny-gqa --out $art --tp 2 --dtype bf16 --buckets 8,16 --batch 1" \
  generate "$art" --max-new-tokens 2
python3 - "$art/artifact.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); j["version"] = 1
# Another CPU's kernels than this one's (which the artifact names).
j["machine"] = ("gemm avx2 6x16 kc 256; bf16 products in f32 panels" if "avx512" in j["machine"]
                else "gemm avx512 8x48 kc 256; bf16 products in bf16 pairs")
json.dump(j, open(sys.argv[1], "w"))
PY
expect_error "compiled for another CPU's kernels" generate "$art" --max-new-tokens 2
grep -qF "compile the model again on this machine: scribe compile" "$work/err" || fail "no recompile command: $(cat "$work/err")"
expect_error "scribe compile needs --out DIR" compile "$data/gpt2-tiny-a"
expect_error "is an encoder" compile "$data/bert-tiny-cls" --out "$work/enc"
expect_error "tp degree 3 does not divide" compile "$data/gpt2-tiny-a" --out "$work/x" --tp 3
echo "ok: other options, another format version and another CPU's kernels are refused with the command that compiles again"
