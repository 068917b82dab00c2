#!/usr/bin/env bash
# The GPU check of issue 19: the suite's device tests, the GPU table, recipe
# training and inference on one device, reported in $OUT (or --out).
#
#   tools/gpu_check.sh --device cuda --size full            # on a GPU, < 8 min on one H200
#   tools/gpu_check.sh --device cpu --size tiny --out DIR   # the CPU path (tested by make test)
#
# Runs from any folder, with the package not installed (the repository root
# goes on PYTHONPATH). Where SpeechBrain is missing (the GPU image has torch,
# torchaudio and timm only), the wheels in .whl/ are installed into
# /tmp/site first (README "On a GPU" says how to download them).
# Arguments: tools/gpu_check.py --help. PYTHON chooses the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import speechbrain, hyperpyyaml, soundfile" 2>/dev/null; then
    if ! compgen -G ".whl/*.whl" >/dev/null; then
        echo "gpu_check: speechbrain is not importable and .whl/ holds no wheels" \
            "(README, 'On a GPU')" >&2
        exit 2
    fi
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
exec "$PYTHON" tools/gpu_check.py "$@"
