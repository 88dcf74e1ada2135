//! Decoding `struct obs_event` (observe.h) into a [`Request`].
use serde::Serialize;

use super::goerror::{self, RawLevel, TypeNames};

/// Size of `struct obs_event`, as sent with an error (`err` filled).
pub const EVENT_SIZE: usize = 1560;
/// Offsets of `str_off` and `str_len` (u16 each, in `enum obs_str` order) and of `strs`.
const STR_OFF_OFFSET: usize = 48;
const STR_LEN_OFFSET: usize = 64;
const STRS_OFFSET: usize = 80;
/// Offset of `hdr`: events without a request head or an error end there.
const HDR_OFFSET: usize = 592;
/// Offset of `err`: events without an error end there.
const ERR_OFFSET: usize = 1104;

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

/// Size of `struct obs_proc`: pid, len, comm, 8 KiB of environment.
pub const PROC_SIZE: usize = 24 + 8192;

const F_ERROR: u8 = 1;
const F_HIJACKED: u8 = 2;
const F_TLS: u8 = 4;
const F_PANIC: u8 = 16;
const F_URI: u8 = 32;

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

/// A server request's target (Request.RequestURI) as net/http parses it into its URL
/// (url.ParseRequestURI; a CONNECT's authority form as readRequest has it): the path
/// unescaped, the query as sent.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    scheme: String,
    host: &'a str,
    path: String,
    query: &'a str,
}

impl<'a> Target<'a> {
    fn parse(method: &str, uri: &'a str) -> Target<'a> {
        let mut t = Target {
            scheme: String::new(),
            host: "",
            path: String::new(),
            query: "",
        };
        if uri == "*" {
            t.path = uri.into();
            return t;
        }
        if method == "CONNECT" && !uri.starts_with('/') {
            t.host = uri;
            return t;
        }
        // A scheme: a letter, then letters, digits, '+', '-', '.', up to a ':'.
        let mut rest = uri;
        if let Some(i) = uri.find(':') {
            let s = &uri[..i];
            let ok = s.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
            if ok {
                t.scheme = s.to_ascii_lowercase();
                rest = &uri[i + 1..];
            }
        }
        if let Some((r, q)) = rest.split_once('?') {
            (rest, t.query) = (r, q);
        }
        if !rest.starts_with('/') {
            return t; // opaque (with a scheme), or refused by net/http
        }
        if !t.scheme.is_empty() {
            if let Some(a) = rest.strip_prefix("//") {
                let (authority, p) = a.find('/').map_or((a, ""), |i| a.split_at(i));
                t.host = authority.rsplit('@').next().unwrap_or(authority);
                rest = p;
            }
        }
        t.path = unescape_path(rest);
        t
    }
}

/// `%XX` escapes decoded (as url.URL.Path has them); an invalid one is kept as it is.
fn unescape_path(s: &str) -> String {
    if !s.contains('%') {
        return s.into();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

/// A process announced by the probe (`struct obs_proc`) before its first event.
pub struct Proc<'a> {
    pub pid: u32,
    pub comm: String,
    /// Its environment, `K=V\0K=V\0...`.
    pub environ: &'a [u8],
}

/// Decodes a `struct obs_proc` record.
pub fn decode_proc(b: &[u8]) -> Option<Proc<'_>> {
    if b.len() != PROC_SIZE {
        return None;
    }
    let len = (u32_at(b, 4) as usize).min(PROC_SIZE - 24);
    Some(Proc {
        pid: u32_at(b, 0),
        comm: cstr(&b[8..24]),
        environ: &b[24..24 + len],
    })
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
        let method = table_str(b, Str::Method);
        let proto = table_str(b, Str::Proto);
        let mut scheme = table_str(b, Str::Scheme);
        let mut host = table_str(b, Str::Host);
        let mut path = table_str(b, Str::Path);
        let mut query = table_str(b, Str::Query);
        if kind == Kind::Server && flags & F_URI != 0 {
            // The path is the request's target as sent: parsed as net/http does.
            let t = Target::parse(&method, &path);
            if scheme.is_empty() {
                scheme = t.scheme;
            }
            if host.is_empty() {
                host = t.host.to_owned();
            }
            (path, query) = (t.path, t.query.to_owned());
        }
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
            // From the process's announcement: output::ServiceNames::fill.
            service: String::new(),
            comm: String::new(),
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
        fn put(b: &mut [u8], which: Str, off: usize, len: usize) {
            let i = which as usize;
            b[STR_OFF_OFFSET + 2 * i..][..2].copy_from_slice(&(off as u16).to_ne_bytes());
            b[STR_LEN_OFFSET + 2 * i..][..2].copy_from_slice(&(len as u16).to_ne_bytes());
        }
        put(&mut b, Str::Method, 0, 3);
        put(&mut b, Str::Path, 4, 4);
        put(&mut b, Str::Query, 9, 3);
        put(&mut b, Str::Host, 22, 9);
        put(&mut b, Str::Remote, 31, 15);
        put(&mut b, Str::Proto, 46, 8);
        put(&mut b, Str::Scheme, 500, 20); // past the end of strs: ignored
        let strs = b"GET /a/b?x=1 HTTP/1.1\xffexample.o127.0.0.1:40000HTTP/1.1";
        b[STRS_OFFSET..STRS_OFFSET + strs.len()].copy_from_slice(strs);
        let r = Request::decode(&b, 0).unwrap();
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
        // The path as the request's target (OBS_F_URI): split and unescaped.
        b[43] = F_URI;
        put(&mut b, Str::Path, 4, 8);
        put(&mut b, Str::Query, 0, 0);
        b[STRS_OFFSET..STRS_OFFSET + 12].copy_from_slice(b"GET /a%20b?x");
        let r = Request::decode(&b, 0).unwrap();
        assert_eq!((r.path.as_str(), r.query.as_str()), ("/a b", "x"));
        assert_eq!(r.url, "http://example.o/a b?x");
    }

    /// Targets as net/http's server parses them (url.ParseRequestURI and readRequest).
    #[test]
    fn request_targets() {
        let t = |method, uri| {
            let t = Target::parse(method, uri);
            (t.scheme, t.host.to_string(), t.path, t.query.to_string())
        };
        let s = |a: &str, b: &str, c: &str, d: &str| (a.into(), b.into(), c.into(), d.into());
        assert_eq!(t("GET", "/"), s("", "", "/", ""));
        assert_eq!(t("GET", "/p/q?a=1&b=%20"), s("", "", "/p/q", "a=1&b=%20"));
        assert_eq!(t("GET", "/a%2Fb%zz%4"), s("", "", "/a/b%zz%4", ""));
        assert_eq!(t("GET", "//x/y"), s("", "", "//x/y", ""));
        assert_eq!(t("GET", "/x?"), s("", "", "/x", ""));
        assert_eq!(t("GET", "/a:b"), s("", "", "/a:b", ""));
        assert_eq!(
            t("GET", "HTTP://u:p@Example.com:8080/p?q"),
            s("http", "Example.com:8080", "/p", "q")
        );
        assert_eq!(t("GET", "http://h"), s("http", "h", "", ""));
        assert_eq!(t("GET", "mailto:x@y"), s("mailto", "", "", ""));
        assert_eq!(t("OPTIONS", "*"), s("", "", "*", ""));
        assert_eq!(t("CONNECT", "h:443"), s("", "h:443", "", ""));
        assert_eq!(t("CONNECT", "/p"), s("", "", "/p", ""));
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
