//! Decoding `struct obs_event` (observe.h) into a [`Request`].
use serde::Serialize;

use super::goerror::{self, RawLevel, TypeNames};

/// Size of `struct obs_event`, as sent with an error (`err` filled).
pub const EVENT_SIZE: usize = 1576;
/// Offsets of `str_off` and `str_len` (u16 each, in `enum obs_str` order) and of `strs`.
const STR_OFF_OFFSET: usize = 64;
const STR_LEN_OFFSET: usize = 80;
const STRS_OFFSET: usize = 96;
/// Offset of `hdr`: events without a request head or an error end there.
const HDR_OFFSET: usize = 608;
/// Offset of `err`: events without an error end there.
const ERR_OFFSET: usize = 1120;

/// `enum obs_str`: the request's strings in the string table.
#[derive(Clone, Copy)]
enum Str {
    Method,
    Proto,
    Scheme,
    Host,
    Path,
    Query,
    Remote,
}

/// Size of `struct obs_proc`: pid, len, 8 KiB of environment.
pub const PROC_SIZE: usize = 8 + 8192;

const F_ERROR: u8 = 1;
const F_HIJACKED: u8 = 2;
const F_TLS: u8 = 4;
const F_PANIC: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Client,
    Server,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Client => "client",
            Kind::Server => "server",
        }
    }
}

/// One HTTP request seen by a probe.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    pub kind: Kind,
    /// Wall-clock start, nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    pub duration_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// The process's command name (comm).
    pub comm: String,
    /// comm, plus `@` and the process's NAME or SERVICE_NAME environment variable when set.
    pub service: String,
    pub method: String,
    /// Protocol of the request, e.g. `HTTP/1.1`.
    pub proto: String,
    /// Full URL: scheme://host/path?query.
    pub url: String,
    pub scheme: String,
    pub host: String,
    pub path: String,
    /// The raw query (without `?`), empty when none.
    pub query: String,
    /// HTTP status; 0 when the request failed (see `error`).
    pub status: u16,
    /// Client: the response's Content-Length (-1 when unknown); server: body bytes written.
    pub content_length: i64,
    /// Server: the peer's address (Request.RemoteAddr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    /// Client: why roundTrip failed; server: the handler's panic.
    pub error: Option<String>,
    /// OpenTelemetry's `error.type`: a failure's kind (`timeout`, `dns`, ...), the status
    /// code of a client's 4xx/5xx or a server's 5xx, `panic`; `None` otherwise.
    pub error_type: Option<String>,
    /// Server: the handler took over the connection (`Hijack`); `status` is what it set
    /// through the ResponseWriter, 0 when nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hijacked: bool,
    /// Server: the incoming W3C traceparent header, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Go's goroutine (runtime.g) address: tells concurrent requests of a process apart.
    pub goroutine: u64,
    /// The pid in the process's own pid namespace (a container's), when it differs from `pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_pid: Option<u32>,
    /// The process's container (docs/containers.md), when containers are shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ebpfctl_container::Container>,
    #[serde(skip)]
    pub start_mono_ns: u64,
    /// Which observed executable the event came from (index of its target).
    #[serde(skip)]
    pub instance: u16,
    /// The error chain as read (client error, panic value), until [`Request::resolve_error`].
    #[serde(skip)]
    pub raw_error: Vec<RawLevel>,
    #[serde(skip)]
    pub panicked: bool,
}

/// String `which` of an event: its bytes in `strs` by the string table; empty when absent
/// or out of bounds.
fn table_str(b: &[u8], which: Str) -> String {
    let i = which as usize;
    let off = usize::from(u16_at(b, STR_OFF_OFFSET + 2 * i));
    let len = usize::from(u16_at(b, STR_LEN_OFFSET + 2 * i));
    b[STRS_OFFSET..HDR_OFFSET]
        .get(off..off + len)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_default()
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

/// Offset between CLOCK_REALTIME and CLOCK_MONOTONIC (what bpf_ktime_get_ns reads), in ns.
pub fn realtime_offset_ns() -> i128 {
    fn now(clock: libc::clockid_t) -> i128 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
    }
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_MONOTONIC)
}

/// Decodes a `struct obs_proc` record: (pid, environment bytes `K=V\0K=V\0...`).
pub fn decode_proc(b: &[u8]) -> Option<(u32, &[u8])> {
    if b.len() != PROC_SIZE {
        return None;
    }
    let pid = u32_at(b, 0);
    let len = (u32_at(b, 4) as usize).min(PROC_SIZE - 8);
    Some((pid, &b[8..8 + len]))
}

