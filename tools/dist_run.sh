#!/usr/bin/env bash
# Usage: bash tools/dist_run.sh NPROC SCRIPT [args...]
# Runs tools/SCRIPT (train.py / test.py / infer.py) in NPROC processes with torchrun and
# --launcher pytorch; used by dist_train.sh and dist_test.sh. Environment:
# NNODES, NODE_RANK, MASTER_ADDR, PORT, PYTHON (default: the checkout's .venv).
set -euo pipefail
usage() {
    cat <<USAGE
usage: bash tools/dist_run.sh NPROC SCRIPT [SCRIPT options...]

Run tools/SCRIPT (train.py, test.py or infer.py) in NPROC processes through
torchrun with --launcher pytorch (one per GPU with nccl, or CPU workers with
gloo). Options after SCRIPT go to it (python tools/SCRIPT --help lists
them); dist_train.sh and dist_test.sh are the usual entry points.
Environment: NNODES (default 1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
PORT (29500), PYTHON (default: the checkout's .venv/bin/python, else python).
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ $# -lt 2 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]] || [ ! -f "$(dirname "$0")/$2" ]; then
    usage >&2; exit 2
fi
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
