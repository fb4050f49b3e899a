#!/usr/bin/env bash
# One-command GPU check (`make gpu-check`), meant to take under 8 minutes on one GPU (not yet run: no
# GPU was lent to the session that wrote it, so its timings and the 8-minute budget are unmeasured):
#   1. bench/benchmark.py rows at 256 px, batch 512, bfloat16, channels-last, torch.compile
#   2. the scale benchmark (bench/scale.py) at 256 px on the GPU, 2 epochs, extraction batch 1,024:
#      every stage timed at 2,000 and 8,000 fake cutouts, extrapolated to 300,000 and 10^7
#   3. a 2-epoch torchrun of Galaxy_VAE_n.py on all visible GPUs, on the scale benchmark's images
# Everything goes to $OUT (default runs/gpu_check): benchmark_256.json, scale/scale.md|json|csv, torchrun.log.
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/gpu_check}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: torch sees no CUDA GPU: make gpu-check needs one" >&2
    exit 1
fi
mkdir -p "$OUT"
"$PY" bench/benchmark.py --run "$OUT" --image-size 256 --n-images 8192 --batch-size 512 --amp on \
    --channels-last on --compile --epochs 2 --skip-mock --quiet --output "$OUT/benchmark_256.json"
"$PY" bench/scale.py --sizes 2000,8000 --image-size 256 --epochs 2 --batch-size 512 --device cuda \
    --out "$OUT/scale" --keep
GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
"$PY" make_datatxt.py --images "$OUT/scale/images_8000" --run "$OUT/ddp" --image-size 256 --quiet
"$PY" -m torch.distributed.run --standalone --nproc_per_node="$GPUS" -- Galaxy_VAE_n.py \
    --run-dir "$OUT/ddp" --image-size 256 --epochs 2 --batch-size 512 --lr 1e-3 --quiet \
    > "$OUT/torchrun.log" 2>&1
echo "gpu-check done: $OUT/benchmark_256.json, $OUT/scale/scale.md, $OUT/torchrun.log"