impl Request {
    /// Decodes one ring buffer record; `None` when it is not an `obs_event`. The error is
    /// named by [`Request::resolve_error`].
    pub fn decode(b: &[u8], realtime_offset: i128) -> Option<Request> {
        if b.len() != HDR_OFFSET && b.len() != ERR_OFFSET && b.len() != EVENT_SIZE {
            return None;
        }
        let start = u64_at(b, 0);
        let end = u64_at(b, 8);
        let goroutine = u64_at(b, 16);
        let content_length = u64_at(b, 24) as i64;
        let pid = u32_at(b, 32);
        let tid = u32_at(b, 36);
        let mut status = u16_at(b, 40);
        let kind = match b[42] {
            1 => Kind::Client,
            2 => Kind::Server,
            _ => return None,
        };
        let flags = b[43];
        let hdr_len = (u16_at(b, 44) as usize).min(b.len().min(ERR_OFFSET) - HDR_OFFSET);
        let instance = u16_at(b, 46);
        let comm = cstr(&b[48..64]);
        let method = table_str(b, Str::Method);
        let proto = table_str(b, Str::Proto);
        let mut scheme = table_str(b, Str::Scheme);
        let host = table_str(b, Str::Host);
        let path = table_str(b, Str::Path);
        let query = table_str(b, Str::Query);
        let remote = table_str(b, Str::Remote);
        let hdr = &b[HDR_OFFSET..HDR_OFFSET + hdr_len];
        let raw_error = if b.len() == EVENT_SIZE {
            goerror::decode_raw(&b[ERR_OFFSET..])
        } else {
            Vec::new()
        };
        let mut error = None;
        let mut traceparent = None;
        let mut remote_addr = None;
        let panicked = kind == Kind::Server && flags & F_PANIC != 0;
        match kind {
            Kind::Client => {
                if flags & F_ERROR != 0 {
                    status = 0;
                    error = Some(String::new()); // named by resolve_error
                }
            }
            Kind::Server => {
                if scheme.is_empty() {
                    scheme = if flags & F_TLS != 0 { "https" } else { "http" }.into();
                }
                if panicked {
                    // net/http sends no status after a panic (HTTP/1 closes the connection,
                    // HTTP/2 resets the stream): a 500, as OpenTelemetry has it.
                    status = 500;
                    error = Some(String::new());
                } else if status == 0 && flags & F_HIJACKED == 0 {
                    // A handler that writes nothing gets its 200 from finishRequest (the
                    // probe reads the status at its entry), unless it hijacked the connection.
                    status = 200;
                }
                if !remote.is_empty() {
                    remote_addr = Some(remote);
                }
                traceparent = find_traceparent(hdr);
            }
        }
        let path_query = if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{query}")
        };
        let url = if host.is_empty() {
            path_query
        } else {
            format!(
                "{}://{}{}",
                if scheme.is_empty() { "http" } else { &scheme },
                host,
                path_query
            )
        };
        let start_unix = (start as i128 + realtime_offset).max(0) as u64;
        let mut r = Request {
            kind,
            start_unix_ns: start_unix,
            duration_ns: end.saturating_sub(start),
            pid,
            tid,
            service: comm.clone(),
            comm,
            method,
            proto,
            url,
            scheme,
            host,
            path,
            query,
            status,
            content_length,
            remote_addr,
            hijacked: kind == Kind::Server && flags & F_HIJACKED != 0,
            error,
            error_type: None,
            traceparent,
            goroutine,
            container_pid: None,
            container: None,
            start_mono_ns: start,
            instance,
            raw_error,
            panicked,
        };
        if r.error.is_none() {
            r.error_type = status_error_type(r.kind, r.status);
        }
        Some(r)
    }

    /// Names the error read by the probe (client error, panic value) with the executable's
    /// types: `error` and `error_type`.
    pub fn resolve_error(&mut self, names: &TypeNames) {
        if self.error.is_none() {
            return;
        }
        if self.panicked {
            self.error = Some(goerror::describe_panic(&self.raw_error, names));
            self.error_type = Some("panic".into());
        } else {
            let d = goerror::describe(&self.raw_error, names);
            self.error = Some(d.message);
            self.error_type = Some(d.error_type);
        }
        self.raw_error = Vec::new();
    }
}

/// `error.type` of a response: a client's 4xx and 5xx, a server's 5xx (OpenTelemetry's HTTP
/// conventions).
fn status_error_type(kind: Kind, status: u16) -> Option<String> {
    let failed = match kind {
        Kind::Client => status >= 400,
        Kind::Server => status >= 500,
    };
    failed.then(|| status.to_string())
}

