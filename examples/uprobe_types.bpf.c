// A uprobe on a program of ours (examples/target): copies a struct with every kind of member
// into a ring buffer. Convention: name prefix `print_`. The section names the binary by a bare
// name, which libbpf looks up on $PATH.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ebpfctl.h"
#include "types.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct example_sample);
} print_samples SEC(".maps");
EBPFCTL_LOST_COUNTER(print_samples);

SEC("uprobe/ebpfctl-example-target:ebpfctl_example_probe")
int BPF_UPROBE(on_sample, const struct example_sample *s)
{
	struct example_sample *e = ebpfctl_reserve(print_samples, struct example_sample);
	if (!e)
		return 0;
	if (bpf_probe_read_user(e, sizeof(*e), s)) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
