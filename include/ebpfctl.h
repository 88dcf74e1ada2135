/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ebpfctl.h - types and helpers for probes run by `ebpfctl run`.
 *
 * Include after vmlinux.h (or linux/types.h) and bpf/bpf_helpers.h.
 * The runner gives meaning to the typedef *names* below when it decodes
 * map keys and values through BTF; see docs/conventions.md.
 */
#ifndef __EBPFCTL_H__
#define __EBPFCTL_H__

/* ---- typedefs the decoder understands ------------------------------------ */

/* IPv4 address in network byte order: printed "10.1.2.3". */
typedef __u32 ebpfctl_ipv4_addr;
/* IPv6 address, 16 bytes in network order: printed "2001:db8::1". */
typedef __u8 ebpfctl_ipv6_addr[16];
/* A span of time in nanoseconds: JSON keeps the integer, tables print "1.3ms",
 * histograms observe it in seconds. */
typedef __u64 ebpfctl_duration;
/* bpf_ktime_get_ns() value: printed as an RFC 3339 wall-clock time. */
typedef __u64 ebpfctl_timestamp;
/* An errno value, positive or negative: printed by name ("ENOENT"). */
typedef __s32 ebpfctl_errno;
/* A signal number: printed by name ("SIGKILL"). */
typedef __s32 ebpfctl_signal;
/* A syscall number of this architecture: printed by name ("openat"). */
typedef __s64 ebpfctl_syscall;
/* User and group ids, process ids: printed as numbers, with a user/group name in tables. */
typedef __u32 ebpfctl_uid;
typedef __u32 ebpfctl_gid;
typedef __u32 ebpfctl_pid;
/* A stack id from bpf_get_stackid(ctx, &stack_map, 0) (kernel) or with BPF_F_USER_STACK
 * (user), into the object's BPF_MAP_TYPE_STACK_TRACE map: printed as symbolised frames
 * ([{addr, sym, offset, module}, ...], innermost first); negative (no stack) as []. */
typedef __s32 ebpfctl_kernel_stack;
typedef __s32 ebpfctl_user_stack;
/* A task command name (TASK_COMM_LEN). */
typedef char ebpfctl_comm[16];
/* A cgroup v2 id (bpf_get_current_cgroup_id()): printed as the number; with
 * `ebpfctl run --containers` a `container` member follows it (docs/containers.md). */
typedef __u64 ebpfctl_cgroup_id;
/* A transport endpoint: address, port, protocol. Printed "10.0.0.1:80/tcp". */
typedef struct {
	__u8 addr[16];  /* IPv4 in the first 4 bytes when family == 2 (AF_INET) */
	__u16 port;     /* host byte order */
	__u8 family;    /* 2 = AF_INET, 10 = AF_INET6 */
	__u8 proto;     /* IPPROTO_TCP = 6, IPPROTO_UDP = 17, ... */
} ebpfctl_l4_endpoint;

#ifndef EBPFCTL_NO_SHORT_NAMES
typedef ebpfctl_ipv4_addr ipv4_addr;
typedef ebpfctl_ipv6_addr ipv6_addr;
typedef ebpfctl_duration duration;
typedef ebpfctl_timestamp timestamp;
typedef ebpfctl_errno errno_t;
typedef ebpfctl_signal signal_t;
typedef ebpfctl_syscall syscall_t;
#ifndef EBPFCTL_NO_BARE_NAMES /* the bare names clash with libc when shared with user space */
typedef ebpfctl_errno errno;
typedef ebpfctl_signal signal;
typedef ebpfctl_syscall syscall;
#endif
typedef ebpfctl_uid uid;
typedef ebpfctl_gid gid;
typedef ebpfctl_pid pid;
typedef ebpfctl_comm comm;
typedef ebpfctl_cgroup_id cgroup_id;
typedef ebpfctl_kernel_stack kernel_stack;
typedef ebpfctl_user_stack user_stack;
typedef ebpfctl_l4_endpoint l4_endpoint;
#endif

/* ---- runner settings -------------------------------------------------------- */

/* A parameter settable with `ebpfctl run --param NAME=VALUE`. */
#define EBPFCTL_PARAM(type, name, default_value) const volatile type name = default_value

/* ---- what a map's numbers mean ------------------------------------------------ *
 * BTF declaration tags on the map variable, read from the object (docs/conventions.md):
 *
 *   struct { ... } hist_latency SEC(".maps")
 *           EBPFCTL_UNIT(us) EBPFCTL_HELP("Time from wake-up to running");
 *
 * EBPFCTL_UNIT(u): ns, us, ms, s, bytes, KiB, MiB, GiB, kB, MB, GB or count. Metrics are
 *   converted to seconds or bytes and named so (`_seconds`, `_bytes`); JSON records carry
 *   "_unit"; table columns show it. Members typed `duration` are nanoseconds regardless.
 * EBPFCTL_HELP("text"): the `# HELP` line of the map's metrics (one line).
 * EBPFCTL_BUCKETS("spec"): `log2` (the default) or `linear:WIDTH` for the slots of a
 *   slot-keyed hist map; ascending bounds `1,5,10` (in the map's unit) for a ring-buffer hist.
 * Kernels without BTF decl tags (before 5.16) load such objects too: libbpf removes the tags. */
#define EBPFCTL_UNIT(u) __attribute__((btf_decl_tag("ebpfctl:unit=" #u)))
#define EBPFCTL_HELP(text) __attribute__((btf_decl_tag("ebpfctl:help=" text)))
#define EBPFCTL_BUCKETS(spec) __attribute__((btf_decl_tag("ebpfctl:buckets=" spec)))

