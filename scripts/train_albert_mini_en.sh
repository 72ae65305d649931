#!/usr/bin/env bash
# Reproduces the shipped model src/albertkit/models/albert-mini-en (see its README.md).
# Run from the repository root with ../shared/data present; takes about an hour on 2 otherwise idle CPU cores.
set -euo pipefail
DATA=${ALBERTKIT_SHARED_DATA:-../shared/data}
OUT=${1:-runs/albert-mini-en}

albertkit pretrain "$DATA/corpus" \
  --fallback-encoding cp1252 --heldout-docs 250 --seed 0 \
  --tokenizer "$DATA/albert-base-v2/spiece.model" \
  --config src/albertkit/models/albert-mini-en/config.json \
  --output "$OUT" \
  --batch-size 64 --max-steps 3000 --lr 0.01 --warmup-steps 100 --optimizer lamb \
  --max-seq-length 128 --max-predictions 20 \
  --log-every 20 --eval-every 250 --save-every 100 --eval-instances 1024 --num-workers 0

# Held-out metrics of the final model (documents never trained on).
albertkit evaluate-pretraining "$OUT/model" "$OUT/corpus" --split heldout --max-seq-length 128 --max-instances 4096 --output "$OUT/heldout_metrics.json"
