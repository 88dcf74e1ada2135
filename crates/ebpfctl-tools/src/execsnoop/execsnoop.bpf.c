// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * execsnoop.bpf.c - process execution: every execve/execveat (failed or not) and the exit of
 * every process.
 *
 *   esnp_enter_exec / esnp_enter_execat   sys_enter_execve(at): filters, then the caller's
 *                                         path and argv *pointers* are kept in `inflight`,
 *                                         keyed by thread group. Nothing is read yet: argv
 *                                         strings in a file-backed page (a literal in the
 *                                         caller's binary) are often not mapped in a fresh
 *                                         fork until the kernel itself copies them.
 *   esnp_exec                             sched_process_exec: the exec succeeded. The path
 *                                         comes from the tracepoint, the arguments from the
 *                                         new image's stack (argv[] right above argc at
 *                                         mm->start_stack, strings just written by the
 *                                         kernel), the executable resolved from mm->exe_file.
 *                                         One record is sent and the entry removed.
 *   esnp_exit_exec / esnp_exit_execat     sys_exit_execve(at) with an entry left: the exec
 *                                         failed; the old image's path and argv (faulted in
 *                                         by the kernel's copy) are read now. A failed exec
 *                                         thus never leaves state for a later one.
 *   esnp_proc_exit                        sched_process_exit of the thread that ends the
 *                                         thread group: one record per process (with uid,
 *                                         parent or cgroup filters, only for processes in
 *                                         `tracked`: shown by an exec or the snapshot).
 *
 * Records are built in a per-CPU scratch and written with bpf_ringbuf_output() at their
 * used length. User space is not woken per record: only once a CPU has sent `wakeup_bytes`
 * since its last wake-up; otherwise it polls with a short timeout.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpfctl.h"
#include "execsnoop.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Settings, written into .rodata by user space before load. */
const volatile __u32 esnp_filters = 0;      /* ESNP_FILTER_* */
const volatile __u32 esnp_uid = 0;
const volatile __u32 esnp_ppid = 0;
const volatile __u32 esnp_max_args = 20;    /* 1 ..= ESNP_MAX_ARGS_CAP */
const volatile __u32 esnp_arg_len = 128;    /* bytes kept per argument */
const volatile __u32 esnp_wakeup_bytes = 65536; /* wake the reader at this backlog; 0: always */
const volatile __u32 esnp_exits = 1;        /* send process exits */

/* Lost records: failed ring buffer writes and a full in-flight map
 * (ebpfctl_core::consume::LossSource::BssCounter). */
EBPFCTL_LOST_COUNTER(events);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 0); /* sized by user space */
} events SEC(".maps");

/* What sys_enter_execve(at) saw, until the exec succeeds or fails. */
struct inflight_exec {
	const char *filename;
	const char *const *argv;
	__u64 enter_ns;
	__u32 tid;
	__u8 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct inflight_exec);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct esnp_exec);
} scratch SEC(".maps");

/* With uid, parent or cgroup filters: the processes shown (by exec here, by the snapshot from
 * user space), so that only their exits are sent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} tracked SEC(".maps");

#define ESNP_KERNEL_FILTERS                                                   \
	(ESNP_FILTER_UID | ESNP_FILTER_PPID | ESNP_FILTER_CGROUP | ESNP_FILTER_CONTAINER)

/* --container / --pod / --namespace: a verdict per cgroup id, written by user space. */
EBPFCTL_CGROUP_FILTER;

/* --cgroup: slot 0 holds the cgroup; tasks in it or below pass. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

/* Bytes sent by this CPU since it last woke the reader. Kept per CPU rather than asking the
 * ring buffer (bpf_ringbuf_query), which reads the reader's position: a cache line the
 * reader writes after every record. */
EBPFCTL_BATCHED_WAKEUPS(unwoken);

/* Wake the reader only once `esnp_wakeup_bytes` went out from this CPU without a wake-up. */
#define wake_flags(size) ebpfctl_wakeup_flags(&unwoken, esnp_wakeup_bytes, size)

static __always_inline bool cgroup_passes(void)
{
	if (!(esnp_filters & ESNP_FILTER_CGROUP))
		return true;
	return bpf_current_task_under_cgroup(&cgroup_filter, 0) == 1;
}

