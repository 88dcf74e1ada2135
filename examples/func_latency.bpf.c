// Bumblebee's funclatency on kprobes: how long a kernel function takes, here do_nanosleep()
// (the sleeping part of nanosleep and clock_nanosleep). A kprobe stamps the entry per thread,
// a kretprobe sends the time spent to a `hist_` ring buffer whose `duration` member the
// runner observes: ebpfctl_function_latency_seconds{comm="..."} with log2 buckets in seconds.
//
// --param target_comm=NAME keeps one command. Needs kprobes (CONFIG_KPROBES).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ebpfctl.h"

const volatile char target_comm[16] = "";

struct call {
	comm comm;
	duration latency;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct call);
} hist_function_latency SEC(".maps");
EBPFCTL_LOST_COUNTER(hist_function_latency);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} entered SEC(".maps");

static __always_inline bool comm_matches(void)
{
	char c[16];
	if (!target_comm[0])
		return true;
	bpf_get_current_comm(c, sizeof(c));
	for (int i = 0; i < 16; i++) {
		if (c[i] != target_comm[i])
			return false;
		if (!c[i])
			break;
	}
	return true;
}

SEC("kprobe/do_nanosleep")
int BPF_KPROBE(latency_enter)
{
	if (!comm_matches())
		return 0;
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&entered, &tid, &now, BPF_ANY);
	return 0;
}

SEC("kretprobe/do_nanosleep")
int BPF_KRETPROBE(latency_exit)
{
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 *t0 = bpf_map_lookup_elem(&entered, &tid);
	if (!t0)
		return 0;
	__u64 d = bpf_ktime_get_ns() - *t0;
	bpf_map_delete_elem(&entered, &tid);
	struct call *c = ebpfctl_reserve(hist_function_latency, struct call);
	if (c) {
		bpf_get_current_comm(c->comm, sizeof(c->comm));
		c->latency = d;
		bpf_ringbuf_submit(c, 0);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
