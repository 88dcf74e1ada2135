// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * observe.bpf.c - HTTP requests of Go programs (net/http), client and server side.
 *
 * Probes (attached by observe/probe.rs, one uprobe per site, never uretprobes: Go moves
 * goroutine stacks, which breaks the return-address trick uretprobes rely on):
 *   client_enter   entry of net/http.(*Transport).roundTrip(t, req)
 *   client_return  every RET of roundTrip: (resp, err) in RAX, (RBX, RCX); when roundTrip
 *                  defers a closure (Go >= 1.23), only the RETs client_deferred cannot see
 *   client_deferred entry of roundTrip's deferred closure, called by its returns with the
 *                  results in roundTrip's frame (amd64; see observe/deferred.rs)
 *   server_enter   entry of net/http.serverHandler.ServeHTTP(sh, rw, req)
 *   server_finish  entry of net/http.(*response).finishRequest(w), which conn.serve calls
 *                  right after ServeHTTP returns: status and bytes written are final there
 *   server_hijack  entry of net/http.(*conn).hijackLocked(c): the handler took the
 *                  connection, finishRequest will not come
 *   server_return  every RET of ServeHTTP, only when finishRequest is not in the binary
 *
 * Why finishRequest and not ServeHTTP's RETs: a probe on a jump is emulated by the kernel,
 * any other instruction (RET included) is single-stepped out of line, a second trap that
 * costs 30 times more than the first under some hypervisors (bench/observe/run.sh measures
 * both). Entry probes sit on the jump of Go's stack check.
 *
 * Go register ABI (Go >= 1.17): integer arguments and results in RAX, RBX, RCX, RDI,
 * RSI, R8-R11 on amd64 (R0-R15 on arm64); the current goroutine (runtime.g) in R14 (R28).
 * In-flight requests are keyed by {pid, goroutine} in LRU maps, so a goroutine reused by
 * another request or a RET never seen (panic) cannot leak entries.
 *
 * Events are sent without waking user space (BPF_RB_NO_WAKEUP); user space polls with a
 * timeout and is woken early only when `wakeup_bytes` are waiting.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ebpfctl.h"
#include "observe.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Go's internal register ABI: argument/result N and the current goroutine (runtime.g). */
#if defined(__TARGET_ARCH_arm64)
#define GO_ARG1(c) ((c)->regs[0])
#define GO_ARG2(c) ((c)->regs[1])
#define GO_ARG3(c) ((c)->regs[2])
#define GO_ARG4(c) ((c)->regs[3])
#define GO_G(c) ((c)->regs[28])
#else /* amd64 */
#define GO_ARG1(c) ((c)->ax)
#define GO_ARG2(c) ((c)->bx)
#define GO_ARG3(c) ((c)->cx)
#define GO_ARG4(c) ((c)->di)
#define GO_G(c) ((c)->r14)
#endif

const volatile struct obs_config cfg = {};

/* Failed ring buffer writes, read by ebpfctl_core::consume (LossSource::BssCounter). */
EBPFCTL_LOST_COUNTER(events);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct obs_key);
	__type(value, struct obs_event);
} client_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct obs_key);
	__type(value, struct obs_event);
} server_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct obs_event);
} scratch SEC(".maps");

/* roundTrip's returns seen from its deferred closure, filled by user space (deferred.rs):
 * key: return address − closure entry. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OBS_MAX_SITES);
	__type(key, __s64);
	__type(value, struct obs_site);
} client_sites SEC(".maps");

/* Processes already announced with an obs_proc record. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} known_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct obs_proc);
} proc_scratch SEC(".maps");

struct go_str {
	const char *ptr;
	__s64 len;
};

/* Copies the Go string at base+off into dst (a char array whose size is a power of two),
 * truncated and NUL-terminated (dst is zeroed beforehand). */
#define READ_GO_STR(dst, base, off)                                                   \
	do {                                                                          \
		__u32 __off = (off);                                                  \
		struct go_str __s = {};                                               \
		if (__off == OBS_NO_OFFSET || !(base))                                \
			break;                                                        \
		if (bpf_probe_read_user(&__s, sizeof(__s), (const void *)((base) + __off))) \
			break;                                                        \
		__u64 __n = __s.len;                                                  \
		if (!__s.ptr || __s.len <= 0)                                         \
			break;                                                        \
		if (__n > sizeof(dst) - 1)                                            \
			__n = sizeof(dst) - 1;                                        \
		bpf_probe_read_user((dst), __n & (sizeof(dst) - 1), __s.ptr);        \
	} while (0)

static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;
	if (addr)
		bpf_probe_read_user(&v, sizeof(v), (const void *)addr);
	return v;
}

