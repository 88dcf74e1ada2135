// Bumblebee's oomkill on kprobes: every OOM kill as an event (`print_` ring buffer) with who
// triggered it, who was chosen and the limit in pages, plus a `counter_` hash of kills per
// victim command (ebpfctl_oom_kills_total{victim="..."}).
//
// oom_kill_process() runs for system-wide and memory-cgroup OOMs alike, before the victim
// is sent SIGKILL. Needs kprobes (CONFIG_KPROBES).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ebpfctl.h"

struct oom_event {
	timestamp at;
	pid trigger_pid;    /* the task whose allocation failed */
	comm trigger_comm;
	pid victim_pid;
	comm victim_comm;
	__u64 total_pages;  /* the limit the OOM was against: RAM (+swap) or the cgroup's max */
	__s64 victim_points;
	char message[32];   /* "Out of memory", "Memory cgroup out of memory" */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct oom_event);
} print_oom_events SEC(".maps");
EBPFCTL_LOST_COUNTER(print_oom_events);

struct victim {
	comm victim;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct victim);
	__type(value, __u64);
} counter_oom_kills SEC(".maps");

SEC("kprobe/oom_kill_process")
int BPF_KPROBE(oom_kill, struct oom_control *oc, const char *message)
{
	struct task_struct *chosen = BPF_CORE_READ(oc, chosen);
	struct oom_event *e = ebpfctl_reserve(print_oom_events, struct oom_event);
	if (e) {
		e->at = bpf_ktime_get_ns();
		e->trigger_pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e->trigger_comm, sizeof(e->trigger_comm));
		e->victim_pid = BPF_CORE_READ(chosen, tgid);
		BPF_CORE_READ_STR_INTO(&e->victim_comm, chosen, comm);
		e->total_pages = BPF_CORE_READ(oc, totalpages);
		e->victim_points = BPF_CORE_READ(oc, chosen_points);
		bpf_probe_read_kernel_str(e->message, sizeof(e->message), message);
		bpf_ringbuf_submit(e, 0);
	}
	struct victim v = {};
	BPF_CORE_READ_STR_INTO(&v.victim, chosen, comm);
	__u64 one = 1, *n = bpf_map_lookup_elem(&counter_oom_kills, &v);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counter_oom_kills, &v, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
