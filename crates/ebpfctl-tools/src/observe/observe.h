/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * observe.h - layout shared by observe.bpf.c and the Rust decoder (event.rs).
 * Every change here must be mirrored in event.rs (sizes are checked at load time).
 */
#ifndef __OBSERVE_H__
#define __OBSERVE_H__

#define OBS_KIND_CLIENT 1
#define OBS_KIND_SERVER 2

/* flags */
#define OBS_F_ERROR 1        /* client: roundTrip returned a non-nil error (obs_err filled) */
#define OBS_F_HIJACKED 2     /* server: the handler hijacked the connection */
#define OBS_F_TLS 4          /* request carried TLS connection state */
#define OBS_F_H2 8           /* server: an HTTP/2 request (status and bytes from the h2 writer) */
#define OBS_F_PANIC 16       /* server: the handler panicked (obs_err holds the panic value) */
#define OBS_F_URI 32         /* server: the path string is the request's target as sent
			      * (Request.RequestURI, e.g. "/p%20q?x=1"): user space splits it */

/* The request's strings, in this order in struct obs_strs, each cut to its length here. */
enum obs_str {
	OBS_S_METHOD,
	OBS_S_PROTO,
	OBS_S_SCHEME,
	OBS_S_HOST,
	OBS_S_PATH,
	OBS_S_QUERY,
	OBS_S_REMOTE,
	OBS_NSTR
};
#define OBS_METHOD_LEN 16
#define OBS_PROTO_LEN 16
#define OBS_SCHEME_LEN 8
#define OBS_HOST_LEN 64
#define OBS_PATH_LEN 128
#define OBS_QUERY_LEN 64
#define OBS_REMOTE_LEN 64
#define OBS_URI_LEN 192      /* a server's RequestURI, in the path's place (OBS_F_URI) */
/* Strings that lie within this many bytes of each other in the program's memory (the
 * pieces of a parsed URL or request line are substrings of one string) are copied with
 * one read. */
#define OBS_SPAN_MAX 248
#define OBS_STRS_AREA 512
#define OBS_HDR_LEN 512
#define OBS_ENV_LEN 8192

/* Byte offsets of the Go struct fields the probes read; from DWARF or the built-in table.
 * A value of OBS_NO_OFFSET disables the read that needs it. */
#define OBS_NO_OFFSET 0xffffffffu
struct obs_offsets {
	__u32 req_method;      /* net/http.Request.Method (string) */
	__u32 req_url;         /* net/http.Request.URL (*url.URL) */
	__u32 req_proto;       /* net/http.Request.Proto (string) */
	__u32 req_host;        /* net/http.Request.Host (string) */
	__u32 req_remote_addr; /* net/http.Request.RemoteAddr (string) */
	__u32 req_tls;         /* net/http.Request.TLS (*tls.ConnectionState) */
	__u32 url_scheme;      /* net/url.URL.Scheme */
	__u32 url_host;        /* net/url.URL.Host */
	__u32 url_path;        /* net/url.URL.Path */
	__u32 url_raw_query;   /* net/url.URL.RawQuery (moved in Go 1.26) */
	__u32 resp_status_code;    /* net/http.Response.StatusCode (int) */
	__u32 resp_proto;          /* net/http.Response.Proto (string) */
	__u32 resp_content_length; /* net/http.Response.ContentLength (int64) */
	__u32 sresp_conn;      /* net/http.response.conn (*conn) */
	__u32 sresp_status;    /* net/http.response.status (int) */
	__u32 sresp_written;   /* net/http.response.written (int64) */
	__u32 conn_bufr;       /* net/http.conn.bufr (*bufio.Reader) */
	__u32 bufio_buf;       /* bufio.Reader.buf ([]byte) */
	__u32 bufio_r;         /* bufio.Reader.r (int) */
	__u32 g_panic;         /* runtime.g._panic (*_panic) */
	__u32 panic_arg;       /* runtime._panic.arg (any; moved in Go 1.26) */
	/* HTTP/2 server (optional: OBS_NO_OFFSET when unknown) */
	__u32 h2_rws;          /* http2responseWriter.rws (*http2responseWriterState) */
	__u32 h2_status;       /* http2responseWriterState.status (int) */
	__u32 h2_wrote_bytes;  /* http2responseWriterState.wroteBytes (int64) */
	__u32 h2_stream;       /* http2responseWriterState.stream (*http2stream) */
	__u32 h2_fields;       /* http2MetaHeadersFrame.Fields ([]hpack.HeaderField) */
	__u32 req_request_uri; /* net/http.Request.RequestURI (string) */
};

