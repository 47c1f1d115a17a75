#!/usr/bin/env bash
# One lease of a GPU machine (about 15 minutes in all, 10 per command): the forward's levers as a matrix, most
# valuable first, every phase bounded in time so a slow one costs only itself, every figure written the moment
# it is measured (one JSON line per phase in $ROOT/figures.jsonl: killed mid-way, the finished phases stay).
#
#   bash benchmarks/gpu_session.sh            # GPU machine, wheels installed (benchmarks/gpu_wheels.sh)
#   SIZE_TRAIN=tiny SIZE_EVAL=tiny bash benchmarks/gpu_session.sh   # the same phases on a CPU (CI runs it)
#
# Phases, with the 2B stand-in and recipe-size pages (1416x1648, pixels=blog_600):
#   1. evaluation: {sdpa, sdpa_packed} x {compile off, regional}, forward only and end to end
#      (benchmarks/forward_only.py, $COUNT pages each);
#   2. training step: loss.mini_batch_size {8, 32} with the best attention and compile of 1;
#   3. bounded profiles (one encode batch, one training step at the best mini-batch) with the best settings;
#   4. the 2B through vdr_exp.train trainer=blog_fast for 20 steps (wall per step, set-up before step 1);
#   5. the 8B stand-in: evaluation and one training step (does it fit one card, how fast).
# Then the table: benchmarks/gpu_summary.py over figures.jsonl and the runs' MLflow store.
set -uo pipefail
ROOT=${ROOT:-/tmp/standin}
PY=${PY:-python3}
SIZE_TRAIN=${SIZE_TRAIN:-2b}
SIZE_EVAL=${SIZE_EVAL:-8b}
HERE=$(cd "$(dirname "$0")" && pwd)
FIGURES=$ROOT/figures.jsonl
DEADLINE=$(( $(date +%s) + ${BUDGET_S:-540} ))
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
declare -A NAME=([tiny]=standin-tiny [2b]=standin-qwen3-vl-embedding-2b [8b]=standin-qwen3-vl-embedding-8b)
mkdir -p "$ROOT"

left() { echo $(( DEADLINE - $(date +%s) )); }
phase() {  # phase NAME NEEDED_S CMD...: run CMD if NEEDED_S seconds are left, for at most what is left
  local name=$1 needed=$2; shift 2
  if [ "$(left)" -lt "$needed" ]; then echo "=== $name: SKIPPED ($(left) s left, needs ~$needed s)"; return 0; fi
  echo "=== $name: start ($(left) s left) $(date +%T)"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=15 "$(left)" "$@"
  echo "=== $name: rc=$? in $(( SECONDS - t0 )) s"
}
best() {  # best PHASE KEY: "attn compile mini_batch" of the fastest line of PHASE in figures.jsonl so far
  "$PY" "$HERE/gpu_summary.py" --best "$1" "$2" "$FIGURES"
}

if [ "$SIZE_TRAIN" = tiny ]; then
  DEVICE=cpu PAGES=(--width 248 --height 352 --train-rows 32 --eval-rows 8 --extra-rows 0)
  RUN=(model.dtype=float32 pixels=fixture_small eval.batch_size=8 "eval.dims=[16,8]")
  TRAIN=(trainer.max_steps=2 trainer.bf16=false trainer.optim=adamw_torch trainer.use_cpu=true
         trainer.per_device_train_batch_size=8 trainer.per_device_eval_batch_size=8 "loss.matryoshka_dims=[32,16]")
  SIZES=(--device cpu --count 16 --batch 8 --side 128 --train-batch 8 --steps 1)
  MINI=(2 8)
else
  DEVICE=cuda PAGES=(--width 1416 --height 1648 --train-rows 256 --eval-rows 300 --extra-rows 0)
  RUN=(pixels=blog_600 "eval.dims=[2048,1024,512,256,128,64]")
  TRAIN=(trainer.max_steps=20)
  SIZES=(--count "${COUNT:-600}" --batch 32 --side 600 --train-batch 64 --steps 3)
  MINI=(8 32)