struct args_walk {
	struct esnp_exec *e;
	const char *const *argv;
	__u32 off;      /* next free byte of data */
	__u32 len;      /* bytes read per argument, its NUL included */
	__u32 max_args;
	bool end;       /* argv's NULL was reached */
};

/* Copies argv[index]. bpf_loop callback: verified once, whatever the argument count. */
static long arg_step(__u64 index, void *ctx)
{
	struct args_walk *w = ctx;
	struct esnp_exec *e = w->e;
	const char *arg = NULL;
	__u32 pos, len;
	long n;

	if (!e)
		return 1;
	if (bpf_probe_read_user(&arg, sizeof(arg), &w->argv[index])) {
		/* The argv array itself is not readable (a page not faulted in yet): flag it. */
		e->flags |= ESNP_F_ARGS_TRUNC;
		w->end = true;
		return 1;
	}
	if (!arg) {
		w->end = true;
		return 1;
	}
	if (index >= w->max_args || w->off > ESNP_ARGS_REGION - ESNP_ARG_LEN_CAP) {
		e->flags |= ESNP_F_ARGS_TRUNC;
		w->end = true;
		return 1;
	}
	/* The bound the verifier needs, on the register used: pos < ESNP_ARGS_REGION, and data
	 * has ESNP_ARG_LEN_CAP bytes of room past it. */
	pos = w->off;
	asm volatile("%0 &= 0x3fff" : "+r"(pos));
	len = w->len;
	if (len > ESNP_ARG_LEN_CAP)
		len = ESNP_ARG_LEN_CAP;
	n = bpf_probe_read_user_str(&e->data[pos], len, arg);
	if (n <= 0) {
		/* Unreadable: what was read is kept, the list is flagged incomplete. */
		e->flags |= ESNP_F_ARGS_TRUNC;
		w->end = true;
		return 1;
	}
	if (n == w->len) {
		char next = 0;

		/* Exactly arg_len characters, or more? Look at the next byte. */
		bpf_probe_read_user(&next, 1, arg + w->len - 1);
		if (next)
			e->flags |= ESNP_F_ARG_TRUNC;
	}
	w->off += n;
	e->argc++;
	return 0;
}

static __always_inline int enter_exec(const char *filename, const char *const *argv, __u8 flags)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct task_struct *task;
	struct inflight_exec in = {};

	if ((esnp_filters & ESNP_FILTER_UID) && (__u32)bpf_get_current_uid_gid() != esnp_uid)
		return 0;
	if (esnp_filters & ESNP_FILTER_PPID) {
		task = (struct task_struct *)bpf_get_current_task();
		if (BPF_CORE_READ(task, real_parent, tgid) != esnp_ppid)
			return 0;
	}
	if (!cgroup_passes())
		return 0;
	if ((esnp_filters & ESNP_FILTER_CONTAINER) &&
	    !ebpfctl_cgroup_passes(bpf_get_current_cgroup_id()))
		return 0;
	in.filename = filename;
	in.argv = argv;
	in.enter_ns = bpf_ktime_get_ns();
	in.tid = (__u32)id;
	in.flags = flags;
	if (bpf_map_update_elem(&inflight, &tgid, &in, BPF_ANY))
		__sync_fetch_and_add(&ebpfctl_lost_events, 1);
	return 0;
}

/* Starts a record in the per-CPU scratch: who, when, the arguments from `argv`. */
static __always_inline struct esnp_exec *begin_record(struct inflight_exec *in, __u32 tgid,
						       long ret, const char *const *argv,
						       __u32 filename_len)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 ugid = bpf_get_current_uid_gid();
	struct args_walk w = {};
	__u32 zero = 0;
	struct esnp_exec *e;

	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return NULL;
	e->head.kind = ESNP_EXEC;
	e->enter_ns = in->enter_ns;
	e->exit_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->ret = ret;
	e->pid = tgid;
	e->tid = in->tid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)ugid;
	e->gid = ugid >> 32;
	e->argc = 0;
	e->exe_len = 0;
	e->exe_depth = 0;
	e->flags = in->flags;
	e->filename_len = filename_len;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	BPF_CORE_READ_STR_INTO(&e->parent_comm, task, real_parent, comm);

	w.e = e;
	w.argv = argv;
	w.off = filename_len;
	w.max_args = esnp_max_args < ESNP_MAX_ARGS_CAP ? esnp_max_args : ESNP_MAX_ARGS_CAP;
	w.len = esnp_arg_len + 1 < ESNP_ARG_LEN_CAP ? esnp_arg_len + 1 : ESNP_ARG_LEN_CAP;
	/* One step past the cap, to notice an argument beyond it. */
	bpf_loop(ESNP_MAX_ARGS_CAP + 1, arg_step, &w, 0);
	if (!w.end)
		e->flags |= ESNP_F_ARGS_TRUNC;
	e->args_len = w.off - filename_len;
	return e;
}