struct obs_config {
	struct obs_offsets off;
	__u32 filter_pids;     /* 1: only PIDs in the `pids` map */
	__u32 capture_headers; /* 1: copy the server's raw request head (traceparent) */
	__u32 instance;        /* which executable this probe instance serves (sent in events) */
	__u32 slot_bits;       /* log2 of the entries of the in-flight slot arrays (0..12) */
	__u32 frame_len;       /* bytes from RSP at roundTrip's deferred closure that cover the
				* return address and, of every return, the *Response and the
				* error's type word (0: read each) */
	__u64 wakeup_bytes;    /* wake user space when this much data comes to be waiting */
	__u64 exec_vaddr;      /* lowest address of the executable's code segment (mm->start_code
				* minus the load bias: types are looked up at their file address) */
};

/* An error value, read by following its chain of wrapped errors (client: roundTrip's
 * error; server: the panic value). Each level is the concrete type (its address in the
 * file) and what the layout of that type (map `err_types`, filled by user space from the
 * binary's types) says to read: up to three strings, an integer, the wrapped error. */
#define OBS_ERR_DEPTH 4
#define OBS_ERR_STRS 6
#define OBS_ERR_STR_LEN 64
struct obs_err {
	__u64 type[OBS_ERR_DEPTH]; /* 0 past the last level */
	__s64 num[OBS_ERR_DEPTH];
	__u8 nstr[OBS_ERR_DEPTH];  /* strings read at each level, in order in `str` */
	__u32 _pad;
	char str[OBS_ERR_STRS][OBS_ERR_STR_LEN];
};

/* Layout of one error type (value of map `err_types`, key: the type's file address).
 * Offsets are from the value the interface's data word points to. */
#define OBS_ERR_NONE 0xffff
#define OBS_ED_GUESS 1 /* unknown layout: a string, or a wrapped error, at offset 0 */
struct obs_err_desc {
	__u16 str[3];
	__u16 next;     /* the wrapped error (an interface) */
	__u16 num;
	__u8 num_size;  /* 1, 4 or 8 */
	__u8 flags;
};

/* The request's strings: string i (enum obs_str) is buf[off[i]..off[i] + len[i]] (no NUL).
 * The bytes of buf no string covers are not cleared: they are what the ring held before
 * (earlier events) or, inside a span read at once, the bytes between its strings. */
struct obs_strs {
	__u16 off[8];
	__u16 len[8];
	char buf[OBS_STRS_AREA];
};

struct obs_event {
	__u64 start_ns;        /* bpf_ktime_get_ns() at entry */
	__u64 end_ns;          /* at the end probe (a RET, the deferred closure, finishRequest, ...) */
	__u64 goroutine;       /* runtime.g pointer (R14) */
	__s64 content_length;  /* client: Response.ContentLength; server: bytes written */
	__u32 pid;
	__u32 tid;
	__u16 status;
	__u8 kind;
	__u8 flags;
	__u16 hdr_len;
	__u16 instance;        /* cfg.instance (the process's comm came with its obs_proc) */
	struct obs_strs str;
	/* Sent only when used: events end before hdr, or before err. */
	char hdr[OBS_HDR_LEN];
	struct obs_err err;
};

