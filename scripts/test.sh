#!/usr/bin/env bash
# Run the whole napari-dcmix test suite headless: installs what is missing (Xvfb + xcb libraries,
# .venv with the CPU torch wheel), then pytest under a virtual display. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=xcb MPLBACKEND=Agg PYTHONHASHSEED=0
export XDG_CACHE_HOME="${DCMIX_TEST_CACHE:-$(mktemp -d)}"
.venv/bin/ruff check src tests benchmarks scripts  # lint first: an undefined name fails fast
run() { .venv/bin/python -m pytest "$@"; }
if [ -n "${DISPLAY:-}" ] && [ -z "${CI:-}" ]; then
  run "$@"
else
  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "$@"
fi
