#!/usr/bin/env bash
# The whole test suite on a fresh machine (as root: tests load real programs into the kernel).
# Installs what the tests need, runs every test and each fuzz target briefly, and fails if any
# BPF program is left loaded.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

progs() { bpftool prog list -j | python3 -c 'import json,sys; print("\n".join("%s %s %s" % (p["id"], p.get("name", ""), p["type"]) for p in json.load(sys.stdin) if p["type"] != "cgroup_device"))'; }
# bpffs holds maps.debug / progs.debug of the kernel's bpf_preload from the moment it is mounted.
pins() { ls -A /sys/fs/bpf 2>/dev/null | grep -vxE 'maps\.debug|progs\.debug' || true; }
before=$(progs | sort)
pins_before=$(pins)

status=0
cargo test --workspace --no-fail-fast -- --test-threads="${TEST_THREADS:-4}" || status=$?

# Every fuzz target for a short while (docs/fuzzing.md); FUZZ_SECONDS=0 skips them.
if [[ "${FUZZ_SECONDS:-20}" != 0 ]]; then
  scripts/fuzz.sh --time "${FUZZ_SECONDS:-20}" || status=1
fi

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
exit $status
