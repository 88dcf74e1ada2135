#!/bin/sh
# /init of the guest booted by scripts/vm.sh (busybox sh, PID 1). Loads the modules the
# initramfs carries, mounts the host's / (9p, read-only) under a tmpfs overlay, mounts the
# kernel's pseudo filesystems, then runs /ebpfctl-vm/cmd.sh with the host's bash and reports
# its exit status on the `status` virtio port. Progress goes to the console (ttyS0) as
# "ebpfctl-vm: step: ..." so vm.sh can name the step where a boot stopped.
export PATH=/bin

step() { up=$(cat /proc/uptime /newroot/proc/uptime 2>/dev/null); up=${up%% *}; echo "ebpfctl-vm: step: $* (at ${up}s)" >/dev/console; }
fail() {
	echo "ebpfctl-vm: FAILED: $*" >/dev/console
	sync
	reboot -f
	sleep 5
}

mount -t proc proc /proc
step "init started"
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
step "loading modules"
for m in /mods/*.ko; do
	[ -e "$m" ] || continue
	insmod "$m" || fail "loading modules: insmod $m"
done
ip link set lo up

step "mounting host / over 9p"
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower ||
	fail "mounting host / over 9p"
step "mounting the tmpfs overlay"
mount -t tmpfs -o mode=0755 rw /rw || fail "mounting the tmpfs overlay: tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	fail "mounting the tmpfs overlay: overlayfs"

step "mounting pseudo filesystems"
n=/newroot
mount --move /proc $n/proc || fail "mounting pseudo filesystems: proc"
mount --move /sys $n/sys || fail "mounting pseudo filesystems: sysfs"
mount --move /dev $n/dev || fail "mounting pseudo filesystems: devtmpfs"
mkdir -p $n/dev/pts $n/dev/shm
ln -sf /proc/self/fd $n/dev/fd
ln -sf /proc/self/fd/0 $n/dev/stdin
ln -sf /proc/self/fd/1 $n/dev/stdout
ln -sf /proc/self/fd/2 $n/dev/stderr
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $n/dev/pts || fail "mounting pseudo filesystems: devpts"
mount -t tmpfs -o mode=1777 shm $n/dev/shm || fail "mounting pseudo filesystems: /dev/shm"
mount -t tmpfs -o mode=0755 run $n/run || fail "mounting pseudo filesystems: /run"
mount -t tracefs tracefs $n/sys/kernel/tracing || fail "mounting pseudo filesystems: tracefs"
mount -t debugfs debugfs $n/sys/kernel/debug || fail "mounting pseudo filesystems: debugfs"
mount -t securityfs securityfs $n/sys/kernel/security || fail "mounting pseudo filesystems: securityfs"
mount -t bpf bpf $n/sys/fs/bpf || fail "mounting pseudo filesystems: bpffs"
mount -t cgroup2 -o nsdelegate cgroup2 $n/sys/fs/cgroup || fail "mounting pseudo filesystems: cgroup2"

step "linking the guest kernel's modules and config"
rel=$(cat /ebpfctl-vm/release)
kroot=$(cat /ebpfctl-vm/kernel-root)
[ -d "$n$kroot/lib/modules/$rel" ] || fail "linking the guest kernel's modules and config: $kroot not visible"
mkdir -p $n/lib/modules $n/boot $n/ebpfctl-vm
rm -rf "$n/lib/modules/$rel" "$n/boot/config-$rel"
ln -s "$kroot/lib/modules/$rel" "$n/lib/modules/$rel"
ln -s "$kroot/boot/config-$rel" "$n/boot/config-$rel"
ln -s "$kroot/boot/System.map-$rel" "$n/boot/System.map-$rel" 2>/dev/null
cp /ebpfctl-vm/* $n/ebpfctl-vm/
cp /bin/busybox $n/ebpfctl-vm/busybox
cat >$n/ebpfctl-vm/stage2.sh <<'EOF'
#!/bin/bash
# PID 1 after switch_root: the command, then its status out and power off.
port() { local p; for p in /sys/class/virtio-ports/*; do [[ $(cat "$p/name" 2>/dev/null) == "$1" ]] && { echo "/dev/${p##*/}"; return; }; done; echo /dev/console; }
out=$(port stdout) err=$(port stderr) st=$(port status)
read -r up _ </proc/uptime
echo "ebpfctl-vm: step: running the command (at ${up}s)" >/dev/console
hostname ebpfctl-vm 2>/dev/null
# Container storage on its own tmpfs: podman's overlay driver cannot put its upper layers on
# the overlayfs root. And one address that is not loopback (there is no network device): a
# dummy interface, for what must be reached by a machine's address rather than 127.0.0.1.
# (PATH here is the initramfs's /bin: modprobe is in sbin.)
mkdir -p /var/lib/containers && mount -t tmpfs -o mode=0700 containers /var/lib/containers
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
if modprobe dummy 2>/dev/null && ip link add ebpfctl0 type dummy 2>/dev/null; then
	ip addr add 10.213.0.1/24 dev ebpfctl0 && ip link set ebpfctl0 up
fi
/bin/bash /ebpfctl-vm/cmd.sh </dev/null >"$out" 2>"$err"
rc=$?
echo "$rc" >"$st"
sync
/ebpfctl-vm/busybox reboot -f
EOF
chmod 0755 $n/ebpfctl-vm/stage2.sh
[ -x $n/bin/bash ] || fail "switching to the host's root: no /bin/bash on the host"
step "switching to the host's root"
exec switch_root $n /ebpfctl-vm/stage2.sh
fail "switching to the host's root: switch_root"
