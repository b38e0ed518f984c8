#!/usr/bin/env bash
# The distilled emotion model (issue 10), from a clean clone, as one resumable sequence:
#   teachers -> soft labels -> students (distilled, and a no-teacher control with the same
#   epochs) -> weight averaging -> int8 conversion -> evaluation.
#
#   nice -n 19 workshop/train_distilled.sh [all|teachers|soft-labels|students|distilled|control|finish]
#
# (students = distilled + control at the same time; each can also run alone, and the
# control needs no teachers, so it may start while a teacher still trains, and a second
# set of teachers in another RUN_DIR may be compared with the first's control: finish
# leaves out a control that was never started in its RUN_DIR.)
#
# Every step skips what is already done and every training run resumes from its last
# epoch (--resume), so after an interruption rerun the same command. Runs go two at a time
# (one CPU thread each): the teachers together, then the two students together.
#
# Where things go:
#   models/training/distill/  per run: <run>.log.csv (per-epoch log), <run>.recall.csv
#       (each class's val recall after every epoch, and their mean), <run>.train.json
#       (settings, progress, best epoch), <run>.ckpt.npz (the compact resume point,
#       4.2 MB for resnet32: weights float32, SGD momentum float16), <run>.keras (the best
#       epoch's model, 2.9 MB; git-ignored: commit it with `git add -f` once the run has
#       finished, since the next step needs it), soft-labels.npz, eval/*.json
#   runs/distill/  averaged float models and their int8 conversions (not committed;
#       the one that ships is copied to models/ by hand, after checking the targets)
#
# Students: by default both students (distilled and control) start from the round-one
# model (models/training/distill/round1-resnet32.keras, the float model that shipped before
# issue 10) and train STUDENT_EPOCHS more epochs at a low, cosine-decaying learning rate,
# the distilled one against the teachers, the control one on the true labels only: the
# same epochs from the same start, so the difference is the teachers' alone. Then the best
# and last epochs are averaged. With STUDENT_INIT= (empty) the students are trained from
# scratch instead: EPOCHS epochs plus a second FT_EPOCHS-epoch cycle, four checkpoints
# averaged (the round-one recipe; about twice the CPU time).
#
# Settings (environment): DATA (FER2013 npz folder, default ../shared/data/fer2013),
# TEACHER_SEEDS ("11 12"), TEACHER_ARCH and TEACHER_WIDTH (the teachers' network, default
# the student's: a wider teacher, e.g. TEACHER_WIDTH=64, is 4x the MACs), EXTRA_TEACHERS
# (more teachers for the soft labels: soft-label NPZs from moodbox-convert teacher-torch, e.g.
# trained on a GPU machine, or .keras models; with another set of teachers use another
# RUN_DIR), EPOCHS (60), FT_EPOCHS (12),
# STUDENT_INIT (see above), STUDENT_EPOCHS (30), STUDENT_LR (0.01), DISTILL_WEIGHT (0.7),
# TEMPERATURE (3), DISTILLED_NAME (student-distilled; another name, starting with
# student-distilled-, trains a variant beside it, e.g. with other A and T), THREADS
# (1 per run), CONVERT (the moodbox-convert command; default .venv's, else PATH's),
# SHIPPED_TEACHER (the round-one model is a teacher too; empty: not); for a smoke run
# on synthetic faces also ARCH, WIDTH, RUN_DIR, OUT_DIR, ROUND1 (with its _int8.tflite
# beside it) and CONVERT_ARGS (extra convert options, e.g. "--min-agreement 0 --max-drop
# 100"); tests/converter/test_train_distilled_script.py runs the whole sequence that way.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data/fer2013}
R=${RUN_DIR:-models/training/distill}
OUT=${OUT_DIR:-runs/distill}
ARCH=${ARCH:-resnet}
WIDTH=${WIDTH:-32}
FT_EPOCHS=${FT_EPOCHS:-12}
ROUND1=${ROUND1:-models/training/distill/round1-resnet32.keras}
SHIPPED_TEACHER=${SHIPPED_TEACHER-$ROUND1}
STUDENT_INIT=${STUDENT_INIT-$ROUND1}
STUDENT_EPOCHS=${STUDENT_EPOCHS:-30}
STUDENT_LR=${STUDENT_LR:-0.01}
if [ -z "${CONVERT:-}" ]; then  # the converter ./scripts/test.sh installs, else the one on PATH
  if [ -x .venv/bin/moodbox-convert ]; then
    CONVERT=.venv/bin/moodbox-convert
  else
    CONVERT=moodbox-convert
  fi
