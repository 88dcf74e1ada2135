// An fentry program and its kprobe fallback for one kernel function, do_nanosleep(), as
// libbpf-tools ship them (their loaders turn one off from user space). `ebpfctl run` attaches
// the first that works: the fentry where the kernel has BPF trampolines (the kprobe is skipped
// with a line), else the kprobe where it has kprobes, else neither, each with its reason.
// Each counts the sleeps of `target_comm` under its own key (1: fentry, 2: kprobe).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ebpfctl.h"

const volatile char target_comm[16] = "ebpfctl-altf";

struct hit {
	__u32 program; /* 1 fentry, 2 kprobe */
	comm comm;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct hit);
	__type(value, __u64);
} print_sleeps SEC(".maps");

static __always_inline void count(__u32 program)
{
	struct hit k = { .program = program };
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	for (int i = 0; i < 16; i++) {
		if (k.comm[i] != target_comm[i])
			return;
		if (!k.comm[i])
			break;
	}
	__u64 one = 1, *n = bpf_map_lookup_elem(&print_sleeps, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&print_sleeps, &k, &one, BPF_NOEXIST);
}

SEC("fentry/do_nanosleep")
int BPF_PROG(sleep_fentry)
{
	count(1);
	return 0;
}

SEC("kprobe/do_nanosleep")
int BPF_KPROBE(sleep_kprobe)
{
	count(2);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
