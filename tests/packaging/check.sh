#!/usr/bin/env bash
# Usage: check.sh SOURCE_ROOT BUILD_DIR WORK_DIR COMPILER...
# Proves the two ways another project takes Scribe: `meson install` (headers and
# scribe.pc, used through pkg-config) and a Meson subproject (dependency('scribe')).
set -euo pipefail
src=$1 build=$2 work=$3
shift 3
rm -rf "$work"
mkdir -p "$work"

echo "== meson install + pkg-config"
meson install -C "$build" --no-rebuild --destdir "$work/inst" >/dev/null
pc=$(find "$work/inst" -name scribe.pc)
[ -n "$pc" ] || { echo "FAIL: no scribe.pc installed"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pc")
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-variable=prefix="$work/inst$prefix" --cflags scribe)
echo "pkg-config --cflags scribe: $cflags"
# shellcheck disable=SC2086
"$@" $cflags "$src/tests/packaging/consumer.cpp" -o "$work/consumer-pc"
"$work/consumer-pc" >/dev/null

echo "== Meson subproject"
mkdir -p "$work/sub/subprojects"
ln -s "$src" "$work/sub/subprojects/scribe"
cp "$src/tests/packaging/consumer.cpp" "$work/sub/"
cat > "$work/sub/meson.build" <<'MESON'
project('consumer', 'cpp')
subproject('scribe', default_options: ['tests=false'])
executable('consumer', 'consumer.cpp', dependencies: dependency('scribe'))
MESON
meson setup "$work/sub/build" "$work/sub" >/dev/null
ninja -C "$work/sub/build" >/dev/null
"$work/sub/build/consumer" >/dev/null
echo "ok: installed and subproject consumers build and run"
