// Bumblebee's tcpconnect on kprobes: a `counter_` hash of outgoing IPv4 TCP connections keyed
// by source address, destination address and port. The runner turns it into
// ebpfctl_connects_total{saddr="10.0.0.1",daddr="10.0.0.2",dport="443"} (ipv4_addr members
// print as dotted quads) and, with `print_`-free JSON output, nothing else.
//
// tcp_connect() runs once the source address and port are chosen, for connect() and for
// the kernel's own connections alike. Needs kprobes (CONFIG_KPROBES).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "ebpfctl.h"

struct conn {
	ipv4_addr saddr;
	ipv4_addr daddr;
	__u16 dport; /* host byte order */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct conn);
	__type(value, __u64);
} counter_connects SEC(".maps");

SEC("kprobe/tcp_connect")
int BPF_KPROBE(tcp_connect_count, struct sock *sk)
{
	if (BPF_CORE_READ(sk, __sk_common.skc_family) != 2 /* AF_INET */)
		return 0;
	struct conn k = {};
	k.saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
	k.daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	k.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__u64 one = 1, *n = bpf_map_lookup_elem(&counter_connects, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counter_connects, &k, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
