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
 *   server_h2_hdrs entry of the HTTP/2 server's newWriterAndRequest(st, f): a new
 *                  request's decoded headers, for its traceparent (OTLP or JSON output)
 *   server_hijack  entry of net/http.(*conn).hijackLocked(c): the handler took the
 *                  connection, finishRequest will not come
 *   server_return  every RET of ServeHTTP, only when finishRequest is not in the binary
 *   server_recover entry of conn.serve's deferred closure (the one that recovers a
 *                  handler's panic; once per connection): a request still in flight on the
 *                  goroutine while it panics ended in that panic
 *   server_h2_recover entry of the HTTP/2 server's runHandler deferred closure (once per
 *                  request, in place of handlerDone, which it calls when the handler
 *                  returned): the end of an HTTP/2 request, or its panic
 *
 * Why finishRequest and the deferred closure rather than RETs: the kernel emulates a probed
 * jump, while a RET (like most instructions) is single-stepped out of line, a second trap
 * that costs about 25 times more than the first on our test VM (bench/observe/run.sh
 * measures both). Entry probes sit on the jump of Go's stack check.
 *
 * Go register ABI (Go >= 1.17): integer arguments and results in RAX, RBX, RCX, RDI,
 * RSI, R8-R11 on amd64 (R0-R15 on arm64); the current goroutine (runtime.g) in R14 (R28).
 * In-flight requests are keyed by {pid, goroutine}: in a direct-mapped ARRAY slot (a
 * compare-and-swap claims it; no lock, no hash-table work), else in an LRU hash. A goroutine
 * reused by another request takes its own slot back; slots of processes that are gone are
 * freed by user space (see struct obs_slot).
 *
 * Events are sent without waking user space (BPF_RB_NO_WAKEUP); user space polls with a
 * timeout and is woken early when `wakeup_bytes` come to be waiting.
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

/* Requests in flight (see struct obs_slot): the slots, sized by user space (1 << slot_bits
 * entries), and the LRU hashes that take a request whose slot another one holds. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << OBS_SLOT_BITS_MAX);
	__type(key, __u32);
	__type(value, struct obs_slot);
} client_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << OBS_SLOT_BITS_MAX);
	__type(key, __u32);
	__type(value, struct obs_slot);
} server_slots SEC(".maps");

/* The raw head of the server request in the slot of the same index (one entry when headers
 * are not captured). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << OBS_SLOT_BITS_MAX);
	__type(key, __u32);
	__type(value, struct obs_head);
} server_head_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct obs_key);
	__type(value, struct obs_start);
} client_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct obs_key);
	__type(value, struct obs_start);
} server_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct obs_key);
	__type(value, struct obs_head);
} server_heads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct obs_head);
} head_scratch SEC(".maps");

/* HTTP/2: the `traceparent` of a request not yet handed to its handler, keyed by
 * {pid, *http2stream} (server_h2_hdrs); server_enter moves it to server_heads. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct obs_key);
	__type(value, struct obs_head);
} h2_heads SEC(".maps");

/* golang.org/x/net/http2/hpack.HeaderField {Name, Value string; Sensitive bool}: 40 bytes,
 * unchanged since hpack was written. */
struct hpack_field {
	const char *name;
	__s64 name_len;
	const char *value;
	__s64 value_len;
	__u64 sensitive;
};
#define OBS_H2_FIELDS 32
struct obs_h2_fields {
	struct hpack_field f[OBS_H2_FIELDS];
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct obs_h2_fields);
} h2_fields_scratch SEC(".maps");

/* Copies of the first bytes of an http.Request and its url.URL (see read_request). */
#define OBS_REQ_CHUNK 224
#define OBS_URL_CHUNK 112
#define OBS_RESP_CHUNK 96
#define OBS_RECENT_PIDS 4
struct obs_chunks {
	char req[OBS_REQ_CHUNK];
	char url[OBS_URL_CHUNK];
	char resp[OBS_RESP_CHUNK];
	__u32 recent_pids[OBS_RECENT_PIDS]; /* processes this CPU saw last (announce_process) */
	__u32 recent_next;                   /* where the next one goes */
	__u32 _pad;
	__u64 forget; /* see forget() */
	__u64 frame[OBS_FRAME_MAX / 8]; /* client_deferred: the stack from RSP (cfg.frame_len) */
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct obs_chunks);
} chunks SEC(".maps");

/* roundTrip's returns seen from its deferred closure, filled by user space (deferred.rs;
 * struct obs_sites). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct obs_sites);
} client_sites SEC(".maps");

/* Layouts of the binary's error types, by type address in the file (user space fills it
 * from the types that have an itab for `error`; see struct obs_err_desc). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct obs_err_desc);
} err_types SEC(".maps");

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

/* The words at base+off_a and base+off_b: one read when both lie in the same 64 bytes. */
static __always_inline void read_pair(__u64 base, __u32 off_a, __u32 off_b, __u64 *a, __u64 *b)
{
	*a = 0;
	*b = 0;
	if (!base)
		return;
	if (off_a != OBS_NO_OFFSET && off_b != OBS_NO_OFFSET) {
		__u32 lo = off_a < off_b ? off_a : off_b;
		__u32 da = off_a - lo, db = off_b - lo;
		__u64 w[8];
		if (da <= 56 && db <= 56 && !(da & 7) && !(db & 7) &&
		    !bpf_probe_read_user(w, sizeof(w), (const void *)(base + lo))) {
			*a = w[(da / 8) & 7];
			*b = w[(db / 8) & 7];
			return;
		}
	}
	*a = read_field(base, off_a);
	*b = read_field(base, off_b);
}