static __always_inline __u64 read_field(__u64 base, __u32 off)
{
	if (off == OBS_NO_OFFSET || !base)
		return 0;
	return read_u64(base + off);
}

static __always_inline bool pid_wanted(__u32 pid)
{
	if (!cfg.filter_pids)
		return true;
	return bpf_map_lookup_elem(&pids, &pid) != NULL;
}

static __always_inline struct obs_event *new_event(__u8 kind, __u64 pid_tgid, __u64 g)
{
	__u32 zero = 0;
	struct obs_event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return NULL;
	/* hdr is not cleared: only its first hdr_len bytes are meaningful. */
	__builtin_memset(e, 0, __builtin_offsetof(struct obs_event, hdr));
	e->kind = kind;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->goroutine = g;
	e->start_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void submit_bytes(void *data, __u64 size)
{
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg.wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, data, size, flags))
		__sync_fetch_and_add(&ebpfctl_lost_events, 1);
}

/* Sends the event without the unused tail of hdr. */
static __always_inline void submit(struct obs_event *e)
{
	__u64 used = e->hdr_len & (OBS_HDR_LEN - 1);
	submit_bytes(e, __builtin_offsetof(struct obs_event, hdr) + used);
}

/* First event of a process: send its environment once (see struct obs_proc). */
static __always_inline void announce_process(__u32 pid)
{
	__u8 one = 1;
	__u32 zero = 0;
	if (bpf_map_lookup_elem(&known_pids, &pid))
		return;
	bpf_map_update_elem(&known_pids, &pid, &one, BPF_ANY);
	struct obs_proc *p = bpf_map_lookup_elem(&proc_scratch, &zero);
	if (!p)
		return;
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 start = BPF_CORE_READ(task, mm, env_start);
	__u64 end = BPF_CORE_READ(task, mm, env_end);
	__u64 len = end > start ? end - start : 0;
	if (len > OBS_ENV_LEN - 1)
		len = OBS_ENV_LEN - 1;
	len &= OBS_ENV_LEN - 1;
	p->pid = pid;
	p->len = 0;
	if (len && !bpf_probe_read_user(p->env, len, (const void *)start))
		p->len = len;
	submit_bytes(p, sizeof(*p));
}

/* Method, proto, URL pieces and Host of an *http.Request. */
static __always_inline void read_request(struct obs_event *e, __u64 req)
{
	READ_GO_STR(e->method, req, cfg.off.req_method);
	READ_GO_STR(e->proto, req, cfg.off.req_proto);
	__u64 url = read_field(req, cfg.off.req_url);
	if (url) {
		READ_GO_STR(e->scheme, url, cfg.off.url_scheme);
		READ_GO_STR(e->host, url, cfg.off.url_host);
		READ_GO_STR(e->path, url, cfg.off.url_path);
		READ_GO_STR(e->query, url, cfg.off.url_raw_query);
	}
	if (!e->host[0])
		READ_GO_STR(e->host, req, cfg.off.req_host);
	if (read_field(req, cfg.off.req_tls))
		e->flags |= OBS_F_TLS;
}

SEC("uprobe")
int client_enter(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!pid_wanted(pid_tgid >> 32))
		return 0;
	announce_process(pid_tgid >> 32);
	struct obs_event *e = new_event(OBS_KIND_CLIENT, pid_tgid, GO_G(ctx));
	if (!e)
		return 0;
	read_request(e, GO_ARG2(ctx)); /* roundTrip(t *Transport [RAX], req *Request [RBX]) */
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	bpf_map_update_elem(&client_inflight, &key, e, BPF_ANY);
	return 0;
}

/* Ends the client request `e` (key `key`) with roundTrip's results (*Response, error). */
static __always_inline void client_done(struct obs_event *e, struct obs_key *key, __u64 resp,
					__u64 itab, __u64 data)
{
	e->end_ns = bpf_ktime_get_ns();
	if (resp) {
		e->status = (__u16)read_field(resp, cfg.off.resp_status_code);
		e->content_length = (__s64)read_field(resp, cfg.off.resp_content_length);
	} else if (itab) {
		e->flags |= OBS_F_ERROR;
		e->err_itab = itab;
		e->status = 0;
		/* Best effort, decoded by user space: the first string field of the error value
		 * (errors.errorString.s, fmt.wrapError.msg, net.OpError.Op), the second
		 * (net.OpError.Net), and the errno in net.OpError.Err → os.SyscallError.Err. */
		READ_GO_STR(e->err_msg, data, 0);
		READ_GO_STR(e->err_net, data, 16);
		__u64 syscall_err = read_u64(data + 72);
		__u64 errno_ptr = read_u64(syscall_err ? syscall_err + 24 : 0);
		e->err_errno = (__s64)read_u64(errno_ptr);
	}
	submit(e);
	bpf_map_delete_elem(&client_inflight, key);
}

