#!/usr/bin/env bash
# Runs every BPF object in a directory as a user would (`ebpfctl run OBJ`, a few seconds, some
# load on the machine) and prints one row per object: how many programs attached, how many
# lines it printed, and the last line it said on stderr when it printed nothing.
#
# Usage: scripts/measure-objects.sh EBPFCTL DIR [EXTRA RUN FLAGS...]   (as root)
#   e.g. scripts/extract-skeletons.py /tmp/lbt /usr/sbin/*  (Debian's libbpf-tools)
#        scripts/measure-objects.sh target/debug/ebpfctl /tmp/lbt --all-maps
set -uo pipefail
bin=$1
dir=$2
shift 2
secs=${SECS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Something for the probes to see: processes, files, sleeps, a TCP connection, disk writes.
load() {
  local end=$((SECONDS + secs))
  while ((SECONDS < end)); do
    ls / >/dev/null
    cat /proc/self/status >/dev/null
    sleep 0.05
    (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null
    dd if=/dev/zero of="$work/f" bs=64k count=4 conv=fsync status=none
    rm -f "$work/f"
  done
}

printf '%-16s %-8s %-7s %s\n' OBJECT ATTACHED LINES "WHAT IT SAYS (when it prints nothing)"
for obj in "$dir"/*.o; do
  name=$(basename "$obj" .bpf.o)
  load &
  loader=$!
  timeout -s INT $((secs + 20)) "$bin" run "$obj" -o json --no-metrics --duration "${secs}s" "$@" \
    >"$work/out" 2>"$work/err"
  wait "$loader"
  lines=$(grep -c . "$work/out")
  attached=$(sed -n 's/.*running: \([0-9]*\) program(s) attached.*/\1/p' "$work/err" | head -1)
  say=""
  if ((lines == 0)); then
    say=$(grep -v '^libbpf:' "$work/err" | tail -1)
    # "N skipped, each said above": the first skip line says more than the summary.
    if [[ $say == *"each said above"* ]]; then
      n=$(sed -n 's/.*(\([0-9]*\) skipped.*/\1/p' <<<"$say")
      say="($n skipped) $(grep -m1 ' skipped: ' "$work/err" | sed 's/^ebpfctl: //')"
    fi
    say=$(cut -c1-220 <<<"$say")
  fi
  printf '%-16s %-8s %-7s %s\n' "$name" "${attached:-0}" "$lines" "$say"
done
