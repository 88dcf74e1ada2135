// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * opensnoop.bpf.c - open, openat and openat2.
 *
 *   osnp_enter_open / _openat / _openat2   keep the arguments in the thread's slot of
 *                                          `inflight` (filters first)
 *   osnp_exit_open  / _openat / _openat2   read the path now (the kernel has faulted it in
 *                                          by then, so a page-cold path is readable) and
 *                                          send one record sized to the path
 *
 * Records go out with bpf_ringbuf_output() at their used length; user space is woken only
 * once a CPU has sent `wakeup_bytes` since its last wake-up, and otherwise polls with a short
 * timeout. One clock read per call: the record's time is the call's return.
 *
 * No CO-RE: the syscall tracepoints' records and struct open_how are fixed layouts (the
 * tracepoint ABI, UAPI), declared here without preserve_access_index, so libbpf needs no
 * kernel BTF to load this probe and skips parsing vmlinux's (5.5 MB on 6.18: ~4 ms of
 * start-up and its index on the heap).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ebpfctl.h"
#include "opensnoop.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* include/trace/events/syscalls.h: the common header (8 bytes), the syscall number, then
 * the arguments or the return value. */
struct osnp_sys_enter {
	__u64 common;
	long id;
	unsigned long args[6];
};

struct osnp_sys_exit {
	__u64 common;
	long id;
	long ret;
};

/* include/uapi/linux/openat2.h */
struct osnp_open_how {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

/* Settings, written into .rodata by user space before load. */
const volatile __u32 osnp_filters = 0;  /* OSNP_FILTER_* */
const volatile __u32 osnp_pid = 0;
const volatile __u32 osnp_tid = 0;
const volatile __u32 osnp_uid = 0;
const volatile __u32 osnp_wakeup_bytes = 262144; /* wake the reader at this backlog; 0: always */

/* Lost records: failed ring buffer writes and a full in-flight map
 * (ebpfctl_core::consume::LossSource::BssCounter). */
EBPFCTL_LOST_COUNTER(events);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 0); /* sized by user space */
} events SEC(".maps");

/* The call in flight, per thread. A thread's slot stays and is rewritten in place by its next
 * call, so a busy thread costs no element allocation or free per call; idle threads' slots
 * are evicted (LRU). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct osnp_args);
} inflight SEC(".maps");

/* Bytes sent by this CPU since it last woke the reader. Kept per CPU rather than asking the
 * ring buffer (bpf_ringbuf_query), which reads the reader's position: a cache line the
 * reader writes after every record. */
EBPFCTL_BATCHED_WAKEUPS(unwoken);

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct osnp_event);
} scratch SEC(".maps");

/* --container / --pod / --namespace: a verdict per cgroup id, written by user space. */
EBPFCTL_CGROUP_FILTER;

static __always_inline int enter_open(__u32 syscall, __s32 dfd, const char *path, __u64 flags,
				      __u64 mode)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct osnp_args *a;

	if ((osnp_filters & OSNP_FILTER_PID) && (id >> 32) != osnp_pid)
		return 0;
	if ((osnp_filters & OSNP_FILTER_TID) && tid != osnp_tid)
		return 0;
	if ((osnp_filters & OSNP_FILTER_UID) &&
	    (__u32)bpf_get_current_uid_gid() != osnp_uid)
		return 0;
	if ((osnp_filters & OSNP_FILTER_CONTAINER) &&
	    !ebpfctl_cgroup_passes(bpf_get_current_cgroup_id()))
		return 0;
	a = bpf_map_lookup_elem(&inflight, &tid);
	if (!a) {
		struct osnp_args fresh = {};

		if (bpf_map_update_elem(&inflight, &tid, &fresh, BPF_NOEXIST) &&
		    bpf_map_update_elem(&inflight, &tid, &fresh, BPF_ANY)) {
			__sync_fetch_and_add(&ebpfctl_lost_events, 1);
			return 0;
		}
		a = bpf_map_lookup_elem(&inflight, &tid);
		if (!a) {
			__sync_fetch_and_add(&ebpfctl_lost_events, 1);
			return 0;
		}
	}
	a->path = path;
	a->flags = flags;
	a->mode = mode;
	a->dfd = dfd;
	a->syscall = syscall;
	a->active = 1;
	return 0;
}

/* Wake the reader only once `osnp_wakeup_bytes` went out from this CPU without a wake-up. */
#define wake_flags(size) ebpfctl_wakeup_flags(&unwoken, osnp_wakeup_bytes, size)

static __always_inline int exit_open(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, zero = 0, size;
	struct osnp_args *a;
	struct osnp_event *e;
	long n;

	a = bpf_map_lookup_elem(&inflight, &tid);
	if (!a || !a->active)
		return 0;
	a->active = 0;
	if ((osnp_filters & OSNP_FILTER_FAILED) && ret >= 0)
		return 0;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->syscall = a->syscall;
	e->time_ns = bpf_ktime_get_ns();
	e->flags = (__u32)a->flags;
	e->mode = (__u16)a->mode;
	e->ret = (__s32)ret;
	e->pid = id >> 32;
	e->tid = tid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->dfd = a->dfd;
	e->path_trunc = 0;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	n = bpf_probe_read_user_str(e->path, OSNP_PATH_CAP, a->path);
	if (n <= 0) {
		e->path[0] = 0;
		n = 1;
		e->path_trunc = 1;
	} else if (n == OSNP_PATH_CAP) {
		e->path_trunc = 1;
	}
	e->path_len = n;
	size = offsetof(struct osnp_event, path) + (__u32)n;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, wake_flags(size)))
		__sync_fetch_and_add(&ebpfctl_lost_events, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int osnp_enter_open(struct osnp_sys_enter *ctx)
{
	return enter_open(OSNP_OPEN, -100, (const char *)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int osnp_enter_openat(struct osnp_sys_enter *ctx)
{
	return enter_open(OSNP_OPENAT, (__s32)ctx->args[0], (const char *)ctx->args[1],
			  ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int osnp_enter_openat2(struct osnp_sys_enter *ctx)
{
	struct osnp_open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return enter_open(OSNP_OPENAT2, (__s32)ctx->args[0], (const char *)ctx->args[1],
			  how.flags, how.mode);
}

SEC("tracepoint/syscalls/sys_exit_open")
int osnp_exit_open(struct osnp_sys_exit *ctx)
{
	return exit_open(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int osnp_exit_openat(struct osnp_sys_exit *ctx)
{
	return exit_open(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int osnp_exit_openat2(struct osnp_sys_exit *ctx)
{
	return exit_open(ctx->ret);
}
