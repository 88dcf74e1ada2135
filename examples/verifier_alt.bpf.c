// One program the verifier rejects beside one that is fine (as tcppktlat's raw_tp variant
// fails where its tp_btf variants load): outside --strict the rejected one is explained and
// the object is loaded again without it, so the other runs.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"

const volatile char target_comm[16] = "ebpfctl-valt";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} print_calls SEC(".maps");

SEC("raw_tp/sys_enter")
int broken_alt(void *ctx)
{
	__u32 k = 1;
	__u64 *v = bpf_map_lookup_elem(&print_calls, &k);
	*v += 1; /* no NULL check: the verifier refuses this */
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int good_alt(void *ctx)
{
	char c[16];
	bpf_get_current_comm(c, sizeof(c));
	for (int i = 0; i < 16; i++) {
		if (c[i] != target_comm[i])
			return 0;
		if (!c[i])
			break;
	}
	__u32 k = 2;
	__u64 one = 1, *n = bpf_map_lookup_elem(&print_calls, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&print_calls, &k, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
