// A USDT probe in a program of ours (target/usdt_target.c, built with sys/sdt.h): the section
// names provider and probe but no binary, which `--target PATH` (or `--pid PID`) supplies.
// libbpf's USDT support reads the probe's arguments.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>
#include "ebpfctl.h"

struct tick {
	pid pid;
	__s64 i;
	__s64 x;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct tick);
} print_ticks SEC(".maps");

SEC("usdt/ebpfctl:tick")
int BPF_USDT(on_tick, long i, long x)
{
	struct tick *e = bpf_ringbuf_reserve(&print_ticks, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->i = i;
	e->x = x;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
