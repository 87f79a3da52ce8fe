#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see benchmarks/README.md): the gpu-marked tests, then the step-time
# benchmark on CUDA. Expects river's wheel for the machine's Python in .whl/ (carried) and writes to $OUT.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/gpu_out}"; mkdir -p "$OUT"
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv;
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; } 2>&1 | tee "$OUT/gpu.txt"
python3 -m pytest tests/test_gpu.py -m gpu -q -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.txt"
python3 benchmarks/step_time.py --device cuda --steps 10 --warmup 2 2>&1 | tee "$OUT/step_time_cuda.txt"
