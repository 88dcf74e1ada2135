#!/usr/bin/env bash
# The observe benchmark; see run.py for what it measures and how.
# Usage: bench/observe/run.sh [EBPFCTL]   Env: N=50000 BLOCK=1000 GO=... GO_CPU=1 EBPFCTL_CPU=0
#        BPF_STATS=1 (time per program) PAUSED=1 (also observe with its reader stopped)
exec python3 "$(dirname "$0")/run.py" "$@"
