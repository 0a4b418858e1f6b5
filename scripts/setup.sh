#!/usr/bin/env bash
# Set up a development/test environment on Debian 12 with Python 3.11:
# system packages (as root, or through sudo), then a venv in .venv with the project and its test extra.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=$(grep -v '^#' scripts/system-packages.txt | xargs)
missing=$(for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done | xargs)
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing system packages: $missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "set up: $(.venv/bin/python --version), $(.venv/bin/python -c 'import pydicom, vtk, PySide6; print("pydicom", pydicom.__version__, "vtk", vtk.vtkVersion.GetVTKVersion(), "PySide6", PySide6.__version__)')"
