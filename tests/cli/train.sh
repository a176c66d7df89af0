#!/usr/bin/env bash
# `scribe train` end to end on the tiny golden checkpoints: the files a run writes
# (checkpoints, log, loss curve, the model), a run resumed from a checkpoint or
# stopped by SIGINT/SIGTERM computing the same losses as one that never stopped,
# a NaN loss stopping the run with the last good checkpoint kept, every bad input
# refused with an error that names it, and a trained model that generates what
# Hugging Face's transformers generated from it (tests/data/train/expected.json,
# by scripts/reference/make_train_golden.py).
#   train.sh SCRIBE DATA_DIR WORK_DIR
set -euo pipefail
scribe=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/common.sh"
model=$data/gpt2-tiny-a

# A fixed text: sentences of words drawn by a seeded generator (about 40 KB).
python3 - "$work/text.txt" <<'PY'
import random, sys
r = random.Random(7)
words = "the old man and sea said light shall be in beginning was word with over land water day night".split()
lines = [" ".join(r.choice(words) for _ in range(r.randint(4, 14))).capitalize() + "." for _ in range(900)]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
text=$work/text.txt
opts=(--batch 2 --seq 16 --threads 1 --lr 3e-3 --schedule cosine --warmup 3 --weight-decay 0.01 --seed 3)

# --help explains every flag.
"$scribe" train --help > "$work/help.txt"
for f in --data --out --config --tokenizer --resume --steps --epochs --batch --seq --val-fraction --eval-every \
         --save-every --seed --threads --no-dropout --memory-budget --overwrite --accumulate --lr --warmup --min-lr \
         --schedule --weight-decay --clip --optimizer --save-dtype --dp --tp --bucket-size --precision; do
  grep -q -- "$f" "$work/help.txt" || fail "train --help does not explain $f"
done
echo "ok: train --help explains every flag"

# A run: checkpoints every 4 steps, validation every 4, the log, the curve, the model.
"$scribe" train "$model" --data "$text" --out "$work/a" --steps 12 --eval-every 4 --save-every 4 "${opts[@]}" \
  > "$work/a.out" 2> "$work/a.err"
for f in checkpoint-4 checkpoint-8 checkpoint-12 model.safetensors config.json tokenizer.json log.jsonl loss.svg; do
  [ -e "$work/a/$f" ] || fail "train did not write $f"
done
for f in model.safetensors optimizer.safetensors trainer_state.json config.json tokenizer.json; do
  [ -s "$work/a/checkpoint-8/$f" ] || fail "checkpoint-8 has no $f"
done
grep -q "^trained 12 steps in .* validation loss [0-9.]* (perplexity" "$work/a.out" || fail "summary: $(cat "$work/a.out")"
grep -q "validation at step 8: loss" "$work/a.err" || fail "no validation line: $(cat "$work/a.err")"
grep -q "step 12/12 \[#*\] 100.0%  loss .* tok/s  ETA" "$work/a.err" || fail "no progress line"
python3 - "$work/a" <<'PY' || fail "log.jsonl / loss.svg"
import json, math, sys
d = sys.argv[1]
lines = [json.loads(l) for l in open(d + "/log.jsonl")]
steps = [l for l in lines if "loss" in l]
vals = [l for l in lines if "val_loss" in l]
assert [l["step"] for l in steps] == list(range(1, 13)), lines
assert [l["step"] for l in vals] == [4, 8, 12], vals
assert all(math.isfinite(l["loss"]) and l["tokens_per_s"] > 0 and l["lr"] >= 0 for l in steps)
assert abs(vals[-1]["val_perplexity"] - math.exp(vals[-1]["val_loss"])) < 1e-6 * vals[-1]["val_perplexity"]
svg = open(d + "/loss.svg").read()
assert svg.startswith("<svg") and svg.count("<polyline") == 2 and svg.count("<circle") == 4, svg[:200]
state = json.load(open(d + "/checkpoint-8/trainer_state.json"))
assert state["step"] == 8 and state["batch"] == 2 and state["seq"] == 16 and state["steps"] == 12, state
PY
echo "ok: a run writes checkpoints, log.jsonl, loss.svg and the model"

