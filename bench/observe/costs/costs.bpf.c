// SPDX-License-Identifier: GPL-2.0
// What the operations observe's probes are made of cost here: each program runs one kind of
// operation four times per hit of the same uprobe (bench/observe/costs/run.sh compares their
// run times with the kernel's BPF stats; `empty` is the base every program pays).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[4096]);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} word SEC(".maps");

#define PROBE SEC("uprobe/TARGET:hit")

/* Four bpf_probe_read_user of SIZE bytes of the target's buffer. */
#define READS(name, size)                                                             \
	PROBE int name(struct pt_regs *ctx)                                           \
	{                                                                             \
		__u32 zero = 0;                                                       \
		char *s = bpf_map_lookup_elem(&scratch, &zero);                       \
		const char *p = (const char *)PT_REGS_PARM1(ctx);                     \
		if (!s)                                                               \
			return 0;                                                     \
		_Pragma("unroll") for (int i = 0; i < 4; i++)                        \
			bpf_probe_read_user(s + i * 256, size, p + i * 256);          \
		return 0;                                                             \
	}

PROBE int empty(struct pt_regs *ctx)
{
	return 0;
}

READS(read_16, 16)
READS(read_128, 128)
READS(read_224, 224)
READS(read_248, 248)
READS(read_256, 256)

PROBE int ktime(struct pt_regs *ctx)
{
	__u64 t = 0;
#pragma unroll
	for (int i = 0; i < 4; i++)
		t += bpf_ktime_get_ns();
	return t & 1;
}

PROBE int comm(struct pt_regs *ctx)
{
	char c[16];
#pragma unroll
	for (int i = 0; i < 4; i++)
		bpf_get_current_comm(c, sizeof(c));
	return c[0];
}

PROBE int ring_reserve(struct pt_regs *ctx)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		char *e = bpf_ringbuf_reserve(&ring, 600, 0);
		if (e) {
			e[0] = 1;
			bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		}
	}
	return 0;
}

PROBE int cmpxchg(struct pt_regs *ctx)
{
	__u32 zero = 0;
	__u64 *w = bpf_map_lookup_elem(&word, &zero);
	if (!w)
		return 0;
#pragma unroll
	for (int i = 0; i < 4; i++)
		__sync_val_compare_and_swap(w, i, i + 1);
	*w = 0;
	return 0;
}
