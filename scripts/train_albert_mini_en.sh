#!/usr/bin/env bash
# Trains src/albertkit/models/albert-mini-en (issue #14's recipe) from the corpus, in stages.
#
#   scripts/train_albert_mini_en.sh [OUT [STOP_AFTER]]
#
# One schedule of 48,000 steps of 32 x 128 (about 197M token positions, many hours of 2-core CPU),
# run in stages: each call resumes from OUT's latest checkpoint and, with STOP_AFTER, checkpoints
# and exits after that step. The held-out split (250 documents, seed 0) never trains.
# Recipe: AdamW (decoupled weight decay 0.01, none on LayerNorm/bias; betas 0.9/0.98, eps 1e-6;
# bias-corrected), peak lr LR below after 400 warmup steps, linear decay to 0 at step 48,000;
# single-piece masking for the first 12,000 steps (25%), whole-word n-grams (n <= 3) after;
# MLM + SOP, 15% masked (at most 20 per sequence), bf16 autocast. The model is the shipped config
# (E 64, H 256, 4 layers sharing one block).
#
# When OUT's checkpoints are gone (a new machine) but committed weights are not, continue from a
# model folder whose training/position.json records its schedule step (the shipped folder, or the
# candidate in training-state/ when it was not yet better than the shipped model):
#   RESUME_FROM=src/albertkit/models/albert-mini-en scripts/train_albert_mini_en.sh OUT [STOP_AFTER]
# (--init-from that folder, --start-step its step, fresh optimizer, 100 re-warm steps).
#
# PROCS=2 runs it as 2 single-threaded processes (torchrun, DDP over gloo; same global batch and data
# order): on 2 cores shared with other work that was 2.9 s/step against 5.4 s/step for one
# 2-thread process.
#
# After a stage, ship the best checkpoint ([MASK]-only held-out accuracy) if it beats the shipped one:
#   python scripts/heldout_mask_accuracy.py OUT/best OUT/corpus      # vs training/heldout_mask_accuracy.json
#   python scripts/ship_model.py OUT src/albertkit/models/albert-mini-en --checkpoint OUT/best \
#       --tokenizer ../shared/data/albert-base-v2/spiece.model
set -euo pipefail
DATA=${ALBERTKIT_SHARED_DATA:-../shared/data}
OUT=${1:-runs/albert-mini-en}
STOP=${2:-}
SHIPPED=src/albertkit/models/albert-mini-en
LR=1e-3  # probes from scratch (training/probes/): 1e-3 kept improving at step 300 where 2e-3 stalled
ARGS=(pretrain "$DATA/corpus" --fallback-encoding cp1252 --heldout-docs 250 --seed 0
      --tokenizer "$DATA/albert-base-v2/spiece.model" --config "$SHIPPED/config.json"
      --batch-size 32 --max-steps 48000 --warmup-steps 400 --subword-masking-steps 12000
      --optimizer adamw --lr "$LR" --adam-betas 0.9 0.98 --adam-eps 1e-6 --weight-decay 0.01
      --max-seq-length 128 --max-predictions 20 --bf16 --num-workers 0
      --log-every 20 --eval-every 100 --eval-instances 512 --probe-instances 128 --save-every 100
      --output "$OUT" --resume)
if [[ -n "$STOP" ]]; then ARGS+=(--stop-after "$STOP"); fi
if [[ -n "${RESUME_FROM:-}" ]]; then
  STEP=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['step'])" "$RESUME_FROM/training/position.json")
  ARGS+=(--init-from "$RESUME_FROM" --start-step "$STEP" --rewarm-steps 100)
fi
if [[ -n "${PROCS:-}" ]]; then
  OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node "$PROCS" -m albertkit "${ARGS[@]}"
else
  albertkit "${ARGS[@]}"
fi
