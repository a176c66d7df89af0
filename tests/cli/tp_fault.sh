#!/usr/bin/env bash
# A tensor-parallel or data-parallel rank that hangs or dies ends the job with an
# error instead of leaving the other ranks waiting forever. Under `mpirun -np 2`,
# once rank 0 has loaded its weights (a few seconds of generation are left), or
# once a training run has written a checkpoint, rank 1 is
#   stopped (SIGSTOP): rank 0's collective times out after --collective-timeout,
#     it names rank 1, and the job ends, the stopped rank too;
#   killed (SIGKILL): mpirun ends the job at once.
# A training run's checkpoints stay whole, and it resumes at another degree.
# Ranks as threads cannot be stopped one at a time: the unit tests cover them
# (tests/unit/test_parallel.cpp).
#   tp_fault.sh SCRIBE DATA_DIR WORK_DIR
set -euo pipefail
scribe=$1 data=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
source "$(dirname "$0")/common.sh"
command -v mpirun >/dev/null || fail "mpirun not found (the setup installs openmpi-bin)"

expect_error '--collective-timeout takes a number, not "x"' generate "$data/gpt2-tiny-a" --collective-timeout x
expect_error "--collective-timeout must be a number between 0.001 and 86400, not 0" generate "$data/gpt2-tiny-a" --collective-timeout 0
echo "ok: --collective-timeout takes a number of seconds"

# The demo model with 32 prompts of 250 new tokens each: about 4 s of decoding
# on a 2-core machine, so rank 1 is stopped long before its last collective.
model=$(cd "$data/../../models/demo-gpt2" && pwd)
prompts=()
for _ in $(seq 32); do prompts+=(--prompt "In the beginning"); done

job=  # mpirun's pid while a job runs
cleanup() {  # nothing outlives the test: mpirun and the ranks it started
  [ -z "$job" ] || kill -KILL "$job" 2>/dev/null || true
  for f in "$work"/pid.*; do [ ! -s "$f" ] || kill -KILL "$(cat "$f")" 2>/dev/null || true; done
}
trap cleanup EXIT
now() { date +%s.%N; }
alive() {  # alive PID: running or stopped (a zombie waiting for its parent is gone)
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "${s:0:1}" != Z ]
}
gone() {  # gone PID: within 5 s
  for _ in $(seq 50); do alive "$1" || return 0; sleep 0.1; done
  return 1
}
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# fault SIGNAL READY ARGS...: runs `scribe ARGS...` under mpirun -np 2, sends
# SIGNAL to rank 1 once READY (a command) succeeds, and waits (at most 60 s) for
# the job to end. Sets rc (mpirun's status) and took (seconds from the signal to
# the end); stderr is in $work/err.
loaded() { grep -q "loaded in" "$work/err" 2>/dev/null; }
fault() {
  local signal=$1 ready=$2
  shift 2
  rm -f "$work"/pid.* "$work/err"
  # Each rank writes its pid (then becomes scribe), so the test can signal rank 1.
  mpirun -np 2 sh -c 'echo $$ > "$0/pid.$OMPI_COMM_WORLD_RANK"; exec "$@"' "$work" "$scribe" "$@" >/dev/null 2>"$work/err" &
  job=$!
  for _ in $(seq 300); do
    ! $ready || break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  $ready || fail "the job was not ready ($ready) within 30 s: $(cat "$work/err")"
  [ -s "$work/pid.1" ] || fail "rank 1 wrote no pid"
  kill -"$signal" "$(cat "$work/pid.1")"
  local sent
  sent=$(now)
  for _ in $(seq 600); do
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$job" 2>/dev/null && fail "the job was still running 60 s after SIG$signal to rank 1: $(cat "$work/err")"
  took=$(since "$sent")
  set +e; wait "$job"; rc=$?; set -e
  job=
  gone "$(cat "$work/pid.1")" || fail "rank 1 outlived the job (SIG$signal)"
  gone "$(cat "$work/pid.0")" || fail "rank 0 outlived the job (SIG$signal)"
}

