#!/usr/bin/env bash
# One device call: GPU smoke run of the engine in float32 (highest matmul precision) and
# float64, the two benchmarks with the GPU running rfsim and the host CPUs the baselines,
# and the exact/engine test tiers on the GPU.  Writes a log and the summaries to $OUT.
set -u
export PYTHONPATH=$PWD PYTHONWARNINGS=ignore XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/log.txt"; }
{
log "devices"; python3 -c "import jax; print(jax.__version__, jax.devices())"
log "float32 (highest matmul precision) vs float64 on the GPU: linear double descent, quick"
python3 -m rfsim.cli run experiments/linear_ridge_double_descent.toml --quick --float32 \
  --out /tmp/dd32 --quiet --no-plot
python3 -m rfsim.cli run experiments/linear_ridge_double_descent.toml --quick \
  --out /tmp/dd64 --quiet --no-plot
cp /tmp/dd32/summary.csv "$OUT/dd32_summary.csv"; cp /tmp/dd64/summary.csv "$OUT/dd64_summary.csv"
log "benchmark: linear ridge"; timeout 240 python3 benchmarks/bench_linear_ridge.py --seeds 64
log "benchmark: rf ridge"; timeout 300 python3 benchmarks/bench_rf_ridge.py --seeds 32
log "tests on the GPU (float64)"
timeout 200 python3 -m pytest -q -p no:cacheprovider -n 4 tests/test_theory_ridge.py \
  tests/test_solvers.py tests/test_engine.py tests/test_linear_ridge.py tests/test_rf_ridge.py \
  2>&1 | tail -5
} 2>&1 | tee -a "$OUT/full.txt"
