#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ one after the other, each for a given time, and reports
# executions, speed and crashes per target. See docs/fuzzing.md.
#
# Usage: scripts/fuzz.sh [--time SECONDS] [--dev] [--list] [TARGET...]
#   --time S   seconds per target (default 60); CI (scripts/test.sh) uses 10
#   --dev      build fuzz/'s dev profile (opt-level 1, debug assertions) rather than release:
#              a shorter cold build, fewer executions a second; CI uses it
#   --list     print the targets and exit
#   TARGET     default: every target
#
# Installs cargo-fuzz when missing. cargo-fuzz builds with AddressSanitizer, which needs
# `-Z` flags: RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
# The seed corpus (fuzz/corpus/TARGET) is generated from this project's own objects on
# first use (fuzz/seeds.py); findings go to fuzz/artifacts/TARGET; per-target logs and
# statistics to fuzz/artifacts/TARGET.log. Exits 1 when any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."

time=60
list=0
mode=-O
targets=()
while (($#)); do
  case "$1" in
    --time) time=$2; shift 2 ;;
    --time=*) time=${1#*=}; shift ;;
    --dev) mode=-D; shift ;;
    --list) list=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown flag $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# C dependencies (libbpf, aws-lc) built with clang, the compiler of the sanitizers. libbpf
# itself is not instrumented: the same build serves the tools' build script (which compiles
# probes through ebpfctl-build), and build scripts link without the sanitizer runtimes. A
# crash inside libbpf is still caught (SIGSEGV, SIGFPE, stack overflow), a silent bad read
# is not.
export CC=$(command -v clang-19 || command -v clang)

all=$(cd fuzz && cargo fuzz list)
if ((list)); then echo "$all"; exit 0; fi
((${#targets[@]})) || mapfile -t targets <<<"$all"
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$all" || { echo "fuzz.sh: no target $t (targets: $(echo $all))" >&2; exit 2; }
done

if [[ ! -d fuzz/corpus ]]; then
  echo "fuzz.sh: generating the seed corpus" >&2
  # The workspace's own build, in its own environment: RUSTC_BOOTSTRAP changes what some
  # build scripts (proc-macro2's) detect, and with it set here the next plain cargo build
  # (the guest tests' in scripts/test.sh) rebuilt the whole tree.
  (unset CC RUSTC_BOOTSTRAP; cargo build -q -p ebpfctl -p ebpfctl-tools)
  probes=$(dirname "$(ls -t target/debug/build/ebpfctl-tools-*/out/execsnoop.bpf.o | head -1)")
  python3 fuzz/seeds.py target/debug/ebpfctl "$probes" fuzz/corpus.new
  mv fuzz/corpus.new fuzz/corpus
fi

(cd fuzz && cargo fuzz build "$mode")

status=0
mkdir -p fuzz/artifacts
printf '%-16s %12s %10s %8s %7s\n' TARGET EXECS EXEC/S CORPUS CRASHES >&2
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log=fuzz/artifacts/$t.log
  rc=0
  # -rss_limit_mb: a target may not need more; -timeout: one input may not take longer.
  (cd fuzz && cargo fuzz run "$mode" "$t" -- -max_total_time="$time" -print_final_stats=1 \
      -rss_limit_mb=2048 -timeout=20) >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
  printf '%-16s %12s %10s %8s %7s\n' "$t" "${execs:-?}" "${speed:-?}" "$corpus" "$crashes" >&2
  if ((rc != 0 || crashes > 0)); then
    status=1
    echo "fuzz.sh: $t failed (exit $rc); see $log and fuzz/artifacts/$t/" >&2
    grep -m3 -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY)' "$log" >&2 || true
  fi
done
exit $status