/* ---- lost-event accounting for ring buffers ---------------------------------- *
 * The kernel counts nothing when bpf_ringbuf_reserve() fails. Declare a counter
 * next to the ring buffer and reserve through these macros; the runner reports
 * the counter as lost events of that map in every output mode.
 *
 *   struct { ... } events SEC(".maps.print");
 *   EBPFCTL_LOST_COUNTER(events);
 *   struct event *e = ebpfctl_reserve(events, struct event);
 */
#define EBPFCTL_LOST_COUNTER(map) __u64 ebpfctl_lost_##map SEC(".bss")

#define ebpfctl_reserve_bytes(map, size)                                      \
	({                                                                    \
		void *__ebpfctl_e = bpf_ringbuf_reserve(&map, size, 0);       \
		if (!__ebpfctl_e)                                             \
			__sync_fetch_and_add(&ebpfctl_lost_##map, 1);         \
		__ebpfctl_e;                                                  \
	})
#define ebpfctl_reserve(map, type) ((type *)ebpfctl_reserve_bytes(map, sizeof(type)))

#define ebpfctl_output(map, data, size)                                       \
	({                                                                    \
		long __ebpfctl_r = bpf_ringbuf_output(&map, data, size, 0);   \
		if (__ebpfctl_r)                                              \
			__sync_fetch_and_add(&ebpfctl_lost_##map, 1);         \
		__ebpfctl_r;                                                  \
	})

/* ---- batched wake-ups ----------------------------------------------------------- *
 * Waking user space for every ring-buffer record costs more than most probes do. Declare
 * a counter with EBPFCTL_BATCHED_WAKEUPS(name) and submit with
 *   bpf_ringbuf_submit(e, ebpfctl_wakeup_flags(&name, threshold, size));
 * the reader is woken once `threshold` bytes went out from this CPU since its last
 * wake-up (0: the kernel's default wake-ups); in between it finds records when it polls.
 * The count is kept per CPU, not read from the ring (bpf_ringbuf_query reads the reader's
 * position, a cache line the reader rewrites after every record). */
#define EBPFCTL_BATCHED_WAKEUPS(name)                                         \
	struct {                                                              \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                      \
		__uint(max_entries, 1);                                       \
		__type(key, __u32);                                           \
		__type(value, __u64);                                         \
	} name SEC(".maps")

#ifdef __bpf__ /* BPF-side only: the header is shared with user space for its typedefs */
static __always_inline __u64 ebpfctl_wakeup_flags(void *counter, __u64 threshold, __u32 size)
{
	__u32 zero = 0;
	__u64 *n;

	if (!threshold)
		return 0;
	n = bpf_map_lookup_elem(counter, &zero);
	if (!n)
		return 0;
	*n += size;
	if (*n < threshold)
		return BPF_RB_NO_WAKEUP;
	*n = 0;
	return BPF_RB_FORCE_WAKEUP;
}
#endif

/* ---- container filters ------------------------------------------------------ *
 * `--container NAME|ID`, `--pod NAME`, `--namespace NS` applied in the kernel: user space
 * keeps a verdict per cgroup id (1: show, 0: drop) in this map. A cgroup without a verdict
 * takes the verdict stored under key 0 (no cgroup has id 0); without that either, it passes
 * and user space decides (and writes its verdict) when it sees its first event. The tools
 * decide per event; `ebpfctl run` stores 0 under key 0 and writes 1 for the cgroups of the
 * matching containers (re-checked every second: docs/containers.md).
 *
 *   EBPFCTL_CGROUP_FILTER;
 *   if (!ebpfctl_cgroup_passes(bpf_get_current_cgroup_id())) return 0;
 */
#define EBPFCTL_CGROUP_FILTER_MAX 16384
#define EBPFCTL_CGROUP_FILTER                                                 \
	struct {                                                              \
		__uint(type, BPF_MAP_TYPE_HASH);                              \
		__uint(max_entries, EBPFCTL_CGROUP_FILTER_MAX);               \
		__type(key, __u64);                                           \
		__type(value, __u8);                                          \
	} ebpfctl_cgroup_filter SEC(".maps")

#ifdef __bpf__
#define ebpfctl_cgroup_passes(cgid)                                           \
	({                                                                    \
		__u64 __ebpfctl_cg = (cgid);                                  \
		__u8 *__ebpfctl_v =                                           \
			bpf_map_lookup_elem(&ebpfctl_cgroup_filter, &__ebpfctl_cg); \
		if (!__ebpfctl_v) {                                           \
			__ebpfctl_cg = 0;                                     \
			__ebpfctl_v = bpf_map_lookup_elem(&ebpfctl_cgroup_filter, \
							  &__ebpfctl_cg);     \
		}                                                             \
		!__ebpfctl_v || *__ebpfctl_v;                                 \
	})
#endif

/* ---- builtins probes call by their libc names -------------------------------- *
 * BPF has no libc: clang turns these into inline copies, but only under their builtin
 * names; bumblebee's probes call memcpy undeclared (an error since C99). */
#ifdef __bpf__
#ifndef memcpy
#define memcpy(dst, src, n) __builtin_memcpy((dst), (src), (n))
#endif
#ifndef memset
#define memset(dst, c, n) __builtin_memset((dst), (c), (n))
#endif
#endif

/* ---- histogram slots ---------------------------------------------------------- */

/* floor(log2(v)) for v > 0, 0 for 0: the slot of a log2 histogram map. */
static __always_inline __u32 ebpfctl_log2(__u64 v)
{
	__u32 r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

#endif /* __EBPFCTL_H__ */
