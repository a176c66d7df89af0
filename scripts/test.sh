#!/usr/bin/env bash
# The whole test suite: unit tests, compile-only and must-not-compile programs, the
# examples, the docs' code, and the XLA conformance suite (every op and example
# graph run by XLA, text and proto, against NumPy).
#   bash scripts/test.sh              warnings are errors; then the unit, static,
#                                     examples, compile_fail and docs suites again,
#                                     built by Clang 19 (build-clang19)
#   bash scripts/test.sh --sanitize   the GCC build under AddressSanitizer + UBSan
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
# No debug information in the suite's builds: it is a third of the compile time of
# these template-heavy programs (the sanitizer build keeps it, for its reports).
# The benchmarks' sources are compiled, not their optimised programs built
# (bench/meson.build); bench/run.sh builds those.
dir=build opts=(-Dwerror=true -Ddebug=false -Dbenchmarks=false)
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-sanitize
  # GCC 12 warns spuriously inside libstdc++ when sanitizing at -O2, so warnings
  # stay errors in the plain build only.
  # float-cast-overflow is not part of GCC's -fsanitize=undefined: asked for by name
  # (a float from a file or a flag cast to an integer out of range is undefined).
  opts=(-Dwerror=false -Ddebug=true -Db_sanitize=address,undefined -Db_lundef=false
        -Dcpp_args=-fsanitize=float-cast-overflow -Dcpp_link_args=-fsanitize=float-cast-overflow)
  export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
scribe_setup_system
scribe_setup_python
scribe_setup_reference  # torch and transformers: the Python package's transformers adapter (python/tests/hf)
scribe_build "$dir" -Dxla=enabled -Dxla_python="$SCRIBE_ROOT/.venv/bin/python" -Dpython=enabled \
  -Dhf_python="$SCRIBE_ROOT/.venv-ref/bin/python" "${opts[@]}"

set +e
meson test -C "$SCRIBE_ROOT/$dir" --print-errorlogs --num-processes 2 | tee "$SCRIBE_ROOT/$dir/meson-logs/test-summary.txt"
status=${PIPESTATUS[0]}
set -e
# Meson's own summary of build dir $2, as one closing line named $1.
summary() {
  local file="$SCRIBE_ROOT/$2/meson-logs/test-summary.txt"
  count() { sed -n "s/^$1: *\([0-9]*\).*/\1/p" "$file" | tail -n 1; }
  local failed=$(( $(count Fail) + $(count Timeout) + $(count "Unexpected Pass") ))
  echo "$1: $(count Ok) passed, $failed failed, $(count Skipped) skipped"
}

# Clang: the suites that check the compiler, built by Debian's clang-19 with
# warnings as errors (build-clang19): unit tests, static checks, examples,
# must-not-compile programs (the same expected diagnostics) and the docs' code.
# The `scribe` program's, XLA, fuzz and packaging suites run in the GCC build only,
# to keep the time down (README.md, "Compilers").
if [ "$dir" = build ]; then
  cdir=build-clang19 cstart=$SECONDS
  set +e
  rm -f "$SCRIBE_ROOT/$cdir/meson-logs/test-summary.txt"
  CXX=clang++-19 scribe_build "$cdir" -Dwerror=true -Ddebug=false -Dxla=disabled -- \
    tests/unit_tests tests/static_checks examples/lm_head examples/custom_block examples/first_gradient \
    tests/compile_fail_pch.hpp.pch
  cstatus=$?
  if [ $cstatus -eq 0 ]; then
    meson test -C "$SCRIBE_ROOT/$cdir" --no-rebuild --print-errorlogs --num-processes 2 \
      --suite unit --suite static --suite examples --suite compile_fail --suite docs \
      | tee "$SCRIBE_ROOT/$cdir/meson-logs/test-summary.txt"
    cstatus=${PIPESTATUS[0]}
  fi
  set -e
  summary "scribe (gcc)" "$dir"
  if [ -f "$SCRIBE_ROOT/$cdir/meson-logs/test-summary.txt" ]; then
    summary "scribe (clang-19)" "$cdir"
    echo "scribe (clang-19): built and run in $((SECONDS - cstart)) s"
  else
    echo "scribe (clang-19): the build failed (see above)"
  fi
  [ "$status" -ne 0 ] || status=$cstatus
else
  summary scribe "$dir"
fi
exit $status
