#!/usr/bin/env bash
# Tensor parallelism through the `scribe` program on the tiny golden checkpoints
# (every family; LLaMA's grouped-query ones at degrees that split their KV heads
# and at degrees that replicate them):
# greedy text at --tp 2 and 4 with ranks as threads, and with ranks as MPI
# processes (mpirun -np 2 and 4), equal to TP 1's (and for tiny-b, whose text is
# whole UTF-8, to Hugging Face's in golden.json); a
# pre-sharded folder written by `scribe shard` and read back; inspect's per-rank
# memory against the checkpoint's own tensor sizes; the memory budget; clear
# errors for degrees that do not divide the model.
#   tp.sh SCRIBE DATA_DIR WORK_DIR
set -euo pipefail
scribe=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/common.sh"

for model in gpt2-tiny-a gpt2-tiny-b opt-tiny opt-tiny-post gptj-tiny llama-tiny-gqa llama-tiny-mqa mistral-tiny; do
  p=$(prompt $model)
  want=$("$scribe" generate "$data/$model" --prompt "$p" --greedy --no-stop --max-new-tokens 12 --quiet)
  [ $model != gpt2-tiny-b ] || [ "$want" = "$(golden $model)" ] || fail "TP 1 differs from golden: '$want'"
  for tp in 2 4; do
    got=$("$scribe" generate "$data/$model" --prompt "$p" --greedy --no-stop --max-new-tokens 12 --tp $tp --threads 2 2>"$work/err")
    [ "$got" = "$want" ] || fail "$model --tp $tp (threads): got '$got', want '$want'"
    grep -q "tensor parallel over $tp threads" "$work/err" || fail "no TP line: $(cat "$work/err")"
    command -v mpirun >/dev/null || fail "mpirun not found (the setup installs openmpi-bin)"
    got=$(mpirun -np $tp "$scribe" generate "$data/$model" --prompt "$p" --greedy --no-stop --max-new-tokens 12 2>"$work/err") \
      || fail "mpirun -np $tp: $(cat "$work/err")"
    [ "$got" = "$want" ] || fail "$model mpirun -np $tp: got '$got', want '$want' ($(cat "$work/err"))"
    grep -q "tensor parallel over $tp processes (MPI)" "$work/err" || fail "no MPI line: $(cat "$work/err")"
  done
  echo "ok: $model at TP 2 and 4, as threads and as MPI processes, equals TP 1's greedy text"
done

# Pre-sharded: written once, read back by threads and by MPI ranks, same text.
"$scribe" shard "$data/gpt2-tiny-b" --tp 2 --out "$work/sharded" >/dev/null
[ ! -e "$work/sharded/model.safetensors" ] || fail "shard copied the unsharded weights"
python3 - "$work/sharded" "$data/gpt2-tiny-b" <<'PY' || fail "pre-sharded files"
import json, struct, sys
out, src = sys.argv[1], sys.argv[2]
def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))
full = header(f"{src}/model.safetensors")
for r in (0, 1):
    h = header(f"{out}/model.tp2-rank{r}.safetensors")
    assert h["__metadata__"]["scribe.tp_degree"] == "2" and h["__metadata__"]["scribe.rank"] == str(r), h["__metadata__"]
    # c_attn [52, 156] -> [hidden 52, qkv 3, heads 2, head_dim 13]; wte's 397 rows -> 199 (one zero row)
    assert h["h.0.attn.c_attn.weight"]["shape"] == [52, 3, 2, 13], h["h.0.attn.c_attn.weight"]
    assert h["wte.weight"]["shape"] == [199, 52] and h["wpe.weight"]["shape"] == full["transformer.wpe.weight"]["shape"]
    assert h["h.2.mlp.c_fc.weight"]["shape"] == [52, 70] and h["h.2.mlp.c_proj.weight"]["shape"] == [70, 52]
PY
want=$(golden gpt2-tiny-b) p=$(prompt gpt2-tiny-b)
got=$("$scribe" generate "$work/sharded" --prompt "$p" --greedy --no-stop --max-new-tokens 12 --tp 2 2>"$work/err")
[ "$got" = "$want" ] || fail "pre-sharded (threads): got '$got', want '$want'"
grep -q "pre-sharded" "$work/err" || fail "the pre-sharded files were not used: $(cat "$work/err")"
got=$(mpirun -np 2 "$scribe" generate "$work/sharded" --prompt "$p" --greedy --no-stop --max-new-tokens 12 2>"$work/err")
[ "$got" = "$want" ] || fail "pre-sharded (MPI): got '$got', want '$want'"
echo "ok: scribe shard --tp 2 writes rank files; generate reads them back (threads and MPI) with the same text"

