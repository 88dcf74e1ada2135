// The seed's convention: a ring buffer declared with its event type, in SEC(".maps.print").
// One JSON line / table row per exec.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "ebpfctl.h"

struct exec_event {
	timestamp at;
	pid pid;
	pid ppid;
	uid uid;
	comm comm;
	char filename[128];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__type(value, struct exec_event);
} execs SEC(".maps.print");
EBPFCTL_LOST_COUNTER(execs);

SEC("tracepoint/sched/sched_process_exec")
int exec_print(struct trace_event_raw_sched_process_exec *ctx)
{
	struct exec_event *e = ebpfctl_reserve(execs, struct exec_event);
	if (!e)
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	e->at = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	unsigned off = ctx->__data_loc_filename & 0xffff;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
