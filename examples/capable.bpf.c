// Bumblebee's capable on kprobes: every capability check the kernel makes (cap_capable(),
// behind capable(), ns_capable() and file capability checks), as events with the capability
// by name, plus a `counter_` hash per (capability, command):
// ebpfctl_capability_checks_total{cap="CAP_SYS_NICE",comm="nice"}.
//
// `const volatile` parameters filter in the kernel: --param target_comm=NAME keeps one
// command, --param only_cap=N one capability (-1: all). Needs kprobes (CONFIG_KPROBES).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ebpfctl.h"

const volatile char target_comm[16] = "";
const volatile __s32 only_cap = -1;

/* The capability numbers of include/uapi/linux/capability.h (macros there, so absent from
 * kernel BTF): an enum makes the runner print them by name. */
enum capability {
	CAP_CHOWN = 0, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_KILL,
	CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_LINUX_IMMUTABLE, CAP_NET_BIND_SERVICE,
	CAP_NET_BROADCAST, CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK, CAP_IPC_OWNER,
	CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_CHROOT, CAP_SYS_PTRACE, CAP_SYS_PACCT,
	CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_SYS_NICE, CAP_SYS_RESOURCE, CAP_SYS_TIME,
	CAP_SYS_TTY_CONFIG, CAP_MKNOD, CAP_LEASE, CAP_AUDIT_WRITE, CAP_AUDIT_CONTROL,
	CAP_SETFCAP, CAP_MAC_OVERRIDE, CAP_MAC_ADMIN, CAP_SYSLOG, CAP_WAKE_ALARM,
	CAP_BLOCK_SUSPEND, CAP_AUDIT_READ, CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE,
};

struct cap_event {
	pid pid;
	uid uid;
	comm comm;
	enum capability cap;
	bool audit; /* false for checks made with CAP_OPT_NOAUDIT */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct cap_event);
} print_cap_checks SEC(".maps");
EBPFCTL_LOST_COUNTER(print_cap_checks);

struct cap_key {
	enum capability cap;
	comm comm;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct cap_key);
	__type(value, __u64);
} counter_capability_checks SEC(".maps");

static __always_inline bool comm_matches(const char *c)
{
	if (!target_comm[0])
		return true;
	for (int i = 0; i < 16; i++) {
		if (c[i] != target_comm[i])
			return false;
		if (!c[i])
			break;
	}
	return true;
}

SEC("kprobe/cap_capable")
int BPF_KPROBE(capable_check, const struct cred *cred, struct user_namespace *ns, int cap,
	       unsigned int opts)
{
	if (only_cap >= 0 && cap != only_cap)
		return 0;
	struct cap_key k = { .cap = cap };
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	if (!comm_matches(k.comm))
		return 0;
	struct cap_event *e = ebpfctl_reserve(print_cap_checks, struct cap_event);
	if (e) {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		e->uid = bpf_get_current_uid_gid();
		__builtin_memcpy(e->comm, k.comm, sizeof(e->comm));
		e->cap = cap;
		e->audit = !(opts & 2 /* CAP_OPT_NOAUDIT */);
		bpf_ringbuf_submit(e, 0);
	}
	__u64 one = 1, *n = bpf_map_lookup_elem(&counter_capability_checks, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counter_capability_checks, &k, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
