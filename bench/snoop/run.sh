#!/bin/sh
# Benchmark of `ebpfctl execsnoop` and `ebpfctl opensnoop` against libbpf-tools' C execsnoop
# and opensnoop (bcc, Debian's libbpf-tools) and bpftrace one-liners on the same tracepoints:
# exec storm (3,000 fork+exec of `/bin/true a b`) and open storm (200,000 open/close of one
# file), configurations interleaved per round, medians with min–max, ratios to the C tools.
# Run as root:
#   bench/snoop/run.sh [ROUNDS]     (default 5 rounds)
#   STORMS=exec|open         one storm only
#   TRACERS=ebpfctl,libbpf-tools,bpftrace   a subset of the tracers
#   EXEC_ARGS=... OPEN_ARGS=...   extra flags for ebpfctl execsnoop / opensnoop
#   EBPFCTL=path             a prebuilt binary instead of `cargo build --release`
# Prints one markdown table per storm; raw runs go to $OUT (default $WORK/results.json,
# WORK=/dev/shm/snoopbench-work); tracer output goes to tmpfs and is removed after.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${WORK:-/dev/shm/snoopbench-work}
mkdir -p "$work"
cc=$(command -v clang-19 || command -v clang || command -v cc)
"$cc" -O2 -o "$work/execstorm" "$here/execstorm.c"
"$cc" -O2 -o "$work/openstorm" "$here/openstorm.c"
if [ -z "${EBPFCTL:-}" ]; then
	(cd "$root" && cargo build --release -q -p ebpfctl)
	EBPFCTL=$root/target/release/ebpfctl
fi
exec python3 "$here/bench.py" --ebpfctl "$EBPFCTL" --work "$work" \
	--rounds "${1:-5}" --out "${OUT:-$work/results.json}" ${STORMS:+--storms "$STORMS"} \
	${TRACERS:+--tracers "$TRACERS"} --exec-args "${EXEC_ARGS:-}" --open-args "${OPEN_ARGS:-}"