static __always_inline bool pid_wanted(__u32 pid)
{
	if (!cfg.filter_pids)
		return true;
	return bpf_map_lookup_elem(&pids, &pid) != NULL;
}

/* Wakes user space (it polls on a timer otherwise, and reads while data waits) when the data
 * waiting reaches `wakeup_bytes`: only a record that takes it there (within `window` bytes
 * past the mark; `pending`: this record's bytes when not yet in the ring) forces a wake-up.
 * Forcing one per record while the mark was passed sent a self-IPI per record whenever user
 * space was behind (an exit to the hypervisor in a VM: a quarter of the programs' time in a
 * profile under load); waking once per 1 MiB sent per CPU instead (tried) made user space
 * run a poll cycle for every MiB even while it kept up. */
static __always_inline __u64 wakeup_flags(__u64 pending, __u64 window)
{
	__u64 waiting = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + pending;
	if (waiting >= cfg.wakeup_bytes && waiting < cfg.wakeup_bytes + window)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void submit_bytes(void *data, __u64 size)
{
	/* A record takes its size and an 8-byte header. */
	if (bpf_ringbuf_output(&events, data, size, wakeup_flags(size + 8, size + 8)))
		__sync_fetch_and_add(&ebpfctl_lost_events, 1);
}

/* The three sizes an event is sent with: up to hdr, up to err, everything. */
#define OBS_EV_BASE __builtin_offsetof(struct obs_event, hdr)
#define OBS_EV_HDR __builtin_offsetof(struct obs_event, err)
#define OBS_EV_ERR sizeof(struct obs_event)
enum obs_size { SZ_BASE, SZ_HDR, SZ_ERR };

/* Reserves an event in the ring buffer in one of the three sizes (a constant `size` picks
 * one), zeroed up to hdr, and err too when it is sent; NULL (counted as lost) when the ring
 * is full. The in-flight entry `st` fills the common fields. */
static __always_inline struct obs_event *reserve_event(enum obs_size size, __u8 kind,
						       struct obs_key *key, struct obs_start *st)
{
	struct obs_event *e;
	if (size == SZ_ERR)
		e = bpf_ringbuf_reserve(&events, OBS_EV_ERR, 0);
	else if (size == SZ_HDR)
		e = bpf_ringbuf_reserve(&events, OBS_EV_HDR, 0);
	else
		e = bpf_ringbuf_reserve(&events, OBS_EV_BASE, 0);
	if (!e) {
		__sync_fetch_and_add(&ebpfctl_lost_events, 1);
		return NULL;
	}
	/* The fixed fields and the string table; str.buf is filled as far as used. */
	__builtin_memset(e, 0, __builtin_offsetof(struct obs_event, str.buf));
	if (size == SZ_ERR)
		__builtin_memset(&e->err, 0, sizeof(e->err));
	e->kind = kind;
	e->pid = key->pid;
	e->tid = st->tid;
	e->goroutine = key->goroutine;
	e->start_ns = st->start_ns;
	e->end_ns = bpf_ktime_get_ns();
	e->instance = cfg.instance;
	return e;
}

static __always_inline void commit(struct obs_event *e)
{
	bpf_ringbuf_submit(e, wakeup_flags(0, OBS_EV_ERR + 8));
}

/* The in-flight slot of {pid, goroutine}: a multiplicative hash of `owner`. */
static __always_inline __u32 slot_index(__u64 owner)
{
	if (!cfg.slot_bits)
		return 0;
	return (owner * 0x9E3779B97F4A7C15ull) >> (64 - cfg.slot_bits);
}

static __always_inline __u64 slot_owner(struct obs_key *key)
{
	return (__u64)key->pid << 32 | (__u32)key->goroutine;
}

/* Records the start of a request under {pid, goroutine}: in its slot of `slots` when that
 * is free or already this goroutine's (a request whose end was never seen), else in the LRU
 * hash `spill`. Returns the slot taken, NULL when spilled. */
static __always_inline struct obs_slot *start_request(void *slots, void *spill,
						      struct obs_key *key, __u64 pid_tgid,
						      __u64 req, __u64 resp, __u32 *idx)
{
	struct obs_start st = {
		.start_ns = bpf_ktime_get_ns(),
		.req = req,
		.resp = resp,
		.tid = (__u32)pid_tgid,
	};
	__u64 owner = slot_owner(key);
	*idx = slot_index(owner);
	struct obs_slot *s = bpf_map_lookup_elem(slots, idx);
	if (s) {
		__u64 cur = s->owner;
		if ((cur == owner && s->goroutine == key->goroutine) ||
		    (cur == 0 && __sync_val_compare_and_swap(&s->owner, 0, owner) == 0)) {
			s->goroutine = key->goroutine;
			s->st = st;
			return s;
		}
	}
	bpf_map_update_elem(spill, key, &st, BPF_ANY);
	return NULL;
}

/* The request in flight on {pid, goroutine}: its slot (`*slot`, `*idx`) or the spill entry
 * (`*slot` NULL); NULL when there is none. */
static __always_inline struct obs_start *find_request(void *slots, void *spill,
						      struct obs_key *key, struct obs_slot **slot,
						      __u32 *idx)
{
	__u64 owner = slot_owner(key);
	*idx = slot_index(owner);
	struct obs_slot *s = bpf_map_lookup_elem(slots, idx);
	if (s && s->owner == owner && s->goroutine == key->goroutine) {
		*slot = s;
		return &s->st;
	}
	*slot = NULL;
	return bpf_map_lookup_elem(spill, key);
}

/* Forgets the request found by find_request (after everything was read from it). */
static __always_inline void end_request(void *spill, struct obs_key *key, struct obs_slot *slot)
{
	if (slot)
		/* The slot is this goroutine's (find_request saw it): no one else takes it while
		 * it is, so a plain store frees it. */
		*(volatile __u64 *)&slot->owner = 0;
	else
		bpf_map_delete_elem(spill, key);
}

#define find_client(key, slot, idx) find_request(&client_slots, &client_inflight, key, slot, idx)
#define find_server(key, slot, idx) find_request(&server_slots, &server_inflight, key, slot, idx)

/* First event of a process: send its environment once (see struct obs_proc). */
static __always_inline void announce_process(__u32 pid)
{
	__u8 one = 1;
	__u32 zero = 0;
	struct obs_chunks *c = bpf_map_lookup_elem(&chunks, &zero);
	if (!c)
		return;
	/* A client and a server on one CPU take turns: the last few are kept. */
#pragma unroll
	for (int i = 0; i < OBS_RECENT_PIDS; i++)
		if (c->recent_pids[i] == pid)
			return;
	c->recent_pids[c->recent_next & (OBS_RECENT_PIDS - 1)] = pid;
	c->recent_next++;
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
	bpf_get_current_comm(p->comm, sizeof(p->comm));
	if (len && !bpf_probe_read_user(p->env, len, (const void *)start))
		p->len = len;
	submit_bytes(p, sizeof(*p));
}

/* Where a string of the request is in the program: its bytes and its length, cut to the
 * string's maximum (0: none). */
struct str_ref {
	__u64 ptr;
	__u64 len;
};

/* The Go string whose header is at `off` in the chunk `base` (CHUNK bytes copied from the
 * Go object), cut to `max` bytes. */
static __always_inline void chunk_str(struct str_ref *r, const char *base, __u32 chunk,
				      __u32 off, __u32 max)
{
	r->ptr = 0;
	r->len = 0;
	if (off > chunk - sizeof(struct go_str))
		return;
	const struct go_str *s = (const void *)(base + off);
	if (!s->ptr || s->len <= 0)
		return;
	r->ptr = (__u64)s->ptr;
	r->len = (__u64)s->len > max ? max : (__u64)s->len;
}

static __always_inline __u64 chunk_u64(const char *base, __u32 chunk, __u32 off)
{
	if (off > chunk - sizeof(__u64))
		return 0;
	return *(const __u64 *)(base + off);
}

/* The version of a Request or Response whose Proto string header is at `off` in the chunk,
 * as 10 * major + minor, when Proto can be composed from it: net/http sets Proto only to
 * what ParseHTTPVersion accepted ("HTTP/" digit "." digit) or "HTTP/2.0", with ProtoMajor
 * and ProtoMinor (the two ints after Proto) to match, so an 8-byte Proto is "HTTP/M.m" and
 * its bytes need no read. -1 when it cannot (the string is read then). */
static __always_inline int chunk_version(const char *base, __u32 chunk, __u32 off)
{
	if (off > chunk - 4 * sizeof(__u64))
		return -1;
	const __u64 *w = (const void *)(base + off);
	if (w[1] != 8 || w[2] > 9 || w[3] > 9)
		return -1;
	return w[2] * 10 + w[3];
}

#define OBS_STR_MAX(i)                                                                \
	((i) == OBS_S_METHOD   ? OBS_METHOD_LEN                                       \
	 : (i) == OBS_S_PROTO  ? OBS_PROTO_LEN                                        \
	 : (i) == OBS_S_SCHEME ? OBS_SCHEME_LEN                                       \
	 : (i) == OBS_S_HOST   ? OBS_HOST_LEN                                         \
	 : (i) == OBS_S_PATH   ? OBS_PATH_LEN                                         \
	 : (i) == OBS_S_QUERY  ? OBS_QUERY_LEN                                        \
			       : OBS_REMOTE_LEN)

/* `x`, as a value the verifier knows nothing of: read back from memory. A bound checked on
 * it then does not make the verifier tell apart every path that computed it (the strings'
 * lengths and positions: 2^7 paths, past its limit). */
static __always_inline __u64 forget(struct obs_chunks *c, __u64 x)
{
	*(volatile __u64 *)&c->forget = x;
	return *(volatile __u64 *)&c->forget;
}

/* Copies string `i` (at most `max` bytes, a power of two) to buf[p...]; returns the next
 * free byte. The bound keeps room for 2 * max, which lets the verifier see the copy fit. */
static __always_inline __u64 put_str(struct obs_chunks *c, struct obs_strs *t, __u64 p, int i,
				     struct str_ref *r, __u32 max)
{
	p = forget(c, p);
	if (!r->len || p > OBS_STRS_AREA - 2 * max)
		return p;
	/* r->len <= max: the mask only shows the verifier a bound */
	__u64 n = forget(c, r->len) & (2 * max - 1);
	if (bpf_probe_read_user(t->buf + p, n, (const void *)r->ptr))
		return p;
	t->off[i] = p;
	t->len[i] = n;
	return p + n;
}

struct obs_str_refs {
	struct str_ref r[OBS_NSTR];
};

/* Copies the strings `refs` into `t`: the protocol composed from `version` (>= 0: its string
 * is not read) in the first 8 bytes; then those within OBS_SPAN_MAX bytes of the path (the
 * pieces of a client's URL, of a server's request line) with one read, the others one by
 * one. A global function: the verifier checks it once, not once per path of each caller. */
__noinline int obs_put_strings(struct obs_chunks *c, struct obs_strs *t,
			       struct obs_str_refs *refs, int version)
{
	if (!c || !t || !refs)
		return 0;
	struct str_ref *r = refs->r;
	__u64 lo = r[OBS_S_PATH].ptr, hi = lo + r[OBS_S_PATH].len;
	__u32 in = r[OBS_S_PATH].len ? 1 << OBS_S_PATH : 0;
	__u64 used = 8;
	if (version >= 0) {
		__builtin_memcpy(t->buf, "HTTP/", 5);
		t->buf[5] = '0' + version / 10;
		t->buf[6] = '.';
		t->buf[7] = '0' + version % 10;
		t->off[OBS_S_PROTO] = 0;
		t->len[OBS_S_PROTO] = 8;
	}
#pragma unroll
	for (int i = 0; i < OBS_NSTR; i++) {
		if (i == OBS_S_PATH || !in || !r[i].len)
			continue;
		__u64 a = r[i].ptr, b = a + r[i].len;
		__u64 nlo = a < lo ? a : lo, nhi = b > hi ? b : hi;
		if (nhi - nlo <= OBS_SPAN_MAX) {
			lo = nlo;
			hi = nhi;
			in |= 1 << i;
		}
	}
	if (in) {
		__u64 n = forget(c, hi - lo);
		if (n <= OBS_SPAN_MAX && !bpf_probe_read_user(t->buf + 8, n & 255, (const void *)lo)) {
			used = 8 + n;
#pragma unroll
			for (int i = 0; i < OBS_NSTR; i++) {
				if (in & (1 << i)) {
					t->off[i] = 8 + r[i].ptr - lo;
					t->len[i] = r[i].len;
				}
			}
		} else {
			in = 0;
		}
	}
#pragma unroll
	for (int i = 0; i < OBS_NSTR; i++)
		if (!(in & (1 << i)))
			used = put_str(c, t, used, i, &r[i], OBS_STR_MAX(i));
	return used;
}

/* Method, proto, URL pieces, Host (and a server's RemoteAddr) of an *http.Request; the
 * protocol from the Response in chunk c->resp when `resp_proto` (a client's: HTTP/2.0 when
 * the transport upgraded, while the request says HTTP/1.1, or nothing for a redirect's
 * follow-up). The fields read lie in the first OBS_REQ_CHUNK bytes of http.Request and
 * OBS_URL_CHUNK of url.URL (smaller than either struct in every Go version), each copied
 * with one read. A server's path and query come as its RequestURI (OBS_F_URI), so its
 * url.URL is not read.
 * Returns the event flags it found (OBS_F_TLS, OBS_F_URI). */
__noinline int obs_read_request(struct obs_chunks *c, struct obs_strs *t, __u64 req, int kind,
				int resp_proto)
{
	if (!c || !t)
		return 0;
	int flags = 0;
	struct obs_str_refs refs = {};
	struct str_ref *r = refs.r;
	int version = -1;
	if (resp_proto) {
		version = chunk_version(c->resp, OBS_RESP_CHUNK, cfg.off.resp_proto);
		if (version < 0)
			chunk_str(&r[OBS_S_PROTO], c->resp, OBS_RESP_CHUNK, cfg.off.resp_proto,
				  OBS_PROTO_LEN);
	}
	if (!req || bpf_probe_read_user(c->req, sizeof(c->req), (const void *)req)) {
		obs_put_strings(c, t, &refs, version);
		return 0;
	}
	chunk_str(&r[OBS_S_METHOD], c->req, OBS_REQ_CHUNK, cfg.off.req_method, OBS_METHOD_LEN);
	if (!resp_proto) {
		version = chunk_version(c->req, OBS_REQ_CHUNK, cfg.off.req_proto);
		if (version < 0)
			chunk_str(&r[OBS_S_PROTO], c->req, OBS_REQ_CHUNK, cfg.off.req_proto,
				  OBS_PROTO_LEN);
	}
	/* A server's path and query: its RequestURI (a piece of the request line, read with
	 * the method; user space splits it) rather than a read of the url.URL. */
	if (kind == OBS_KIND_SERVER) {
		chunk_str(&r[OBS_S_PATH], c->req, OBS_REQ_CHUNK, cfg.off.req_request_uri,
			  OBS_URI_LEN);
		if (r[OBS_S_PATH].len)
			flags |= OBS_F_URI;
	}
	__u64 url = flags & OBS_F_URI ? 0 : chunk_u64(c->req, OBS_REQ_CHUNK, cfg.off.req_url);
	if (url && !bpf_probe_read_user(c->url, sizeof(c->url), (const void *)url)) {
		chunk_str(&r[OBS_S_SCHEME], c->url, OBS_URL_CHUNK, cfg.off.url_scheme,
			  OBS_SCHEME_LEN);
		chunk_str(&r[OBS_S_HOST], c->url, OBS_URL_CHUNK, cfg.off.url_host, OBS_HOST_LEN);
		chunk_str(&r[OBS_S_PATH], c->url, OBS_URL_CHUNK, cfg.off.url_path, OBS_PATH_LEN);
		chunk_str(&r[OBS_S_QUERY], c->url, OBS_URL_CHUNK, cfg.off.url_raw_query,
			  OBS_QUERY_LEN);
	}
	if (!r[OBS_S_HOST].len)
		chunk_str(&r[OBS_S_HOST], c->req, OBS_REQ_CHUNK, cfg.off.req_host, OBS_HOST_LEN);
	if (kind == OBS_KIND_SERVER) {
		if (chunk_u64(c->req, OBS_REQ_CHUNK, cfg.off.req_tls))
			flags |= OBS_F_TLS;
		chunk_str(&r[OBS_S_REMOTE], c->req, OBS_REQ_CHUNK, cfg.off.req_remote_addr,
			  OBS_REMOTE_LEN);
	}
	obs_put_strings(c, t, &refs, version);
	return flags;
}

/* Reads the request into `e` (obs_read_request: a global function, which the verifier
 * checks once per program instead of once per path that reaches it). */
static __always_inline void read_request(struct obs_event *e, struct obs_chunks *c, __u64 req,
					 bool resp_proto)
{
	e->flags |= obs_read_request(c, &e->str, req, e->kind, resp_proto);
}

struct go_iface {
	__u64 tab;  /* itab (or, for `any`, the type) */
	__u64 data;
};

/* Reads the Go string at `addr` into the next free string slot of `x` at level `i`. */
static __always_inline void err_string(struct obs_err *x, __u32 *slot, int i, __u64 addr)
{
	__u32 k = *slot;
	if (k >= OBS_ERR_STRS)
		return;
	READ_GO_STR(x->str[k], addr, 0);
	*slot = k + 1;
	x->nstr[i]++;
}

/* Follows the error value (type, data) and what it wraps, OBS_ERR_DEPTH levels at most,
 * into `x`: at each level the type's layout from `err_types` (or, for a type without one,
 * a string or a wrapped error at offset 0) says what to read. Only on the error path. A
 * global function: verified once per program, not once per path that reaches it. */
__noinline int read_error(struct obs_err *x, __u64 type, __u64 data)
{
	if (!x)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 bias = BPF_CORE_READ(task, mm, start_code) - cfg.exec_vaddr;
	__u32 slot = 0;
	for (int i = 0; i < OBS_ERR_DEPTH; i++) {
		if (!type)
			break;
		__u64 at = type - bias;
		x->type[i] = at;
		if (!data) /* a nil pointer of an error type */
			break;
		struct obs_err_desc d = {
			.str = { OBS_ERR_NONE, OBS_ERR_NONE, OBS_ERR_NONE },
			.next = OBS_ERR_NONE,
			.num = OBS_ERR_NONE,
			.flags = OBS_ED_GUESS,
		};
		struct obs_err_desc *known = bpf_map_lookup_elem(&err_types, &at);
		if (known)
			d = *known;
		for (int j = 0; j < 3; j++)
			if (d.str[j] != OBS_ERR_NONE)
				err_string(x, &slot, i, data + d.str[j]);
		if (d.num != OBS_ERR_NONE) {
			__u64 v = 0;
			__u32 n = d.num_size;
			if (n == 1 || n == 2 || n == 4 || n == 8)
				bpf_probe_read_user(&v, n & 15, (const void *)(data + d.num));
			x->num[i] = (__s64)v;
		}
		struct go_iface next = {};
		if (d.next != OBS_ERR_NONE) {
			bpf_probe_read_user(&next, sizeof(next), (const void *)(data + d.next));
		} else if (d.flags & OBS_ED_GUESS) {
			/* A struct whose first field is an error (net/http's wrappers, caddy's
			 * DialError, ...) when that word is an itab of a known error type; else
			 * a string (errors.errorString, a string type). */
			bpf_probe_read_user(&next, sizeof(next), (const void *)data);
			__u64 t = read_u64(next.tab ? next.tab + 8 : 0) - bias;
			if (!next.tab || !bpf_map_lookup_elem(&err_types, &t)) {
				err_string(x, &slot, i, data);
				break;
			}
		}
		type = read_u64(next.tab ? next.tab + 8 : 0); /* itab.Type */
		data = next.data;
	}
	return 0;
}

SEC("uprobe")
int client_enter(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!pid_wanted(pid_tgid >> 32))
		return 0;
	announce_process(pid_tgid >> 32);
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	/* roundTrip(t *Transport [RAX], req *Request [RBX]) */
	__u32 idx;
	start_request(&client_slots, &client_inflight, &key, pid_tgid, GO_ARG2(ctx), 0, &idx);
	return 0;
}

