#!/usr/bin/env bash
# The whole test suite: unit tests, compile-only and must-not-compile programs, the
# examples, the docs' code, and the XLA conformance suite (every op and example
# graph run by XLA, text and proto, against NumPy).
#   bash scripts/test.sh              warnings are errors
#   bash scripts/test.sh --sanitize   the same under AddressSanitizer + UBSan
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
dir=build opts=()
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-sanitize
  opts=(-Db_sanitize=address,undefined -Db_lundef=false)
  export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
scribe_setup_system
scribe_setup_python
scribe_build "$dir" -Dwerror=true -Dxla=enabled -Dxla_python="$SCRIBE_ROOT/.venv/bin/python" "${opts[@]}"

set +e
meson test -C "$SCRIBE_ROOT/$dir" --print-errorlogs --num-processes 2
status=$?
set -e
"$SCRIBE_ROOT/.venv/bin/python" - "$SCRIBE_ROOT/$dir/meson-logs/testlog.json" <<'PY'
import json, sys
results = [json.loads(line) for line in open(sys.argv[1])]
passed = sum(r["result"] == "OK" for r in results)
skipped = sum(r["result"] == "SKIP" for r in results)
failed = len(results) - passed - skipped
print(f"scribe: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $status
