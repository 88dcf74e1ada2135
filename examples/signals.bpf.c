// A perf event array with `print` (section convention), and a ring buffer `counter`: +1 per
// event with the event's members as labels.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"

struct sig_event {
	pid pid;
	signal sig;   /* the bare typedef names; sig_count below uses the _t spellings */
	errno result;
	comm comm;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__type(value, struct sig_event);
} signals SEC(".maps.print");

struct sig_count {
	signal_t sig;
	comm comm;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct sig_count);
} signal_counts SEC(".maps.counter");
EBPFCTL_LOST_COUNTER(signal_counts);

SEC("tracepoint/signal/signal_generate")
int on_signal(struct trace_event_raw_signal_generate *ctx)
{
	struct sig_event e = {};
	e.pid = ctx->pid;
	e.sig = ctx->sig;
	e.result = -ctx->result;
	bpf_probe_read_kernel(e.comm, sizeof(e.comm), ctx->comm);
	bpf_perf_event_output(ctx, &signals, BPF_F_CURRENT_CPU, &e, sizeof(e));

	struct sig_count *c = ebpfctl_reserve(signal_counts, struct sig_count);
	if (c) {
		c->sig = ctx->sig;
		bpf_probe_read_kernel(c->comm, sizeof(c->comm), ctx->comm);
		bpf_ringbuf_submit(c, 0);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