/* Ends the client request `st` (key `key`) with roundTrip's results (*Response, error).
 * The request is read now: roundTrip leaves the caller's *Request as it was. */
static __always_inline void client_done(struct obs_start *st, struct obs_key *key,
					struct obs_slot *slot, __u64 resp, __u64 itab, __u64 data)
{
	struct obs_event *e;
	if (!resp && itab)
		e = reserve_event(SZ_ERR, OBS_KIND_CLIENT, key, st);
	else
		e = reserve_event(SZ_BASE, OBS_KIND_CLIENT, key, st);
	if (!e)
		goto out;
	__u32 zero = 0;
	struct obs_chunks *c = bpf_map_lookup_elem(&chunks, &zero);
	if (!c) {
		commit(e);
		goto out;
	}
	bool resp_proto = false;
	if (resp && !bpf_probe_read_user(c->resp, sizeof(c->resp), (const void *)resp)) {
		e->status = (__u16)chunk_u64(c->resp, OBS_RESP_CHUNK, cfg.off.resp_status_code);
		e->content_length =
			(__s64)chunk_u64(c->resp, OBS_RESP_CHUNK, cfg.off.resp_content_length);
		/* The protocol spoken, when the response has one. */
		resp_proto = chunk_u64(c->resp, OBS_RESP_CHUNK, cfg.off.resp_proto + 8) != 0;
	}
	read_request(e, c, st->req, resp_proto);
	if (!resp && itab) {
		e->flags |= OBS_F_ERROR;
		read_error(&e->err, read_u64(itab + 8), data);
	}
	commit(e);
out:
	end_request(&client_inflight, key, slot);
}

