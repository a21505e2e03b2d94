#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG NPROC [train.py args...]
# One process per GPU (CUDA, nccl) or per CPU worker (gloo) via torchrun.
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
exec bash "$(dirname "$0")/dist_run.sh" "$NPROC" train.py "$CONFIG" "$@"
