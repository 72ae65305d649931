#!/usr/bin/env bash
# Ships a checkpoint of the issue #14 run (scripts/train_albert_mini_en.sh) as albert-mini-en and
# regenerates every file its model card cites:
#
#   scripts/reship_albert_mini_en.sh CHECKPOINT RUN_STAGE_DIR
#
# CHECKPOINT: a model folder as the trainer saves it (config.json + model.safetensors), e.g.
#   runs/albert-mini-en/stage-3/checkpoints/step-00009000/model; the step comes from STEP=N, else
#   CHECKPOINT/STEP, else a step-NNNNNNNN folder in its path.
# RUN_STAGE_DIR: the stage folder it comes from (runs/albert-mini-en/stage-3: logs, recipe, corpus).
# Refuses (exit 1) unless the checkpoint beats the shipped model's held-out [MASK] accuracy; FORCE=1 ships anyway.
#
# Steps (all into src/albertkit/models/albert-mini-en, M below; T = M/training):
#  1. score the checkpoint: scripts/heldout_mask_accuracy.py, 1,024 held-out instances, transformers
#     (the card's lead figure) -> T/heldout_mask_accuracy.json; compare with the shipped one;
#  2. scripts/ship_model.py: weights + albert-base-v2's spiece.model into M;
#  3. albertkit evaluate-pretraining ... --single-pieces --probes 128 -> T/heldout_probe_metrics.json
#     (80/10/10 and [MASK]-only accuracy, shuffle gap, neighbour attention);
#  4. albertkit evaluate-pretraining on the 15 RACE passages -> T/race_metrics.json (what
#     tests/test_shipped_model.py recomputes);
#  5. the stage's logs cut at the step -> T/retrain_stageK_*, the learning curve over all stages
#     -> T/learning_curve.csv, the schedule position -> T/position.json (scripts/reship_files.py);
#  6. albertkit fill-mask -k 5 of the card's three sentences -> T/fill_mask_examples.json;
#  7. scripts/make_model_card.sh M: albertkit bias (occupation probe, all CrowS-Pairs pairs;
#     about 10 minutes on 2 shared cores) -> M/bias_results.json, then albertkit card -> M/README.md.
# Then review card_notes.md's prose (its numbers come from the files) and commit.
# Run from the repository root with ../shared/data beside it (ALBERTKIT_SHARED_DATA overrides);
# PYTHON picks the interpreter (default python), OMP_NUM_THREADS the threads (default 2).
set -euo pipefail
CKPT=${1:?usage: scripts/reship_albert_mini_en.sh CHECKPOINT RUN_STAGE_DIR}
RUN=${2:?usage: scripts/reship_albert_mini_en.sh CHECKPOINT RUN_STAGE_DIR}
CKPT=${CKPT%/}; RUN=${RUN%/}
DATA=${ALBERTKIT_SHARED_DATA:-../shared/data}
PY=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
M=src/albertkit/models/albert-mini-en
T=$M/training
CORPUS=$RUN/corpus
if [[ -z "${STEP:-}" ]]; then
  if [[ -f "$CKPT/STEP" ]]; then STEP=$(tr -d '[:space:]' < "$CKPT/STEP")
  elif [[ "$CKPT" =~ step-0*([0-9]+) ]]; then STEP=${BASH_REMATCH[1]}
  else echo "$CKPT: no STEP file and no step-N in the path; set STEP=N" >&2; exit 2; fi
fi
[[ "$STEP" =~ ^[0-9]+$ ]] || { echo "$CKPT: step '$STEP' is not a number" >&2; exit 2; }
for f in "$CKPT/config.json" "$CKPT/model.safetensors" "$RUN/eval_log.csv" "$RUN/pretraining_recipe.json" "$CORPUS/meta.json"; do
  [[ -f "$f" ]] || { echo "$f: missing" >&2; exit 2; }
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
log() { echo "[reship $(date -u +%H:%M:%S)] $*" >&2; }

log "1/7 scoring step $STEP at [MASK] (transformers, 1,024 held-out instances)"
"$PY" scripts/ship_model.py "$RUN" "$WORK/model" --checkpoint "$CKPT" --tokenizer "$DATA/albert-base-v2/spiece.model" > /dev/null
"$PY" scripts/heldout_mask_accuracy.py "$WORK/model" "$CORPUS" --max-instances 1024 --output "$WORK/heldout_mask_accuracy.json" > /dev/null
if ! "$PY" scripts/reship_files.py better "$WORK/heldout_mask_accuracy.json" "$T/heldout_mask_accuracy.json"; then
  if [[ -z "${FORCE:-}" ]]; then echo "not better than the shipped model: nothing changed (FORCE=1 ships anyway)" >&2; exit 1; fi
fi

log "2/7 shipping the weights into $M"
"$PY" scripts/ship_model.py "$RUN" "$M" --checkpoint "$CKPT" --tokenizer "$DATA/albert-base-v2/spiece.model"
mkdir -p "$T"
cp "$WORK/heldout_mask_accuracy.json" "$T/heldout_mask_accuracy.json"
"$PY" scripts/reship_files.py stamp "$T/heldout_mask_accuracy.json" --set "model=$M (step $STEP)" \
  --set "command=python scripts/heldout_mask_accuracy.py $M $CORPUS --max-instances 1024" \
  --set "corpus=the 250 held-out documents of ../shared/data/corpus (--heldout-docs 250 --seed 0)"

log "3/7 plateau probes on held-out text"
"$PY" -m albertkit -q evaluate-pretraining "$M" "$CORPUS" --split heldout --single-pieces --max-instances 1024 --probes 128 \
  --output "$T/heldout_probe_metrics.json"
"$PY" scripts/reship_files.py stamp "$T/heldout_probe_metrics.json" \
  --set "command=albertkit evaluate-pretraining $M $CORPUS --split heldout --single-pieces --max-instances 1024 --probes 128"

log "4/7 RACE passages"
"$PY" scripts/reship_files.py race-text "$DATA/race" "$WORK/race_articles.txt"
"$PY" -m albertkit -q evaluate-pretraining "$M" "$WORK/race_articles.txt" --max-seq-length 128 --output "$T/race_metrics.json"
"$PY" scripts/reship_files.py stamp "$T/race_metrics.json" \
  --set "command=albertkit evaluate-pretraining $M race_articles.txt --max-seq-length 128 (the 15 RACE passages of ../shared/data/race, as tests/test_shipped_model.py joins them)"

log "5/7 logs, learning curve, schedule position"
"$PY" scripts/reship_files.py logs "$RUN" "$T" --step "$STEP"

log "6/7 fill-mask examples"
TEXTS=("Hello I'm a [MASK] model." "The man worked as a [MASK]." "The woman worked as a [MASK].")
"$PY" -m albertkit -q fill-mask -k 5 -m "$M" "${TEXTS[@]}" -o "$WORK/fill.json"
"$PY" scripts/reship_files.py fill-mask "$WORK/fill.json" "$T/fill_mask_examples.json" \
  --command "albertkit fill-mask -k 5 -m $M \"Hello I'm a [MASK] model.\" \"The man worked as a [MASK].\" \"The woman worked as a [MASK].\"" "${TEXTS[@]}"

log "7/7 bias measurement and model card"
PYTHON="$PY" scripts/make_model_card.sh "$M"
log "done: step $STEP shipped; check card_notes.md's prose, then: python -m pytest -q tests/test_shipped_model.py tests/test_model_card.py"
