# Sourced by scripts/test and scripts/demo: create .venv once, then install the project into it.
# torch is pinned to the CPU build this project's machines carry locally; a plain `torch` would pull CUDA wheels.
prism_venv() {
  local python=${PYTHON:-python3}
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "Prism needs Python >= 3.11 (set PYTHON=...)" >&2
    exit 2
  }
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  local spec editables=()
  for spec in "$@"; do editables+=(-e "$spec"); done
  .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 "${editables[@]}" 2>&1 \
    | grep -v "^WARNING: Location" || true
  # pip's exit status is lost in the pipe above: check the install really happened.
  .venv/bin/python -c 'import prism_core, torch' || { echo "installing into .venv failed" >&2; exit 1; }
}
