#!/usr/bin/env bash
# Usage: check.sh FILE.cpp INCLUDE_DIR COMPILER...
# Compiles FILE.cpp and passes only if compilation fails and the diagnostic holds
# every string given in the file's "// expect: ..." lines.
set -u
file=$1 inc=$2
shift 2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if "$@" -std=c++23 -fsyntax-only -I"$inc" "$file" >"$log" 2>&1; then
  echo "FAIL: $file compiled, but it must not"
  exit 1
fi
status=0
while IFS= read -r want; do
  if grep -qF -- "$want" "$log"; then
    echo "ok: diagnostic names '$want'"
  else
    echo "FAIL: diagnostic lacks '$want'"
    status=1
  fi
done < <(sed -n 's|^// expect: ||p' "$file")
if ! grep -q '^// expect: ' "$file"; then
  echo "FAIL: $file has no '// expect:' lines"
  status=1
fi
[ $status -eq 0 ] || { echo "--- compiler output ---"; head -60 "$log"; }
exit $status
