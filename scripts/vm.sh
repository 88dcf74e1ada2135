#!/usr/bin/env bash
# Runs one command as root inside a QEMU guest booted on a Debian kernel, with this machine's
# filesystem visible at the same paths (read-only, under a writable tmpfs overlay).
#
# Usage: scripts/vm.sh --kernel 6.1|6.12 [--mem 2G] [--cpus 2] [--timeout SECONDS]
#                      [--accel auto|kvm|tcg] [--append KERNEL-ARGS] [--verbose] [--refresh]
#                      -- COMMAND [ARGS...]
#
# COMMAND runs in the current directory, with this shell's environment, stdin from /dev/null;
# its stdout and stderr come out here and vm.sh exits with its status. A guest that does not
# get as far as running COMMAND makes vm.sh exit 125 naming the step that failed, with the
# tail of the guest's console.
#
# Kernels: the newest linux-image-6.1.0-N-amd64 / linux-image-6.12.N+deb12-amd64 that apt
# knows, fetched with `apt-get download` and unpacked with `dpkg -x` into
# /var/cache/ebpfctl/kernels/SERIES (once; --refresh fetches the newest again). Nothing is
# installed into /boot. The guest sees its own modules under /lib/modules/RELEASE and its
# config as /boot/config-RELEASE. See docs/kernels.md.
#
# Environment: EBPFCTL_VM_CACHE (cache directory), EBPFCTL_VM_ACCEL (like --accel).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
series="" extra_args="" mem=2G cpus=2 timeout_s=0 accel=${EBPFCTL_VM_ACCEL:-auto} verbose=0 refresh=0
cache_root=${EBPFCTL_VM_CACHE:-/var/cache/ebpfctl/kernels}

die() { echo "vm.sh: $*" >&2; exit 125; }
usage() { sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while (($#)); do
  case $1 in
    --kernel) series=${2:-}; shift 2 ;;
    --mem) mem=${2:-}; shift 2 ;;
    --cpus) cpus=${2:-}; shift 2 ;;
    --timeout) timeout_s=${2:-}; shift 2 ;;
    --accel) accel=${2:-}; shift 2 ;;
    --append) extra_args=${2:-}; shift 2 ;;
    --verbose) verbose=1; shift ;;
    --refresh) refresh=1; shift ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "vm.sh: unknown argument $1" >&2; usage ;;
  esac
done
(($#)) || { echo "vm.sh: no COMMAND given after --" >&2; usage; }
case $series in
  6.1) pkg_re='^linux-image-6\.1\.0-[0-9]+-amd64$' ;;
  6.12) pkg_re='^linux-image-6\.12\.[0-9]+\+deb12-amd64$' ;;
  *) echo "vm.sh: --kernel must be 6.1 or 6.12 (got '${series}')" >&2; exit 2 ;;
esac
[[ $cpus =~ ^[0-9]+$ && $timeout_s =~ ^[0-9]+$ ]] || { echo "vm.sh: --cpus and --timeout take numbers" >&2; exit 2; }
[[ $accel =~ ^(auto|kvm|tcg)$ ]] || { echo "vm.sh: --accel must be auto, kvm or tcg" >&2; exit 2; }
(( EUID == 0 )) || die "run as root (the guest shares / and the kernel cache is root's)"

step() { ((verbose)) && echo "vm.sh: $*" >&2; return 0; }

# ---- tools -------------------------------------------------------------------------------
need_tools() {
  local t
  for t in qemu-system-x86_64 depmod modprobe xz zstd; do command -v "$t" >/dev/null || return 1; done
  [[ -x /bin/busybox ]] && /bin/busybox --list | grep -qx switch_root
}
if ! need_tools; then
  step "installing QEMU, busybox-static, kmod (scripts/setup.sh --vm)"
  "$here/setup.sh" --vm >&2 || die "step 'install tools' failed: scripts/setup.sh --vm"
  need_tools || die "step 'install tools' failed: qemu-system-x86_64, depmod, xz, zstd or /bin/busybox still missing"
fi