SEC("uprobe")
int client_return(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	struct obs_slot *slot;
	__u32 idx;
	struct obs_start *st = find_client(&key, &slot, &idx);
	if (!st)
		return 0;
	/* (*Response, error) in RAX, (RBX, RCX) */
	client_done(st, &key, slot, GO_ARG1(ctx), GO_ARG2(ctx), GO_ARG3(ctx));
	return 0;
}

#if !defined(__TARGET_ARCH_arm64)
/* Go < 1.23: roundTrip's `test rbx, rbx; je` right after it called persistConn.roundTrip
 * (success.rs): (*Response, error) still in RAX, (RBX, RCX). A nil error ends the request;
 * otherwise roundTrip may retry, and a RET probe sees the end. */
SEC("uprobe")
int client_success(struct pt_regs *ctx)
{
	if (GO_ARG2(ctx))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	struct obs_slot *slot;
	__u32 idx;
	struct obs_start *st = find_client(&key, &slot, &idx);
	if (!st)
		return 0;
	client_done(st, &key, slot, GO_ARG1(ctx), 0, 0);
	return 0;
}

/* The result of roundTrip's register `slot` when its frame starts at `frame` (= RSP + 8 of
 * the closure): from the copy of the stack in `c` when it covers it, else read. */
static __always_inline __u64 frame_result(struct obs_chunks *c, bool copied, __u64 frame,
					  __s32 slot)
{
	if (slot == OBS_SLOT_ZERO)
		return 0;
	__u64 at = 8 + (__s64)slot; /* from RSP */
	if (copied && slot >= 0 && !(at & 7) && at + 8 <= cfg.frame_len)
		return c->frame[(at / 8) & (OBS_FRAME_MAX / 8 - 1)];
	return read_u64(frame + slot);
}