fi
DATA=(dataset=synthetic_vdr dataset.fixture=false "dataset.path=$ROOT/fixtures/datasets/synthetic-vdr" "paths.output_dir=$ROOT")
model() { echo model=custom "model.name=${NAME[$1]}" "model.path=$ROOT/models/${NAME[$1]}"; }
# benchmarks/forward_only.py on a stand-in (--model follows), each phase's figures appended to $FIGURES.
FORWARD=("$PY" "$HERE/forward_only.py" --pages "$ROOT/fixtures/datasets/synthetic-vdr" "${SIZES[@]}" --out "$FIGURES")
TRAINED=$ROOT/models/${NAME[$SIZE_TRAIN]}

phase "build $SIZE_TRAIN" 60 "$PY" -m vdr_exp.fixtures --standin "$SIZE_TRAIN" --out "$ROOT/models" --device "$DEVICE"
phase "pages" 60 "$PY" -m vdr_exp.fixtures --out "$ROOT/fixtures" "${PAGES[@]}"
for attn in sdpa sdpa_packed; do
  for compile in off regional; do
    phase "evaluate $SIZE_TRAIN attn=$attn compile=$compile" 60 \
      "${FORWARD[@]}" --model "$TRAINED" --attn "$attn" --compile "$compile" --phases forward,end_to_end
  done
done
read -r ATTN COMPILE _ <<< "$(best end_to_end pages_per_s)"
for mini in "${MINI[@]}"; do
  phase "train step $SIZE_TRAIN mini_batch=$mini ($ATTN, $COMPILE)" 60 \
    "${FORWARD[@]}" --model "$TRAINED" --attn "$ATTN" --compile "$COMPILE" --mini-batch "$mini" --phases train_step
done
read -r _ _ MINI_BEST <<< "$(best train_step pages_per_s)"
phase "profile $SIZE_TRAIN ($ATTN, $COMPILE, mini_batch=$MINI_BEST)" 60 "${FORWARD[@]}" --model "$TRAINED" --attn "$ATTN" \
  --compile "$COMPILE" --mini-batch "$MINI_BEST" --phases profile --profile "$ROOT/profile"
# shellcheck disable=SC2046
phase "train $SIZE_TRAIN trainer=blog_fast" 150 "$PY" -m vdr_exp.train $(model "$SIZE_TRAIN") "${DATA[@]}" \
  trainer=blog_fast "${RUN[@]}" "${TRAIN[@]}" "model.attn_implementation=$ATTN" "model.compile=$COMPILE" \
  "loss.mini_batch_size=$MINI_BEST" trainer.eval_strategy=no trainer.save_strategy=no trainer.save_model=false \
  tracking.log_model=false \
  "run_name=train-$SIZE_TRAIN-fast"
if [ "$SIZE_EVAL" != "$SIZE_TRAIN" ]; then
  phase "build $SIZE_EVAL" 180 "$PY" -m vdr_exp.fixtures --standin "$SIZE_EVAL" --out "$ROOT/models" --device "$DEVICE"
  phase "evaluate $SIZE_EVAL ($ATTN, $COMPILE)" 90 "${FORWARD[@]}" --model "$ROOT/models/${NAME[$SIZE_EVAL]}" --attn "$ATTN" --compile "$COMPILE" \
    --phases forward,end_to_end
  phase "train step $SIZE_EVAL ($ATTN, $COMPILE)" 90 "${FORWARD[@]}" --model "$ROOT/models/${NAME[$SIZE_EVAL]}" --attn "$ATTN" --compile "$COMPILE" \
    --mini-batch "$MINI_BEST" --steps 1 --phases train_step
fi
"$PY" "$HERE/gpu_summary.py" "$ROOT/mlflow.db" "$FIGURES"
