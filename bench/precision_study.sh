#!/usr/bin/env bash
# The precision study of docs/training.md: the demo model's architecture
# (models/demo-gpt2/config.json) trained from scratch on the King James Bible
# for the same steps, batches and seed in each --precision mode (f32, bf16 with
# rounding to nearest, bf16-sr, bf16-master, autocast), then the loss curves
# drawn together (precision.svg) and a table of the final losses and speeds.
#   bash bench/precision_study.sh [OUT_DIR] [STEPS]   (default out/precision-study, 400)
# The recipe is scripts/train_demo.sh's, shortened: AdamW, lr 1e-3 after 40
# warm-up steps, cosine to 1e-4, betas 0.9/0.95, weight decay 0.1, clipping 1,
# 8 x 128 tokens a step, one thread a run, two runs at a time.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/setup.sh"
scribe_setup_system
scribe_build build -Dxla=auto >/dev/null
out=${1:-$SCRIBE_ROOT/out/precision-study}
steps=${2:-400}
mkdir -p "$out"
scribe_kjv_text "$out/kjv.txt"
demo="$SCRIBE_ROOT/models/demo-gpt2"
modes=(f32 bf16 bf16-sr bf16-master autocast)
run() {
  "$SCRIBE_ROOT/build/tools/scribe" train --config "$demo/config.json" --tokenizer "$demo" --data "$out/kjv.txt" \
    --out "$out/$1" --overwrite --precision "$1" --steps "$steps" --batch 8 --seq 128 --threads 1 \
    --lr 1e-3 --min-lr 1e-4 --schedule cosine --warmup 40 --beta2 0.95 --weight-decay 0.1 --clip 1 \
    --val-fraction 0.02 --eval-every $((steps / 4)) --seed 0 --quiet > "$out/$1.out" 2>&1 \
    || { echo "precision_study: --precision $1 failed: $(tail -3 "$out/$1.out")" >&2; return 1; }
  echo "precision_study: $1: $(tail -1 "$out/$1.out")"
}
for ((i = 0; i < ${#modes[@]}; i += 2)); do
  run "${modes[i]}" &
  [ $((i + 1)) -lt ${#modes[@]} ] && run "${modes[i + 1]}" &
  wait
done
python3 "$SCRIBE_ROOT/bench/plot_losses.py" --out "$out/precision.svg" \
  --title "demo GPT-2 from scratch, $steps steps of 8 x 128 tokens: --precision" \
  $(for m in "${modes[@]}"; do echo "$m=$out/$m/log.jsonl"; done)
echo "precision_study: wrote $out/precision.svg"
