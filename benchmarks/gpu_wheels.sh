#!/usr/bin/env bash
# Download the wheels of benchmarks/gpu_wheels.txt for the GPU machine's Python 3.12 into .whl/ and print their
# total size (the device tool carries at most 64 MiB with the working tree). On the GPU machine:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
#   cd /tmp && bash <repo>/benchmarks/gpu_session.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
rm -rf .whl && mkdir -p .whl
# Pure-Python packages published as source only (antlr4 4.9.3, which omegaconf pins) are built into wheels here.
SOURCE_ONLY="antlr4-python3-runtime"
grep -E "^($SOURCE_ONLY)==" benchmarks/gpu_wheels.txt > .whl/source-only.txt
grep -vE "^($SOURCE_ONLY)==" benchmarks/gpu_wheels.txt > .whl/binary.txt
"$PY" -m pip wheel -q --no-deps -w .whl -r .whl/source-only.txt 2> >(grep -v "^WARNING: Location" >&2)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux_2_34_x86_64 -d .whl -r .whl/binary.txt 2> >(grep -v "^WARNING: Location" >&2)
rm .whl/source-only.txt .whl/binary.txt
# The project itself: `pkg://vdr_exp.conf` resolves in an installed package (run it from outside the checkout).
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl . 2> >(grep -v "^WARNING: Location" >&2)
ls .whl | wc -l
du -sh .whl
