#!/usr/bin/env bash
# Usage: bash tools/dist_run.sh NPROC SCRIPT [args...]
# Runs tools/SCRIPT (train.py / test.py) in NPROC processes with torchrun and
# --launcher pytorch; used by dist_train.sh and dist_test.sh. Environment:
# NNODES, NODE_RANK, MASTER_ADDR, PORT, PYTHON (default: the checkout's .venv).
set -euo pipefail
NPROC=$1
SCRIPT=$2
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python; fi
fi
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" "$ROOT/tools/$SCRIPT" "$@" --launcher pytorch
