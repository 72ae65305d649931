#!/usr/bin/env bash
# Trains src/albertkit/models/albert-mini-en (issue #14's recipe) from the corpus, in stages.
#
#   scripts/train_albert_mini_en.sh [OUT [STOP_AFTER]]
#
# One schedule of 48,000 steps of 4,096 token positions each (about 197M in all, many hours of
# 2-core CPU), run as a sequence-length curriculum of STAGES (END:SEQ_LEN:BATCH, batch x length
# = 4,096 in each):
#   steps     0- 3,500  128 x 32   (the first run: still on the unigram plateau at 3,500)
#   steps 3,500- 5,600   32 x 128  (short sequences: the plateau broke within ~600 steps)
#   steps 5,600-48,000  128 x 32   (full length: positions 32-127 and long context)
# Each stage writes OUT/stage-K and continues the previous stage's last checkpoint (--init-from
# and --start-step: a new sequence length means a new batch shape, so a fresh AdamW state with a
# 100-step lr re-warm); within a stage, a call resumes from the stage's latest checkpoint
# (--resume, optimizer included). With STOP_AFTER, the run checkpoints and exits after that step.
# A stage is done once a later one has a checkpoint in OUT (so a call never restarts stage 1 there).
# The held-out split (250 documents, seed 0) never trains.
# Recipe: AdamW (decoupled weight decay 0.01, none on LayerNorm/bias; betas 0.9/0.98, eps 1e-6;
# bias-corrected), peak lr LR below after 400 warmup steps, linear decay to 0 at step 48,000 (one
# schedule across the stages); single-piece masking over the whole schedule (issue 14 scores single
# pieces at [MASK]; whole-word n-grams, planned from step 12,000, never let the model see a word with
# some of its pieces visible, which is half of what that score asks; changed at step ~11,000, before
# the switch); MLM + SOP, 15% masked (at most 15% of the length per sequence), bf16
# autocast. The model is the shipped config (E 64, H 256, 4 layers sharing one block).
#
# When OUT's checkpoints are gone (a new machine) but committed weights are not, continue from a
# model folder whose training/position.json records its schedule step: the shipped folder when it
# holds a schedule point (it does now: step 48,000, the schedule's end), else the trunk's weights
# committed beside a shipped release branch (weights annealed off the schedule, a "stage 4"; kept in
# training-state/albert-mini-en while one was shipped):
#   RESUME_FROM=training-state/albert-mini-en scripts/train_albert_mini_en.sh OUT [STOP_AFTER]
# (the stage holding that step starts there from those weights: fresh optimizer, 100 re-warm steps).
#
# PROCS=2 runs each stage as 2 single-threaded processes (torchrun, DDP over gloo; same global batch
# and data order): on 2 shared cores that was 2.9 s/step against 5.4 s/step for one 2-thread process.
#
# A release branch (what is shipped): RELEASE_AT=S [RELEASE_STEPS=2500] scripts/train_albert_mini_en.sh OUT
# continues the schedule's weights at step S (OUT's stage checkpoint at S, or RESUME_FROM's weights
# when they are at S) into OUT/stage-N (N = the number of stages + 1) with the lr falling linearly
# from the schedule's at S to 0 over RELEASE_STEPS steps (--anneal-steps; 50-step re-warm), then
# stops; the schedule itself goes on from the un-annealed weights. OUT/stage-N/BRANCH_OF names the
# stage and step it left (the reship script cuts that stage's logs there).
#
# Ship a checkpoint that beats the shipped one at [MASK] on held-out text (the script checks, then
# writes the weights, every evaluation file, the bias measurement and the model card):
#   scripts/reship_albert_mini_en.sh OUT/stage-K/checkpoints/step-NNNNNNNN/model OUT/stage-K
set -euo pipefail
DATA=${ALBERTKIT_SHARED_DATA:-../shared/data}
OUT=${1:-runs/albert-mini-en}
STOP=${2:-}
SHIPPED=src/albertkit/models/albert-mini-en
LR=1e-3  # probes from scratch (training/probes/): 1e-3 kept improving at step 300 where 2e-3 stalled
STAGES=${STAGES:-"3500:128:32 5600:32:128 48000:128:32"}
COMMON=(pretrain --fallback-encoding cp1252 --heldout-docs 250 --seed 0
        --tokenizer "$DATA/albert-base-v2/spiece.model" --config "$SHIPPED/config.json"
        --max-steps 48000 --warmup-steps 400 --subword-masking-steps 48000
        --optimizer adamw --lr "$LR" --adam-betas 0.9 0.98 --adam-eps 1e-6 --weight-decay 0.01
        --bf16 --num-workers 0 --log-every 20 --eval-every 100 --eval-instances 512
        --probe-instances 128 --save-every 100 --resume)

