// Stacks, libbpf-tools style: a stack-trace map whose value size user space was meant to set
// (left at 0: the runner gives it 127 frames), and a count per (comm, kernel stack, user
// stack) of getppid calls by `target_comm`. The key members typed kernel_stack / user_stack
// print as symbolised frames; `-o folded` prints the map as folded stacks.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"

const volatile char target_comm[16] = "ebpfctl-stk";

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(max_entries, 1024);
} stackmap SEC(".maps");

struct stack_key {
	comm comm;
	__u32 tgid;
	kernel_stack kstack;
	user_stack ustack;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct stack_key);
	__type(value, __u64);
} print_calls SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct stack_key k = {};
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	for (int i = 0; i < 16; i++) {
		if (k.comm[i] != target_comm[i])
			return 0;
		if (!k.comm[i])
			break;
	}
	k.tgid = bpf_get_current_pid_tgid() >> 32;
	k.kstack = bpf_get_stackid(ctx, &stackmap, 0);
	k.ustack = bpf_get_stackid(ctx, &stackmap, BPF_F_USER_STACK);
	__u64 one = 1, *n = bpf_map_lookup_elem(&print_calls, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&print_calls, &k, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