# The trained folder is a model: scribe reads it, and it continues as its last checkpoint does.
"$scribe" generate "$work/a" --prompt "The old" --greedy --max-new-tokens 6 --quiet > "$work/gen.final"
"$scribe" generate "$work/a/checkpoint-12" --prompt "The old" --greedy --max-new-tokens 6 --quiet > "$work/gen.ckpt"
cmp -s "$work/gen.final" "$work/gen.ckpt" || fail "the final model and checkpoint-12 generate differently"

# Resumed from checkpoint-4: steps 5..12 have the losses of the run that never stopped.
losses() { python3 -c "import json,sys; print(' '.join(repr(json.loads(l)['loss']) for l in open(sys.argv[1]) if '\"loss\"' in l))" "$1"; }
cp -r "$work/a" "$work/b"
"$scribe" train --resume "$work/b/checkpoint-4" --data "$text" --out "$work/b" --steps 12 --eval-every 4 --save-every 4 "${opts[@]}" \
  > /dev/null 2> "$work/b.err"
grep -q "resuming at step 4 of 12" "$work/b.err" || fail "no resume line: $(cat "$work/b.err")"
[ "$(losses "$work/a/log.jsonl")" = "$(losses "$work/b/log.jsonl")" ] || fail "resumed losses differ:
$(losses "$work/a/log.jsonl")
$(losses "$work/b/log.jsonl")"
cmp -s "$work/a/model.safetensors" "$work/b/model.safetensors" || fail "the resumed run's weights differ"
echo "ok: a run resumed from a checkpoint computes the uninterrupted run's losses and weights"

# SIGINT and SIGTERM: a checkpoint at the step reached, a clean exit; resuming finishes the run as if uninterrupted.
"$scribe" train "$model" --data "$text" --out "$work/whole" --steps 300 "${opts[@]}" --quiet > /dev/null
for sig in INT TERM; do
  out=$work/sig$sig
  set +e
  "$scribe" train "$model" --data "$text" --out "$out" --steps 300 "${opts[@]}" > /dev/null 2> "$out.err" &
  pid=$!
  for _ in $(seq 1 400); do [ -f "$out/log.jsonl" ] && [ "$(wc -l < "$out/log.jsonl")" -ge 3 ] && break; sleep 0.05; done
  kill -$sig $pid
  wait $pid
  rc=$?
  set -e
  want=$([ $sig = INT ] && echo 130 || echo 143)
  [ $rc = "$want" ] || fail "SIG$sig: exit $rc, want $want: $(cat "$out.err")"
  step=$(sed -n "s/.*stopped by SIG$sig at step \([0-9]*\) of 300: saved .*/\1/p" "$out.err")
  [ -n "$step" ] || fail "SIG$sig: no stop message: $(cat "$out.err")"
  [ -s "$out/checkpoint-$step/trainer_state.json" ] || fail "SIG$sig: no checkpoint-$step"
  ls "$out" | grep -q "tmp-" && fail "SIG$sig: a temporary file or folder was left: $(ls "$out")"
  "$scribe" train --resume "$out" --data "$text" --out "$out" --steps 300 "${opts[@]}" --quiet > /dev/null
  [ "$(losses "$work/whole/log.jsonl")" = "$(losses "$out/log.jsonl")" ] || fail "SIG$sig at step $step: resumed losses differ"
  cmp -s "$work/whole/model.safetensors" "$out/model.safetensors" || fail "SIG$sig: resumed weights differ"
  echo "ok: SIG$sig at step $step saved checkpoint-$step; resumed, the run equals the uninterrupted one"
done

# A NaN loss stops the run, names the step and keeps the last good checkpoint.
set +e
"$scribe" train "$model" --data "$text" --out "$work/nan" --steps 20 --save-every 1 --optimizer sgd --lr 1e30 --clip 0 \
  --schedule constant --batch 2 --seq 16 --threads 1 > /dev/null 2> "$work/nan.err"
