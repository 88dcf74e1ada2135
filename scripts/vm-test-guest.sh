#!/usr/bin/env bash
# Inside a scripts/vm.sh guest: runs the test binaries listed in LIST (tab-separated
# executable, package directory, label), each in its package directory as cargo would,
# then checks that no BPF program or pin was left behind. Called by scripts/vm-test.sh.
# Usage: vm-test-guest.sh LIST SNAPSHOT-DIR THREADS [TEST-BINARY-ARGS...]
# SNAPSHOT-DIR holds hard links of this build's binaries (see vm-test.sh); its ebpfctl is
# bind-mounted over the path the tests were built to find it at.
set -uo pipefail
list=$1 snap=$2 threads=$3
shift 3
rel=$(uname -r)
say() { echo "vm-test-guest: $*"; }
[[ -d /ebpfctl-vm ]] || { say "FAILED setup: not inside a scripts/vm.sh guest"; exit 1; }
mount --bind "$snap/ebpfctl" "$(cat "$snap/ebpfctl.path")" || { say "FAILED setup: bind-mounting $snap/ebpfctl"; exit 1; }

# What the suite needs from the host's / (installed there by scripts/setup.sh --test).
missing=()
for t in bpftool promtool gcc go docker-registry skopeo openssl ip; do
  command -v "$t" >/dev/null || missing+=("$t")
done
command -v clang-19 >/dev/null || command -v clang >/dev/null || missing+=(clang)
for g in /opt/ebpfctl-go/*/go/bin/go; do [[ -x $g ]] || missing+=("$g"); done
if ((${#missing[@]})); then
  say "FAILED setup: the guest lacks ${missing[*]} (run scripts/setup.sh --test on the host)"
  say "total: $rel: 0 passed, 1 failed"
  exit 1
fi
# Deadlines of the tests' harness, times this (tests/common/mod.rs `patience`): TCG is slow.
export EBPFCTL_TEST_PATIENCE=${EBPFCTL_TEST_PATIENCE:-6}
say "kernel $rel; $(nproc) CPUs; $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo); lsm $(cat /sys/kernel/security/lsm)"

progs() { bpftool prog list -j | python3 -c 'import json,sys; print("\n".join("%s %s %s" % (p["id"], p.get("name", ""), p["type"]) for p in json.load(sys.stdin) if p["type"] != "cgroup_device"))'; }
pins() { ls -A /sys/fs/bpf 2>/dev/null | grep -vxE 'maps\.debug|progs\.debug' || true; }
before=$(progs | sort)
pins_before=$(pins)

out=$(mktemp -d)
passed=0 failed=0 ignored=0 bins=0 bad=0
while IFS=$'\t' read -r exe dir label; do
  bins=$((bins + 1))
  say "running $label"
  start=$(date +%s)
  (cd "$dir" && CARGO_MANIFEST_DIR=$dir timeout -k 10 "${VM_TEST_BINARY_TIMEOUT:-5400}" \
    "$exe" --test-threads "$threads" "$@") >"$out/log" 2>&1
  rc=$?
  cat "$out/log"
  secs=$(($(date +%s) - start))
  res=$(grep -a '^test result:' "$out/log" | tail -1)
  if [[ $res =~ ([0-9]+)\ passed\;\ ([0-9]+)\ failed\;\ ([0-9]+)\ ignored ]]; then
    passed=$((passed + BASH_REMATCH[1])) failed=$((failed + BASH_REMATCH[2])) ignored=$((ignored + BASH_REMATCH[3]))
  fi
  while read -r name; do
    [[ -n $name ]] && say "FAILED $label::$name"
  done < <(grep -a -E '^test .* \.\.\. FAILED$' "$out/log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/')
  if ((rc != 0)) && ! grep -aqE '^test .* \.\.\. FAILED$' "$out/log"; then
    # No test failed by name: the binary itself died (signal, timeout, harness panic).
    failed=$((failed + 1))
    say "FAILED $label (exit $rc without a failed test: crashed or timed out)"
  fi
  ((rc != 0)) && bad=$((bad + 1))
  say "$label: exit $rc in ${secs} s"
done <"$list"
rm -rf "$out"

sleep 1
leaked=$(comm -13 <(echo "$before") <(progs | sort) || true)
if [[ -n $leaked ]]; then
  say "FAILED leak: BPF programs left loaded by the tests: $(echo "$leaked" | tr '\n' ';')"
  failed=$((failed + 1))
fi
pins_left=$(comm -13 <(echo "$pins_before" | sort) <(pins | sort) || true)
if [[ -n $pins_left ]]; then
  say "FAILED leak: pins left in /sys/fs/bpf: $(echo "$pins_left" | tr '\n' ' ')"
  failed=$((failed + 1))
fi
say "total: $rel: $passed passed, $failed failed, $ignored ignored ($bins test binaries)"
((failed == 0 && bad == 0))
