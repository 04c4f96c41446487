#!/usr/bin/env bash
# bench/gpu_session.sh: build cnnfast with its CUDA backend on a GPU machine, run the GPU tests
# and the CUDA benchmarks; logs go to $OUT (or ./gpu-out). Used on the lent H200 (issue 9):
#   bench/gpu_session.sh [build] [tests] [bench] [train]     (default: all four)
set -u
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
steps=${*:-build tests bench train}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
has() { [[ " $steps " == *" $1 "* ]]; }
nvidia-smi -L; $PY -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, torch.backends.cudnn.version())"
if has build; then
  t0=$(date +%s)
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) $PY -m pip install -q --no-build-isolation --no-deps \
     -Cbuild-dir=/tmp/cnnfast-build . > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
  echo "build: $(( $(date +%s) - t0 )) s"
fi
$PY -c "import cnnfast; i = cnnfast.info(); print({k: v for k, v in i.items() if 'cuda' in k or k == 'isa'})"
cd /tmp   # import the installed package, not the source tree
if has tests; then
  $PY -m pytest -q -p no:cacheprovider --timeout 300 "$OLDPWD"/tests/test_cuda_*.py 2>&1 | tee "$OUT/tests_cuda.log" | tail -25
fi
if has bench; then
  $PY "$OLDPWD/bench/bench_ops.py" --device cuda --compare torch --json "$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench_cuda.log" | tail -40
fi
if has train && [ -f "$OLDPWD/bench/bench_train_cuda.py" ]; then
  $PY "$OLDPWD/bench/bench_train_cuda.py" --data "$OLDPWD/.gpu" 2>&1 | tee "$OUT/train_cuda.log" | tail -20
fi