static __always_inline void send_record(struct esnp_exec *e)
{
	__u32 size;

	size = offsetof(struct esnp_exec, data) + (__u32)e->filename_len + e->args_len + e->exe_len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	e->head.size = size;
	if (bpf_ringbuf_output(&events, e, size, wake_flags(size)))
		__sync_fetch_and_add(&ebpfctl_lost_events, 1);
}

struct exe_walk {
	struct esnp_exec *e;
	struct dentry *dentry;
	struct mount *mnt;
	__u32 base;
	__u32 off;
	bool done;
};

/* One step up the tree: a mount crossing or one component appended. bpf_loop callback. */
static long exe_step(__u64 index, void *arg)
{
	struct exe_walk *w = arg;
	struct esnp_exec *e = w->e;
	struct dentry *dentry = w->dentry, *parent;
	struct mount *mnt = w->mnt, *mnt_parent;
	__u32 pos;
	long n;

	if (!e)
		return 1;
	if (dentry == BPF_CORE_READ(mnt, mnt.mnt_root)) {
		mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (mnt_parent == mnt) {
			w->done = true; /* the root of everything */
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mnt_parent;
		return 0;
	}
	parent = BPF_CORE_READ(dentry, d_parent);
	if (parent == dentry) {
		w->done = true;
		return 1;
	}
	pos = w->base + w->off;
	if (pos > ESNP_DATA_CAP - ESNP_NAME_CAP || w->off > ESNP_EXE_CAP - ESNP_NAME_CAP)
		return 1;
	n = bpf_probe_read_kernel_str(&e->data[pos], ESNP_NAME_CAP,
				      BPF_CORE_READ(dentry, d_name.name));
	if (n <= 0)
		return 1;
	w->off += n;
	e->exe_depth++;
	w->dentry = parent;
	return 0;
}

/* Appends the components of the executable's path, leaf first, NUL-terminated, to data. */
static __always_inline void resolve_exe(struct esnp_exec *e, struct task_struct *task, __u32 base)
{
	struct file *file = BPF_CORE_READ(task, mm, exe_file);
	struct vfsmount *vfsmnt;
	struct exe_walk w = {};

	if (!file)
		return;
	vfsmnt = BPF_CORE_READ(file, f_path.mnt);
	w.e = e;
	w.dentry = BPF_CORE_READ(file, f_path.dentry);
	w.mnt = container_of(vfsmnt, struct mount, mnt);
	w.base = base & (ESNP_ARGS_REGION - 1);
	bpf_loop(ESNP_EXE_DEPTH, exe_step, &w, 0);
	if (!w.done)
		e->flags |= ESNP_F_EXE_TRUNC;
	e->exe_len = w.off;
}

/* A failed exec: the old image is still there, its path and argv faulted in. */
static __always_inline int exit_exec(long ret)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct inflight_exec *in;
	struct esnp_exec *e;
	__u32 zero = 0;
	long n;

	in = bpf_map_lookup_elem(&inflight, &tgid);
	if (!in)
		return 0;
	if (ret >= 0) /* sched_process_exec missed it (cannot happen when attached) */
		goto out;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		goto out;
	n = bpf_probe_read_user_str(e->data, ESNP_FILENAME_CAP, in->filename);
	if (n <= 0) {
		e->data[0] = 0;
		n = 1;
	}
	e = begin_record(in, tgid, ret, in->argv, n);
	if (!e)
		goto out;
	if (n == ESNP_FILENAME_CAP)
		e->flags |= ESNP_F_FILENAME_TRUNC;
	send_record(e);
out:
	bpf_map_delete_elem(&inflight, &tgid);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int esnp_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const char *const *argv;
	struct inflight_exec *in;
	struct esnp_exec *e;
	__u32 zero = 0, loc;
	long n;

	in = bpf_map_lookup_elem(&inflight, &tgid);
	if (!in)
		return 0;
	if (esnp_filters & ESNP_FILTER_FAILED)
		goto out;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		goto out;
	loc = ctx->__data_loc_filename;
	n = bpf_probe_read_kernel_str(e->data, ESNP_FILENAME_CAP, (void *)ctx + (loc & 0xffff));
	if (n <= 0) {
		e->data[0] = 0;
		n = 1;
	}
	/* The new image's initial stack: argc, then argv[]. */
	argv = (const char *const *)(BPF_CORE_READ(task, mm, start_stack) + sizeof(long));
	e = begin_record(in, tgid, 0, argv, n);
	if (!e)
		goto out;
	if (n == ESNP_FILENAME_CAP)
		e->flags |= ESNP_F_FILENAME_TRUNC;
	resolve_exe(e, task, (__u32)e->filename_len + e->args_len);
	send_record(e);
	if (esnp_filters & ESNP_KERNEL_FILTERS) {
		__u8 one = 1;

		if (bpf_map_update_elem(&tracked, &tgid, &one, BPF_ANY))
			__sync_fetch_and_add(&ebpfctl_lost_events, 1);
	}
out:
	bpf_map_delete_elem(&inflight, &tgid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int esnp_enter_exec(struct trace_event_raw_sys_enter *ctx)
{
	return enter_exec((const char *)ctx->args[0], (const char *const *)ctx->args[1], 0);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int esnp_enter_execat(struct trace_event_raw_sys_enter *ctx)
{
	return enter_exec((const char *)ctx->args[1], (const char *const *)ctx->args[2],
			  ESNP_F_EXECVEAT);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int esnp_exit_exec(struct trace_event_raw_sys_exit *ctx)
{
	return exit_exec(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int esnp_exit_execat(struct trace_event_raw_sys_exit *ctx)
{
	return exit_exec(ctx->ret);
}

SEC("tracepoint/sched/sched_process_exit")
int esnp_proc_exit(struct trace_event_raw_sched_process_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 ugid = bpf_get_current_uid_gid();
	struct esnp_exit *x;

	/* One record per process: the thread whose exit ends the group (kernels that say so),
	 * else the group leader. */
	if (bpf_core_field_exists(ctx->group_dead)) {
		if (!BPF_CORE_READ(ctx, group_dead))
			return 0;
	} else if ((__u32)id != tgid) {
		return 0;
	}
	/* An exec that never returned (killed past the point of no return). */
	bpf_map_delete_elem(&inflight, &tgid);

	if (!esnp_exits)
		return 0;
	if (esnp_filters & ESNP_KERNEL_FILTERS) {
		/* Filtered: only processes that were shown. */
		if (bpf_map_delete_elem(&tracked, &tgid))
			return 0;
	}

	x = ebpfctl_reserve(events, struct esnp_exit);
	if (!x)
		return 0;
	x->head.kind = ESNP_EXIT;
	x->head.size = sizeof(*x);
	x->exit_ns = bpf_ktime_get_ns();
	x->start_ns = BPF_CORE_READ(task, group_leader, start_time);
	x->cgroup_id = bpf_get_current_cgroup_id();
	x->pid = tgid;
	x->ppid = BPF_CORE_READ(task, real_parent, tgid);
	x->uid = (__u32)ugid;
	x->gid = ugid >> 32;
	x->exit_code = BPF_CORE_READ(task, signal, group_exit_code);
	if (!x->exit_code)
		x->exit_code = BPF_CORE_READ(task, exit_code);
	x->pad = 0;
	bpf_get_current_comm(x->comm, sizeof(x->comm));
	BPF_CORE_READ_STR_INTO(&x->parent_comm, task, real_parent, comm);
	bpf_ringbuf_submit(x, wake_flags(sizeof(*x)));
	return 0;
}