run() {
  if [[ -n "${PROCS:-}" ]]; then
    OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node "$PROCS" -m albertkit "$@"
  else
    albertkit "$@"
  fi
}

FROM_STEP=0
FROM_WEIGHTS=
if [[ -n "${RESUME_FROM:-}" ]]; then
  FROM_STEP=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['step'])" "$RESUME_FROM/training/position.json")
  FROM_WEIGHTS=$RESUME_FROM
fi
CORPUS="$DATA/corpus"
NSTAGES=$(wc -w <<< "$STAGES")
if [[ -n "${RELEASE_AT:-}" ]]; then
  STEPS=${RELEASE_STEPS:-2500}  # the shipped branch: step 25,100 + 2,500 (500 from 14,900 gave +1.5 points, this +2.0)
  N=$((NSTAGES + 1))
  START=0; K=0; SRC=
  for STAGE in $STAGES; do  # the stage holding step RELEASE_AT
    K=$((K + 1)); IFS=: read -r END SEQ BATCH <<< "$STAGE"
    if (( START < RELEASE_AT && RELEASE_AT <= END )); then break; fi
    START=$END
  done
  (( START < RELEASE_AT && RELEASE_AT <= END )) || { echo "RELEASE_AT=$RELEASE_AT: not a step of the schedule ($STAGES)" >&2; exit 2; }
  if (( FROM_STEP == RELEASE_AT )); then SRC=$FROM_WEIGHTS
  else SRC=$(printf '%s/stage-%d/checkpoints/step-%08d/model' "$OUT" "$K" "$RELEASE_AT"); fi
  [[ -f "$SRC/model.safetensors" ]] || { echo "$SRC: no weights at step $RELEASE_AT (set RESUME_FROM or keep that checkpoint)" >&2; exit 2; }
  if [[ -f "$OUT/stage-$K/corpus/meta.json" ]]; then CORPUS="$OUT/stage-$K/corpus"; fi
  DIR="$OUT/stage-$N"
  mkdir -p "$DIR"
  echo "stage-$K $RELEASE_AT" > "$DIR/BRANCH_OF"
  if [[ "$CORPUS" != "$DATA/corpus" && ! -e "$DIR/corpus" ]]; then ln -s "$(realpath "$CORPUS")" "$DIR/corpus"; fi
  ARGS=("${COMMON[@]}" "$CORPUS" --max-seq-length "$SEQ" --batch-size "$BATCH"
        --max-predictions $(( (SEQ * 15 + 99) / 100 )) --output "$DIR"
        --init-from "$SRC" --start-step "$RELEASE_AT" --rewarm-steps 50 --anneal-steps "$STEPS")
  run "${ARGS[@]}"  # a second call resumes the branch from its latest checkpoint (--resume)
  exit 0
fi
START=0
K=0
for STAGE in $STAGES; do
  K=$((K + 1))
  IFS=: read -r END SEQ BATCH <<< "$STAGE"
  DIR="$OUT/stage-$K"
  LATER=  # a later schedule stage already under way: this one is done
  for ((J = K + 1; J <= NSTAGES; J++)); do
    if compgen -G "$OUT/stage-$J/checkpoints/step-*" > /dev/null; then LATER=$J; fi
  done
  if [[ -n "$LATER" ]]; then
    if [[ -d "$DIR/corpus" ]]; then CORPUS="$DIR/corpus"; fi
    START=$END; continue
  fi
  if (( END <= FROM_STEP )) || { [[ -n "$STOP" ]] && (( START >= STOP )); }; then
    START=$END; continue
  fi
  ARGS=("${COMMON[@]}" "$CORPUS" --max-seq-length "$SEQ" --batch-size "$BATCH"
        --max-predictions $(( (SEQ * 15 + 99) / 100 )) --output "$DIR")
  if [[ -n "$STOP" ]] && (( STOP < END )); then ARGS+=(--stop-after "$STOP"); else ARGS+=(--stop-after "$END"); fi
  if ! ls "$DIR"/checkpoints/step-* > /dev/null 2>&1; then
    if (( FROM_STEP > 0 && FROM_STEP >= START )); then  # a committed model at this stage's step
      ARGS+=(--init-from "$FROM_WEIGHTS" --start-step "$FROM_STEP" --rewarm-steps 100)
    elif (( START > 0 )); then                # the previous stage's last checkpoint
      ARGS+=(--init-from "$(printf '%s/stage-%d/checkpoints/step-%08d/model' "$OUT" $((K - 1)) "$START")"
             --start-step "$START" --rewarm-steps 100)
    fi
  fi
  run "${ARGS[@]}"
  if [[ -d "$DIR/corpus" ]]; then CORPUS="$DIR/corpus"; fi  # prepared once, read by later stages
  START=$END
done