# Pre-sharded in q8 (Mistral-tiny: q/k/v, gate and up are whole blocks; o_proj and
# down stay f32): written at TP 1 and 2, run without --dtype (the folder says q8),
# the same text as quantizing at load, as threads and as MPI ranks.
p=$(prompt mistral-tiny)
for tp in 1 2; do
  want=$("$scribe" generate "$data/mistral-tiny" --dtype q8 --tp $tp --prompt "$p" --greedy --no-stop --max-new-tokens 12 --quiet)
  "$scribe" shard "$data/mistral-tiny" --tp $tp --dtype q8 --out "$work/q8-tp$tp" >/dev/null
  got=$("$scribe" generate "$work/q8-tp$tp" --tp $tp --prompt "$p" --greedy --no-stop --max-new-tokens 12 2>"$work/err")
  [ "$got" = "$want" ] || fail "q8 pre-sharded at TP $tp: got '$got', want '$want'"
  grep -q "of weights in q8" "$work/err" || fail "q8 pre-sharded folder did not run in q8: $(cat "$work/err")"
done
got=$(mpirun -np 2 "$scribe" generate "$work/q8-tp2" --prompt "$p" --greedy --no-stop --max-new-tokens 12 2>"$work/err") \
  || fail "q8 pre-sharded under mpirun: $(cat "$work/err")"
[ "$got" = "$want" ] || fail "q8 pre-sharded (MPI): got '$got', want '$want'"
python3 - "$work/q8-tp2" <<'PY' || fail "q8 rank files"
import json, struct, sys
for r in (0, 1):
    with open(f"{sys.argv[1]}/model.tp2-rank{r}.safetensors", "rb") as f:
        h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    assert h["__metadata__"]["scribe.weights"] == "q8", h["__metadata__"]
    # q_proj [heads 4 -> 2, head_dim 12] x hidden 32: one block of 32 per row
    q, s = h["layers.0.self_attn.q_proj.weight"], h["layers.0.self_attn.q_proj.weight.scale"]
    assert q["dtype"] == "I8" and q["shape"] == [2, 12, 1, 32], q
    assert s["dtype"] == "F16" and s["shape"] == [2, 12, 1], s
    assert h["layers.0.self_attn.o_proj.weight"]["dtype"] == "F32"
    # every tensor starts aligned to its element size
    size = {"F32": 4, "F16": 2, "I8": 1}
    assert all(v["data_offsets"][0] % size[v["dtype"]] == 0 for k, v in h.items() if k != "__metadata__")
PY
"$scribe" inspect "$work/q8-tp1" >"$work/inspect-q8.txt"
grep -Eq "^layers.0.self_attn.q_proj.weight +q8 +\[48, 32\] +1632$" "$work/inspect-q8.txt" || fail "inspect of a q8 folder: $(grep q_proj "$work/inspect-q8.txt" | head -1)"
expect_error "holds q8 weights (written by \`scribe shard --dtype q8\`), so it runs in q8 only: give --dtype q8" \
  generate "$work/q8-tp1" --dtype bf16 --prompt "$p"
echo "ok: scribe shard --dtype q8 writes I8 blocks and F16 scales; they run (TP 1, 2; threads, MPI) as quantizing at load does"

# The same in q4: U8 blocks of 16 bytes, run without --dtype (the folder says q4).
want=$("$scribe" generate "$data/mistral-tiny" --dtype q4 --tp 2 --prompt "$p" --greedy --no-stop --max-new-tokens 12 --quiet)
"$scribe" shard "$data/mistral-tiny" --tp 2 --dtype q4 --out "$work/q4-tp2" >/dev/null
got=$("$scribe" generate "$work/q4-tp2" --tp 2 --prompt "$p" --greedy --no-stop --max-new-tokens 12 2>"$work/err")
[ "$got" = "$want" ] || fail "q4 pre-sharded at TP 2: got '$got', want '$want'"
grep -q "of weights in q4" "$work/err" || fail "q4 pre-sharded folder did not run in q4: $(cat "$work/err")"
got=$(mpirun -np 2 "$scribe" generate "$work/q4-tp2" --prompt "$p" --greedy --no-stop --max-new-tokens 12 2>"$work/err") \
  || fail "q4 pre-sharded under mpirun: $(cat "$work/err")"
