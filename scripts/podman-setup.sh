#!/usr/bin/env bash
# Makes this machine able to run podman containers (as root) for the tests. Idempotent.
#
#   1. podman + crun (+ conmon, busybox-static for the tests' small root filesystems).
#   2. crun 1.8 refuses a hybrid cgroup host ("cgroups in hybrid mode not supported, drop all
#      controllers from cgroupv2") while the cgroup2 hierarchy lists any controller. Here
#      /sys/fs/cgroup is v1 with cgroup2 at /sys/fs/cgroup/unified, which lists `hugetlb` (the
#      one controller no v1 hierarchy took). A controller not enabled in any cgroup2 subtree
#      can be bound to a v1 hierarchy instead, which takes it off the cgroup2 list: mount each
#      such controller as cgroup v1 at /sys/fs/cgroup/<name>.
#
# What every container on this machine also needs on its command line (root here lacks
# CAP_SYS_RESOURCE, and there is no container network):
#   --network none --ulimit nofile=4096:4096 --ulimit nproc=4096:4096
# scripts/podman-setup.sh --print-flags prints them.
set -euo pipefail

FLAGS="--network none --ulimit nofile=4096:4096 --ulimit nproc=4096:4096"
if [[ "${1:-}" == "--print-flags" ]]; then
  echo "$FLAGS"
  exit 0
fi

want=(podman crun conmon busybox-static)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "podman-setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Hybrid hosts only: on a pure cgroup2 host (/sys/fs/cgroup is cgroup2) crun is happy.
unified=/sys/fs/cgroup/unified
if [[ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs && -r $unified/cgroup.controllers ]]; then
  for c in $(cat "$unified/cgroup.controllers"); do
    dir=/sys/fs/cgroup/$c
    mountpoint -q "$dir" && continue
    mkdir -p "$dir"
    mount -t cgroup -o "$c" cgroup "$dir"
    echo "podman-setup: mounted the $c controller as cgroup v1 at $dir (crun refuses hybrid hosts otherwise)" >&2
  done
  left=$(cat "$unified/cgroup.controllers")
  if [[ -n "$left" ]]; then
    echo "podman-setup: cgroup2 still lists controllers ($left); crun will refuse to run containers" >&2
    exit 1
  fi
fi