SEC("uprobe")
int client_deferred(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	struct obs_slot *slot;
	__u32 idx, zero = 0;
	struct obs_start *st = find_client(&key, &slot, &idx);
	struct obs_chunks *c = bpf_map_lookup_elem(&chunks, &zero);
	if (!st || !c)
		return 0;
	/* The return address and the results with one read (user space computed how far). */
	__u32 len = cfg.frame_len;
	bool copied = len >= 8 && len <= OBS_FRAME_MAX &&
		      !bpf_probe_read_user(c->frame, len, (const void *)ctx->sp);
	/* Which return of roundTrip called the closure: its return address, relative to this
	 * probe's address (the uprobe handler sets IP to the probed instruction). */
	__u64 ret_addr = copied ? c->frame[0] : read_u64(ctx->sp);
	__s64 site = (__s64)(ret_addr - ctx->ip);
	struct obs_sites *sites = bpf_map_lookup_elem(&client_sites, &zero);
	struct obs_site *where = NULL;
	if (!sites)
		return 0;
	for (int i = 0; i < OBS_MAX_SITES; i++) {
		if (i >= sites->n)
			break;
		if (sites->key[i] == site) {
			where = &sites->site[i];
			break;
		}
	}
	if (!where)
		return 0;
	__u64 frame = ctx->sp + 8; /* roundTrip's RSP: above the return address */
	__u64 resp = frame_result(c, copied, frame, where->results[0]);
	__u64 itab = frame_result(c, copied, frame, where->results[1]);
	/* The error's data word only for an error (the copy ends before it). */
	__u64 data = itab ? frame_result(c, copied, frame, where->results[2]) : 0;
	client_done(st, &key, slot, resp, itab, data);
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
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };
	/* ServeHTTP(sh serverHandler{srv} [RAX], rw ResponseWriter [RBX itab, RCX data],
	 *           req *Request [RDI]) */
	__u64 rw = GO_ARG3(ctx);
	__u32 idx, zero = 0;
	struct obs_slot *slot = start_request(&server_slots, &server_inflight, &key, pid_tgid,
					      GO_ARG4(ctx), rw, &idx);
	if (!cfg.capture_headers)
		return 0;
	/* The head goes into the slot's entry of server_head_slots, or (a spilled request)
	 * through a scratch copy into server_heads. */
	struct obs_head *h = slot ? bpf_map_lookup_elem(&server_head_slots, &idx)
				  : bpf_map_lookup_elem(&head_scratch, &zero);
	if (!h)
		return 0;
	h->len = 0;
	/* HTTP/2 (Request.ProtoMajor, right after Proto): no raw head, and rw is the HTTP/2
	 * writer; server_h2_hdrs kept the traceparent under the writer's stream. */
	if (read_field(GO_ARG4(ctx), cfg.off.req_proto + 16) == 2) {
		struct obs_key skey = {
			.pid = key.pid,
			.goroutine = read_field(read_field(rw, cfg.off.h2_rws), cfg.off.h2_stream),
		};
		struct obs_head *h2 = bpf_map_lookup_elem(&h2_heads, &skey);
		if (h2) {
			if (slot)
				bpf_probe_read_kernel(h, sizeof(*h), h2);
			else
				bpf_map_update_elem(&server_heads, &key, h2, BPF_ANY);
			bpf_map_delete_elem(&h2_heads, &skey);
		} else if (!slot) {
			bpf_map_delete_elem(&server_heads, &key);
		}
		return 0;
	}
	/* The raw request head is still in the connection's bufio.Reader: buf[0:r]. */
	__u64 conn = read_field(rw, cfg.off.sresp_conn);
	__u64 bufr = read_field(conn, cfg.off.conn_bufr);
	__u64 buf, r;
	read_pair(bufr, cfg.off.bufio_buf, cfg.off.bufio_r, &buf, &r);
	if (buf && r > 0) {
		if (r > OBS_HDR_LEN - 1)
			r = OBS_HDR_LEN - 1;
		r &= OBS_HDR_LEN - 1;
		if (!bpf_probe_read_user(h->buf, r, (const void *)buf))
			h->len = r;
	}
	if (!slot)
		bpf_map_update_elem(&server_heads, &key, h, BPF_ANY);
	return 0;
}