rc=$?
set -e
[ $rc = 1 ] || fail "NaN: exit $rc"
grep -q "step [0-9]*: the loss is \(nan\|inf\|-inf\)" "$work/nan.err" || fail "NaN: $(cat "$work/nan.err")"
bad=$(sed -n 's/.*step \([0-9]*\): the loss is.*/\1/p' "$work/nan.err")
grep -qF "The last good checkpoint is $work/nan/checkpoint-$((bad - 1))" "$work/nan.err" || fail "NaN: $(cat "$work/nan.err")"
[ -e "$work/nan/checkpoint-$bad" ] && fail "NaN: the bad step was saved"
echo "ok: a NaN loss at step $bad stops the run; checkpoint-$((bad - 1)) kept"

# A new model from a config: its weights drawn from --seed, the same twice.
"$scribe" train --config "$model/config.json" --tokenizer "$model" --data "$text" --out "$work/new1" --steps 3 "${opts[@]}" --quiet > /dev/null
"$scribe" train --config "$model/config.json" --tokenizer "$model" --data "$text" --out "$work/new2" --steps 3 "${opts[@]}" --quiet > /dev/null
cmp -s "$work/new1/model.safetensors" "$work/new2/model.safetensors" || fail "a new model from the same seed differs"
echo "ok: a model trained from its config is the same from the same seed"

# --save-dtype: the trained model in bf16 (its config saying so); the checkpoints stay f32.
"$scribe" train "$model" --data "$text" --out "$work/half" --steps 4 --save-dtype bf16 "${opts[@]}" --quiet > /dev/null
python3 - "$work/half" <<'PY' || fail "--save-dtype bf16"
import json, struct, sys
d = sys.argv[1]
def dtypes(f):
    b = open(f, "rb").read()
    h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
    return {v["dtype"] for k, v in h.items() if k != "__metadata__"}
assert dtypes(d + "/model.safetensors") == {"BF16"} and json.load(open(d + "/config.json"))["dtype"] == "bfloat16"
assert dtypes(d + "/checkpoint-4/model.safetensors") == {"F32"}
PY
"$scribe" generate "$work/half" --prompt "The" --max-new-tokens 3 --quiet > /dev/null || fail "the bf16 model does not run"
echo "ok: --save-dtype bf16 writes the model in bf16, checkpoints in f32"

# Data parallel: --dp 2 (ranks as threads) and mpirun -np 2 (as processes) train
# on halves of each global batch and compute what one process computes on the
# whole batch; only rank 0 writes; a checkpoint of DP 2 resumes at DP 1.
dp_opts=(--steps 6 --batch 4 --seq 16 --threads 2 --lr 3e-3 --seed 3 --no-dropout --save-every 3 --quiet)
"$scribe" train "$model" --data "$text" --out "$work/dp1" "${dp_opts[@]}" > /dev/null
"$scribe" train "$model" --data "$text" --out "$work/dp2" --dp 2 --bucket-size 4K "${dp_opts[@]}" > /dev/null
command -v mpirun >/dev/null || fail "mpirun not found (the setup installs openmpi-bin)"
mpirun -np 2 "$scribe" train "$model" --data "$text" --out "$work/dpmpi" "${dp_opts[@]}" > /dev/null 2> "$work/dpmpi.err" \
  || fail "mpirun -np 2 scribe train: $(cat "$work/dpmpi.err")"
cp -r "$work/dp2" "$work/dp2to1" && rm -rf "$work/dp2to1/checkpoint-6"
"$scribe" train --resume "$work/dp2to1/checkpoint-3" --data "$text" --out "$work/dp2to1" "${dp_opts[@]}" > /dev/null
# Tensor parallel: --tp 2 as threads, and a 2 x 2 mesh of 4 MPI processes
# (data-parallel pairs of tensor-parallel pairs); its checkpoint, whole, resumes at TP 1.
"$scribe" train "$model" --data "$text" --out "$work/tp2" --tp 2 "${dp_opts[@]}" > /dev/null
"$scribe" train "$model" --data "$text" --out "$work/tpsay" --tp 2 --dp 2 --steps 1 --batch 4 --seq 16 --threads 2 > /dev/null 2> "$work/tpsay.err"
grep -q "2 data-parallel ranks x tensor parallel 2 (threads)" "$work/tpsay.err" || fail "train --dp 2 --tp 2 does not say its ranks: $(cat "$work/tpsay.err")"
mpirun -np 4 "$scribe" train "$model" --data "$text" --out "$work/mesh" --tp 2 "${dp_opts[@]}" > /dev/null 2> "$work/mesh.err" \
  || fail "mpirun -np 4 scribe train --tp 2: $(cat "$work/mesh.err")"
