#!/usr/bin/env bash
# A bounded libFuzzer run of one fuzz target, as a test (meson's suite `fuzz`):
#   tests/fuzz/run.sh TARGET SOURCE_ROOT BUILD_DIR
# builds tests/fuzz/fuzz_TARGET.cpp with clang++-19 (-fsanitize=fuzzer,address,undefined,
# every UBSan check fatal) into BUILD_DIR/fuzz_TARGET, unless it is up to date, and
# runs it for SCRIBE_FUZZ_SECONDS (default 10: with five targets, under a minute
# of fuzzing for the suite) on a fresh copy of the seeds in tests/fuzz/corpus/TARGET
# (the seeds themselves are never changed; make_corpus.py writes them) and of the
# hostile-input catalogue's seeds for the target: every file under
# tests/hostile/seeds/TARGET/, when that folder exists, copied in as hostile-PATH
# ('/' in PATH as '_').
# Inputs are at most 4096 bytes (-max_len; JSON nested 65 levels deep, one past
# io::json_depth_limit, takes 130), 32768 for the json target, so that its seeds
# nested 10^4 levels are mutated whole, and 8192 for pytorch, whose seeds are
# whole zip archives; SCRIBE_FUZZ_MAX_LEN sets it for any target
# (a longer seed is cut to it). Expected errors (scribe::error) are fine inside a
# target; a crash, a sanitizer report, a leak, an uncaught exception, a broken
# invariant (an abort) or a slow input (> 10 s) fails, and the input that did it
# is left at BUILD_DIR/TARGET-crash-* (or -timeout-*, -leak-*; run the binary on
# that file to reproduce). Without clang++-19 (Debian: clang-19, libclang-rt-19-dev; see
# scripts/setup.sh) the test fails, it does not skip.
set -uo pipefail

target=${1:?usage: run.sh TARGET SOURCE_ROOT BUILD_DIR}
root=${2:?usage: run.sh TARGET SOURCE_ROOT BUILD_DIR}
out=${3:?usage: run.sh TARGET SOURCE_ROOT BUILD_DIR}
seconds=${SCRIBE_FUZZ_SECONDS:-10}
case "$target" in
  json) max_len=32768 ;;
  pytorch) max_len=8192 ;;  # a zip archive cut short is only refused: the seeds are kept whole
  *) max_len=4096 ;;
esac
max_len=${SCRIBE_FUZZ_MAX_LEN:-$max_len}
cxx=${SCRIBE_FUZZ_CXX:-clang++-19}  # the targets read configs through the families, so the DSL: Clang 19 builds it

src="$root/tests/fuzz/fuzz_$target.cpp"
seeds="$root/tests/fuzz/corpus/$target"
bin="$out/fuzz_$target"
fail() { echo "fuzz $target: FAILED: $*" >&2; exit 1; }

[ -f "$src" ] || fail "no $src"
[ -d "$seeds" ] || fail "no seed corpus $seeds"
command -v "$cxx" >/dev/null 2>&1 || fail "$cxx not found: the fuzz tests need clang with libFuzzer (Debian packages clang-19 and libclang-rt-19-dev; scripts/setup.sh installs them)"
mkdir -p "$out" || fail "cannot create $out"

flags=(-std=c++2b -O1 -gline-tables-only -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I "$root/include" "-DSCRIBE_TEST_DATA=\"$root/tests/data\"")

# Rebuilt when the compiler, the flags, or any file the target includes changed.
stamp="$bin.flags"
wanted="$(command -v "$cxx") ${flags[*]}"
up_to_date() {
  [ -x "$bin" ] && [ -f "$bin.d" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] || return 1
  local f
  for f in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$bin.d"); do
    [ "$f" -nt "$bin" ] && return 1
  done
  return 0
}
if up_to_date; then
  echo "fuzz $target: $bin is up to date"
else
  echo "fuzz $target: building $bin"
  start=$SECONDS
  rm -f "$bin" "$stamp"
  "$cxx" "${flags[@]}" -MMD -MF "$bin.d" "$src" -o "$bin" || fail "$cxx could not build $src (is libclang-rt-19-dev installed?)"
  echo "$wanted" > "$stamp"
  echo "fuzz $target: built in $((SECONDS - start)) s"
fi

corpus="$out/$target-corpus"
rm -rf "$corpus" "$out/$target"-crash-* "$out/$target"-leak-* "$out/$target"-timeout-* "$out/$target"-oom-*
cp -r "$seeds" "$corpus" || fail "cannot copy the seeds"
hostile="$root/tests/hostile/seeds/$target"
hostile_count=0
if [ -d "$hostile" ]; then
  while IFS= read -r -d '' f; do
    rel=${f#"$hostile"/}
    cp "$f" "$corpus/hostile-${rel//\//_}" || fail "cannot copy the hostile seed $f"
    hostile_count=$((hostile_count + 1))
  done < <(find "$hostile" -type f -print0)
  echo "fuzz $target: $hostile_count seeds from $hostile"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
dict=()
[ -f "$root/tests/fuzz/$target.dict" ] && dict=(-dict="$root/tests/fuzz/$target.dict")
log="$out/$target.log"
"$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
       -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 "${dict[@]}" \
       -artifact_prefix="$out/$target-" "$corpus" > "$log" 2>&1
status=$?
# libFuzzer's own default exit code for a crash is 77, which meson would count as
# a skip: every failure is 1 here.
if [ "$status" -ne 0 ]; then
  tail -n 80 "$log"
  fail "libFuzzer exited with $status (log: $log); the input is in $out/$target-*"
fi
grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+(INITED|DONE)|Done |stat::)' "$log"
echo "fuzz $target: no failure in ${seconds} s; corpus grew from $(( $(ls "$seeds" | wc -l) + hostile_count )) to $(ls "$corpus" | wc -l) inputs"
