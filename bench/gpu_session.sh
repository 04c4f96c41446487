#!/usr/bin/env bash
# bench/gpu_session.sh: build cnnfast with its CUDA backend on a GPU machine, run the GPU tests
# and the CUDA benchmarks; logs go to $OUT (or ./gpu-out). Used on the lent H200 (issue 9):
#   bench/gpu_session.sh [build] [tests] [bench] [profile] [train]     (default: all)
#   also on request: narrow, splits, wino, ncu, ktime (NCU_CASES), sanitize (SAN_TESTS, SAN_K)
set -u
OUT=${OUT:-$PWD/gpu-out}; mkdir -p "$OUT"
steps=${*:-build tests bench profile train}
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
  # BENCH_ALGO: the conv2d algorithms timed side by side (3x3 stride-1 cases get a row each)
  $PY "$OLDPWD/bench/bench_ops.py" --device cuda --compare torch --algo "${BENCH_ALGO:-auto,winograd}" \
     --json "$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench_cuda.log" | tail -60
fi
if has narrow; then  # backward-data of narrow inputs: dcol GEMM (default) against the direct sum
  for v in dcol direct; do
    echo "CNNFAST_CUDA_NARROW_DATA=$v"
    CNNFAST_CUDA_NARROW_DATA=$v $PY "$OLDPWD/bench/bench_ops.py" --device cuda --compare torch \
       --only lenet_conv1,lenet_conv2,alexnet_conv1,resnet_conv1 2>&1 | tee "$OUT/narrow_$v.log" | grep bwd_data
  done
fi
if has splits; then  # weight gradients: the split sum's wave rule (default) against 'balance'
  for v in wave balance; do
    echo "CNNFAST_CUDA_SPLIT_RULE=$v"
    CNNFAST_CUDA_SPLIT_RULE=$v $PY "$OLDPWD/bench/bench_ops.py" --device cuda --compare torch \
       --algo auto,winograd 2>&1 | tee "$OUT/splits_$v.log" | grep bwd_weight
  done
  CNNFAST_CUDA_SPLIT_RULE=balance $PY "$OLDPWD/bench/bench_conv3d_cuda.py" 2>&1 | tail -12
fi
if has wino; then  # Winograd scratch per buffer: 128 MiB (default) against 16 MiB (V and M in L2)
  for v in 0 4194304; do
    echo "CNNFAST_CUDA_WINO_SCRATCH=$v"
    CNNFAST_CUDA_WINO_SCRATCH=$v $PY "$OLDPWD/bench/bench_ops.py" --device cuda --compare torch \
       --algo winograd_f4 --only vgg_conv3_2,resnet_3x3,dilated_3x3_d4 2>&1 | tee "$OUT/wino_$v.log" \
       | grep -F "[winograd_f4]"
  done
fi
if has profile; then  # where a small op's time goes on the host (Python, bindings, launches)
  $PY - <<'PYEOF' 2>&1 | tee "$OUT/profile.log" | tail -42
import cProfile, pstats, time
import numpy as np
import cnnfast.functional as F
from cnnfast import cuda
rng = np.random.default_rng(0)
x = cuda.from_numpy(rng.standard_normal((64, 6, 14, 14), dtype=np.float32))
w = cuda.from_numpy(rng.standard_normal((16, 6, 5, 5), dtype=np.float32))
b = cuda.from_numpy(rng.standard_normal(16, dtype=np.float32))
for _ in range(100): F.conv2d(x, w, b)
cuda.synchronize(); t0 = time.perf_counter()
for _ in range(2000): F.conv2d(x, w, b)
cuda.synchronize(); print(f"conv2d lenet_conv2 async: {(time.perf_counter() - t0) / 2000 * 1e6:.1f} us/call")
t0 = time.perf_counter()
for _ in range(2000): F.conv2d(x, w, b); cuda.synchronize()
print(f"conv2d lenet_conv2 synced: {(time.perf_counter() - t0) / 2000 * 1e6:.1f} us/call")
t0 = time.perf_counter()
for _ in range(2000): cuda.synchronize()
print(f"synchronize alone: {(time.perf_counter() - t0) / 2000 * 1e6:.1f} us/call")
# max-unpooling's fixed cost: max_pool's own Switches (window check not waited for) against the
# same indices in a new Switches (waited for), alternated in one process
import dataclasses
xp = cuda.from_numpy(rng.standard_normal((4, 8, 16, 16), dtype=np.float32))
yp, own = F.max_pool2d(xp, 3, 2, 1, return_indices=True)
rebuilt = dataclasses.replace(own)
t = {"own": [], "rebuilt": []}
for rep in range(10):
    for name, sw in (("own", own), ("rebuilt", rebuilt)):
        cuda.synchronize(); t0 = time.perf_counter()
        for _ in range(500): F.max_unpool2d(yp, sw)
        cuda.synchronize(); t[name].append((time.perf_counter() - t0) / 500 * 1e6)
print("max_unpool2d 4x8x8x8 -> 16x16, median us/call: " +
      ", ".join(f"{k} {sorted(v)[5]:.1f}" for k, v in t.items()))
pr = cProfile.Profile(); pr.enable()
for _ in range(2000): F.conv2d(x, w, b)
pr.disable(); cuda.synchronize()
pstats.Stats(pr).sort_stats("tottime").print_stats(14)
PYEOF
fi
if has ncu; then  # hardware counters of the conv kernels named in $NCU_CASES
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  $NCU --clock-control none --section SpeedOfLight --section Occupancy --section WarpStateStats \
      --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --launch-skip 0 \
      $PY "$OLDPWD/bench/cuda_kernel_probe.py" ${NCU_CASES:-resnet_1x1:bwd_data} > "$OUT/ncu.txt" 2>&1
  grep -E "^  [a-z_]+.*\(|Duration|Compute \(SM\) Throughput|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Stall|Issue Slots Busy|L1/TEX Hit|L2 Hit|Executed Ipc A" "$OUT/ncu.txt" | cut -c1-150 | head -150
fi
if has ktime; then  # every kernel's duration (ncu, one metric) for the passes in $NCU_CASES
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  $NCU --clock-control none --metrics gpu__time_duration.sum --print-summary none \
      $PY "$OLDPWD/bench/cuda_kernel_probe.py" ${NCU_CASES:-maxpool_2x2_s2:fwd} > "$OUT/ktime.txt" 2>&1
  grep -E "^---|^  [a-zA-Z_].*\(|gpu__time_duration" "$OUT/ktime.txt" | sed -E 's/\(gemm::Program.*\)|, Context.*//' | cut -c1-140
fi
if has sanitize; then  # compute-sanitizer memcheck and racecheck over $SAN_TESTS (-k $SAN_K)
  CS=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  for tool in memcheck racecheck; do
    $CS --tool $tool $PY -m pytest -q -p no:cacheprovider -x -k "${SAN_K:-not several_scratch}" \
        ${SAN_TESTS:-"$OLDPWD"/tests/test_cuda_winograd.py} > "$OUT/sanitize_$tool.log" 2>&1
    echo "$tool: $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed" "$OUT/sanitize_$tool.log" | tail -2 | tr '\n' ' ')"
  done
fi
if has train && [ -f "$OLDPWD/bench/bench_train_cuda.py" ]; then
  $PY "$OLDPWD/bench/bench_train_cuda.py" --data "$OLDPWD/.gpu" 2>&1 | tee "$OUT/train_cuda.log" | tail -20
fi
