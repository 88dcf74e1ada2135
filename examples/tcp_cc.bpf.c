// A TCP congestion control algorithm as a struct_ops map (Reno through the kernel's own
// kfuncs). `ebpfctl run` registers it; it is then selectable by
// `sysctl net.ipv4.tcp_congestion_control=ebpfctl_cc` or per socket (TCP_CONGESTION), and
// each connection it starts on sends its local port to a print_ ring buffer.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ebpfctl.h"

#define TCP_CONG_NON_RESTRICTED 0x1 /* include/net/tcp.h */

extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;
extern __u32 tcp_reno_ssthresh(struct sock *sk) __ksym;
extern __u32 tcp_reno_undo_cwnd(struct sock *sk) __ksym;

struct cc_init {
	__u16 local_port;
	__u16 remote_port;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 14);
	__type(value, struct cc_init);
} print_cc_inits SEC(".maps");

SEC("struct_ops/ebpfctl_cc_init")
void BPF_PROG(ebpfctl_cc_init, struct sock *sk)
{
	struct cc_init *e = bpf_ringbuf_reserve(&print_cc_inits, sizeof(*e), 0);
	if (!e)
		return;
	e->local_port = sk->__sk_common.skc_num;
	e->remote_port = __builtin_bswap16(sk->__sk_common.skc_dport);
	bpf_ringbuf_submit(e, 0);
}

SEC("struct_ops/ebpfctl_cc_cong_avoid")
void BPF_PROG(ebpfctl_cc_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/ebpfctl_cc_ssthresh")
__u32 BPF_PROG(ebpfctl_cc_ssthresh, struct sock *sk)
{
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/ebpfctl_cc_undo_cwnd")
__u32 BPF_PROG(ebpfctl_cc_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

struct tcp_congestion_ops ebpfctl_cc SEC(".struct_ops.link") = {
	.init = (void *)ebpfctl_cc_init,
	.cong_avoid = (void *)ebpfctl_cc_cong_avoid,
	.ssthresh = (void *)ebpfctl_cc_ssthresh,
	.undo_cwnd = (void *)ebpfctl_cc_undo_cwnd,
	/* Selectable as a network namespace's default, not only by the initial one. */
	.flags = TCP_CONG_NON_RESTRICTED,
	.name = "ebpfctl_cc",
};

char LICENSE[] SEC("license") = "GPL";