/* The config is 144 bytes (probe.rs CONFIG_SIZE). */
_Static_assert(sizeof(struct obs_config) == 144, "struct obs_config size: update probe.rs");
/* The event is 1560 bytes (event.rs EVENT_SIZE): str.off at 48, str.len at 64, str.buf at
 * 80, hdr at 592, err at 1104. */
_Static_assert(sizeof(struct obs_event) == 1560, "struct obs_event size: update event.rs");
_Static_assert(__builtin_offsetof(struct obs_event, str) == 48, "str offset: update event.rs");
_Static_assert(__builtin_offsetof(struct obs_event, hdr) == 592, "hdr offset: update event.rs");
_Static_assert(__builtin_offsetof(struct obs_event, err) == 1104, "err offset: update event.rs");
_Static_assert(sizeof(struct obs_err) == 456, "struct obs_err size: update event.rs");
_Static_assert(sizeof(struct obs_err_desc) == 12, "struct obs_err_desc size: update probe.rs");

/* What an entry probe keeps for the end probe, which builds the event in place in the ring
 * buffer (a small in-flight value: no 1 KiB copies per request). */
struct obs_start {
	__u64 start_ns;
	__u64 req;   /* *http.Request */
	__u64 resp;  /* server: the *response (the ResponseWriter's data) */
	__u32 tid;   /* thread at entry */
	__u32 _pad;
};

/* Server, when headers are captured: the raw request head, read at entry (the connection's
 * buffer may be reused by the time the handler is done). HTTP/2 has no raw head: its
 * `traceparent` field, from the decoded header block, is kept as the line
 * "traceparent: VALUE\r\n", so user space reads both alike. */
struct obs_head {
	__u32 len;
	__u32 _pad;
	char buf[OBS_HDR_LEN];
};

/* Sent once per process, before its first event: its environment (NAME, SERVICE_NAME),
 * read from the process itself, so short-lived processes are named too. */
struct obs_proc {
	__u32 pid;
	__u32 len;
	char comm[16];
	char env[OBS_ENV_LEN];
};

/* Where roundTrip's results RAX, RBX, RCX are when its deferred closure is entered: byte
 * offsets from roundTrip's RSP, or OBS_SLOT_ZERO for a register zeroed after the call. */
#define OBS_MAX_SITES 32
#define OBS_FRAME_MAX 512
#define OBS_SLOT_ZERO ((__s32)0x80000000)
struct obs_site {
	__s32 results[3];
	__u32 _pad;
};
/* All of them (the one value of map `client_sites`): the return of `site[i]` is the one at
 * `key[i]`, its return address minus the closure's entry; n used. A scan of a few keys
 * costs less than a hash lookup. */
struct obs_sites {
	__s64 key[OBS_MAX_SITES];
	struct obs_site site[OBS_MAX_SITES];
	__u32 n;
	__u32 _pad;
};
_Static_assert(sizeof(struct obs_sites) == 776, "struct obs_sites size: update probe.rs");

/* Requests in flight sit in direct-mapped ARRAY slots (a slot per hash of {pid, goroutine},
 * claimed with a compare-and-swap on `owner`; no locks, lookups inlined by the verifier),
 * and in an LRU hash only when their slot is taken by another request. User space frees the
 * slots of processes that are gone (Observer::free_slots_of_gone_processes). */
#define OBS_SLOT_BITS_MAX 12
struct obs_slot {
	__u64 owner;      /* pid << 32 | low 32 bits of the goroutine; 0: free */
	__u64 goroutine;
	struct obs_start st;
	__u64 _pad[2];
};
_Static_assert(sizeof(struct obs_slot) == 64, "struct obs_slot size: update probe.rs");

struct obs_key {
	__u32 pid;
	__u32 _pad;
	__u64 goroutine;
};

#endif /* __OBSERVE_H__ */
