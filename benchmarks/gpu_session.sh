#!/usr/bin/env bash
# One lease of a GPU machine (about 15 minutes in all, 10 per command), spent on the checks of the training
# and evaluation issues in order of value, each phase through the real entry points and bounded in time, so a
# slow phase costs only itself. Results: the runs' MLflow metrics (benchmarks/gpu_summary.py prints them).
#
#   bash benchmarks/gpu_session.sh            # GPU machine, wheels installed (benchmarks/gpu_wheels.sh)
#   SIZE_TRAIN=tiny SIZE_EVAL=tiny bash benchmarks/gpu_session.sh   # the same phases on a CPU (tests)
#
# Phases: the 2B stand-in and recipe-size pages (300 queries x 1,500 pages at 1416x1648, blog_600) -> the 2B's
# forward-only vs end-to-end encoding and a torch.profiler trace of one encode batch and one training step
# (benchmarks/forward_only.py; traces and top kernels under $ROOT/profile) -> train 2B
# with trainer=blog for 20 steps (its base evaluation times the 2B's encoding, every Matryoshka width) -> the
# 8B stand-in through vdr_exp.evaluate and 3 training steps of it (step time, peak memory: does the 8B recipe fit
# one card?) -> the 2B through vdr_exp.evaluate again (the embedding cache's second run). Step evaluations and checkpoints are off in the timed training: 10 of each in 20 steps would dwarf the
# steps, and the evaluation is timed on its own.
set -uo pipefail
ROOT=${ROOT:-/tmp/standin}
PY=${PY:-python3}
SIZE_TRAIN=${SIZE_TRAIN:-2b}
SIZE_EVAL=${SIZE_EVAL:-8b}
DEADLINE=$(( $(date +%s) + ${BUDGET_S:-540} ))
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
declare -A NAME=([tiny]=standin-tiny [2b]=standin-qwen3-vl-embedding-2b [8b]=standin-qwen3-vl-embedding-8b)

left() { echo $(( DEADLINE - $(date +%s) )); }
phase() {  # phase NAME NEEDED_S CMD...: run CMD if NEEDED_S seconds are left, for at most what is left
  local name=$1 needed=$2; shift 2
  if [ "$(left)" -lt "$needed" ]; then echo "=== $name: SKIPPED ($(left) s left, needs ~$needed s)"; return 0; fi
  echo "=== $name: start ($(left) s left) $(date +%T)"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=15 "$(left)" "$@"
  echo "=== $name: rc=$? in $(( SECONDS - t0 )) s"
}

if [ "$SIZE_TRAIN" = tiny ]; then
  DEVICE=cpu PAGES=(--width 248 --height 352 --train-rows 32 --eval-rows 8 --extra-rows 0)
  RUN=(model.dtype=float32 model.attn_implementation=sdpa pixels=fixture_small eval.batch_size=8 "eval.dims=[16,8]")
  TRAIN=(trainer.max_steps=2 trainer.bf16=false trainer.optim=adamw_torch trainer.use_cpu=true
         trainer.per_device_train_batch_size=8 trainer.per_device_eval_batch_size=8 "loss.matryoshka_dims=[32,16]")
  FORWARD=(--device cpu --count 16 --batch 8 --side 128)
else
  DEVICE=cuda PAGES=(--width 1416 --height 1648 --train-rows 256 --eval-rows 300 --extra-rows 0)
  RUN=(pixels=blog_600 "eval.dims=[2048,1024,512,256,128,64]")
  TRAIN=(trainer.max_steps=20)
  FORWARD=(--count 1500 --batch 32 --side 600)
fi
DATA=(dataset=synthetic_vdr dataset.fixture=false "dataset.path=$ROOT/fixtures/datasets/synthetic-vdr" "paths.output_dir=$ROOT")
model() { echo model=custom "model.name=${NAME[$1]}" "model.path=$ROOT/models/${NAME[$1]}"; }

phase "build $SIZE_TRAIN" 60 "$PY" -m vdr_exp.fixtures --standin "$SIZE_TRAIN" --out "$ROOT/models" --device "$DEVICE"
phase "pages" 60 "$PY" -m vdr_exp.fixtures --out "$ROOT/fixtures" "${PAGES[@]}"
phase "forward only vs end to end $SIZE_TRAIN" 120 "$PY" "$(dirname "$0")/forward_only.py" \
  --model "$ROOT/models/${NAME[$SIZE_TRAIN]}" --pages "$ROOT/fixtures/datasets/synthetic-vdr" "${FORWARD[@]}" \
  --profile "$ROOT/profile"
# shellcheck disable=SC2046
phase "train $SIZE_TRAIN" 150 "$PY" -m vdr_exp.train $(model "$SIZE_TRAIN") "${DATA[@]}" trainer=blog "${RUN[@]}" \
  "${TRAIN[@]}" trainer.eval_strategy=no trainer.save_strategy=no tracking.log_model=false "run_name=train-$SIZE_TRAIN"
if [ "$SIZE_EVAL" != "$SIZE_TRAIN" ]; then
  phase "build $SIZE_EVAL" 180 "$PY" -m vdr_exp.fixtures --standin "$SIZE_EVAL" --out "$ROOT/models" --device "$DEVICE"
  # shellcheck disable=SC2046
  phase "evaluate $SIZE_EVAL" 90 "$PY" -m vdr_exp.evaluate $(model "$SIZE_EVAL") "${DATA[@]}" "${RUN[@]}" \
    "run_name=evaluate-$SIZE_EVAL"
  # shellcheck disable=SC2046
  phase "train $SIZE_EVAL (3 steps)" 120 "$PY" -m vdr_exp.train $(model "$SIZE_EVAL") "${DATA[@]}" trainer=blog \
    "${RUN[@]}" trainer.max_steps=3 trainer.eval_strategy=no trainer.save_strategy=no tracking.log_model=false \
    eval.cache=false dataset.max_eval_rows=10 "run_name=train-$SIZE_EVAL"
fi
# The base model again through vdr_exp.evaluate: the embedding cache's second run (the training's base pass was the first).
# shellcheck disable=SC2046
phase "evaluate $SIZE_TRAIN (cached)" 45 "$PY" -m vdr_exp.evaluate $(model "$SIZE_TRAIN") "${DATA[@]}" "${RUN[@]}" \
  "run_name=evaluate-$SIZE_TRAIN-cached"
"$PY" "$(dirname "$0")/gpu_summary.py" "$ROOT/mlflow.db"
