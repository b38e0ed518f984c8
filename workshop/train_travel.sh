#!/usr/bin/env bash
# The shipped emotion model of issue 26 ("a model that travels"), from a clean clone, as one
# resumable sequence:
#   fine-tune the model it replaces on FER2013 train + SFEW's train films (camera-like
#   augmentation, mixup, class-balanced sampling), two seeds -> average their weights with the replaced model's
#   (half it, half the seeds' mean: weight-space ensembling keeps FER2013 while the films
#   move the model) -> class-rates (fear and disgust named at least as often on the training
#   faces as they are labelled) -> int8 -> evaluation on FER2013 val and on SFEW's val
#   films (never trained on) -> paired tests against the replaced model.
#
#   nice -n 19 workshop/train_travel.sh [all|finetune|soup|finish]
#
# Every step skips what is done and training resumes (--resume), so after an interruption
# rerun the same command. The seeds train two at a time (one CPU thread each): about 13 min
# per seed pair on the 2-core development VM, the rest about 10 min.
#
# Settings (environment): DATA (FER2013 npz folder, ../shared/data/fer2013), SFEW (the SFEW
# folder with labels.json, ../shared/data/sfew), BASE (the model replaced and started from,
# models/emotion.keras, its int8 file beside it as <name>_int8.tflite or models/
# emotion_int8.tflite), SEEDS ("26 27"), EPOCHS (6), LR (0.008), ADD_REPEAT (4: each SFEW
# train face 4 times per epoch), BALANCE (0.5: square-root class-balanced sampling; 0
# off), RATE_CLASSES (fear,disgust), RATE_TARGET (labels: named as often as labelled;
# reference: as often as BASE names them), RUN_DIR (runs/travel, git-ignored), THREADS (1 per run), CONVERT (the moodbox-convert command; default .venv's, else
# PATH's); for a smoke run on generated faces also ARCH, WIDTH, PRECISION and CONVERT_ARGS
# (extra convert options); tests/converter/test_train_travel_script.py runs it that way.
# The result is $RUN_DIR/final.keras and final_int8.tflite; copy them (with their .json
# sidecars) to models/emotion.keras and models/emotion_int8.tflite by hand, after reading
# $RUN_DIR/eval/ against the ship rule in models/MODEL_CARD.md.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data/fer2013}
S=${SFEW:-../shared/data/sfew}
BASE=${BASE:-models/emotion.keras}
if [ -f "${BASE%.keras}_int8.tflite" ]; then BASE_INT8=${BASE%.keras}_int8.tflite; else BASE_INT8=models/emotion_int8.tflite; fi
R=${RUN_DIR:-runs/travel}
SEEDS=${SEEDS:-"26 27"}
EPOCHS=${EPOCHS:-6}
LR=${LR:-0.008}
ADD_REPEAT=${ADD_REPEAT:-4}
BALANCE=${BALANCE:-0.5}
RATE_CLASSES=${RATE_CLASSES:-fear,disgust}
RATE_TARGET=${RATE_TARGET:-labels}
case "$RATE_TARGET" in
  labels) RATE_REF=() ;;
  reference) RATE_REF=(--reference "$BASE") ;;
  *) echo "train_travel.sh: RATE_TARGET must be labels or reference, not '$RATE_TARGET'" >&2; exit 2 ;;
esac
THREADS=${THREADS:-1}
ARCH=${ARCH:-resnet}
WIDTH=${WIDTH:-32}
PRECISION=${PRECISION:-mixed_bfloat16}
if [ -z "${CONVERT:-}" ]; then
  if [ -x .venv/bin/moodbox-convert ]; then CONVERT=.venv/bin/moodbox-convert; else CONVERT=moodbox-convert; fi
fi
if ! command -v "$CONVERT" > /dev/null; then
  echo "train_travel.sh: no converter at '$CONVERT'; run ./scripts/test.sh once (it makes .venv \
with moodbox-convert) or set CONVERT=/path/to/moodbox-convert" >&2
  exit 2
fi
PY=$(dirname "$(command -v "$CONVERT")")/python
[ -x "$PY" ] || PY=python3
for need in "$D/train.npz" "$D/val.npz" "$S/labels.json" "$BASE" "$BASE_INT8"; do
  [ -f "$need" ] || { echo "train_travel.sh: $need not found (see the settings at the top)" >&2; exit 2; }
done
STEP=${1:-all}
mkdir -p "$R/eval"

log() { echo "== $(date -u +%H:%M:%S) $*"; }

