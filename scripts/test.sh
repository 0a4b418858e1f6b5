#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run every test:
#  1. the layering proof: every test outside tests/ui and tests/render, with Qt and VTK made
#     unimportable (WORKSTATION_FORBID_GUI=1), so core/archive/net/... cannot lean on them;
#  2. the whole suite (widgets offscreen, VTK views under Xvfb through pytest-xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
echo "== headless layer check: tests outside tests/ui and tests/render without Qt and VTK"
WORKSTATION_FORBID_GUI=1 .venv/bin/python -m pytest -q -p no:xvfb -p no:pytest-qt \
  --ignore=tests/ui --ignore=tests/render tests -x -q --no-header -rN >/tmp/workstation-headless.log 2>&1 \
  || { tail -40 /tmp/workstation-headless.log; exit 1; }
tail -1 /tmp/workstation-headless.log
echo "== full suite"
.venv/bin/python -m pytest tests "$@"
