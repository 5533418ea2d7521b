#!/usr/bin/env bash
# Make .venv-bench: Flower 1.42 with its Ray simulation engine, scikit-learn, and this
# checkout of colearning (without its own extras), for `colearn bench collaboration`.
# Kept apart from .venv so that Flower's pins never touch colearning's environment.
# Re-running is cheap: it reinstalls only when requirements.txt changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv-bench/bin/python ]; then
  "$PYTHON" -m venv .venv-bench
fi
stamp=.venv-bench/.installed
want=$(cat bench/collaboration/requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv-bench/bin/python -m pip install --quiet --disable-pip-version-check \
    -r bench/collaboration/requirements.txt
  .venv-bench/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi
echo ".venv-bench is ready: $(.venv-bench/bin/python -c 'import flwr; print("flwr", flwr.__version__)')"
