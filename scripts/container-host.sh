#!/usr/bin/env bash
# Makes this host able to run the container tests' podman + crun containers. Idempotent; as root.
#
# On a hybrid cgroup host (cgroup v1 controllers, cgroup v2 at /sys/fs/cgroup/unified) whose
# cgroup v2 root lists the hugetlb controller (no v1 hierarchy has it), crun 1.8 refuses to
# start containers. Mounting a cgroup v1 hierarchy for hugetlb moves the controller there
# (possible while no v2 cgroup enables it), and crun then runs. Nothing changes on a pure
# cgroup v2 host or where a v1 hugetlb hierarchy exists.
set -euo pipefail

v2=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") print $5; break } }' /proc/self/mountinfo | head -n1)
if [[ -z "$v2" ]]; then
  echo "container-host: no cgroup v2 hierarchy is mounted; the container tests need one" >&2
  exit 1
fi
if [[ "$v2" != /sys/fs/cgroup ]] && grep -qw hugetlb "$v2/cgroup.controllers" 2>/dev/null; then
  mkdir -p /sys/fs/cgroup/hugetlb
  if ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
    echo "container-host: mounted the hugetlb controller as cgroup v1 at /sys/fs/cgroup/hugetlb (crun on a hybrid host)" >&2
  fi
fi
