#!/usr/bin/env bash
# The GPU check of the training and evaluation issues as one prepared script, through the real entry points:
# build a stand-in (random weights, exact architecture), recipe-size synthetic pages, then `vdr_exp.train` with
# the recipe's trainer (20 steps) and `vdr_exp.evaluate` on 300 queries x 1,500 pages with every Matryoshka
# width, twice (the second run is the embedding cache's). Timings, memory and MFU are in the runs' logs and
# MLflow metrics under $OUT.
#
#   bash benchmarks/gpu_standin.sh 2b      # GPU machine (first: python3 -m pip install --no-index --no-deps .whl/*.whl)
#   bash benchmarks/gpu_standin.sh 8b      # the largest model of the 4x-larger comparison: evaluation only
#   bash benchmarks/gpu_standin.sh tiny    # the same path on a CPU in a few minutes (tests/test_standins.py)
set -euo pipefail
SIZE=${1:-2b}
OUT=${OUT:-outputs/standin-$SIZE}
PY=${PY:-python3}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

case "$SIZE" in
  tiny)
    DEVICE=cpu NAME=standin-tiny DIMS="[16,8]"
    PAGES=(--width 248 --height 352 --train-rows 32 --eval-rows 8 --extra-rows 0)
    RUN=(model.dtype=float32 model.attn_implementation=sdpa pixels=fixture_small eval.batch_size=8)
    TRAIN=(trainer.max_steps=2 trainer.bf16=false trainer.optim=adamw_torch trainer.use_cpu=true
           trainer.per_device_train_batch_size=8 trainer.per_device_eval_batch_size=8 "loss.matryoshka_dims=[32,16]") ;;
  2b|8b)
    DEVICE=cuda NAME=standin-qwen3-vl-embedding-$SIZE DIMS="[1024,512,256,128,64]"
    # 256 training rows are reused across epochs (20 steps of 64); 300 eval rows x (1 + 4 negatives) = 1,500 pages.
    PAGES=(--width 1416 --height 1648 --train-rows 256 --eval-rows 300 --extra-rows 0)
    RUN=(pixels=blog_600)
    TRAIN=(trainer.max_steps=20) ;;
  *) echo "usage: $0 tiny|2b|8b" >&2; exit 2 ;;
esac

MODEL=(model=custom "model.name=$NAME" "model.path=$OUT/models/$NAME")
DATA=(dataset=synthetic_vdr dataset.fixture=false "dataset.path=$OUT/fixtures/datasets/synthetic-vdr" "paths.output_dir=$OUT")

"$PY" -m vdr_exp.fixtures --standin "$SIZE" --out "$OUT/models" --device "$DEVICE"
"$PY" -m vdr_exp.fixtures --out "$OUT/fixtures" "${PAGES[@]}"
if [ "$SIZE" != 8b ]; then
  "$PY" -m vdr_exp.train "${MODEL[@]}" "${DATA[@]}" trainer=blog "${RUN[@]}" "${TRAIN[@]}"
fi
for pass in first cached; do
  "$PY" -m vdr_exp.evaluate "${MODEL[@]}" "${DATA[@]}" "${RUN[@]}" "eval.dims=$DIMS" "run_name=evaluate-$NAME-$pass"
done
