#!/usr/bin/env bash
# Retrains the demo model (models/demo-gpt2) with `scribe train`, as it was made:
# the same GPT-2 architecture (its config.json) and byte-level BPE tokenizer, from
# scratch on the King James Bible, on ONE thread, 1604 steps of 16 x 128 tokens,
# AdamW (lr 1e-3 after 100 warm-up steps, cosine to 1e-4, betas 0.9/0.95, weight
# decay 0.1 on matrices, clipping 1.0), the last 2% of the text held out.
# About 17 minutes on one Zen 5 core.
#   bash scripts/train_demo.sh [OUT_DIR]     (default: out/demo-train; then copy
#                                             OUT_DIR's model files to models/demo-gpt2)
# The text: the King James Version (1611, public domain) from Debian's bible-kjv,
# one verse a line with the references dropped (31,102 verses, 4137849 bytes),
# the same text scripts/reference/train_demo.py (PyTorch, the cross-check) reads.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
scribe_setup_system
scribe_build build -Dxla=auto >/dev/null
out=${1:-$SCRIBE_ROOT/out/demo-train}
mkdir -p "$out"
text="$out/kjv.txt"
scribe_kjv_text "$text"
demo="$SCRIBE_ROOT/models/demo-gpt2"
"$SCRIBE_ROOT/build/tools/scribe" train --config "$demo/config.json" --tokenizer "$demo" --data "$text" \
    --out "$out/run" --overwrite --steps 1604 --batch 16 --seq 128 --threads 1 \
    --lr 1e-3 --min-lr 1e-4 --schedule cosine --warmup 100 --beta2 0.95 --weight-decay 0.1 --clip 1 \
    --val-fraction 0.02 --eval-every 500 --save-every 500 --seed 0
