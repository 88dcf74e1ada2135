#!/usr/bin/env bash
# Starts the demo mesh on loopback until Ctrl-C:
#   loadgen → frontend :9090 → api :9091 → db :9092 (5% answered 500)
#                                        → auth :9093 → 20% of calls: a dead port (connection refused)
# Usage: run-mesh.sh [BINARY]   (default: builds /tmp/go-mesh/go-mesh with `go` from PATH)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-/tmp/go-mesh/go-mesh}
if [[ $# -eq 0 ]]; then
  mkdir -p "$(dirname "$bin")"
  (cd "$here" && GOFLAGS=-mod=mod go build -o "$bin" .)
fi
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
start() { NAME=$1 "$bin" -listen "127.0.0.1:$2" "${@:3}" & pids+=($!); }
start db 9092 -fail-rate 0.05
start auth 9093 -sometimes http://127.0.0.1:9099/unreachable
start api 9091 -calls http://127.0.0.1:9092/query,http://127.0.0.1:9093/check
start frontend 9090 -calls http://127.0.0.1:9091/api
sleep 0.5
start loadgen 9089 -load http://127.0.0.1:9090/ -every 200ms
echo "mesh running (pids ${pids[*]}); observe it with: make -C $here observe-mesh" >&2
wait
