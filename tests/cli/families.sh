#!/usr/bin/env bash
# The `scribe` program on the tiny OPT, GPT-J, LLaMA and Mistral checkpoints:
# greedy text equal to Hugging Face's (golden.json, where the text is whole
# UTF-8), export-hlo's manifest (the key/value heads split at TP 2 and replicated
# at TP 4), inspect's summary, KV cache and per-rank bytes, and clear errors for
# configs the families do not support.
#   families.sh SCRIBE DATA_DIR WORK_DIR
set -euo pipefail
scribe=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/common.sh"


for model in opt-tiny opt-tiny-post gptj-tiny llama-tiny-gqa llama-tiny-mqa mistral-tiny; do
  got=$("$scribe" generate "$data/$model" --prompt The --greedy --no-stop --max-new-tokens 12 --threads 1 2>"$work/err") \
    || fail "$model: $(cat "$work/err")"
  grep -q "decode:  11 tokens in 11 steps" "$work/err" || fail "$model: no decode tokens/s line: $(cat "$work/err")"
  case $model in  # the others' golden text has invalid UTF-8 or end-of-text tokens, which generate does not print
    gptj-tiny|llama-tiny-mqa) [ "$got" = "$(golden $model)" ] || fail "$model greedy text: got '$got', want '$(golden $model)'";;
  esac
done
echo "ok: generate runs every family; GPT-J's and LLaMA-3's greedy text equals Hugging Face's"

# Sampling and batches are the runtime's, whatever the family: a seeded batch in bf16 repeats.
a=$("$scribe" generate "$data/llama-tiny-gqa" --prompt "The old" --prompt "He" --seed 5 --top-k 20 --top-p 0.9 --dtype bf16 --max-new-tokens 8 --quiet)
b=$("$scribe" generate "$data/llama-tiny-gqa" --prompt "The old" --prompt "He" --seed 5 --top-k 20 --top-p 0.9 --dtype bf16 --max-new-tokens 8 --quiet)
[ "$a" = "$b" ] && [ "$(echo "$a" | grep -c '^\[[01]\] ')" = 2 ] || fail "llama seeded batch: '$a' vs '$b'"
echo "ok: a seeded bf16 batch of LLaMA repeats"

# export-hlo: LLaMA's k_proj is split over 2 ranks (2 KV heads) and replicated over 4.
for tp in 2 4; do
  "$scribe" export-hlo "$data/llama-tiny-gqa" --out "$work/hlo$tp" --buckets 16 --capacity 32 --tp $tp >/dev/null
  python3 - "$work/hlo$tp/manifest.json" $tp <<'PY' || fail "llama manifest at --tp $tp"
