#!/usr/bin/env bash
# Reproduces the issue #5 weights that src/albertkit/models/albert-mini-en shipped until issue #14 (v1:
# the phase1_*/phase2_* files of its training/v1/); scripts/train_albert_mini_en.sh runs the issue #14 recipe
# that replaced it. Since issue #14, albertkit's LAMB bias-corrects the LayerNorm/bias steps that v1
# took uncorrected, so this replays the v1 recipe, not its exact weights.
# Run from the repository root with ../shared/data present. Two phases, as it was trained:
#   1. 3,000 LAMB steps from random weights, fp32 (about an hour on 2 otherwise idle CPU cores);
#   2. 5,000 more LAMB steps from phase 1's weights with a fresh optimizer, bf16 + torch.compile,
#      another data order (seed 1). Phase 2's schedule was shortened twice to fit a 3-hour
#      session (planned 8,000 steps, then 6,500, finally 5,000 total); --stop-after / --resume
#      replay those horizon changes exactly.
set -euo pipefail
DATA=${ALBERTKIT_SHARED_DATA:-../shared/data}
OUT=${1:-runs/albert-mini-en}
COMMON=(--tokenizer "$DATA/albert-base-v2/spiece.model" --config src/albertkit/models/albert-mini-en/config.json
        --batch-size 64 --lr 0.01 --warmup-steps 100 --optimizer lamb --max-seq-length 128 --max-predictions 20
        --log-every 20 --eval-instances 1024 --num-workers 0)

# Phase 1: prepares the corpus (250 held-out documents) into $OUT/phase1/corpus, then trains.
albertkit pretrain "$DATA/corpus" --fallback-encoding cp1252 --heldout-docs 250 --seed 0 "${COMMON[@]}" \
  --output "$OUT/phase1" --max-steps 3000 --eval-every 250 --save-every 100

# Phase 2: same prepared corpus (same held-out split), phase 1's final weights.
P2=(pretrain "$OUT/phase1/corpus" --seed 1 --bf16 --compile "${COMMON[@]}" --init-from "$OUT/phase1/model"
    --output "$OUT/phase2" --eval-every 500 --save-every 250)
albertkit "${P2[@]}" --max-steps 8000 --stop-after 1250
albertkit "${P2[@]}" --max-steps 6500 --resume --stop-after 1500
albertkit "${P2[@]}" --max-steps 5000 --resume

# Held-out metrics of the final model (documents never trained on).
albertkit evaluate-pretraining "$OUT/phase2/model" "$OUT/phase1/corpus" --split heldout --max-seq-length 128 --max-instances 4096 --output "$OUT/heldout_metrics.json"
albertkit evaluate-pretraining "$OUT/phase2/model" "$OUT/phase1/corpus" --split heldout --max-seq-length 128 --max-instances 4096 --max-ngram 1 --output "$OUT/heldout_metrics_single_word.json"