fi
if ! command -v "$CONVERT" > /dev/null; then
  echo "train_distilled.sh: no converter at '$CONVERT'; run ./scripts/test.sh once \
(it makes .venv with moodbox-convert) or set CONVERT=/path/to/moodbox-convert" >&2
  exit 2
fi
EXTRA_TEACHERS=${EXTRA_TEACHERS:-}
DISTILLED=${DISTILLED_NAME:-student-distilled}
THREADS=${THREADS:-1}
TEACHER_SEEDS=${TEACHER_SEEDS:-"11 12"}
TARCH=${TEACHER_ARCH:-$ARCH}
TWIDTH=${TEACHER_WIDTH:-$WIDTH}
EPOCHS=${EPOCHS:-60}
A=${DISTILL_WEIGHT:-0.7}
T=${TEMPERATURE:-3}
STEP=${1:-all}
SOFT=$R/soft-labels.npz
mkdir -p "$R/eval" "$OUT"

log() { echo "== $(date -u +%H:%M:%S) $*"; }

finished() {  # a training run whose state says it is complete and whose best model is here
  [ -f "$R/$1.keras" ] && python3 - "$R/$1.train.json" <<'EOF'
import json, sys
state = json.load(open(sys.argv[1]))
sys.exit(0 if state.get("finished") or state.get("stopped_early") else 1)
EOF
}

train_run() {  # name, then moodbox-convert train options
  local name=$1; shift
  if finished "$name"; then log "$name: done"; return 0; fi
  log "$name: training (log $R/$name.log.csv)"
  "$CONVERT" train --train "$D/train.npz" --val "$D/val.npz" --out "$R/$name.keras" \
    --threads "$THREADS" --resume "$@" >> "$R/$name.out" 2>&1
}

teacher() { echo "teacher-$TARCH$TWIDTH-s$1"; }  # seed -> run name

need_soft_labels() {
  [ -f "$SOFT" ] || { echo "no $SOFT: run the soft-labels step first" >&2; exit 1; }
}

teachers() {
  local pids=()
  for seed in $TEACHER_SEEDS; do
    train_run "$(teacher "$seed")" --arch "$TARCH" --width "$TWIDTH" \
      --epochs "$EPOCHS" --seed "$seed" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
}

soft_labels() {
  if [ -f "$SOFT" ]; then log "soft labels: done ($SOFT; delete it to remake)"; return 0; fi
  local list=($SHIPPED_TEACHER)
  for seed in $TEACHER_SEEDS; do
    finished "$(teacher "$seed")" || { echo "teacher s$seed has not finished" >&2; exit 1; }
    list+=("$R/$(teacher "$seed").keras")
  done
  list+=($EXTRA_TEACHERS)
  log "soft labels from ${list[*]}"
  "$CONVERT" soft-labels --teacher "${list[@]}" --data "$D/train.npz" --val "$D/val.npz" \
    --threads "$THREADS" --out "$SOFT" | tee "$R/soft-labels.txt"
}

student() {  # name, extra options (distillation or none)
  local name=$1; shift
  if [ -n "$STUDENT_INIT" ]; then  # from the round-one model: one low-learning-rate run
    train_run "$name" --arch "$ARCH" --width "$WIDTH" --epochs "$STUDENT_EPOCHS" \
      --lr "$STUDENT_LR" --warmup-epochs 0 --patience "$STUDENT_EPOCHS" --seed 1234 \
      --init-from "$STUDENT_INIT" "$@"
    return
  fi
  train_run "$name" --arch "$ARCH" --width "$WIDTH" --epochs "$EPOCHS" --seed 1234 "$@"
  train_run "$name-ft" --arch "$ARCH" --width "$WIDTH" --epochs "$FT_EPOCHS" --lr 0.008 \
    --warmup-epochs 0 --patience "$FT_EPOCHS" --seed 4321 --init-from "$R/$name.keras" "$@"
}

distilled() {
  need_soft_labels
  student "$DISTILLED" --teacher-labels "$SOFT" --distill-weight "$A" --temperature "$T"
}

