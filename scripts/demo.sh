#!/usr/bin/env bash
# The main job on its built-in default: builds Scribe and its `scribe` program,
# generates text with the demo GPT-2 kept in the repo (models/demo-gpt2, trained
# by `scribe train` on the King James Bible: scripts/train_demo.sh), and writes that
# model's prefill and decode graphs as XLA HLO (text and proto) with a manifest.
#   bash scripts/demo.sh [OUTPUT_DIR]      (default: out/)
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
scribe_setup_system
scribe_build build -Dxla=auto >/dev/null
out=${1:-$SCRIBE_ROOT/out}
scribe="$SCRIBE_ROOT/build/tools/scribe"
echo "== scribe generate (demo model, greedy, 60 new tokens)"
"$scribe" generate --prompt "In the beginning" --greedy --max-new-tokens 60
echo
echo "== scribe generate (sampled: temperature 0.8, top-k 40, seed 7)"
"$scribe" generate --prompt "And the LORD said" --temperature 0.8 --top-k 40 --seed 7 --max-new-tokens 60
echo
echo "== scribe export-hlo --out $out/hlo"
"$scribe" export-hlo --out "$out/hlo" --buckets 16,64 --capacity 128
echo
echo "First lines of $out/hlo/decode.hlo:"
head -c 600 "$out/hlo/decode.hlo"
echo
