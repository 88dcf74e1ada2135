// Benchmark probe: one ring-buffer event per getppid() of the load generator.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"

const volatile __u32 target_tgid = 0;

struct flood_event {
	pid pid;
	pid tid;
	comm comm;
	timestamp ts;
	__u64 seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
	__type(value, struct flood_event);
} print_flood SEC(".maps");
EBPFCTL_LOST_COUNTER(print_flood);

__u64 seq;

SEC("tracepoint/syscalls/sys_enter_getppid")
int flood(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (target_tgid && (id >> 32) != target_tgid)
		return 0;
	struct flood_event *e = ebpfctl_reserve(print_flood, struct flood_event);
	if (!e)
		return 0;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->ts = bpf_ktime_get_ns();
	e->seq = __sync_fetch_and_add(&seq, 1);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
