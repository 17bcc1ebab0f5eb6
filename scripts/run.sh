#!/usr/bin/env bash
# Set up .venv (first run) and run the main job: render the gallery of every strategy to a PNG.
source "$(dirname "$0")/_env.sh"
install_project examples
OUT="${MASKMIX_OUT:-outputs}"
mkdir -p "$OUT"
.venv/bin/python examples/gallery.py --output "$OUT/gallery.png" "$@"
echo "gallery written to $OUT/gallery.png"
