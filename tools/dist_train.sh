#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG NPROC [train.py args...]
# One process per GPU (CUDA, nccl) or per CPU worker (gloo) via torchrun.
set -euo pipefail
usage() {
    cat <<USAGE
usage: bash tools/dist_train.sh CONFIG NPROC [train.py options...]

Train CONFIG in NPROC processes (one per GPU with nccl, or CPU workers with
gloo) through torchrun. Options after NPROC go to tools/train.py, e.g.
--work-dir DIR, --resume [CKPT], --overwrite, --amp, --skip-preflight,
--cfg-options KEY=VALUE ... (python tools/train.py --help lists them).
Environment: NNODES, NODE_RANK, MASTER_ADDR, PORT (default 29500), PYTHON.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ $# -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then usage >&2; exit 2; fi
CONFIG=$1
NPROC=$2
shift 2
exec bash "$(dirname "$0")/dist_run.sh" "$NPROC" train.py "$CONFIG" "$@"
