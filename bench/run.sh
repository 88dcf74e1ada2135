#!/usr/bin/env bash
# Every benchmark, side by side with its peer (bpftrace; for snoop also libbpf-tools; for
# observe, no observer), in one run.
# As root. Usage: bench/run.sh [runner|snoop|observe ...]   (default: all)
# Results (markdown tables with medians and ratios) go to stdout and bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo build --release -q -p ebpfctl
mkdir -p bench/out
which=("$@")
[[ ${#which[@]} -eq 0 ]] && which=(runner snoop observe)
for b in "${which[@]}"; do
  case $b in
    runner) python3 bench/runner/run.py target/release/ebpfctl "${ROUNDS:-5}" | tee bench/out/runner.md ;;
    snoop) [[ -x bench/snoop/run.sh ]] && bench/snoop/run.sh | tee bench/out/snoop.md ;;
    observe) [[ -x bench/observe/run.sh ]] && bench/observe/run.sh | tee bench/out/observe.md
      python3 bench/observe/stop.py | tee bench/out/observe-stop.md
      bench/observe/costs/run.sh target/release/ebpfctl | tee bench/out/observe-costs.md ;;
    *) echo "unknown benchmark $b (runner, snoop, observe)" >&2; exit 2 ;;
  esac
done