cp -r "$work/mesh" "$work/meshto1" && rm -rf "$work/meshto1/checkpoint-6"
"$scribe" train --resume "$work/meshto1/checkpoint-3" --data "$text" --out "$work/meshto1" "${dp_opts[@]}" > /dev/null
python3 - "$work" "$(dirname "$0")" <<'PY' || fail "data-parallel training differs from one process's"
import json, sys
sys.path.insert(0, sys.argv[2])
from safetensors_read import f32_values, tensors
w = sys.argv[1]
def losses(d):
    return [json.loads(l)["loss"] for l in open(f"{w}/{d}/log.jsonl") if '"loss"' in l]
def weights(d):
    return f32_values(f"{w}/{d}/model.safetensors")
one, ref = losses("dp1"), weights("dp1")
assert len(one) == 6, one
for d in ("dp2", "dpmpi", "dp2to1", "tp2", "mesh", "meshto1"):
    got = losses(d)
    assert len(got) == 6, (d, got)  # one line a step: rank 0's alone
    assert all(abs(a - b) <= 2e-5 * abs(b) for a, b in zip(got, one)), (d, got, one)
    assert {dt for dt, _ in tensors(f"{w}/{d}/checkpoint-3/model.safetensors").values()} == {"F32"}, d
    wd = weights(d)
    assert wd.keys() == ref.keys(), d
    for k in ref:
        scale = max(abs(x) for x in ref[k])
        # The key third of c_attn's bias has a zero gradient in exact arithmetic: Adam turns
        # rounding noise there into steps of up to lr (0.1 / sqrt(0.001)) each (test_train.cpp).
        n = len(ref[k])
        kb, ke = (n // 3, 2 * n // 3) if k.endswith("attn.c_attn.bias") else (0, 0)
        diffs = [abs(a - b) for a, b in zip(wd[k], ref[k])]
        assert max(diffs[:kb] + diffs[ke:]) <= 2e-5 * scale + 1e-7, (d, k)
        assert max(diffs[kb:ke], default=0) <= 2 * 6 * 3e-3 * 0.1 / 0.001 ** 0.5, (d, k)
print("ok: losses of DP 1:", " ".join(f"{x:.5f}" for x in one))
PY
echo "ok: --dp 2, mpirun -np 2, --tp 2, a 2 x 2 mesh of MPI processes, and DP 2 and mesh runs resumed at DP 1 train as one process does"
expect_error "does not split evenly over 3 data-parallel ranks" train "$model" --data "$text" --out "$work/dp3" --dp 3 --batch 4 --seq 16
# Ranks that read different data (another file here, or one cut short) stop at
# once, every one of them, naming the ranks that differ, instead of running out
# mid-run and leaving the others waiting.
head -c 20000 "$text" > "$work/text1.txt" && cp "$text" "$work/text0.txt"
set +e
mpirun -np 2 sh -c "\"$scribe\" train \"$model\" --data \"$work/text\$OMPI_COMM_WORLD_RANK.txt\" --out \"$work/bad\" --steps 3 --batch 4 --seq 16 --threads 1 --quiet" \
  > /dev/null 2> "$work/err"
rc=$?
set -e
[ $rc != 0 ] || fail "ranks with different --data trained"
[ "$(grep -c "parallel ranks read different data: rank 0's has 1633 training blocks and 86 held out, rank 1's has 801" "$work/err")" -ge 1 ] \
  || fail "ranks with different --data: $(cat "$work/err")"
[ ! -e "$work/bad/checkpoint-1" ] || fail "ranks with different --data took a step"
echo "ok: ranks that read different data stop before the first step, naming the rank"
expect_error "tp degree 3 does not divide" train "$model" --data "$text" --out "$work/tp3" --tp 3 --batch 4 --seq 16 --steps 1
set +e; mpirun -np 3 "$scribe" train "$model" --data "$text" --out "$work/tp3" --tp 2 --batch 6 --seq 16 --steps 1 > /dev/null 2> "$work/err"; rc=$?; set -e
[ $rc != 0 ] && grep -qF -- "--tp 2 does not divide mpirun's 3 processes" "$work/err" || fail "mpirun -np 3 train --tp 2: $rc $(cat "$work/err")"

# Precision: every mode trains; the bf16 modes hold bf16 weights (the f32
# checkpoints' values are bf16 values), autocast and f32 do not; bf16-master
# checkpoints its f32 masters; a bf16-sr or bf16-master run resumed from a
# checkpoint equals the uninterrupted one (the masters are saved, the rounding's
# bits come from the seed and the step).
p_opts=(--steps 8 --batch 4 --seq 16 --threads 1 --lr 3e-3 --seed 3 --no-dropout --save-every 4 --quiet)
for p in f32 bf16 bf16-sr bf16-master autocast; do
  "$scribe" train "$model" --data "$text" --out "$work/p-$p" --precision $p "${p_opts[@]}" > /dev/null
done
for p in bf16-sr bf16-master; do
  cp -r "$work/p-$p" "$work/p-$p-r" && rm -rf "$work/p-$p-r/checkpoint-8"
  "$scribe" train --resume "$work/p-$p-r/checkpoint-4" --data "$text" --out "$work/p-$p-r" --precision $p "${p_opts[@]}" > /dev/null
  [ "$(losses "$work/p-$p/log.jsonl")" = "$(losses "$work/p-$p-r/log.jsonl")" ] || fail "--precision $p: resumed losses differ"
  cmp -s "$work/p-$p/model.safetensors" "$work/p-$p-r/model.safetensors" || fail "--precision $p: resumed weights differ"
done
python3 - "$work" "$(dirname "$0")" <<'PY' || fail "a precision mode trains wrongly"
import json, struct, sys
sys.path.insert(0, sys.argv[2])
from safetensors_read import tensors
w = sys.argv[1]
losses = {}
for p in ("f32", "bf16", "bf16-sr", "bf16-master", "autocast"):
    ls = [json.loads(l)["loss"] for l in open(f"{w}/p-{p}/log.jsonl") if '"loss"' in l]
    assert len(ls) == 8 and ls[-1] < ls[0] - 0.05, (p, ls)  # it learns
    losses[p] = ls
    state = json.load(open(f"{w}/p-{p}/checkpoint-8/trainer_state.json"))
    assert state["precision"] == p, state
    narrow = 0
    for k, (dt, raw) in tensors(f"{w}/p-{p}/checkpoint-8/model.safetensors").items():
        assert dt == "F32", (p, k, dt)
        words = struct.unpack(f"<{len(raw) // 4}I", raw)
        narrow += sum(1 for x in words if x & 0xFFFF)
    # bf16 modes: every weight a bf16 value; f32 and autocast: f32 values
    assert (narrow == 0) == p.startswith("bf16"), (p, narrow)
    opt = tensors(f"{w}/p-{p}/checkpoint-8/optimizer.safetensors")
    masters = [k for k in opt if k.startswith("optimizer.master.")]
    assert bool(masters) == (p == "bf16-master"), (p, masters[:3])
    if masters:
        assert all(opt[k][0] == "F32" for k in masters)
# Same batches and start: the modes stay close to f32 over 8 steps, not equal.
for p in ("bf16", "bf16-sr", "bf16-master", "autocast"):
    assert losses[p] != losses["f32"], p
    assert all(abs(a - b) <= 0.05 * b for a, b in zip(losses[p], losses["f32"])), (p, losses[p], losses["f32"])
print("ok: final losses", {p: round(l[-1], 4) for p, l in losses.items()})
PY
expect_error "--precision \"bf17\" is not a precision: give f32, bf16, bf16-sr, bf16-master or autocast" \
  train "$model" --data "$text" --out "$work/px" --precision bf17 "${p_opts[@]}"
expect_error "was trained with --precision \"f32\", this run has bf16-master: a run resumes in its own precision (give --precision f32)" \
  train --resume "$work/p-f32/checkpoint-4" --data "$text" --out "$work/p-f32" --precision bf16-master "${p_opts[@]}"
expect_error "was trained with --precision \"bf16-master\", this run has f32" \
  train --resume "$work/p-bf16-master/checkpoint-4" --data "$text" --out "$work/p-bf16-master" "${p_opts[@]}"
echo "ok: --precision f32, bf16, bf16-sr, bf16-master and autocast train, checkpoint and resume"

# Bad input: each refused with exit 1 and a message that names it.
: > "$work/empty.txt"
printf 'a few words' > "$work/short.txt"
mkdir -p "$work/taken" && : > "$work/taken/log.jsonl"
expect_error "scribe train needs --data" train "$model" --out "$work/x"
expect_error "scribe train needs --out" train "$model" --data "$text"
expect_error "is empty" train "$model" --data "$work/empty.txt" --out "$work/x1"
expect_error "which leaves none to train on" train "$model" --data "$work/short.txt" --out "$work/x2" --seq 16
expect_error "--seq 65 is longer than the model's 64 positions" train "$model" --data "$text" --out "$work/x3" --seq 65
expect_error "fewer than one step takes" train "$model" --data "$text" --out "$work/x4" --seq 64 --batch 500
expect_error "training needs about" train "$model" --data "$text" --out "$work/x5" --memory-budget 1M "${opts[@]}"
expect_error "holds a run already" train "$model" --data "$text" --out "$work/taken" "${opts[@]}"
expect_error "is a checkpoint of another model" train "$data/llama-tiny-gqa" --resume "$work/a/checkpoint-4" --data "$text" --out "$work/x6"
expect_error "was trained with batch 2, this run has 4" train --resume "$work/a/checkpoint-4" --data "$text" --out "$work/a" --steps 12 \
  --batch 4 --seq 16 --seed 3
expect_error "give --steps or --epochs, not both" train "$model" --data "$text" --out "$work/x7" --steps 3 --epochs 1 --seq 16
expect_error "--config needs --tokenizer" train --config "$model/config.json" --data "$text" --out "$work/x8"
expect_error "--min-lr is where the cosine schedule ends" train "$model" --data "$text" --out "$work/x9" --min-lr 1e-5
expect_error "no such file" train "$model" --data "$work/missing.txt" --out "$work/x10"
echo "ok: bad input is refused, naming it"

# Every family's trained folder loads in transformers, and scribe continues it as
# transformers did (the reference script ran the same command on it).
python3 - "$data/train/expected.json" "$work/ref" <<'PY'
import json, sys
for e in json.load(open(sys.argv[1]))["models"]:
    open(sys.argv[2] + "." + e["model"] + ".args", "w").write("\n".join(e["args"]) + "\n")
PY
for m in gpt2-tiny-a opt-tiny gptj-tiny llama-tiny-gqa; do
  mapfile -t ref_args < "$work/ref.$m.args"
  "$scribe" train "$data/$m" --data "$text" --out "$work/ref-$m" "${ref_args[@]}" --quiet > /dev/null
done
python3 - "$data/train/expected.json" "$work" "$scribe" <<'PY' || fail "a trained model does not generate as transformers does"
import json, subprocess, sys
expected, work, scribe = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
assert [e["model"] for e in expected["models"]] == ["gpt2-tiny-a", "opt-tiny", "gptj-tiny", "llama-tiny-gqa"]
for e in expected["models"]:
    for p in e["prompts"]:
        got = subprocess.run([scribe, "generate", f"{work}/ref-{e['model']}", "--prompt", p["text"], "--greedy", "--no-stop",
                              "--max-new-tokens", str(len(p["greedy_ids"])), "--quiet"], check=True, capture_output=True,
                             text=True).stdout
        assert got.rstrip("\n") == p["text"] + p["greedy_text"], (e["model"], got, p)
    print(f"ok: {e['model']} trained by scribe: transformers and scribe continue {e['prompts'][0]['text']!r} with "
          f"{e['prompts'][0]['greedy_text']!r}")
PY