#define TRACEPARENT "traceparent"
#define TP_LEN (sizeof(TRACEPARENT) - 1)
#define TP_PREFIX "traceparent: "
#define TP_PREFIX_LEN (sizeof(TP_PREFIX) - 1)
#define TP_VALUE_MAX 128

/* newWriterAndRequest(sc *serverConn [RAX], st *stream [RBX], f *MetaHeadersFrame [RCX]):
 * on the connection's goroutine, the decoded header block of a new HTTP/2 request, just
 * before its handler's goroutine starts. Keeps its `traceparent` (names are lower case in
 * HTTP/2) for server_enter. Attached only when headers are captured. */
SEC("uprobe")
int server_h2_hdrs(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!pid_wanted(pid_tgid >> 32))
		return 0;
	struct go_str fields = {}; /* a slice header starts like a string's: {ptr, len} */
	__u64 f = GO_ARG3(ctx);
	if (!f || bpf_probe_read_user(&fields, sizeof(fields), (const void *)(f + cfg.off.h2_fields)))
		return 0;
	if (!fields.ptr || fields.len <= 0)
		return 0;
	__u64 n = fields.len;
	if (n > OBS_H2_FIELDS)
		n = OBS_H2_FIELDS;
	__u32 zero = 0;
	struct obs_h2_fields *fs = bpf_map_lookup_elem(&h2_fields_scratch, &zero);
	struct obs_head *h = bpf_map_lookup_elem(&head_scratch, &zero);
	if (!fs || !h)
		return 0;
	if (bpf_probe_read_user(fs->f, n * sizeof(fs->f[0]), fields.ptr))
		return 0;
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_ARG2(ctx) };
	for (__u32 i = 0; i < OBS_H2_FIELDS; i++) {
		if (i >= n)
			break;
		struct hpack_field *hf = &fs->f[i];
		if (hf->name_len != TP_LEN || hf->value_len <= 0)
			continue;
		char name[TP_LEN];
		if (bpf_probe_read_user(name, sizeof(name), hf->name))
			continue;
		bool same = true;
#pragma unroll
		for (int j = 0; j < TP_LEN; j++)
			same &= name[j] == TRACEPARENT[j];
		if (!same)
			continue;
		__u64 vlen = hf->value_len;
		if (vlen > TP_VALUE_MAX)
			vlen = TP_VALUE_MAX;
		__builtin_memcpy(h->buf, TP_PREFIX, TP_PREFIX_LEN);
		/* The mask changes nothing (vlen <= TP_VALUE_MAX) but shows the verifier a bound. */
		if (bpf_probe_read_user(h->buf + TP_PREFIX_LEN, vlen & 0xff, hf->value))
			return 0;
		h->buf[(TP_PREFIX_LEN + vlen) & (OBS_HDR_LEN - 1)] = '\r';
		h->buf[(TP_PREFIX_LEN + vlen + 1) & (OBS_HDR_LEN - 1)] = '\n';
		h->len = TP_PREFIX_LEN + vlen + 2;
		bpf_map_update_elem(&h2_heads, &key, h, BPF_ANY);
		return 0;
	}
	/* None: drop what an earlier stream at this address left (one whose handler never
	 * ran), so it cannot be taken for this request's. */
	bpf_map_delete_elem(&h2_heads, &key);
	return 0;
}