finished() {  # a training run whose state says it is complete and whose model is here
  [ -f "$R/$1.keras" ] && "$PY" - "$R/$1.train.json" <<'EOF'
import json, sys
state = json.load(open(sys.argv[1]))
sys.exit(0 if state.get("finished") or state.get("stopped_early") else 1)
EOF
}

finetune_one() {
  local name=ft-s$1
  if finished "$name"; then log "$name: done"; return 0; fi
  log "$name: training (log $R/$name.log.csv)"
  "$CONVERT" train --train "$D/train.npz" --val "$D/val.npz" --out "$R/$name.keras" \
    --arch "$ARCH" --width "$WIDTH" --init-from "$BASE" --epochs "$EPOCHS" --lr "$LR" \
    --warmup-epochs 0 --patience "$EPOCHS" --threads "$THREADS" --resume --seed "$1" \
    --augment camera --mix mixup --mix-prob 0.5 --mix-alpha 0.2 --precision "$PRECISION" \
    --add-faces "$S" --add-split train --add-repeat "$ADD_REPEAT" --balance "$BALANCE" \
    >> "$R/$name.out" 2>&1
}

finetune() {
  local pids=()
  for seed in $SEEDS; do finetune_one "$seed" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
}

soup() {
  local parts=() n=0
  for seed in $SEEDS; do
    finished "ft-s$seed" || { echo "ft-s$seed has not finished: run the finetune step" >&2; exit 1; }
    parts+=("$R/ft-s$seed.keras"); n=$((n + 1))
  done
  if [ ! -f "$R/soup.keras" ]; then
    local base=()  # the replaced model weighs as much as all the seeds together
    for _ in $(seq "$n"); do base+=("$BASE"); done
    log "soup: ${base[0]} x $n + ${parts[*]}"
    "$CONVERT" average --models "${base[@]}" "${parts[@]}" --train "$D/train.npz" \
      --out "$R/soup.keras" | tee "$R/eval/average.txt"
  fi
  if [ ! -f "$R/final.keras" ]; then
    log "class rates ($RATE_CLASSES, to the $RATE_TARGET)"
    "$CONVERT" class-rates --model "$R/soup.keras" --train "$D/train.npz" \
      --classes "$RATE_CLASSES" ${RATE_REF[@]+"${RATE_REF[@]}"} --out "$R/final.keras" \
      | tee "$R/eval/class-rates.txt"
  fi
}

evaluate() {  # model, name -> $R/eval/name.json (val and SFEW val films, flip-averaged too)
  [ -f "$R/eval/$2.json" ] && return 0
  log "evaluating $2"
  "$CONVERT" evaluate --model "$1" --data "$D/val.npz" --sfew "$S" --sfew-split val --json \
    > "$R/eval/$2.json.tmp" && tail -n 1 "$R/eval/$2.json.tmp" > "$R/eval/$2.json"
  rm -f "$R/eval/$2.json.tmp"
}

finish() {
  [ -f "$R/final.keras" ] || { echo "no $R/final.keras: run the soup step" >&2; exit 1; }
  if [ ! -f "$R/final_int8.tflite" ]; then
    log "int8"
    "$CONVERT" convert --model "$R/final.keras" --calib "$D/train.npz" --check "$D/val.npz" \
      --out "$R/final_int8.tflite" --calib-count 1000 ${CONVERT_ARGS:-} | tee "$R/eval/convert.txt"
  fi
  evaluate "$R/final_int8.tflite" final-int8
  evaluate "$R/final.keras" final-float
  evaluate "$BASE_INT8" base-int8
  if [ ! -f "$R/eval/compare_sfew_val.txt" ]; then
    log "paired tests against $BASE_INT8"
    "$PY" workshop/compare_models.py "$BASE_INT8" "$R/final_int8.tflite" --data "$D/val.npz" \
      > "$R/eval/compare_val.txt"
    "$PY" workshop/compare_models.py "$BASE_INT8" "$R/final_int8.tflite" --data "$S" \
      --sfew-split val > "$R/eval/compare_sfew_val.txt"
  fi
  log "done: $R/final_int8.tflite; $R/eval/compare_val.txt and compare_sfew_val.txt hold the paired tests"
}

case "$STEP" in
  all) finetune; soup; finish ;;
  finetune) finetune ;;
  soup) soup ;;
  finish) finish ;;
  *) echo "usage: workshop/train_travel.sh [all|finetune|soup|finish]" >&2; exit 2 ;;
esac
