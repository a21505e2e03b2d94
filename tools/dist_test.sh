#!/usr/bin/env bash
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args...]
set -euo pipefail
usage() {
    cat <<USAGE
usage: bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py options...]

Test the weights in CHECKPOINT with CONFIG in NPROC processes (one per GPU
with nccl, or CPU workers with gloo) through torchrun. Options after NPROC go
to tools/test.py, e.g. --work-dir DIR, --out DIR, --show-dir DIR,
--skip-preflight, --cfg-options KEY=VALUE ... (python tools/test.py --help).
Environment: NNODES, NODE_RANK, MASTER_ADDR, PORT (default 29500), PYTHON.
USAGE
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
if [ $# -lt 3 ] || ! [[ "$3" =~ ^[1-9][0-9]*$ ]]; then usage >&2; exit 2; fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
exec bash "$(dirname "$0")/dist_run.sh" "$NPROC" test.py "$CONFIG" "$CHECKPOINT" "$@"
