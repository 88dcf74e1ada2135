#!/bin/sh
# Benchmark of `ebpfctl execsnoop` and `ebpfctl opensnoop` against bpftrace one-liners on the
# same tracepoints: exec storm (3,000 fork+exec of `/bin/true a b`) and open storm (200,000
# open/close of one file), alternating configurations, medians. Run as root:
#   bench/snoop/run.sh [ROUNDS]          (default 5 rounds; STORMS=exec or STORMS=open for one)
# Prints one table per storm; raw runs go to $OUT (default /tmp/snoopbench/results.json).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${WORK:-/tmp/snoopbench}
mkdir -p "$work"
cc=$(command -v clang-19 || command -v clang || command -v cc)
"$cc" -O2 -o "$work/execstorm" "$here/execstorm.c"
"$cc" -O2 -o "$work/openstorm" "$here/openstorm.c"
(cd "$root" && cargo build --release -q -p ebpfctl)
exec python3 "$here/bench.py" --ebpfctl "$root/target/release/ebpfctl" --work "$work" \
	--rounds "${1:-5}" --out "${OUT:-$work/results.json}" ${STORMS:+--storms "$STORMS"}
