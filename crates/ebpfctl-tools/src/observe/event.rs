//! Decoding `struct obs_event` (observe.h) into a [`Request`].
use serde::Serialize;

/// Size of `struct obs_event`; the loader checks the object's BTF agrees.
pub const EVENT_SIZE: usize = 1032;
/// Offset of `hdr`, the last field: events are sent without hdr's unused tail.
const HDR_OFFSET: usize = 520;

/// Size of `struct obs_proc`: pid, len, 8 KiB of environment.
pub const PROC_SIZE: usize = 8 + 8192;

const F_ERROR: u8 = 1;
const F_HIJACKED: u8 = 2;
const F_TLS: u8 = 4;

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
    /// Client: why roundTrip failed.
    pub error: Option<String>,
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
    /// Decodes one ring buffer record; `None` when it is not an `obs_event`.
    pub fn decode(b: &[u8], realtime_offset: i128) -> Option<Request> {
        if b.len() < HDR_OFFSET || b.len() > EVENT_SIZE {
            return None;
        }
        let start = u64_at(b, 0);
        let end = u64_at(b, 8);
        let goroutine = u64_at(b, 16);
        let content_length = u64_at(b, 24) as i64;
        let errno = u64_at(b, 32) as i64;
        let pid = u32_at(b, 56);
        let tid = u32_at(b, 60);
        let mut status = u16_at(b, 64);
        let kind = match b[66] {
            1 => Kind::Client,
            2 => Kind::Server,
            _ => return None,
        };
        let flags = b[67];
        let hdr_len = (u16_at(b, 68) as usize).min(b.len() - HDR_OFFSET);
        let comm = cstr(&b[72..88]);
        let method = cstr(&b[88..104]);
        let proto = cstr(&b[104..120]);
        let mut scheme = cstr(&b[120..128]);
        let err_net = cstr(&b[128..136]);
        let host = cstr(&b[136..200]);
        let path = cstr(&b[200..328]);
        let query = cstr(&b[328..392]);
        let remote = cstr(&b[392..456]);
        let err_msg = cstr(&b[456..520]);
        let hdr = &b[HDR_OFFSET..HDR_OFFSET + hdr_len];
        let mut error = None;
        let mut traceparent = None;
        let mut remote_addr = None;
        match kind {
            Kind::Client => {
                if flags & F_ERROR != 0 {
                    status = 0;
                    error = Some(format_error(&err_msg, &err_net, errno));
                }
            }
            Kind::Server => {
                if scheme.is_empty() {
                    scheme = if flags & F_TLS != 0 { "https" } else { "http" }.into();
                }
                // A handler that writes nothing gets its 200 from finishRequest (the probe
                // reads the status at its entry), unless it hijacked the connection.
                if status == 0 && flags & F_HIJACKED == 0 {
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
        Some(Request {
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
            traceparent,
            goroutine,
            container_pid: None,
            container: None,
            start_mono_ns: start,
        })
    }
}

fn printable(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| !c.is_control())
}

/// Builds a message from what the probe could read of the error value.
fn format_error(msg: &str, net: &str, errno: i64) -> String {
    const OPS: &[&str] = &[
        "dial",
        "read",
        "write",
        "close",
        "accept",
        "listen",
        "proxyconnect",
    ];
    if OPS.contains(&msg) {
        let mut s = msg.to_string();
        if printable(net) && net.chars().all(|c| c.is_ascii_alphanumeric()) {
            s.push(' ');
            s.push_str(net);
        }
        if (1..4096).contains(&errno) {
            let e = std::io::Error::from_raw_os_error(errno as i32).to_string();
            let e = e.split(" (os error").next().unwrap_or(&e).to_string();
            let mut chars = e.chars();
            let e = match chars.next() {
                Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
                None => e,
            };
            s.push_str(": ");
            s.push_str(&e);
        }
        return s;
    }
    if printable(msg) {
        return msg.to_string();
    }
    "request failed (error value not readable)".to_string()
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
            traceparent: None,
            goroutine: 1,
            container_pid: None,
            container: None,
            start_mono_ns: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn errors() {
        assert_eq!(
            format_error("dial", "tcp", 111),
            "dial tcp: connection refused"
        );
        assert_eq!(
            format_error("net/http: request canceled", "", 0),
            "net/http: request canceled"
        );
        assert_eq!(
            format_error("", "", 0),
            "request failed (error value not readable)"
        );
    }
}
