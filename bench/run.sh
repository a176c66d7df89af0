#!/usr/bin/env bash
# Builds and runs every benchmark (meson benchmark targets), serially.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"
scribe_setup_system
scribe_build build -Dxla=auto >/dev/null
meson test -C "$SCRIBE_ROOT/build" --benchmark --num-processes 1 --verbose