import json, sys
m, tp = json.load(open(sys.argv[1])), int(sys.argv[2])
d = m["modules"][1]
p = {x["name"]: x for x in d["parameters"]}
assert p["layers.0.self_attn.q_proj.weight"]["split"] == "heads"
assert [e["extent"] for e in p["layers.0.self_attn.q_proj.weight"]["shape"]] == [8 // tp, 6, 48]
k = p["layers.0.self_attn.k_proj.weight"]
if tp == 2:
    assert k["split"] == "kv_heads" and [e["extent"] for e in k["shape"]] == [1, 6, 48], k
else:
    assert "split" not in k and [e["extent"] for e in k["shape"]] == [2, 6, 48], k
cache = [e["extent"] for e in p["cache.0.key"]["shape"]]
assert cache == [1, 32, 1 if tp == 2 else 2, 6], cache
assert p["lm_head.weight"]["split"] == "vocab"
PY
done
echo "ok: export-hlo splits LLaMA's KV heads at TP 2 and replicates them at TP 4"

out=$("$scribe" inspect "$data/llama-tiny-gqa" --capacity 64)
contains "$out" "LLaMA, 2 layers, hidden 48, 8 heads of 6 (2 key/value), ffn 100, vocab 317, 64 positions, rope default" \
  || fail "inspect summary: $out"
contains "$out" "layers.1.self_attn.k_proj.weight *f32 *\[12, 48\] *2304" || fail "inspect weights: $out"
# 2 layers x (key, value) x 64 positions x 2 KV heads x 6 dims x 4 bytes
contains "$out" "KV cache (f32, batch 1, 64 positions): 12288 bytes" || fail "inspect cache: $out"
contains "$out" "tensor-parallel degrees: 1, 2, 4" || fail "inspect degrees: $out"
out=$("$scribe" inspect "$data/mistral-tiny")
contains "$out" "Mistral, 2 layers, hidden 32, 4 heads of 12 (2 key/value).*sliding window 8" || fail "inspect mistral: $out"
out=$("$scribe" inspect "$data/opt-tiny-post")
contains "$out" "OPT, .*post-LN, embedding 24 projected" || fail "inspect opt: $out"
echo "ok: inspect describes each family"

edited() {  # edited NAME MODEL PYTHON: a copy of MODEL with config.json changed by PYTHON (on the dict c)
  local dir="$work/$1"; mkdir -p "$dir"; cp "$data/$2"/* "$dir/"
  python3 -c "import json; c=json.load(open('$dir/config.json')); $3; json.dump(c, open('$dir/config.json','w'))"
  echo "$dir"
}
expect_error 'model_type "bloom" is not supported (gpt2, gptj, opt, llama, mistral)' \
  inspect "$(edited bloom llama-tiny-gqa "c['model_type']='bloom'")"
expect_error 'rope_type "yarn" is not supported (default, linear, llama3)' \
  generate "$(edited yarn llama-tiny-mqa "c['rope_parameters']['rope_type']='yarn'")"
expect_error 'num_attention_heads 8 is not divisible by num_key_value_heads 3' \
  generate "$(edited kv3 llama-tiny-gqa "c['num_key_value_heads']=3")"
expect_error 'rotary_dim 13 must be even and at most' generate "$(edited rot gptj-tiny "c['rotary_dim']=13")"
expect_error 'hidden_act "gelu" is not supported ("silu")' generate "$(edited act llama-tiny-gqa "c['hidden_act']='gelu'")"
expect_error 'tp degree 3 does not divide num_attention_heads (8); degrees that do: 1, 2, 4, 8' \
  generate "$data/llama-tiny-gqa" --tp 3
expect_error 'layers.0.mlp.gate_proj.weight` is [100, 48] but config.json needs [96, 48]' \
  generate "$(edited ffn llama-tiny-gqa "c['intermediate_size']=96")"
echo "ok: unsupported configs get clear errors"

# Folders with only pytorch_model.bin (torch.save's archive; tests/data/pytorch, written by
# torch): the same text as their safetensors twins, sharded and bf16 too, and `scribe shard`
# leaves the .bin files behind.
for pair in "pytorch/gpt2-bin gpt2-tiny-a" "pytorch/llama-bin-sharded llama-tiny-gqa"; do
  set -- $pair
  a=$("$scribe" generate "$data/$1" --prompt "The old" --greedy --no-stop --max-new-tokens 10 --threads 1 --quiet --dtype bf16 2>"$work/err") \
    || fail "$1: $(cat "$work/err")"
  [ -n "$a" ] || fail "$1 generated nothing"
  case $1 in
    */gpt2-bin) b=$("$scribe" generate "$data/$2" --prompt "The old" --greedy --no-stop --max-new-tokens 10 --threads 1 --quiet --dtype bf16)
                [ "$a" = "$b" ] || fail "$1: '$a', but the safetensors folder gives '$b'";;
  esac
done
"$scribe" shard "$data/pytorch/llama-bin-sharded" --tp 2 --out "$work/bin-shard" >/dev/null
ls "$work/bin-shard" | grep -q '\.bin' && fail "scribe shard copied the .bin files: $(ls "$work/bin-shard")"
[ "$("$scribe" generate "$work/bin-shard" --tp 2 --prompt "The old" --greedy --no-stop --max-new-tokens 10 --threads 1 --quiet --dtype bf16)" = \
  "$("$scribe" generate "$data/pytorch/llama-bin-sharded" --tp 2 --prompt "The old" --greedy --no-stop --max-new-tokens 10 --threads 1 --quiet --dtype bf16)" ] \
  || fail "the sharded .bin folder and its scribe shard copy disagree"
echo "ok: pytorch_model.bin folders (whole and sharded) generate as their safetensors twins; scribe shard converts them"
