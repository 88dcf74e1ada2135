#!/usr/bin/env bash
# Container lookup costs (crates/ebpfctl-container/examples/lookup_cost.rs); as root.
# Usage: bench/containers/run.sh [N cgroups to create, default 500]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run -q --profile "${PROFILE:-release}" -p ebpfctl-container --example lookup_cost -- "${1:-500}"
