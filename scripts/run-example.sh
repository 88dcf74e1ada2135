#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, build ebpfctl, compile a bundled
# example probe and run it (Ctrl-C to stop). Usage: scripts/run-example.sh [EXAMPLE] [ebpfctl run flags...]
# EXAMPLE is a name under examples/ (default: exec_print).
set -euo pipefail
cd "$(dirname "$0")/.."
example=${1:-exec_print}
shift || true
[[ -f examples/$example.bpf.c ]] || { echo "no examples/$example.bpf.c; have: $(cd examples && ls *.bpf.c | sed 's/.bpf.c//' | tr '\n' ' ')" >&2; exit 2; }
scripts/setup.sh
cargo build --release -q
out=target/examples
mkdir -p "$out"
./target/release/ebpfctl build "examples/$example.bpf.c" -I examples -o "$out/$example.bpf.o"
exec ./target/release/ebpfctl run "$out/$example.bpf.o" "$@"
