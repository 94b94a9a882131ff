#!/usr/bin/env bash
# The napari-dcmix demo: sets everything up, generates the sample plate (first run only), and opens
# napari with the plugin's docks and the plate. Without a display (a server), it runs the same
# workflow unattended on a virtual display and saves screenshots instead. Extra arguments go to
# `napari-dcmix demo` (e.g. --plate /path/to/plate).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || [ "$(uname)" = Darwin ]; then
  exec .venv/bin/napari-dcmix demo "$@"
fi
out="${DEMO_OUT:-$PWD/out/demo}"
mkdir -p "$out"
echo "No display found: running the demo workflow on a virtual display; screenshots go to $out" >&2
QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/napari-dcmix demo --screenshots "$out" "$@"
echo "Screenshots of the workflow: $(ls "$out"/*.png 2>/dev/null | tr '\n' ' ')"
