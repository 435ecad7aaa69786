#!/usr/bin/env bash
# The one prepared GPU check, for a session lent a device machine (see README "Benchmarks").
# Runs on the device's own python3 (it has torch, numpy, scikit-learn); prints every figure in one go.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -c "import torch, sklearn, tqdm; print('torch', torch.__version__, torch.cuda.get_device_name())"
python3 bench/mulde_speed.py --devices cuda --train-batches 8 --epochs 2 --n-score 16384 --scoring-batch-size 4096
# predict frames/s on vtest (YOLOv8n + MobileNetV2 + velocity), when the assets and the video stack are there
if [ -n "${MULDE_VAD_ASSETS:-}" ] && python3 -c "import ultralytics, av, cv2" 2>/dev/null; then
  python3 -m bench.predict_speed --device cuda --batch-size 64 --frames 400 --set flow_scale=0.5
fi
