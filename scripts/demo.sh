#!/usr/bin/env bash
# The main job on its built-in default: builds Scribe's examples and runs the
# lm_head example, which writes its HLO (text and proto) and prints a summary.
#   bash scripts/demo.sh [OUTPUT_DIR]      (default: out/)
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
scribe_setup_system
scribe_build build -Dxla=auto >/dev/null
out=${1:-$SCRIBE_ROOT/out}
"$SCRIBE_ROOT/build/examples/lm_head" "$out"
echo
echo "First lines of $out/lm_head.hlo:"
head -n 8 "$out/lm_head.hlo"
