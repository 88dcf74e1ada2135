// XDP on --iface: counts UDP datagrams per destination endpoint (the `l4_endpoint` typedef)
// with the `counter_` prefix. Passes every packet.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ebpfctl.h"

#define ETH_P_IP 0x0800

struct dst_key {
	l4_endpoint dst;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct dst_key);
	__type(value, __u64);
} counter_udp_datagrams SEC(".maps");

SEC("xdp")
int count_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return XDP_PASS;
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end)
		return XDP_PASS;
	struct dst_key k = {};
	__builtin_memcpy(k.dst.addr, &ip->daddr, 4);
	k.dst.port = bpf_ntohs(udp->dest);
	k.dst.family = 2;
	k.dst.proto = IPPROTO_UDP;
	__u64 one = 1, *n = bpf_map_lookup_elem(&counter_udp_datagrams, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counter_udp_datagrams, &k, &one, BPF_NOEXIST);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
