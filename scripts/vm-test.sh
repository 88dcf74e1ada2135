#!/usr/bin/env bash
# The root test suite inside QEMU guests on Debian kernels (scripts/vm.sh), one kernel after
# the other. Builds the test binaries here, runs each inside the guest (no cargo there),
# prints one summary line per kernel and exits non-zero if any test failed on any kernel.
#
# Usage: scripts/vm-test.sh --kernel 6.1|6.12|all [--tests BIN[,BIN...]] [--threads N]
#                           [--timeout SECONDS] [-- TEST-BINARY-ARGS...]
#   --tests     only these test binaries (file names under tests/, e.g. kernels,run; default all)
#   --threads   --test-threads inside the guest (default: TEST_THREADS or 2)
#   --timeout   per kernel (default 10800 s); the guest is stopped after it
#   after --     passed to every test binary (e.g. a name filter)
# Logs: target/vm-test/KERNEL-DATE-PID.log, the whole guest output (KERNEL.log: the latest).
# See docs/kernels.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

kernels=() only="" threads=${TEST_THREADS:-2} timeout_s=10800
while (($#)); do
  case $1 in
    --kernel)
      case ${2:-} in
        all) kernels=(6.1 6.12) ;;
        6.1|6.12) kernels+=("$2") ;;
        *) echo "vm-test.sh: --kernel takes 6.1, 6.12 or all" >&2; exit 2 ;;
      esac
      shift 2 ;;
    --tests) only=${2:-}; shift 2 ;;
    --threads) threads=${2:-}; shift 2 ;;
    --timeout) timeout_s=${2:-}; shift 2 ;;
    --) shift; break ;;
    *) sed -n '6,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
((${#kernels[@]})) || { echo "vm-test.sh: --kernel 6.1|6.12|all is required" >&2; exit 2; }

scripts/setup.sh --test --vm

# Every test binary of the workspace, with the package directory cargo would run it in.
echo "vm-test: building the test binaries (cargo test --workspace --no-run)" >&2
list=$(mktemp -d)
trap 'rm -rf "$list"' EXIT
cargo test --workspace --no-run --message-format=json-render-diagnostics \
  | python3 -c '
import json, os, sys
only = set(filter(None, sys.argv[1].split(",")))
seen = set()
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    name = m["target"]["name"]
    kind = m["target"]["kind"][0]
    label = name if kind == "test" else "%s(%s)" % (name, kind)
    if only and name not in only:
        continue
    seen.add(name)
    print("%s\t%s\t%s" % (m["executable"], os.path.dirname(m["manifest_path"]), label))
missing = only - seen
if missing:
    sys.exit("vm-test.sh: no test binary named " + ", ".join(sorted(missing)))
' "$only" >"$list/tests"
[[ -s $list/tests ]] || { echo "vm-test.sh: no test binaries found" >&2; exit 2; }

# The guest reads binaries through 9p with its own page cache: a rebuild here during a run
# would hand it a mix of old and new pages. Hard links keep this build's inodes (the linker
# and cargo replace files, they do not rewrite them) and the guest runs those; the ebpfctl
# binary the tests find at target/debug/ebpfctl is bind-mounted from there too.
mkdir -p target/vm-test
snap=$(mktemp -d "$repo/target/vm-test/bin.XXXXXX")
trap 'rm -rf "$list" "$snap"' EXIT
n=0
while IFS=$'\t' read -r exe dir label; do
  n=$((n + 1))
  ln "$exe" "$snap/$n-$(basename "$exe")"
  printf '%s\t%s\t%s\n' "$snap/$n-$(basename "$exe")" "$dir" "$label"
done <"$list/tests" >"$list/snap"
mv "$list/snap" "$list/tests"
ln "$repo/target/debug/ebpfctl" "$snap/ebpfctl"
echo "$repo/target/debug/ebpfctl" >"$snap/ebpfctl.path"

status=0
summary=()
for k in "${kernels[@]}"; do
  # One log per run (runs may overlap); KERNEL.log points at the latest.
  log=target/vm-test/$k-$(date +%Y%m%d-%H%M%S)-$$.log
  ln -sfn "$(basename "$log")" "target/vm-test/$k.log"
  echo "vm-test: kernel $k: running $(wc -l <"$list/tests") test binaries in the guest (log: $log)" >&2
  start=$(date +%s)
  # A guest kernel that faults (an oops or panic in the kernel, not in a test: TCG has been seen
  # to fault once in syscall entry on 6.12) ends the guest. The binaries it had not finished
  # run again in a fresh guest, once; the crash is reported in the summary.
  tests=$list/tests crash="" before_crash=""
  for attempt in 1 2; do
    part=$list/attempt$attempt.log
    set +e
    scripts/vm.sh --kernel "$k" --cpus "${VM_CPUS:-2}" --mem "${VM_MEM:-4G}" --timeout "$timeout_s" -- \
      scripts/vm-test-guest.sh "$tests" "$snap" "$threads" "$@" 2>&1 | tee "$part"
    rc=${PIPESTATUS[0]}
    set -e
    cat "$part" >>"$log"
    if ((attempt == 2)) || grep -aq '^vm-test-guest: total:' "$part" ||
      ! grep -aq 'vm.sh: the guest kernel reported a fault' "$part"; then
      break
    fi
    crash=$(grep -a '^vm-test-guest: running ' "$part" | tail -1 | sed 's/^vm-test-guest: running //')
    before_crash=$(grep -a '^test result:' "$part" | awk '{p += $4; f += $6} END {print p + 0 " passed, " f + 0 " failed"}')
    done_labels=$(grep -a -E '^vm-test-guest: .*: exit [0-9]+ in [0-9]+ s$' "$part" \
      | sed -E 's/^vm-test-guest: (.*): exit [0-9]+ in [0-9]+ s$/\1/')
    awk -F '\t' 'NR == FNR { done[$0] = 1; next } !($3 in done)' <(echo "$done_labels") "$tests" >"$list/retry"
    tests=$list/retry
    echo "vm-test: kernel $k: the guest kernel faulted while running $crash (console above);" \
      "running the $(wc -l <"$tests") test binaries it had not finished in a fresh guest, once" >&2
  done
  secs=$(($(date +%s) - start))
  line=$(grep -a '^vm-test-guest: total:' "$log" | tail -1 | sed 's/^vm-test-guest: total: //' || true)
  failed=$(grep -a '^vm-test-guest: FAILED ' "$log" | sed 's/^vm-test-guest: FAILED //' | tr '\n' ' ' || true)
  if [[ -z $line ]]; then
    line="did not finish (vm.sh exit $rc)"
    rc=${rc/#0/1}
  fi
  if [[ -n $crash ]]; then
    line="$line; before that, the guest kernel faulted during $crash (binaries finished before it: $before_crash)"
    [[ $before_crash == *" 0 failed" ]] || rc=1
  fi
  if ((rc != 0)); then
    status=1
    summary+=("vm-test: kernel $k: FAILED: $line in ${secs} s${failed:+; failed on $k: $failed}")
  else
    summary+=("vm-test: kernel $k: ok: $line in ${secs} s")
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
