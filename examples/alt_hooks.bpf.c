// Two programs for one hook, as libbpf-tools ship them: a tp_btf program and its raw_tp
// fallback for sched_process_exec (libbpf-tools switch one off from user space). `ebpfctl run`
// attaches the first that works and skips the other with a line; `--program` both runs both.
// Each counts the execs of `target_comm` under its own key (1: tp_btf, 2: raw_tp).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ebpfctl.h"

const volatile char target_comm[16] = "ebpfctl-alt";

struct hit {
	__u32 program; /* 1 tp_btf, 2 raw_tp */
	comm comm;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct hit);
	__type(value, __u64);
} print_hits SEC(".maps");

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
	__u64 one = 1, *n = bpf_map_lookup_elem(&print_hits, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&print_hits, &k, &one, BPF_NOEXIST);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	count(1);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(exec_raw, struct task_struct *p)
{
	count(2);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
