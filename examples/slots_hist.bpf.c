// The histogram shape of libbpf-tools (runqlat, biolatency, ...): a hash of `struct hist`
// values with a `slots[]` array of log2 buckets and a comm, no keyword on any map. Without
// --all-maps the run says it prints nothing; with it the map is a histogram in the table
// and a Prometheus histogram. Each getppid of `target_comm` adds 42 (slot 5: 32..63).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"

#define MAX_SLOTS 26

const volatile char target_comm[16] = "ebpfctl-slots";

struct hist {
	__u32 slots[MAX_SLOTS];
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

static struct hist zero;

SEC("tracepoint/syscalls/sys_enter_getppid")
int slots_getppid(void *ctx)
{
	char c[16];
	bpf_get_current_comm(c, sizeof(c));
	for (int i = 0; i < 16; i++) {
		if (c[i] != target_comm[i])
			return 0;
		if (!c[i])
			break;
	}
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct hist *h = bpf_map_lookup_elem(&hists, &pid);
	if (!h) {
		bpf_map_update_elem(&hists, &pid, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &pid);
		if (!h)
			return 0;
		__builtin_memcpy(h->comm, c, sizeof(h->comm));
	}
	__u32 slot = ebpfctl_log2(42);
	if (slot < MAX_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