/* Builds and sends the server event of `st`, with the head when `h` has one; `panic` is the
 * runtime._panic of a handler that panicked (flags has OBS_F_PANIC). */
static __always_inline void server_event(enum obs_size size, struct obs_start *st,
					 struct obs_key *key, struct obs_head *h, __u8 flags,
					 __u64 panic)
{
	struct obs_event *e = reserve_event(size, OBS_KIND_SERVER, key, st);
	if (!e)
		return;
	e->flags = flags;
	__u32 zero = 0;
	struct obs_chunks *c = bpf_map_lookup_elem(&chunks, &zero);
	if (c)
		read_request(e, c, st->req, false);
	/* HTTP/1: the *response; HTTP/2: the writer's state (rws), before handlerDone
	 * recycles it. */
	__u64 w = st->resp;
	__u32 status_off = cfg.off.sresp_status, written_off = cfg.off.sresp_written;
	if (flags & OBS_F_H2) {
		w = read_field(w, cfg.off.h2_rws);
		status_off = cfg.off.h2_status;
		written_off = cfg.off.h2_wrote_bytes;
	}
	__u64 status, written;
	read_pair(w, status_off, written_off, &status, &written);
	if (status >= 100 && status <= 999)
		e->status = (__u16)status;
	e->content_length = (__s64)written;
	if (size != SZ_BASE && h) {
		__u32 len = h->len & (OBS_HDR_LEN - 1);
		if (len && !bpf_probe_read_kernel(e->hdr, len, h->buf))
			e->hdr_len = len;
	}
	if (size == SZ_ERR && panic) {
		/* The panic value (an `any`: type, data). */
		struct go_iface arg = {};
		if (cfg.off.panic_arg != OBS_NO_OFFSET)
			bpf_probe_read_user(&arg, sizeof(arg),
					    (const void *)(panic + cfg.off.panic_arg));
		read_error(&e->err, arg.tab, arg.data);
	}
	commit(e);
}