# ---- kernel cache (root's own directory, never a predictable path in a shared one) --------
safe_dir() { # DIR: exists, is a directory (not a symlink), owned by root, writable by root only
  [[ -d $1 && ! -L $1 ]] || return 1
  local st; st=$(stat -c '%u %a' "$1")
  [[ ${st%% *} == 0 ]] && (( (8#${st#* } & 8#022) == 0 ))
}
mkdir -p -m 0755 "$cache_root"
d=$cache_root
while [[ $d != / ]]; do safe_dir "$d" || die "step 'kernel cache' failed: $d must be a root-owned directory writable only by root"; d=$(dirname "$d"); done
kdir=$cache_root/$series

newest_pkg() { apt-cache search --names-only "$pkg_re" 2>/dev/null | awk '{print $1}' | grep -E "$pkg_re" | sort -V | tail -1 || true; }

fetch_kernel() {
  local pkg tmp rel
  pkg=$(newest_pkg)
  if [[ -z $pkg ]]; then
    step "apt-get update (no $series kernel package known yet)"
    apt-get update -qq >&2 || die "step 'download kernel' failed: apt-get update"
    pkg=$(newest_pkg)
  fi
  [[ -n $pkg ]] || die "step 'download kernel' failed: apt knows no package matching $pkg_re (Debian bookworm/-security sources needed)"
  echo "vm.sh: fetching $pkg into $kdir (once)" >&2
  tmp=$(mktemp -d "$cache_root/.new-$series.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
    # Package lists older than the mirror name files it no longer has: refresh, retry.
    apt-get update -qq >&2 || die "step 'download kernel' failed: apt-get update"
    pkg=$(newest_pkg)
    echo "vm.sh: fetching $pkg into $kdir (after apt-get update)" >&2
    (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null) \
      || die "step 'download kernel' failed: apt-get download $pkg"
  fi
  dpkg -x "$tmp"/*.deb "$tmp/root" || die "step 'unpack kernel' failed: dpkg -x $pkg"
  rm -f "$tmp"/*.deb
  rel=$(ls "$tmp/root/lib/modules")
  [[ -f $tmp/root/boot/vmlinuz-$rel ]] || die "step 'unpack kernel' failed: no boot/vmlinuz-$rel in $pkg"
  # Debian's packages build modules.dep in postinst: do it here, into the unpacked tree.
  depmod -b "$tmp/root" "$rel" || die "step 'depmod' failed for $rel"
  build_initramfs_base "$tmp" "$rel" || die "step 'initramfs' failed for $rel"
  extract_vmlinux "$tmp/root/boot/vmlinuz-$rel" "$tmp/vmlinux" || rm -f "$tmp/vmlinux"
  echo "$pkg" >"$tmp/package"
  echo "$rel" >"$tmp/release"
  rm -rf "$kdir.old"
  [[ -e $kdir ]] && mv "$kdir" "$kdir.old"
  mv "$tmp" "$kdir"
  rm -rf "$kdir.old"
  trap - EXIT
}

# The kernel image is a bzImage whose payload is xz (6.1) or zstd (6.12): the ELF inside
# carries a PVH entry note, which lets QEMU start it directly (no real-mode setup, no
# self-decompression: 1-3 s less per boot under TCG).
extract_vmlinux() {
  local img=$1 out=$2 off
  for magic in '\xfd\x37\x7a\x58\x5a\x00:xz -dc --single-stream' '\x28\xb5\x2f\xfd:zstd -dcq'; do
    off=$(LC_ALL=C grep -obUaP "${magic%%:*}" "$img" | head -1 | cut -d: -f1 || true)
    [[ -n $off ]] || continue
    tail -c +$((off + 1)) "$img" | ${magic#*:} >"$out" 2>/dev/null || true
    if [[ $(head -c 4 "$out" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] && readelf -n "$out" 2>/dev/null | grep -q 'Xen.*0x00000012'; then
      return 0
    fi
  done
  return 1
}

# Busybox and the modules the guest needs before it can see the host's / (virtio PCI, 9p,
# overlayfs, the virtio console that carries stdout/stderr), decompressed, in load order.
build_initramfs_base() {
  local dir=$1 rel=$2 b=$1/initramfs n=0 line path
  mkdir -p "$b"/{bin,mods,proc,sys,dev,lower,rw,newroot}
  cp /bin/busybox "$b/bin/busybox"
  for a in sh mount umount insmod mkdir cat echo ip switch_root reboot sleep cp ln mknod ls sync; do
    ln -s busybox "$b/bin/$a"
  done
  while read -r kind path _; do
    [[ $kind == insmod ]] || continue
    n=$((n + 1))
    local dst; dst=$b/mods/$(printf %02d $n)-$(basename "${path%%.ko*}").ko
    case $path in
      *.ko.xz) xz -dc "$path" >"$dst" ;;
      *.ko.zst) zstd -dcq "$path" >"$dst" ;;
      *) cp "$path" "$dst" ;;
    esac
  done < <(for m in virtio_pci virtio_console 9pnet_virtio 9p overlay; do
             modprobe -d "$dir/root" -S "$rel" --show-depends "$m"
           done | awk '!seen[$0]++')
  cp "$here/vm-init.sh" "$b/init"
  chmod 0755 "$b/init"
  (cd "$b" && find . -mindepth 1 | /bin/busybox cpio -o -H newc 2>/dev/null) >"$dir/initramfs.cpio"
  rm -rf "$b"
}

if ((refresh)) || [[ ! -f $kdir/release ]]; then
  exec 9>"$cache_root/.lock"
  flock 9
  if ((refresh)) || [[ ! -f $kdir/release ]]; then fetch_kernel; fi
  flock -u 9
fi
# An initramfs from an older vm-init.sh is rebuilt in place.
if ! cmp -s <(cd "$kdir" && /bin/busybox cpio -i --to-stdout init <initramfs.cpio 2>/dev/null) "$here/vm-init.sh"; then
  exec 9>"$cache_root/.lock"
  flock 9
  tmpb=$(mktemp -d "$cache_root/.init-$series.XXXXXX")
  ln -s "$kdir/root" "$tmpb/root"
  build_initramfs_base "$tmpb" "$(cat "$kdir/release")" || die "step 'initramfs' failed"
  mv "$tmpb/initramfs.cpio" "$kdir/initramfs.cpio"
  rm -rf "$tmpb"
  flock -u 9
fi
rel=$(cat "$kdir/release")

# ---- this run: the command, its directory and environment, in a second cpio -------------
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT
mkdir -p "$run/cpio/ebpfctl-vm"
{
  echo '#!/bin/bash'
  # This shell's exported environment, minus what belongs to this host session.
  export -p | grep -vE '^declare -x (PWD|OLDPWD|SHLVL|_|HOSTNAME|TERM_SESSION_ID|SSH_[A-Z_]*|DBUS_[A-Z_]*|XDG_[A-Z_]*|DISPLAY|WAYLAND_DISPLAY|TMUX|TMUX_PANE)(=|$)' || true
  printf 'cd -- %q || { echo "vm.sh (guest): directory %q is not visible in the guest" >&2; exit 125; }\n' "$PWD" "$PWD"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} >"$run/cpio/ebpfctl-vm/cmd.sh"
echo "$kdir/root" >"$run/cpio/ebpfctl-vm/kernel-root"
echo "$rel" >"$run/cpio/ebpfctl-vm/release"
(cd "$run/cpio" && find . -mindepth 1 | /bin/busybox cpio -o -H newc 2>/dev/null) >"$run/cmd.cpio"
cat "$kdir/initramfs.cpio" "$run/cmd.cpio" >"$run/initrd"
: >"$run/status"

# ---- accelerator: KVM only where it boots this kernel; the verdict is cached -------------
kvm_usable() { [[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]]; }

qemu_run() { # ACCEL LOGFILE TIMEOUT: boots the guest; returns QEMU's status
  local acc=$1 log=$2 t=$3 kernel cpu machine
  if [[ -f $kdir/vmlinux ]]; then kernel=$kdir/vmlinux; else kernel=$kdir/root/boot/vmlinuz-$rel; fi
  if [[ $acc == kvm ]]; then cpu=host; else cpu=max; fi
  local console=file:$log loglevel=4
  if ((verbose)); then loglevel=7; fi
  local args=(
    -nodefaults -no-user-config -display none -no-reboot
    -machine "pc,accel=$acc" -cpu "$cpu" -smp "$cpus" -m "$mem"
    -kernel "$kernel" -initrd "$run/initrd"
    -append "console=ttyS0 loglevel=$loglevel panic=-1 oops=panic softlockup_panic=1 mitigations=off rdinit=/init tsc=reliable $extra_args"
    -serial "$console"
    -fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap"
    -device "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"
    -device virtio-serial-pci,id=vser
    -chardev "file,id=out,path=$run/stdout"
    -device "virtserialport,bus=vser.0,nr=1,chardev=out,name=stdout"
    -chardev "file,id=err,path=$run/stderr"
    -device "virtserialport,bus=vser.0,nr=2,chardev=err,name=stderr"
    -chardev "file,id=st,path=$run/status"
    -device "virtserialport,bus=vser.0,nr=3,chardev=st,name=status"
  )
  if ((t > 0)); then
    timeout -k 5 "$t" qemu-system-x86_64 "${args[@]}" </dev/null
  else
    qemu-system-x86_64 "${args[@]}" </dev/null
  fi
}

verdict=$cache_root/accel-$series
if [[ $accel == auto ]]; then
  accel=tcg
  if kvm_usable; then
    if [[ -f $verdict ]]; then
      accel=$(cat "$verdict")
    else
      # One short trial boot with `true`; a kernel that cannot boot under this KVM hangs or
      # dies early, so give it 60 s and fall back to TCG.
      step "trying KVM on $rel"
      printf '#!/bin/bash\nexit 0\n' >"$run/cpio/ebpfctl-vm/cmd.sh"
      (cd "$run/cpio" && find . -mindepth 1 | /bin/busybox cpio -o -H newc 2>/dev/null) >"$run/trial.cpio"
      cp "$run/initrd" "$run/initrd.real"
      cat "$kdir/initramfs.cpio" "$run/trial.cpio" >"$run/initrd"
      if qemu_run kvm "$run/trial.log" 60 >/dev/null 2>&1 && [[ $(cat "$run/status") == 0 ]]; then
        accel=kvm
      fi
      mv "$run/initrd.real" "$run/initrd"
      rm -f "$run/stdout" "$run/stderr"
      : >"$run/status"
      echo "$accel" >"$verdict"
    fi
  fi
fi

# ---- boot --------------------------------------------------------------------------------
log=$run/console.log
start=$(date +%s.%N)
if ((verbose)); then
  echo "vm.sh: booting $rel ($accel, $cpus vCPUs, $mem) for: $*" >&2
  touch "$log"
  tail -n +1 -f "$log" >&2 &
  tailpid=$!
fi
# The guest's stdout and stderr arrive through FIFOs, relayed by cat to ours (so a file
# or pipe we were given is written the way our caller opened it).
relay_start() {
  mkfifo -m 0600 "$run/stdout" "$run/stderr"
  cat "$run/stdout" & relay_out=$!
  cat "$run/stderr" >&2 & relay_err=$!
}
relay_end() { # a reader still blocked in open() (QEMU never opened its end) gets EOF
  local f fd
  for f in "$run/stdout" "$run/stderr"; do exec {fd}<>"$f"; exec {fd}>&-; done
  wait "$relay_out" "$relay_err" 2>/dev/null || true
}
relay_start
qrc=0
qemu_run "$accel" "$log" "$timeout_s" || qrc=$?
relay_end
if ((verbose)); then kill "$tailpid" 2>/dev/null || true; wait "$tailpid" 2>/dev/null || true; fi
end=$(date +%s.%N)
status=$(tr -dc '0-9' <"$run/status")
if [[ -n $status ]]; then
  ((verbose)) && echo "vm.sh: $rel: exit $status after $(echo "$end - $start" | bc 2>/dev/null || echo ?) s" >&2
  exit "$status"
fi
# No status: say where the guest stopped.
last=$(grep -a 'ebpfctl-vm: step' "$log" | tail -1 | tr -d '\r' | sed 's/.*ebpfctl-vm: step: //; s/ (at [0-9.]*s)$//' || true)
failed=$(grep -a 'ebpfctl-vm: FAILED' "$log" | tail -1 | tr -d '\r' | sed 's/.*ebpfctl-vm: FAILED: //' || true)
{
  if [[ -n $failed ]]; then
    echo "vm.sh: guest $rel failed at step '$failed'"
  elif ((qrc == 124)); then
    echo "vm.sh: guest $rel timed out after ${timeout_s} s (last step: '${last:-kernel boot, before init}')"
  elif [[ -n $last ]]; then
    echo "vm.sh: guest $rel stopped without an exit status during step '$last' (QEMU status $qrc)"
  else
    echo "vm.sh: guest $rel stopped before init ran (step 'kernel boot', QEMU status $qrc, accel $accel)"
  fi
  # A kernel oops or panic: its report from the first line, else the console's tail.
  oops=$(grep -a -n -m1 -E 'BUG:|Oops:|cut here|general protection|Kernel panic' "$log" | cut -d: -f1 || true)
  if [[ -n $oops ]]; then
    echo "vm.sh: the guest kernel reported a fault; its console from there:"
    tail -n +"$oops" "$log" | head -n 80 | sed 's/^/  | /'
  else
    echo "vm.sh: last console lines:"
    tail -n 25 "$log" | sed 's/^/  | /'
  fi
} >&2
exit 125
