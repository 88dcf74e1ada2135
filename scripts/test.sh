#!/usr/bin/env bash
# The whole test suite on a fresh machine (as root: tests load real programs into the kernel).
# Installs what the tests need, runs every test and each fuzz target briefly, and fails if any
# BPF program is left loaded. Then the tests this kernel cannot run (kprobes, fentry, LSM:
# tests/kernels.rs) and the snoop tools in a QEMU guest on Debian's kernel
# (scripts/vm-test.sh; downloads it once):
#   EBPFCTL_VM_KERNELS  guest kernels, space-separated (default "6.12"; "" for none)
#   EBPFCTL_VM_TESTS    test binaries run there (default "kernels,execsnoop,opensnoop")
#   EBPFCTL_VM_TEST_ARGS arguments to each of them (default "--skip init_": the init → build
#                       → run tests of every kprobe/LSM choice compile 7 probes under TCG,
#                       ~15 min; `scripts/vm-test.sh --kernel all` runs them)
#   FUZZ_SECONDS        seconds per fuzz target (default 10; 0: only type-checks them)
# The whole suite on 6.1 and 6.12 is `scripts/vm-test.sh --kernel all` (docs/kernels.md).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase's wall time, so CI's 45-minute budget can be read per phase.
mark=$SECONDS
took() { echo "test.sh: $1 took $((SECONDS - mark)) s (total $SECONDS s)" >&2; mark=$SECONDS; }
scripts/setup.sh --test --vm
took setup

# What the tests leave behind: programs created during the run that no process holds any more
# (kept by a pin, a tc filter, an attachment). Programs of other BPF tools running beside the
# suite are held by their processes and do not count.
max_prog_id() { bpftool prog list -j | python3 -c 'import json,sys; print(max([p["id"] for p in json.load(sys.stdin)] or [0]))'; }
unheld_since() {
  python3 - "$1" <<'PY'
import glob, json, subprocess, sys
since = int(sys.argv[1])
held = set()
for f in glob.glob("/proc/[0-9]*/fdinfo/*"):
    try:
        for line in open(f):
            if line.startswith("prog_id:"):
                held.add(int(line.split()[1]))
    except OSError:
        pass
progs = json.loads(subprocess.run(["bpftool", "prog", "list", "-j"], capture_output=True, text=True).stdout or "[]")
for p in progs:
    if p["id"] > since and p["id"] not in held and p["type"] != "cgroup_device":
        print(p["id"], p.get("name", ""), p["type"])
PY
}
# bpffs holds maps.debug / progs.debug of the kernel's bpf_preload from the moment it is mounted.
pins() { ls -A /sys/fs/bpf 2>/dev/null | grep -vxE 'maps\.debug|progs\.debug' || true; }
since=$(max_prog_id)
pins_before=$(pins)

# Other BPF tools run beside the suite, as on a shared machine: the tests must check only
# what their own processes loaded and count only their own events. BESIDE=0 runs it alone.
beside_pids=()
stop_beside() {
  ((${#beside_pids[@]})) || return 0
  kill -INT "${beside_pids[@]}" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "${beside_pids[@]}" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "${beside_pids[@]}" 2>/dev/null || true
  wait "${beside_pids[@]}" 2>/dev/null || true
  beside_pids=()
}
trap stop_beside EXIT
if [[ "${BESIDE:-1}" != 0 ]]; then
  cargo build -q -p ebpfctl
  beside=$(mktemp -d)
  cp target/debug/ebpfctl "$beside/ebpfctl"
  "$beside/ebpfctl" execsnoop -o json >/dev/null 2>"$beside/execsnoop.err" & beside_pids+=($!)
  "$beside/ebpfctl" opensnoop -o json >/dev/null 2>"$beside/opensnoop.err" & beside_pids+=($!)
  # An unrelated Go program (the OCI tests' registry runs it, so observe sees real traffic).
  "$beside/ebpfctl" observe /usr/bin/docker-registry -o json >/dev/null 2>"$beside/observe.err" & beside_pids+=($!)
  bpftrace -q -e 'tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }' >/dev/null 2>&1 & beside_pids+=($!)
  sleep 3
  for p in "${beside_pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "test.sh: a tool meant to run beside the suite died:" >&2; cat "$beside"/*.err >&2; exit 1; }
  done
  echo "test.sh: running beside the suite: ebpfctl execsnoop, opensnoop, observe /usr/bin/docker-registry, bpftrace" >&2
fi

status=0
cargo test --workspace --no-run -q || status=$?
took "cargo test build"
# tests/observe.rs spends most of its time in `go build` with 8 Go toolchains (about 7 min on
# a fresh machine, whose Go build cache is empty). It runs beside the other test binaries,
# niced: they keep the CPU they need and it takes what they leave idle.
# The binary itself, run as cargo would (from its package directory): a second cargo would
# wait for the first one's lock on the build directory.
observe_exe=$(cargo test -q -p ebpfctl --test observe --no-run --message-format=json \
  | python3 -c 'import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "observe":
        print(m["executable"])')
observe_log=$(mktemp)
(cd crates/ebpfctl && exec nice -n 10 "$observe_exe" --test-threads="${TEST_THREADS:-4}") \
  >"$observe_log" 2>&1 &
observe_pid=$!
others=()
for f in crates/*/tests/*.rs; do
  [[ $(basename "$f" .rs) == observe ]] || others+=(--test "$(basename "$f" .rs)")
done
cargo test --workspace --no-fail-fast --lib --bins "${others[@]}" -- \
  --test-threads="${TEST_THREADS:-4}" || status=$?
cargo test --workspace --doc -q || status=$?
took "cargo test run (all but observe)"
observe_status=0
wait "$observe_pid" || observe_status=$?
echo "test.sh: tests/observe.rs (run beside the others):" >&2
cat "$observe_log"
rm -f "$observe_log"
((observe_status == 0)) || status=1
stop_beside
took "cargo test run (observe, what was left of it)"

# Every fuzz target for a short while (docs/fuzzing.md); FUZZ_SECONDS=0 does not run them
# but still type-checks them (fuzz/ is not in the workspace: an API change elsewhere breaks
# them unseen otherwise).
if [[ "${FUZZ_SECONDS:-10}" != 0 ]]; then
  scripts/fuzz.sh --dev --time "${FUZZ_SECONDS:-10}" || status=1
  took fuzzing
else
  cargo check -q --manifest-path fuzz/Cargo.toml --bins || status=1
  took "fuzz targets' check"
fi

sleep 1
leaked=$(unheld_since "$since")
if [[ -n "$leaked" ]]; then
  echo "test.sh: BPF programs left loaded by the tests:" >&2
  echo "$leaked" >&2
  status=1
fi
pins_left=$(comm -13 <(echo "$pins_before" | sort) <(pins | sort) || true)
if [[ -n "$pins_left" ]]; then
  echo "test.sh: pins left in /sys/fs/bpf: $pins_left" >&2
  status=1
fi
[[ -n ${EBPFCTL_VM_KERNELS-6.12} ]] || echo "test.sh: guest kernel tests not run: EBPFCTL_VM_KERNELS is empty" >&2
read -ra vm_args <<<"${EBPFCTL_VM_TEST_ARGS---skip init_}"
for k in ${EBPFCTL_VM_KERNELS-6.12}; do
  scripts/vm-test.sh --kernel "$k" --tests "${EBPFCTL_VM_TESTS:-kernels,execsnoop,opensnoop}" -- "${vm_args[@]}" || status=1
  took "guest $k"
done
echo "test.sh: $( ((status == 0)) && echo ok || echo FAILED) after $SECONDS s" >&2
exit $status
