#!/usr/bin/env bash
# The observe benchmark (not a timed test). A Go client sends N (50,000) sequential requests
# to a Go server on loopback, in ROUNDS pairs of runs alternating without and with
# `ebpfctl observe` attached to both; medians are reported:
#   added latency per request (client + server probes together), observer CPU per request
#   (CPU time of all ebpfctl threads between "ready" and stop, over requests), events
#   captured / expected (each request gives one client and one server event), lost events,
#   peak RSS of ebpfctl (VmHWM).
# Usage: bench/observe/run.sh [EBPFCTL]   (default target/release/ebpfctl, built if missing)
# Env: N=50000 ROUNDS=5 GO=/opt/ebpfctl-go/1.27.3/go/bin/go
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
N=${N:-50000}
ROUNDS=${ROUNDS:-5}
EBPFCTL=${1:-$root/target/release/ebpfctl}
GO=${GO:-/opt/ebpfctl-go/1.27.3/go/bin/go}
[[ $(id -u) == 0 ]] || { echo "run as root (observe loads BPF programs)" >&2; exit 1; }
if [[ ! -x $EBPFCTL ]]; then
  (cd "$root" && cargo build --release -p ebpfctl)
fi
[[ -x $GO ]] || { echo "$GO missing: run scripts/setup.sh --test" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export GOCACHE=$work/gocache GOPATH=$work/gopath GOFLAGS=-mod=mod GOTOOLCHAIN=local
case $GO in /opt/ebpfctl-go/*) export GOROOT=${GO%/bin/go} ;; esac
(cd "$here" && "$GO" build -o "$work/bench" .)
bin=$work/bench
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port/x

# CPU time of every thread of a process, in ns (schedstat: time spent on a CPU).
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {print s}'; }

run_round() { # $1 = off|on; prints "ns_per_req [cpu_ns_per_req events lost rss_kb]"
  local mode=$1 srv obs="" out=$work/obs.out err=$work/obs.err
  : > "$work/srv.out"
  "$bin" serve "127.0.0.1:$port" > "$work/srv.out" & srv=$!
  until grep -q listening "$work/srv.out" 2>/dev/null; do sleep 0.05; done
  if [[ $mode == on ]]; then
    : > "$err"
    "$EBPFCTL" observe "$bin" -o none > "$out" 2> "$err" & obs=$!
    until grep -q "observe: ready" "$err" 2>/dev/null; do
      kill -0 $obs 2>/dev/null || { cat "$err" >&2; exit 1; }
      sleep 0.05
    done
    local c0; c0=$(cpu_ns $obs)
  fi
  local total; total=$("$bin" client "$url" "$N")
  local line="$(( total / N ))"
  if [[ $mode == on ]]; then
    sleep 0.3 # let the last batch be collected
    local c1 rss; c1=$(cpu_ns $obs); rss=$(awk '/VmHWM/ {print $2}' "/proc/$obs/status")
    kill -INT $obs; wait $obs || true
    local events lost
    events=$(sed -n 's/^observe: \([0-9]*\) requests, \([0-9]*\) lost events$/\1/p' "$err")
    lost=$(sed -n 's/^observe: \([0-9]*\) requests, \([0-9]*\) lost events$/\2/p' "$err")
    line+=" $(( (c1 - c0) / N )) $events $lost $rss"
  fi
  kill $srv; wait $srv 2>/dev/null || true
  echo "$line"
}

# Calibration, the floor of any uprobe-based observer on this machine: the same run with
# empty BPF programs (`ebpfctl run`, `uprobe/PATH:0xOFFSET`) at exactly observe's probe
# points (from `observe --inspect`): what the traps cost, whatever the programs do.
# Also one empty program on the single-stepped first instruction of main.get (once per
# request): what a probe the kernel cannot emulate (e.g. a RET) costs here.
floor_probe() { # $@ = file offsets; writes $work/floor.bpf.c
  {
    echo '#include "vmlinux.h"'
    echo '#include <bpf/bpf_helpers.h>'
    echo 'char LICENSE[] SEC("license") = "GPL";'
    local i=0
    for o in "$@"; do
      i=$((i + 1))
      echo "SEC(\"uprobe/$bin:$o\") int floor$i(void *ctx) { return 0; }"
    done
  } > "$work/floor.bpf.c"
  "$EBPFCTL" build "$work/floor.bpf.c" -o "$work/floor.bpf.o" > "$work/floor.build" 2>&1 ||
    { cat "$work/floor.build" >&2; exit 1; }
}
calibrate() { # $@ = file offsets; prints ns/request with empty programs there
  local srv r
  floor_probe "$@"
  : > "$work/srv.out"
  "$bin" serve "127.0.0.1:$port" > "$work/srv.out" & srv=$!
  until grep -q listening "$work/srv.out" 2>/dev/null; do sleep 0.05; done
  : > "$work/floor.err"
  "$EBPFCTL" run "$work/floor.bpf.o" -o none --no-metrics 2> "$work/floor.err" & r=$!
  until grep -q "running:" "$work/floor.err" 2>/dev/null; do
    kill -0 $r 2>/dev/null || { cat "$work/floor.err" >&2; exit 1; }
    sleep 0.05
  done
  local total; total=$("$bin" client "$url" "$N")
  kill -INT $r; wait $r 2>/dev/null || true
  kill $srv; wait $srv 2>/dev/null || true
  echo "$(( total / N ))"
}
probe_points() { # observe's probes on a successful request; line 2 says how the kernel runs them
  "$EBPFCTL" observe --inspect "$bin" | python3 -c '
import json, sys
v = json.load(sys.stdin)
fs = [v["client"], (v["client_exit"] or {}).get("closure"), v["server"], v["finish_request"]]
points = [(f["entry_offset"], f["entry_emulated"]) for f in fs if f]
if v["client_success"]:  # the error check, a conditional jump
    points.append((v["client_success"]["probe_offset"], True))
print(" ".join(p for p, _ in points))
if v["client_exit"] is None and v["client_success"] is None:
    print("the client success path ends at a RET probe (single-stepped), not counted in the floor")
elif all(e for _, e in points):
    print("every probe on that path is emulated by the kernel")
else:
    print("some probes on that path are single-stepped")'
}
single_step_point() { # main.get's first instruction (a CMP: single-stepped)
  python3 - "$bin" <<'PY'
import subprocess, sys
out = subprocess.run(["readelf", "-sW", sys.argv[1]], capture_output=True, text=True).stdout
addr = next(int(l.split()[1], 16) for l in out.splitlines() if l.split()[-1:] == ["main.get"])
hdrs = subprocess.run(["readelf", "-lW", sys.argv[1]], capture_output=True, text=True).stdout
for l in hdrs.splitlines():
    f = l.split()
    if f[:1] == ["LOAD"]:
        off, va, fsz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
        if va <= addr < va + fsz:
            print(hex(addr - va + off)); break
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

off=() on=() cpu=() ev=() lostv=() rss=()
echo "observe benchmark: $N sequential requests per run, $ROUNDS rounds (off/on alternating), $("$GO" version | awk '{print $3}'), $(uname -r)" >&2
for r in $(seq "$ROUNDS"); do
  a=$(run_round off)
  read -r b c e l m <<< "$(run_round on)"
  echo "round $r: off ${a} ns/req, on ${b} ns/req, observer cpu ${c} ns/req, events $e, lost $l, rss ${m} kB" >&2
  off+=("$a"); on+=("$b"); cpu+=("$c"); ev+=("$e"); lostv+=("$l"); rss+=("$m")
done
inspect=$(probe_points)
points=$(head -1 <<< "$inspect")
how=$(tail -1 <<< "$inspect")
floors=() steps=()
for r in $(seq "$ROUNDS"); do
  base=$(run_round off)
  # shellcheck disable=SC2086
  f=$(calibrate $points)
  s1=$(calibrate "$(single_step_point)")
  echo "calibration $r: off ${base} ns/req, empty programs at observe's $(wc -w <<< "$points") points ${f} ns/req, one single-stepped probe ${s1} ns/req" >&2
  floors+=("$(( f - base ))"); steps+=("$(( s1 - base ))")
done
mf=$(printf '%s\n' "${floors[@]}" | median)
ms=$(printf '%s\n' "${steps[@]}" | median)
mo=$(printf '%s\n' "${off[@]}" | median)
mn=$(printf '%s\n' "${on[@]}" | median)
mc=$(printf '%s\n' "${cpu[@]}" | median)
me=$(printf '%s\n' "${ev[@]}" | median)
peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
lost_total=$(printf '%s\n' "${lostv[@]}" | awk '{s+=$1} END {print s}')
cat <<REPORT
latency per request, median: off ${mo} ns, on ${mn} ns
added latency per request (client + server probes): $(( mn - mo )) ns
observer CPU per request (user space, median): ${mc} ns
events captured / expected (client + server events incl. 100 warm-up requests, median round): ${me} / $(( 2 * (N + 100) )) = $(awk -v e="$me" -v n="$((N + 100))" 'BEGIN {printf "%.2f%%", 100 * e / (2 * n)}')
lost events (all rounds): ${lost_total}
peak RSS of ebpfctl: ${peak} kB
floor (empty programs at observe's $(wc -w <<< "$points") probe points, median): ${mf} ns added per request
  observe above the floor: $(( mn - mo - mf )) ns; ${how}
one single-stepped uprobe (a probe on a RET or most instructions), median: ${ms} ns added per hit
REPORT
