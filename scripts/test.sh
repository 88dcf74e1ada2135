#!/usr/bin/env bash
# The whole test suite on a fresh machine (as root: tests load real programs into the kernel).
# Installs what the tests need, runs every test, and fails if any BPF program is left loaded.
# Then the tests this kernel cannot run (kprobes, fentry, LSM: tests/kernels.rs) and the
# snoop tools in a QEMU guest on Debian's kernel (scripts/vm-test.sh; downloads it once):
#   EBPFCTL_VM_KERNELS  guest kernels, space-separated (default "6.12"; "" for none)
#   EBPFCTL_VM_TESTS    test binaries run there (default "kernels,execsnoop,opensnoop")
# The whole suite on 6.1 and 6.12 is `scripts/vm-test.sh --kernel all` (docs/kernels.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test --vm

progs() { bpftool prog list -j | python3 -c 'import json,sys; print("\n".join("%s %s %s" % (p["id"], p.get("name", ""), p["type"]) for p in json.load(sys.stdin) if p["type"] != "cgroup_device"))'; }
# bpffs holds maps.debug / progs.debug of the kernel's bpf_preload from the moment it is mounted.
pins() { ls -A /sys/fs/bpf 2>/dev/null | grep -vxE 'maps\.debug|progs\.debug' || true; }
before=$(progs | sort)
pins_before=$(pins)

status=0
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}" || status=$?

sleep 1
after=$(progs | sort)
leaked=$(comm -13 <(echo "$before") <(echo "$after") || true)
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
for k in ${EBPFCTL_VM_KERNELS-6.12}; do
  scripts/vm-test.sh --kernel "$k" --tests "${EBPFCTL_VM_TESTS:-kernels,execsnoop,opensnoop}" || status=1
done
exit $status