/* Ends the server request `st` (key `key`, found in `slot` at `idx` or spilled): status and
 * bytes written from the *response. */
static __always_inline void server_done(struct obs_start *st, struct obs_key *key,
					struct obs_slot *slot, __u32 idx, __u8 flags, __u64 panic)
{
	struct obs_head *h = NULL;
	if (cfg.capture_headers)
		h = slot ? bpf_map_lookup_elem(&server_head_slots, &idx)
			 : bpf_map_lookup_elem(&server_heads, key);
	if (panic)
		server_event(SZ_ERR, st, key, h, flags | OBS_F_PANIC, panic);
	else if (h && h->len)
		server_event(SZ_HDR, st, key, h, flags, 0);
	else
		server_event(SZ_BASE, st, key, NULL, flags, 0);
	if (h && !slot)
		bpf_map_delete_elem(&server_heads, key);
	end_request(&server_inflight, key, slot);
}

/* The server request in flight on this goroutine (declares key, slot, idx, st). */
#define FIND_SERVER(ctx)                                                              \
	__u64 pid_tgid = bpf_get_current_pid_tgid();                                  \
	struct obs_key key = { .pid = pid_tgid >> 32, .goroutine = GO_G(ctx) };       \
	struct obs_slot *slot;                                                        \
	__u32 idx;                                                                    \
	struct obs_start *st = find_server(&key, &slot, &idx)

/* Ends the request in flight on this goroutine when the writer in the first argument is the
 * one ServeHTTP was given. */
static __always_inline int server_end_for_writer(struct pt_regs *ctx, __u8 flags)
{
	FIND_SERVER(ctx);
	if (!st || st->resp != GO_ARG1(ctx))
		return 0;
	server_done(st, &key, slot, idx, flags, 0);
	return 0;
}

/* finishRequest(w *response [RAX]); also called without ServeHTTP (Expect failures). */
SEC("uprobe")
int server_finish(struct pt_regs *ctx)
{
	return server_end_for_writer(ctx, 0);
}

/* handlerDone(w *http2responseWriter [RAX]), on the handler's goroutine once the handler
 * returned. */
SEC("uprobe")
int server_h2_done(struct pt_regs *ctx)
{
	return server_end_for_writer(ctx, OBS_F_H2);
}

SEC("uprobe")
int server_hijack(struct pt_regs *ctx)
{
	FIND_SERVER(ctx);
	/* hijackLocked(c *conn [RAX]): only the connection of the request in flight. */
	if (!st || read_field(st->resp, cfg.off.sresp_conn) != GO_ARG1(ctx))
		return 0;
	server_done(st, &key, slot, idx, OBS_F_HIJACKED, 0);
	return 0;
}

SEC("uprobe")
int server_return(struct pt_regs *ctx)
{
	FIND_SERVER(ctx);
	if (st)
		server_done(st, &key, slot, idx, 0, 0);
	return 0;
}

/* The deferred closure that recovers a handler's panic was entered (HTTP/1: conn.serve's,
 * when the connection ends; HTTP/2: runHandler's, after every request). A request still in
 * flight on this goroutine while it panics (runtime.g._panic set) ended in that panic;
 * net/http then closes the connection (HTTP/1) or resets the stream (HTTP/2). Without a
 * panic, the HTTP/2 request ends here (runHandler calls handlerDone next). */
static __always_inline int server_recover_at(struct pt_regs *ctx, __u8 flags)
{
	FIND_SERVER(ctx);
	if (!st)
		return 0;
	__u64 panic = read_field(GO_G(ctx), cfg.off.g_panic);
	if (panic || (flags & OBS_F_H2))
		server_done(st, &key, slot, idx, flags, panic);
	return 0;
}

SEC("uprobe")
int server_recover(struct pt_regs *ctx)
{
	return server_recover_at(ctx, 0);
}

SEC("uprobe")
int server_h2_recover(struct pt_regs *ctx)
{
	return server_recover_at(ctx, OBS_F_H2);
}
