#!/usr/bin/env bash
# The whole test suite: unit tests, compile-only and must-not-compile programs, the
# examples, the docs' code, and the XLA conformance suite (every op and example
# graph run by XLA, text and proto, against NumPy).
#   bash scripts/test.sh              warnings are errors
#   bash scripts/test.sh --sanitize   the same under AddressSanitizer + UBSan
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
dir=build opts=(-Dwerror=true)
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-sanitize
  # GCC 12 warns spuriously inside libstdc++ when sanitizing at -O2, so warnings
  # stay errors in the plain build only.
  # float-cast-overflow is not part of GCC's -fsanitize=undefined: asked for by name
  # (a float from a file or a flag cast to an integer out of range is undefined).
  opts=(-Dwerror=false -Db_sanitize=address,undefined -Db_lundef=false
        -Dcpp_args=-fsanitize=float-cast-overflow -Dcpp_link_args=-fsanitize=float-cast-overflow)
  export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
scribe_setup_system
scribe_setup_python
scribe_build "$dir" -Dxla=enabled -Dxla_python="$SCRIBE_ROOT/.venv/bin/python" "${opts[@]}"

set +e
meson test -C "$SCRIBE_ROOT/$dir" --print-errorlogs --num-processes 2 | tee "$SCRIBE_ROOT/$dir/meson-logs/test-summary.txt"
status=${PIPESTATUS[0]}
set -e
# Meson's own summary, as one closing line.
count() { sed -n "s/^$1: *\([0-9]*\).*/\1/p" "$SCRIBE_ROOT/$dir/meson-logs/test-summary.txt" | tail -n 1; }
failed=$(( $(count Fail) + $(count Timeout) + $(count "Unexpected Pass") ))
echo "scribe: $(count Ok) passed, $failed failed, $(count Skipped) skipped"
exit $status