control() { student student-control; }  # needs no teachers: may run beside them

students() {
  need_soft_labels  # before the control starts beside the distilled student
  distilled & local p1=$!
  control & local p2=$!
  wait "$p1"; wait "$p2"
}

last_run() {  # the run whose finishing completes a student
  if [ -n "$STUDENT_INIT" ]; then echo "$1"; else echo "$1-ft"; fi
}

finish_one() {  # average best and last (of both cycles when from scratch), convert, evaluate
  local name=$1
  if [ ! -f "$OUT/$name.keras" ]; then
    log "$name: averaging"
    local parts=("$R/$name.keras" "$R/$name.last.keras")
    [ -n "$STUDENT_INIT" ] || parts+=("$R/$name-ft.keras" "$R/$name-ft.last.keras")
    "$CONVERT" average --models "${parts[@]}" --train "$D/train.npz" --out "$OUT/$name.keras"
  fi
  if [ ! -f "$OUT/${name}_int8.tflite" ]; then
    log "$name: int8"
    "$CONVERT" convert --model "$OUT/$name.keras" --calib "$D/train.npz" --check "$D/val.npz" \
      --out "$OUT/${name}_int8.tflite" --calib-count 1000 ${CONVERT_ARGS:-} | tee "$R/eval/$name.convert.txt"
  fi
  evaluate "$OUT/${name}_int8.tflite" "$name-int8"
  evaluate "$OUT/$name.keras" "$name-float"
}

evaluate() {  # model, name -> $R/eval/name.json (flip-averaged too)
  [ -f "$R/eval/$2.json" ] && return 0
  log "evaluating $2"
  "$CONVERT" evaluate --model "$1" --data "$D/val.npz" --exclude-duplicates-of "$D/train.npz" \
    --json > "$R/eval/$2.json.tmp" && tail -n 1 "$R/eval/$2.json.tmp" > "$R/eval/$2.json"
  rm -f "$R/eval/$2.json.tmp"
}

finish() {
  evaluate "${ROUND1%.keras}_int8.tflite" round1-int8
  evaluate "$ROUND1" round1-float
  local names=(student-distilled)
  if [ -f "$R/student-control.train.json" ]; then
    names=(student-control "${names[@]}")
  else  # e.g. a second set of teachers in another RUN_DIR, compared with the first's control
    log "no control in $R (never started): left out; compare with another folder's" \
        "control by workshop/compare_models.py, or run the control step first"
  fi
  for f in "$R"/student-distilled-*.train.json; do  # variants (DISTILLED_NAME)
    [ -f "$f" ] && [[ "$f" != *-ft.train.json ]] && names+=("$(basename "$f" .train.json)")
  done
  for name in "${names[@]}"; do
    finished "$(last_run "$name")" || { echo "$name has not finished" >&2; exit 1; }
    finish_one "$name"
  done
  python3 - "$R/eval" <<'EOF'
import json, sys
from pathlib import Path
print(f"{'model':<34}{'val':>8}{'flip':>8}{'disgust':>9}{'fear':>7}{'MACs':>8}{'KiB':>7}")
for f in sorted(Path(sys.argv[1]).glob("*.json")):
    r = json.loads(f.read_text())
    pc = r["per_class"]
    print(f"{f.stem:<34}{r['accuracy']*100:>8.2f}{r['accuracy_flip']*100:>8.2f}"
          f"{pc['disgust']['recall']:>9.3f}{pc['fear']['recall']:>7.3f}"
          f"{r['macs']/1e6:>8.1f}{r['size_bytes']/1024:>7.0f}")
EOF
  echo "To ship (only if the targets in issue 10 are met): cp $OUT/student-distilled_int8.tflite" \
       "models/emotion_int8.tflite (and its .json), $OUT/student-distilled.keras" \
       "models/emotion.keras; python workshop/record_golden.py; rerun the tests."
}

case "$STEP" in
  teachers) teachers ;;
  soft-labels) soft_labels ;;
  students) students ;;
  distilled) distilled ;;
  control) control ;;
  finish) finish ;;
  all) teachers; soft_labels; students; finish ;;
  *) echo "usage: $0 [all|teachers|soft-labels|students|distilled|control|finish]" >&2; exit 2 ;;
esac
