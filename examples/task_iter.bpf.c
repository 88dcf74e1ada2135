// A task iterator: each read walks every task and writes one line per task of
// `target_comm` ("PID COMM STATE"). `ebpfctl run` reads it every --interval and prints the text.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile char target_comm[16] = "ebpfctl-iter";

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *t = ctx->task;
	if (!t)
		return 0;
	for (int i = 0; i < 16; i++) {
		if (t->comm[i] != target_comm[i])
			return 0;
		if (!t->comm[i])
			break;
	}
	/* Threads share the comm: the group leader only. */
	if (t->pid != t->tgid)
		return 0;
	BPF_SEQ_PRINTF(seq, "%d %s %u\n", t->tgid, t->comm, t->__state);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