/// The value of a `traceparent` header in a raw HTTP/1 request head, if well formed.
pub fn find_traceparent(head: &[u8]) -> Option<String> {
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        if !line[..colon].eq_ignore_ascii_case(b"traceparent") {
            continue;
        }
        let v = std::str::from_utf8(&line[colon + 1..]).ok()?.trim();
        return parse_traceparent(v).map(|_| v.to_ascii_lowercase());
    }
    None
}

/// (trace id, parent span id, flags) of a W3C traceparent value.
pub fn parse_traceparent(v: &str) -> Option<(u128, u64, u8)> {
    let mut it = v.split('-');
    let version = it.next()?;
    let trace = it.next()?;
    let span = it.next()?;
    let flags = it.next()?;
    if version.len() != 2
        || version == "ff"
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let t = u128::from_str_radix(trace, 16).ok()?;
    let s = u64::from_str_radix(span, 16).ok()?;
    let f = u8::from_str_radix(flags, 16).ok()?;
    (t != 0 && s != 0).then_some((t, s, f))
}

#[cfg(test)]
impl Request {
    /// A request for unit tests: `GET http://HOST/` from SERVICE.
    pub(crate) fn for_test(
        kind: Kind,
        service: &str,
        host: &str,
        status: u16,
        error: bool,
        ns: u64,
    ) -> Request {
        Request {
            kind,
            start_unix_ns: 0,
            duration_ns: ns,
            pid: 1,
            tid: 1,
            comm: "x".into(),
            service: service.into(),
            method: "GET".into(),
            proto: "HTTP/1.1".into(),
            url: String::new(),
            scheme: "http".into(),
            host: host.into(),
            path: "/".into(),
            query: String::new(),
            status,
            content_length: 0,
            remote_addr: None,
            hijacked: false,
            error: error.then(|| "dial tcp: connection refused".into()),
            error_type: if error {
                Some("connection_refused".into())
            } else {
                status_error_type(kind, status)
            },
            traceparent: None,
            goroutine: 1,
            container_pid: None,
            container: None,
            start_mono_ns: 0,
            instance: 0,
            raw_error: Vec::new(),
            panicked: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server event as the probe writes it: the request line's pieces from one span read
    /// (method, path and query inside "GET /a/b?x=1 HTTP/1.1"), host and remote put after it,
    /// the protocol composed last; one entry points past the table.
    #[test]
    fn strings_from_the_table() {
        let mut b = vec![0u8; HDR_OFFSET];
        b[42] = 2; // server
        b[48..52].copy_from_slice(b"srv\0");
        let mut put = |which: Str, off: usize, len: usize| {
            let i = which as usize;
            b[STR_OFF_OFFSET + 2 * i..][..2].copy_from_slice(&(off as u16).to_ne_bytes());
            b[STR_LEN_OFFSET + 2 * i..][..2].copy_from_slice(&(len as u16).to_ne_bytes());
        };
        put(Str::Method, 0, 3);
        put(Str::Path, 4, 4);
        put(Str::Query, 9, 3);
        put(Str::Host, 22, 9);
        put(Str::Remote, 31, 15);
        put(Str::Proto, 46, 8);
        put(Str::Scheme, 500, 20); // past the end of strs: ignored
        let strs = b"GET /a/b?x=1 HTTP/1.1\xffexample.o127.0.0.1:40000HTTP/1.1";
        b[STRS_OFFSET..STRS_OFFSET + strs.len()].copy_from_slice(strs);
        let r = Request::decode(&b, 0).unwrap();
        assert_eq!(r.comm, "srv");
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/a/b");
        assert_eq!(r.query, "x=1");
        assert_eq!(r.host, "example.o");
        assert_eq!(r.remote_addr.as_deref(), Some("127.0.0.1:40000"));
        assert_eq!(r.proto, "HTTP/1.1");
        assert_eq!(r.scheme, "http");
        assert_eq!(r.url, "http://example.o/a/b?x=1");
        // Any other length is not an event.
        assert!(Request::decode(&b[..HDR_OFFSET - 1], 0).is_none());
    }

    #[test]
    fn traceparent_in_head() {
        let head = b"GET /api HTTP/1.1\r\nHost: x\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
        assert_eq!(
            find_traceparent(head).as_deref(),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        assert_eq!(
            find_traceparent(b"GET / HTTP/1.1\r\ntraceparent: junk\r\n"),
            None
        );
    }
}
