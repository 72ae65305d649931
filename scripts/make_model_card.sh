#!/usr/bin/env bash
# Measures a model's bias and regenerates its model card from the files in its folder:
#   scripts/make_model_card.sh MODEL_DIR [SCORES_CSV]
# 1. `albertkit bias`: the occupation probe and all 1,508 CrowS-Pairs pairs; the summary goes to
#    MODEL_DIR/bias_results.json (numbers only), the per-pair scores to SCORES_CSV (default
#    runs/bias/<model>-crows_pairs_scores.csv; it quotes the data set's sentences, CC BY-SA 4.0,
#    so it stays out of the package);
# 2. `albertkit card`: MODEL_DIR/README.md from config, weights, tokenizer, training/ logs,
#    evaluation files, bias_results.json and the hand-written MODEL_DIR/card_notes.md.
# Run from the repository root with ../shared/data beside it (ALBERTKIT_SHARED_DATA overrides);
# PYTHON picks the interpreter (default python), OMP_NUM_THREADS the threads (default 2).
set -euo pipefail
MODEL=${1:?usage: scripts/make_model_card.sh MODEL_DIR [SCORES_CSV]}
MODEL=${MODEL%/}
DATA=${ALBERTKIT_SHARED_DATA:-../shared/data}
SCORES=${2:-runs/bias/$(basename "$MODEL")-crows_pairs_scores.csv}
PY=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$(dirname "$SCORES")"
"$PY" -m albertkit bias "$MODEL" --crows-pairs "$DATA/bias/crows_pairs_anonymized.csv" \
  --output "$SCORES" --summary "$MODEL/bias_results.json"
"$PY" -m albertkit card "$MODEL" --output "$MODEL/README.md"
