#!/usr/bin/env bash
# Set up .venv (first run) and run the main job:
#   1. render the gallery of every strategy to $OUT/gallery.png (scikit-image photographs, offline);
#   2. train the same small CNN on scikit-learn's digits with and without augmentation (Lightning +
#      MaskMixCallback) and report test accuracy on clean and occluded images to $OUT/metrics.json.
# Extra arguments go to the training script (e.g. --epochs 5, --augment gridmask).
source "$(dirname "$0")/_env.sh"
install_project examples,lightning
OUT="${MASKMIX_OUT:-outputs}"
mkdir -p "$OUT"
.venv/bin/python examples/gallery.py --output "$OUT/gallery.png"
.venv/bin/python examples/train_lightning.py --compare --epochs 10 --log-dir "$OUT/lightning_logs" \
    --metrics "$OUT/metrics.json" "$@"
echo "gallery written to $OUT/gallery.png"
echo "metrics written to $OUT/metrics.json (training logs in $OUT/lightning_logs)"