SEC("uprobe")
int client_return(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	struct obs_event *e = bpf_map_lookup_elem(&client_inflight, &key);
	if (!e)
		return 0;
	/* (*Response, error) in RAX, (RBX, RCX) */
	client_done(e, &key, GO_ARG1(ctx), GO_ARG2(ctx), GO_ARG3(ctx));
	return 0;
}

#if !defined(__TARGET_ARCH_arm64)
/* The result of roundTrip's register `slot` when its frame starts at `frame`. */
static __always_inline __u64 frame_result(__u64 frame, __s32 slot)
{
	return slot == OBS_SLOT_ZERO ? 0 : read_u64(frame + slot);
}

SEC("uprobe")
int client_deferred(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	struct obs_event *e = bpf_map_lookup_elem(&client_inflight, &key);
	if (!e)
		return 0;
	/* Which return of roundTrip called the closure: its return address, relative to the
	 * closure's entry (funcval.fn, the first word of the closure context in RDX). */
	__u64 ret_addr = read_u64(ctx->sp);
	__s64 site = (__s64)(ret_addr - read_u64(ctx->dx));
	struct obs_site *where = bpf_map_lookup_elem(&client_sites, &site);
	if (!where)
		return 0;
	__u64 frame = ctx->sp + 8; /* roundTrip's RSP: above the return address */
	client_done(e, &key, frame_result(frame, where->results[0]),
		    frame_result(frame, where->results[1]), frame_result(frame, where->results[2]));
	return 0;
}
#endif

SEC("uprobe")
int server_enter(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!pid_wanted(pid_tgid >> 32))
		return 0;
	announce_process(pid_tgid >> 32);
	struct obs_event *e = new_event(OBS_KIND_SERVER, pid_tgid, GO_G(ctx));
	if (!e)
		return 0;
	/* ServeHTTP(sh serverHandler{srv} [RAX], rw ResponseWriter [RBX itab, RCX data],
	 *           req *Request [RDI]) */
	__u64 rw = GO_ARG3(ctx), req = GO_ARG4(ctx);
	read_request(e, req);
	READ_GO_STR(e->remote, req, cfg.off.req_remote_addr);
	e->resp_ptr = rw;
	if (cfg.capture_headers) {
		/* The raw request head is still in the connection's bufio.Reader: buf[0:r]. */
		__u64 conn = read_field(rw, cfg.off.sresp_conn);
		__u64 bufr = read_field(conn, cfg.off.conn_bufr);
		__u64 buf = read_field(bufr, cfg.off.bufio_buf);
		__u64 r = read_field(bufr, cfg.off.bufio_r);
		if (buf && r > 0) {
			if (r > OBS_HDR_LEN - 1)
				r = OBS_HDR_LEN - 1;
			r &= OBS_HDR_LEN - 1;
			if (!bpf_probe_read_user(e->hdr, r, (const void *)buf))
				e->hdr_len = r;
		}
	}
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	bpf_map_update_elem(&server_inflight, &key, e, BPF_ANY);
	return 0;
}

/* Ends the server request `e` (key `key`): status and bytes written from the *response. */
static __always_inline void server_done(struct obs_event *e, struct obs_key *key)
{
	e->end_ns = bpf_ktime_get_ns();
	__u64 st = read_field(e->resp_ptr, cfg.off.sresp_status);
	if (st >= 100 && st <= 999)
		e->status = (__u16)st;
	e->content_length = (__s64)read_field(e->resp_ptr, cfg.off.sresp_written);
	submit(e);
	bpf_map_delete_elem(&server_inflight, key);
}

SEC("uprobe")
int server_finish(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	struct obs_event *e = bpf_map_lookup_elem(&server_inflight, &key);
	/* finishRequest(w *response [RAX]); also called without ServeHTTP (Expect failures). */
	if (!e || e->resp_ptr != GO_ARG1(ctx))
		return 0;
	server_done(e, &key);
	return 0;
}

SEC("uprobe")
int server_hijack(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	struct obs_event *e = bpf_map_lookup_elem(&server_inflight, &key);
	/* hijackLocked(c *conn [RAX]): only the connection of the request in flight. */
	if (!e || read_field(e->resp_ptr, cfg.off.sresp_conn) != GO_ARG1(ctx))
		return 0;
	e->flags |= OBS_F_HIJACKED;
	server_done(e, &key);
	return 0;
}

SEC("uprobe")
int server_return(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	struct obs_event *e = bpf_map_lookup_elem(&server_inflight, &key);
	if (e)
		server_done(e, &key);
	return 0;
}
