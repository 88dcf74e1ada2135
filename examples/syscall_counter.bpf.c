// Bumblebee's convention (name prefixes) and parameters: a per-CPU counter of syscalls per
// (syscall, comm), summed over CPUs by the runner; a `print_` hash snapshotted every interval.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"

/* ebpfctl run ... --param target_comm=NAME --param min_nr=0 */
const volatile char target_comm[16] = "";
const volatile __s64 min_nr = 0;

struct sc_key {
	syscall_t nr;
	comm comm;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 0); /* 0: the runner's default size */
	__type(key, struct sc_key);
	__type(value, __u64);
} counter_syscalls SEC(".maps");

struct last {
	syscall_t nr;
	timestamp at;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, pid);
	__type(value, struct last);
} print_last_syscall SEC(".maps");

static __always_inline bool comm_matches(const char *c)
{
	if (!target_comm[0])
		return true;
	for (int i = 0; i < 16; i++) {
		if (c[i] != target_comm[i])
			return false;
		if (!c[i])
			return true;
	}
	return true;
}

SEC("raw_tracepoint/sys_enter")
int count_syscalls(struct bpf_raw_tracepoint_args *ctx)
{
	struct sc_key k = {};
	k.nr = ctx->args[1];
	if (k.nr < min_nr)
		return 0;
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	if (!comm_matches(k.comm))
		return 0;
	__u64 one = 1, *n = bpf_map_lookup_elem(&counter_syscalls, &k);
	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&counter_syscalls, &k, &one, BPF_NOEXIST);

	pid p = bpf_get_current_pid_tgid() >> 32;
	struct last l = { .nr = k.nr, .at = bpf_ktime_get_ns() };
	bpf_map_update_elem(&print_last_syscall, &p, &l, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
