#!/usr/bin/env bash
# A tensor-parallel rank that hangs or dies ends the job with an error instead of
# leaving the other ranks waiting forever. Under `mpirun -np 2`, once rank 0 has
# loaded its weights (a few seconds of generation are left), rank 1 is
#   stopped (SIGSTOP): rank 0's collective times out after --collective-timeout,
#     it names rank 1, and the job ends, the stopped rank too;
#   killed (SIGKILL): mpirun ends the job at once.
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

# fault SIGNAL: runs the job, sends SIGNAL to rank 1 once rank 0 says its weights
# are loaded, and waits (at most 60 s) for the job to end. Sets rc (mpirun's
# status) and took (seconds from the signal to the end); stderr is in $work/err.
fault() {
  rm -f "$work"/pid.* "$work/err"
  # Each rank writes its pid (then becomes scribe), so the test can signal rank 1.
  mpirun -np 2 sh -c 'echo $$ > "$0/pid.$OMPI_COMM_WORLD_RANK"; exec "$@"' "$work" \
    "$scribe" generate "$model" "${prompts[@]}" --greedy --no-stop --max-new-tokens 250 --collective-timeout 3 \
    >/dev/null 2>"$work/err" &
  job=$!
  for _ in $(seq 300); do
    ! grep -q "loaded in" "$work/err" 2>/dev/null || break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "loaded in" "$work/err" || fail "rank 0 did not load the model within 30 s: $(cat "$work/err")"
  [ -s "$work/pid.1" ] || fail "rank 1 wrote no pid"
  kill -"$1" "$(cat "$work/pid.1")"
  local sent
  sent=$(now)
  for _ in $(seq 600); do
    kill -0 "$job" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$job" 2>/dev/null && fail "the job was still running 60 s after SIG$1 to rank 1: $(cat "$work/err")"
  took=$(since "$sent")
  set +e; wait "$job"; rc=$?; set -e
  job=
  gone "$(cat "$work/pid.1")" || fail "rank 1 outlived the job (SIG$1)"
  gone "$(cat "$work/pid.0")" || fail "rank 0 outlived the job (SIG$1)"
}

fault STOP
[ "$rc" != 0 ] || fail "rank 1 stopped: the job exited 0"
grep -qF "rank 1 did not reach the" "$work/err" || fail "rank 1 stopped: no error naming it: $(cat "$work/err")"
grep -qF "within 3 s (the collective timeout; --collective-timeout sets it)" "$work/err" ||
  fail "rank 1 stopped: the error does not give the timeout: $(cat "$work/err")"
awk -v t="$took" 'BEGIN { exit !(t < 30) }' || fail "rank 1 stopped: the job took $took s to end (timeout 3 s)"
echo "ok: rank 1 stopped: rank 0 names it after the 3 s collective timeout and the job ends in $took s (status $rc)"

fault KILL
[ "$rc" != 0 ] || fail "rank 1 killed: the job exited 0"
grep -qF "exited on signal 9" "$work/err" || fail "rank 1 killed: mpirun did not say so: $(cat "$work/err")"
awk -v t="$took" 'BEGIN { exit !(t < 30) }' || fail "rank 1 killed: the job took $took s to end"
echo "ok: rank 1 killed: the job ends in $took s (status $rc)"
