#!/usr/bin/env bash
# The paper profile of every notebook on one GPU (see paperlib/gpu_check.py and README,
# "Paper profile on one GPU"). Runs with the machine's own python3 (CUDA torch, numpy, pandas,
# seaborn, scikit-learn, tqdm); paperlib comes from this checkout, papermill & co. from the
# wheel bundle when it is there. Offline: nothing is downloaded.
#
#   scripts/gpu_check.sh --data gpu_bundle/data-main --notebooks ...   # first device call
#   scripts/gpu_check.sh --data gpu_bundle/data-cifar10 --notebooks 02_class_incremental_cifar10
#   scripts/gpu_check.sh --smoke --notebooks 06_bandit_dynamics         # CPU dry run
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=${PAPERLIB_WHEELS:-gpu_bundle/wheels}
if [ -d "$WHEELS" ] && ! "$PY" -c "import papermill" 2>/dev/null; then
  SITE=${TMPDIR:-/tmp}/paperlib-site
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$WHEELS"/*.whl && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" \
    || echo "gpu_check: wheel bundle not installed; notebooks are rendered without papermill"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PY" -m paperlib.gpu_check "$@"
