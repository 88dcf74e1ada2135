// Written the way bumblebee's examples are: `solo_types.h`, memcpy called undeclared, a lone
// `char` member, and a `hist_` ring buffer whose member `le` is observed with bumblebee's
// default buckets (0, 10, 20, 50, ..., 5000). Each getppid of `target_comm` sends one event
// to each ring buffer (le = 15).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "solo_types.h"

const volatile char target_comm[16] = "ebpfctl-bee";

struct call {
	char state;
	char comm[16];
	u32 pid;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct call);
} print_calls SEC(".maps");

struct latency {
	char comm[16];
	u64 le;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct latency);
} hist_latency SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int bee_getppid(void *ctx)
{
	char c[16];
	bpf_get_current_comm(c, sizeof(c));
	for (int i = 0; i < 16; i++) {
		if (c[i] != target_comm[i])
			return 0;
		if (!c[i])
			break;
	}
	struct call *e = bpf_ringbuf_reserve(&print_calls, sizeof(*e), 0);
	if (e) {
		e->state = 'R';
		memcpy(e->comm, c, sizeof(e->comm));
		e->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_ringbuf_submit(e, 0);
	}
	struct latency *l = bpf_ringbuf_reserve(&hist_latency, sizeof(*l), 0);
	if (l) {
		memcpy(l->comm, c, sizeof(l->comm));
		l->le = 15;
		bpf_ringbuf_submit(l, 0);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