generate=(generate "$model" "${prompts[@]}" --greedy --no-stop --max-new-tokens 250 --collective-timeout 3)
fault STOP loaded "${generate[@]}"
[ "$rc" != 0 ] || fail "rank 1 stopped: the job exited 0"
grep -qF "rank 1 did not reach the" "$work/err" || fail "rank 1 stopped: no error naming it: $(cat "$work/err")"
grep -qF "within 3 s (the collective timeout; --collective-timeout sets it)" "$work/err" ||
  fail "rank 1 stopped: the error does not give the timeout: $(cat "$work/err")"
awk -v t="$took" 'BEGIN { exit !(t < 30) }' || fail "rank 1 stopped: the job took $took s to end (timeout 3 s)"
echo "ok: rank 1 stopped: rank 0 names it after the 3 s collective timeout and the job ends in $took s (status $rc)"

fault KILL loaded "${generate[@]}"
[ "$rc" != 0 ] || fail "rank 1 killed: the job exited 0"
grep -qF "exited on signal 9" "$work/err" || fail "rank 1 killed: mpirun did not say so: $(cat "$work/err")"
awk -v t="$took" 'BEGIN { exit !(t < 30) }' || fail "rank 1 killed: the job took $took s to end"
echo "ok: rank 1 killed: the job ends in $took s (status $rc)"

# Data-parallel training (the gradients' all-reduce every step): rank 1 stopped or
# killed after checkpoint-5 ends the job the same way; every checkpoint written is
# whole, and the run resumes from the latest at DP 1, as one process.
python3 - "$work/text.txt" <<'PY'
import random, sys
r = random.Random(7)
words = "the old man and sea said light shall be in beginning was word with over land water day night".split()
open(sys.argv[1], "w").write("\n".join(" ".join(r.choice(words) for _ in range(9)) + "." for _ in range(900)) + "\n")
PY
saved() { [ -s "$work/run/checkpoint-5/trainer_state.json" ]; }
for signal in STOP KILL; do
  rm -rf "$work/run"
  fault $signal saved train "$data/gpt2-tiny-a" --data "$work/text.txt" --out "$work/run" --steps 100000 --save-every 5 \
    --batch 4 --seq 16 --threads 1 --no-dropout --collective-timeout 3
  [ "$rc" != 0 ] || fail "training, rank 1 SIG$signal: the job exited 0"
  if [ $signal = STOP ]; then
    grep -qF "rank 1 did not reach the" "$work/err" || fail "training, rank 1 stopped: no error naming it: $(cat "$work/err")"
  fi
  awk -v t="$took" 'BEGIN { exit !(t < 30) }' || fail "training, rank 1 SIG$signal: the job took $took s to end"
  # The latest checkpoint (one cut short is a .tmp- folder, never renamed into place).
  last=$(ls -d "$work"/run/checkpoint-[0-9]* | sort -t- -k2 -n | tail -1)
  for f in model.safetensors optimizer.safetensors trainer_state.json config.json; do
    [ -s "$last/$f" ] || fail "training, rank 1 SIG$signal: $last has no $f"
  done
  step=${last##*-}
  # Resumed at DP 1 (one process), then stopped by SIGTERM once it has taken a step.
  "$scribe" train --resume "$last" --data "$work/text.txt" --out "$work/run" --steps 100000 --batch 4 --seq 16 \
    --threads 1 --no-dropout > /dev/null 2> "$work/resume.err" &
  resumed=$!
  for _ in $(seq 300); do  # its log: the killed run's lines up to the checkpoint kept, then its own
    grep -q "resuming at step $step of 100000" "$work/resume.err" &&
      [ "$(grep -c '"loss"' "$work/run/log.jsonl")" = $((step + 1)) ] && break
    kill -0 $resumed 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM $resumed 2>/dev/null || true
  set +e; wait $resumed; rrc=$?; set -e
  grep -q "resuming at step $step of 100000" "$work/resume.err" || fail "training: $last did not resume: $(cat "$work/resume.err")"
  [ $rrc = 143 ] || fail "training: the resumed run exited $rrc: $(cat "$work/resume.err")"
  at=$(sed -n 's/.*stopped by SIGTERM at step \([0-9]*\) of 100000.*/\1/p' "$work/resume.err")
  [ -n "$at" ] && [ "$at" -gt "$step" ] || fail "training: the resumed run took no step: $(cat "$work/resume.err")"
  echo "ok: training, rank 1 SIG$signal: the job ends in $took s (status $rc); $(basename "$last") is whole and resumes at DP 1"
done
