#!/usr/bin/env bash
# Set up everything napari-dcmix needs, idempotently: system packages for a virtual display (Debian,
# as root), a virtual environment in .venv, the CPU torch wheel, and the package with its extras.
# Usage: bash scripts/setup.sh        (called by scripts/demo.sh and scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DCMIX_VENV:-.venv}

need_apt=()
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  for pkg in xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
             libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-shape0 \
             libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3 ca-certificates; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
  done
  # A bare Debian has no Python, or one without venv.
  command -v "${PYTHON:-python3}" >/dev/null 2>&1 || need_apt+=(python3 python3-venv python3-pip)
  if command -v "${PYTHON:-python3}" >/dev/null 2>&1 && ! "${PYTHON:-python3}" -c "import ensurepip, venv" >/dev/null 2>&1; then
    need_apt+=(python3-venv)
  fi
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing system packages: ${need_apt[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.dcmix-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing napari-dcmix and its dependencies into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  # The pinned CPU wheel first, so nothing pulls a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".[pyqt6,test,bench]"
  touch "$stamp"
fi