[ "$got" = "$want" ] || fail "q4 pre-sharded (MPI): got '$got', want '$want'"
python3 - "$work/q4-tp2" <<'PY' || fail "q4 rank files"
import json, struct, sys
with open(f"{sys.argv[1]}/model.tp2-rank1.safetensors", "rb") as f:
    h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
assert h["__metadata__"]["scribe.weights"] == "q4", h["__metadata__"]
q = h["layers.0.self_attn.q_proj.weight"]
assert q["dtype"] == "U8" and q["shape"] == [2, 12, 1, 16], q
PY
expect_error "holds q4 weights (written by \`scribe shard --dtype q4\`), so it runs in q4 only: give --dtype q4" \
  generate "$work/q4-tp2" --tp 2 --dtype q8 --prompt "$p"
echo "ok: scribe shard --dtype q4 writes U8 blocks and F16 scales; they run (TP 2; threads, MPI) as quantizing at load does"

# inspect: valid degrees and per-rank bytes, checked against sizes computed here
# from the checkpoint's header (split tensors divided, wte's rows padded).
out=$("$scribe" inspect "$data/gpt2-tiny-a" --batch 2 --capacity 64 --tp 2 --memory-budget 120K)
contains "$out" "tensor-parallel degrees: 1, 2, 4 " || fail "inspect degrees: $out"
want=$(python3 - "$data/gpt2-tiny-a" <<'PY'
import json, math, struct, sys
d = sys.argv[1]
with open(f"{d}/model.safetensors", "rb") as f:
    h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
c = json.load(open(f"{d}/config.json"))
tp, w = 2, 0
for name, e in h.items():
    name = name.removeprefix("transformer.")
    if name in ("__metadata__", "lm_head.weight") or name.endswith((".attn.bias", ".attn.masked_bias")):
        continue
    n = math.prod(e["shape"])
    if name == "wte.weight":
        n = math.ceil(e["shape"][0] / tp) * e["shape"][1]
    elif any(name.endswith(s) for s in ("c_attn.weight", "c_attn.bias", "attn.c_proj.weight", "c_fc.weight", "c_fc.bias", "mlp.c_proj.weight")):
        n //= tp
    w += 4 * n
kv = 4 * 2 * c["n_layer"] * 2 * 64 * c["n_embd"] // tp
print(f"{tp} {w} {kv} {w + kv}")
PY
)
echo "$out" | awk '$1 == 2 && NF >= 4 {print $1, $2, $3, $4}' | grep -qx "$want" || fail "inspect per-rank bytes: want '$want' in: $out"
contains "$out" "exceeds" || fail "inspect budget: $out"
echo "ok: inspect --tp 2 per-rank bytes equal the checkpoint's ($want)"

expect_error "tp degree 3 does not divide n_head (4); degrees that do: 1, 2, 4" generate "$data/gpt2-tiny-a" --tp 3
expect_error "tp degree 3 does not divide n_head (4)" export-hlo "$data/gpt2-tiny-a" --tp 3 --out "$work/x"
expect_error "tp degree 8 does not divide n_head (4)" inspect "$data/gpt2-tiny-a" --tp 8
expect_error "but the budget is 0.1 MiB (102400 bytes) per rank" generate "$data/gpt2-tiny-a" --tp 2 --memory-budget 100K --max-new-tokens 8
set +e; mpirun -np 2 "$scribe" generate "$data/gpt2-tiny-a" --tp 4 >/dev/null 2>"$work/err"; rc=$?; set -e
[ $rc != 0 ] || fail "mpirun -np 2 with --tp 4 exited 0"
grep -qF -- "--tp 4 under mpirun -np 2: give --tp 2" "$work/err" || fail "mpirun --tp mismatch said: $(cat "$work/err")"
echo "ok: degrees that do not divide the model, a budget too small and a --tp that is not mpirun's -np get clear errors"
