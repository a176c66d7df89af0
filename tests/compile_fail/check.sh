#!/usr/bin/env bash
# Usage: check.sh FILE.cpp INCLUDE_DIR PCH COMPILER...
# Compiles FILE.cpp and passes only if compilation fails and the diagnostic holds
# every string given in the file's "// expect: ..." lines, in exactly one error
# (or the number a "// errors: N" line gives). PCH: the precompiled pch.hpp, a
# GCC NAME.gch (-include NAME) or a Clang .pch (-include-pch), or - for none.
set -u
file=$1 inc=$2 pch=$3
shift 3
case $pch in
  -) pch_flags=() ;;
  *.gch) pch_flags=(-include "${pch%.gch}") ;;
  *.pch) pch_flags=(-include-pch "$pch") ;;
  *) echo "check.sh: $pch is not a .gch or .pch file"; exit 1 ;;
esac
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if "$@" -std=c++2b -fsyntax-only "${pch_flags[@]}" -I"$inc" "$file" >"$log" 2>&1; then
  echo "FAIL: $file compiled, but it must not"
  exit 1
fi
# GCC and Clang spell some types differently (GCC: `dims<a, dims<b> >`, `long int`,
# `long unsigned int`; Clang: `dims<a, dims<b>>`, `long`, `unsigned long`): the
# diagnostic and each expected string are compared in Clang's spelling, so an
# expectation copied from either compiler's output holds under both.
spelled() { sed -e 's/ >/>/g' -e 's/\blong unsigned int\b/unsigned long/g' -e 's/\blong int\b/long/g'; }
spelled <"$log" >"$log.spelled"
trap 'rm -f "$log" "$log.spelled"' EXIT
status=0
while IFS= read -r want; do
  if grep -qF -- "$(printf '%s\n' "$want" | spelled)" "$log.spelled"; then
    echo "ok: diagnostic names '$want'"
  else
    echo "FAIL: diagnostic lacks '$want'"
    status=1
  fi
done < <(sed -n 's|^// expect: ||p' "$file")
# One mistake, one error: a rejected op gives its call the type it would have had,
# so code that uses the result adds no follow-on errors ("// errors: N" to differ).
want_errors=$(sed -n 's|^// errors: ||p' "$file")
errors=$(grep -c 'error:' "$log")
if [ "$errors" -eq "${want_errors:-1}" ]; then
  echo "ok: $errors error(s)"
else
  echo "FAIL: the compiler reports $errors errors, expected ${want_errors:-1} (a follow-on error?)"
  status=1
fi
if ! grep -q '^// expect: ' "$file"; then
  echo "FAIL: $file has no '// expect:' lines"
  status=1
fi
[ $status -eq 0 ] || { echo "--- compiler output ---"; head -60 "$log"; }
exit $status
