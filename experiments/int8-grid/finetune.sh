#!/usr/bin/env bash
# Fine-tune the shipped DyBNN (the recipe campaign's dybnn/seed-2, committed in the
# campaign state) for 3 epochs at lr 1e-4 with the distribution loss, once with the
# hyper kernels on the int8 grid (--int8-hyper-kernels) and once without (control):
# same seed, batches and schedule. Then measure each with measure.py --model.
#
#   experiments/int8-grid/finetune.sh OUTPUT_DIR [CIFAR10_DIR]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:?usage: finetune.sh OUTPUT_DIR [CIFAR10_DIR]}"
DATA="${2:-$REPO/../shared/data/cifar10}"
STATE="$REPO/experiments/cifar10-recipe/runs/cifar10-recipe"
common=(train --model dybnn-reactnet-18 --width-multiplier 0.25 --data "$DATA"
        --train-split "train[:45000]" --eval-split "train[45000:]" --epochs 3
        --batch-size 128 --learning-rate 1e-4 --seed 2 --step 2
        --init-from "$STATE/dybnn/seed-2/model.keras"
        --teacher "$STATE/teacher/seed-0/model.keras" --quiet)
"$REPO/.venv/bin/larq-dybnn" "${common[@]}" --int8-hyper-kernels --output-dir "$OUT/qat"
"$REPO/.venv/bin/larq-dybnn" "${common[@]}" --output-dir "$OUT/control"
for run in qat control; do
    "$REPO/.venv/bin/python" "$REPO/experiments/int8-grid/measure.py" --data "$DATA" \
        --model "$OUT/$run/model.keras" --json "$OUT/$run/measured.json"
done
