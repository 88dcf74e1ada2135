// First call of each function of one binary, in call order (bench/layout/order.py).
// A uprobe-multi link on every function symbol of FUNCS_BIN (from funcs_target.h, written
// by order.py); the first hit of an address by a process writes one record, later hits
// return at once.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "funcs_target.h"

struct first_call {
	__u64 at;
	__u64 ip;
	__u32 tgid;
};

struct seen_key {
	__u64 ip;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 18);
	__type(key, struct seen_key);
	__type(value, __u8);
} seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
	__type(value, struct first_call);
} calls SEC(".maps.print");

SEC("uprobe.multi/" FUNCS_BIN ":*")
int first_call(struct pt_regs *ctx)
{
	struct seen_key k = {
		.ip = bpf_get_func_ip(ctx),
		.tgid = bpf_get_current_pid_tgid() >> 32,
	};
	__u8 one = 1;
	if (bpf_map_update_elem(&seen, &k, &one, BPF_NOEXIST))
		return 0;
	struct first_call *c = bpf_ringbuf_reserve(&calls, sizeof(*c), 0);
	if (!c)
		return 0;
	c->at = bpf_ktime_get_ns();
	c->ip = k.ip;
	c->tgid = k.tgid;
	bpf_ringbuf_submit(c, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
