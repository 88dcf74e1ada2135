// Histograms both ways and a gauge:
//  - `hist_sleeps`: a ring buffer (name prefix) whose `duration` member is observed;
//  - `sleep_slots` in SEC(".maps.hist"): a hash keyed by log2(µs) slot, counts as values;
//    its unit tag makes the metric `ebpfctl_sleep_slots_seconds` with `le` in seconds;
//  - `last_request` in SEC(".maps.gauge"): the last requested sleep per command.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "ebpfctl.h"

const volatile char target_comm[16] = "ebpfctl-example";

struct sleep_event {
	comm comm;
	duration latency;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct sleep_event);
} hist_sleeps SEC(".maps");
EBPFCTL_LOST_COUNTER(hist_sleeps);

struct slot_key {
	__u32 slot;
	comm comm;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct slot_key);
	__type(value, __u64);
} sleep_slots SEC(".maps.hist") EBPFCTL_UNIT(us) EBPFCTL_HELP("Time in clock_nanosleep");

struct req_key {
	comm comm;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct req_key);
	__type(value, duration);
} last_request SEC(".maps.gauge");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

static __always_inline bool ours(char *c)
{
	bpf_get_current_comm(c, 16);
	for (int i = 0; i < 16; i++) {
		if (c[i] != target_comm[i])
			return false;
		if (!c[i])
			break;
	}
	return true;
}

SEC("tracepoint/syscalls/sys_enter_clock_nanosleep")
int sleep_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct req_key k = {};
	if (!ours(k.comm))
		return 0;
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
	struct __kernel_timespec ts = {};
	bpf_probe_read_user(&ts, sizeof(ts), (void *)ctx->args[2]);
	duration req = ts.tv_sec * 1000000000ull + ts.tv_nsec;
	bpf_map_update_elem(&last_request, &k, &req, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_clock_nanosleep")
int sleep_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 *t0 = bpf_map_lookup_elem(&start, &tid);
	if (!t0)
		return 0;
	__u64 d = bpf_ktime_get_ns() - *t0;
	bpf_map_delete_elem(&start, &tid);

	struct sleep_event *e = ebpfctl_reserve(hist_sleeps, struct sleep_event);
	if (e) {
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		e->latency = d;
		bpf_ringbuf_submit(e, 0);
	}
	struct slot_key k = { .slot = ebpfctl_log2(d / 1000) };
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	__u64 one = 1, *n = bpf_map_lookup_elem(&sleep_slots, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&sleep_slots, &k, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
