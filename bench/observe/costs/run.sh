#!/usr/bin/env bash
# What the operations of observe's probes cost on this machine, per operation: four of a kind
# per uprobe hit, all programs on the same probe, the kernel's BPF stats. As root.
# Usage: bench/observe/costs/run.sh [EBPFCTL] [HITS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
ebpfctl=${1:-$repo/target/release/ebpfctl}
hits=${2:-300000}
[[ -x $ebpfctl ]] || { echo "costs: no $ebpfctl: cargo build --release -p ebpfctl" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill "${runner:-}" 2>/dev/null; wait 2>/dev/null; echo "$stats_was" > /proc/sys/kernel/bpf_stats_enabled; rm -rf "$work"' EXIT
stats_was=$(cat /proc/sys/kernel/bpf_stats_enabled)
gcc -O1 -o "$work/target" "$here/target.c"
sed "s|TARGET|$work/target|" "$here/costs.bpf.c" > "$work/costs.bpf.c"
"$ebpfctl" build "$work/costs.bpf.c" -o "$work/costs.o" > "$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; exit 1; }
echo 1 > /proc/sys/kernel/bpf_stats_enabled
"$ebpfctl" run "$work/costs.o" -o none 2> "$work/run.err" &
runner=$!
for _ in $(seq 100); do grep -q "running:" "$work/run.err" && break; sleep 0.1; done
grep -q "running:" "$work/run.err" || { cat "$work/run.err" >&2; exit 1; }
taskset -c "${CPU:-1}" "$work/target" "$hits"
"$ebpfctl" prog list -o json | python3 -c '
import json, sys
pid, hits = int(sys.argv[1]), int(sys.argv[2])
progs = {p["name"]: p for p in json.load(sys.stdin)
         if any(x.get("pid") == pid for x in p.get("pids", [])) and p.get("run_cnt", 0) >= hits}
per = {n: p["run_time_ns"] / p["run_cnt"] for n, p in progs.items()}
base = per.pop("empty")
print(f"| operation (x4 per run) | ns per run | ns per operation above an empty program ({base:.0f} ns) |")
print("| --- | --- | --- |")
for n, ns in sorted(per.items(), key=lambda kv: kv[1]):
    print(f"| {n} | {ns:.0f} | {(ns - base) / 4:.1f} |")
' "$runner" "$hits"
