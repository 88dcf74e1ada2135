//! Go error values as the probe reads them (`struct obs_err`): the layouts the probe follows
//! (map `err_types`), and the message and OpenTelemetry `error.type` made of what it read.
//!
//! The probe walks an error's chain of wrapped errors, up to four levels: at each level the
//! concrete type (its address in the file, named through the binary's type data) and, by
//! that type's layout here, up to three strings, an integer and the wrapped error. A type
//! without a layout here is read as a string, or as a wrapper when its first word is the
//! itab of another error type. Messages follow Go's `Error()` texts, without the addresses
//! of `*net.OpError` (e.g. `dial tcp: connection refused`).
use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use super::goelf::{GoTypes, GoVersion};
use super::moduledata::{type_name, Memory};

const NONE: u16 = 0xffff; // OBS_ERR_NONE
const ED_GUESS: u8 = 1; // OBS_ED_GUESS

/// How the probe reads one error type (see `struct obs_err_desc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The type as `%T` prints it.
    pub name: &'static str,
    /// The struct in DWARF (full package path), to check the offsets against; `None` for
    /// types that are not structs.
    pub dwarf: Option<&'static str>,
    /// String fields (name, offset), in the order they are read.
    pub strs: &'static [(&'static str, u16)],
    /// The wrapped error (an interface).
    pub next: Option<(&'static str, u16)>,
    /// An integer field (name, offset, size).
    pub num: Option<(&'static str, u16, u8)>,
}

const fn lay(name: &'static str, dwarf: Option<&'static str>) -> Layout {
    Layout {
        name,
        dwarf,
        strs: &[],
        next: None,
        num: None,
    }
}

impl Layout {
    const fn strs(mut self, s: &'static [(&'static str, u16)]) -> Layout {
        self.strs = s;
        self
    }
    const fn next(mut self, field: &'static str, off: u16) -> Layout {
        self.next = Some((field, off));
        self
    }
    const fn num(mut self, field: &'static str, off: u16, size: u8) -> Layout {
        self.num = Some((field, off, size));
        self
    }

    /// `struct obs_err_desc` (observe.h).
    pub fn desc(&self) -> [u8; 12] {
        let mut str = [NONE; 3];
        for (slot, (_, off)) in str.iter_mut().zip(self.strs) {
            *slot = *off;
        }
        let next = self.next.map_or(NONE, |(_, o)| o);
        let (num, size) = self.num.map_or((NONE, 0), |(_, o, s)| (o, s));
        desc_bytes(str, next, num, size, 0)
    }
}

fn desc_bytes(str: [u16; 3], next: u16, num: u16, size: u8, flags: u8) -> [u8; 12] {
    let mut b = [0u8; 12];
    for (i, v) in str.iter().chain([&next, &num]).enumerate() {
        b[2 * i..2 * i + 2].copy_from_slice(&v.to_ne_bytes());
    }
    b[10] = size;
    b[11] = flags;
    b
}

/// The "don't know, guess" layout: a string or a wrapped error at offset 0.
pub fn guess_desc() -> [u8; 12] {
    desc_bytes([NONE; 3], NONE, NONE, 0, ED_GUESS)
}

/// Layouts of the standard library's error types that client requests and panics meet,
/// for Go `v` (amd64 offsets; the integration tests compare them with each toolchain's
/// DWARF). Types with nothing to read are listed too, so nothing is guessed for them.
pub fn layouts(v: GoVersion) -> Vec<Layout> {
    let mut l = vec![
        lay("*errors.errorString", Some("errors.errorString")).strs(&[("s", 0)]),
        lay("*fmt.wrapError", Some("fmt.wrapError"))
            .strs(&[("msg", 0)])
            .next("err", 16),
        lay("*fmt.wrapErrors", Some("fmt.wrapErrors")).strs(&[("msg", 0)]),
        lay("*net.OpError", Some("net.OpError"))
            .strs(&[("Op", 0), ("Net", 16)])
            .next("Err", 64),
        lay("*os.SyscallError", Some("os.SyscallError")).next("Err", 16),
        lay("syscall.Errno", None).num("", 0, 8),
        lay("*url.Error", Some("net/url.Error"))
            .strs(&[("Op", 0), ("URL", 16)])
            .next("Err", 32),
        lay("*fs.PathError", Some("io/fs.PathError"))
            .strs(&[("Op", 0), ("Path", 16)])
            .next("Err", 32),
        lay("*net.AddrError", Some("net.AddrError")).strs(&[("Err", 0), ("Addr", 16)]),
        lay("*net.ParseError", Some("net.ParseError")).strs(&[("Type", 0), ("Text", 16)]),
        lay("context.deadlineExceededError", None),
        lay("*poll.DeadlineExceededError", None),
        lay("*net.timeoutError", None),
        lay("net.canceledError", None),
        lay("poll.errNetClosing", None),
        lay("*http.httpError", Some("net/http.httpError"))
            .strs(&[("err", 0)])
            .num("timeout", 16, 1),
        lay("http.tlsHandshakeTimeoutError", None),
        lay(
            "http.nothingWrittenError",
            Some("net/http.nothingWrittenError"),
        )
        .next("error", 0),
        lay(
            "http.transportReadFromServerError",
            Some("net/http.transportReadFromServerError"),
        )
        .next("err", 0),
        // HTTP/2, bundled into net/http before Go 1.27 and its own package since.
        lay("*http.http2httpError", Some("net/http.http2httpError"))
            .strs(&[("msg", 0)])
            .num("timeout", 16, 1),
        lay(
            "*http2.httpError",
            Some("net/http/internal/http2.httpError"),
        )
        .strs(&[("msg", 0)])
        .num("timeout", 16, 1),
        lay("http.http2StreamError", Some("net/http.http2StreamError"))
            .num("Code", 4, 4)
            .next("Cause", 8),
        lay(
            "http2.StreamError",
            Some("net/http/internal/http2.StreamError"),
        )
        .num("Code", 4, 4)
        .next("Cause", 8),
        lay("http.http2GoAwayError", Some("net/http.http2GoAwayError"))
            .num("ErrCode", 4, 4)
            .strs(&[("DebugData", 8)]),
        lay(
            "http2.GoAwayError",
            Some("net/http/internal/http2.GoAwayError"),
        )
        .num("ErrCode", 4, 4)
        .strs(&[("DebugData", 8)]),
        lay("http.http2ConnectionError", None).num("", 0, 4),
        lay("http2.ConnectionError", None).num("", 0, 4),
        lay(
            "*tls.CertificateVerificationError",
            Some("crypto/tls.CertificateVerificationError"),
        )
        .next("Err", 24),
        lay(
            "tls.RecordHeaderError",
            Some("crypto/tls.RecordHeaderError"),
        )
        .strs(&[("Msg", 0)]),
        lay("tls.alert", None).num("", 0, 1),
        lay("tls.AlertError", None).num("", 0, 1),
        lay("*tls.permanentError", Some("crypto/tls.permanentError")).next("err", 0),
        lay("x509.UnknownAuthorityError", None),
        lay("x509.HostnameError", Some("crypto/x509.HostnameError")).strs(&[("Host", 8)]),
        lay(
            "x509.CertificateInvalidError",
            Some("crypto/x509.CertificateInvalidError"),
        )
        .num("Reason", 8, 8)
        .strs(&[("Detail", 16)]),
        lay(
            "x509.SystemRootsError",
            Some("crypto/x509.SystemRootsError"),
        )
        .next("Err", 0),
        lay("x509.UnhandledCriticalExtension", None),
        lay("x509.ConstraintViolationError", None),
        lay("x509.InsecureAlgorithmError", None).num("", 0, 8),
        lay("runtime.boundsError", Some("runtime.boundsError")).num("code", 17, 1),
        lay("*runtime.TypeAssertionError", None),
    ];
    // net.DNSError gained UnwrapErr, first, in Go 1.23.
    let dns = if v.major > 1 || v.minor >= 23 {
        lay("*net.DNSError", Some("net.DNSError"))
            .strs(&[("Err", 16), ("Name", 32), ("Server", 48)])
            .num("IsTimeout", 64, 1)
            .next("UnwrapErr", 0)
    } else {
        lay("*net.DNSError", Some("net.DNSError"))
            .strs(&[("Err", 0), ("Name", 16), ("Server", 32)])
            .num("IsTimeout", 48, 1)
    };
    l.push(dns);
    l
}

/// The `err_types` entries of a binary: every type with an `error` itab, with its layout
/// when known, else the guessing one; known layouts first (a map too small for a huge
/// binary keeps those).
pub fn map_entries(types: &GoTypes, v: GoVersion) -> Vec<(u64, [u8; 12])> {
    let known: HashMap<&str, Layout> = layouts(v).into_iter().map(|l| (l.name, l)).collect();
    let (mut with, without): (Vec<_>, Vec<_>) = types
        .errors
        .iter()
        .map(|(addr, name)| match known.get(name.as_str()) {
            Some(l) => (true, (*addr, l.desc())),
            None => (false, (*addr, guess_desc())),
        })
        .partition(|(k, _)| *k);
    with.extend(without);
    with.into_iter().map(|(_, e)| e).collect()
}

/// One level of an error chain as the probe read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLevel {
    /// The type's address in the file.
    pub type_addr: u64,
    pub num: i64,
    pub strs: Vec<String>,
}

/// Sizes in `struct obs_err`.
const DEPTH: usize = 4;
const STRS: usize = 6;
const STR_LEN: usize = 64;
/// Size of `struct obs_err`.
pub const ERR_SIZE: usize = 456;

/// Decodes `struct obs_err`.
pub fn decode_raw(b: &[u8]) -> Vec<RawLevel> {
    if b.len() < ERR_SIZE {
        return Vec::new();
    }
    let u64_at = |at: usize| u64::from_ne_bytes(b[at..at + 8].try_into().unwrap_or_default());
    let mut out = Vec::new();
    let mut slot = 0;
    for i in 0..DEPTH {
        let type_addr = u64_at(8 * i);
        if type_addr == 0 {
            break;
        }
        let n = b[64 + i] as usize;
        let mut strs = Vec::new();
        for _ in 0..n {
            if slot >= STRS {
                break;
            }
            let s = &b[72 + slot * STR_LEN..72 + (slot + 1) * STR_LEN];
            let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
            strs.push(String::from_utf8_lossy(&s[..end]).into_owned());
            slot += 1;
        }
        out.push(RawLevel {
            type_addr,
            num: u64_at(32 + 8 * i) as i64,
            strs,
        });
    }
    out
}

/// The executable's bytes read from the file when an event needs a type's name.
struct FileMemory {
    file: std::fs::File,
    /// (virtual address, file offset, size) of the loaded segments.
    segs: Vec<(u64, u64, u64)>,
}

impl Memory for FileMemory {
    fn read(&self, va: u64, len: usize) -> Option<Vec<u8>> {
        let &(sva, off, _) = self
            .segs
            .iter()
            .find(|(sva, _, size)| va >= *sva && va + len as u64 <= sva + size)?;
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, off + (va - sva)).ok()?;
        Some(buf)
    }
}

/// Names the types of error chains for one executable: the `error` types known from the
/// analysis, others (panic values) read from the file, kept open, on first use.
pub struct TypeNames {
    known: HashMap<u64, String>,
    file: Option<FileMemory>,
    range: (u64, u64),
    cache: Mutex<HashMap<u64, Option<String>>>,
}

impl TypeNames {
    /// For the executable at `path` with its analysed `types` (`None`: names unknown).
    pub fn new(path: &Path, types: Option<&GoTypes>) -> TypeNames {
        let Some(t) = types else {
            return TypeNames {
                known: HashMap::new(),
                file: None,
                range: (0, 0),
                cache: Mutex::new(HashMap::new()),
            };
        };
        let file = std::fs::File::open(path).ok().map(|file| FileMemory {
            file,
            segs: t.segments.clone(),
        });
        TypeNames {
            known: t.errors.iter().cloned().collect(),
            file,
            range: (t.types, t.etypes),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn name(&self, addr: u64) -> Option<String> {
        if let Some(n) = self.known.get(&addr) {
            return Some(n.clone());
        }
        let f = self.file.as_ref()?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(addr)
            .or_insert_with(|| type_name(f, self.range.0, self.range.1, addr))
            .clone()
    }
}

/// A decoded error: Go-like message and the OpenTelemetry `error.type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub message: String,
    pub error_type: String,
}

struct Level<'a> {
    name: String,
    raw: &'a RawLevel,
}

impl Level<'_> {
    fn s(&self, i: usize) -> &str {
        self.raw.strs.get(i).map_or("", String::as_str)
    }
}

/// Message and `error.type` of a client request's error chain.
pub fn describe(levels: &[RawLevel], names: &TypeNames) -> Described {
    let levels: Vec<Level<'_>> = levels
        .iter()
        .map(|raw| Level {
            name: names.name(raw.type_addr).unwrap_or_default(),
            raw,
        })
        .collect();
    let message = message(&levels).unwrap_or_else(|| match levels.first() {
        Some(l) if !l.name.is_empty() => format!("error of type {}", l.name),
        _ => "request failed (error value not readable)".into(),
    });
    let error_type = levels
        .iter()
        .rev()
        .find_map(category)
        .unwrap_or("_OTHER")
        .to_string();
    Described {
        message,
        error_type,
    }
}

/// The message of a handler's panic value.
pub fn describe_panic(levels: &[RawLevel], names: &TypeNames) -> String {
    let Some(first) = levels.first() else {
        return "panic".into();
    };
    let name = names.name(first.type_addr).unwrap_or_default();
    if name == "string" {
        return format!("panic: {}", first.strs.first().map_or("", String::as_str));
    }
    let d = describe(levels, names);
    if d.message.starts_with("error of type ") || d.message.starts_with("request failed") {
        match name.as_str() {
            "" => "panic".into(),
            n => format!("panic: value of type {n}"),
        }
    } else {
        format!("panic: {}", d.message)
    }
}

fn printable(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| !c.is_control())
}

/// The message of levels[0], made with the message of what it wraps.
fn message(levels: &[Level<'_>]) -> Option<String> {
    let (l, rest) = levels.split_first()?;
    let inner = || message(rest);
    let with_inner = |head: String| match inner() {
        Some(i) if head.is_empty() => i,
        Some(i) => format!("{head}: {i}"),
        None => head,
    };
    let n = l.raw.num;
    let m = match l.name.trim_start_matches('*') {
        "net.OpError" => {
            let mut head = l.s(0).to_string();
            if printable(l.s(1)) {
                head = format!("{head} {}", l.s(1));
            }
            with_inner(head)
        }
        "os.SyscallError"
        | "http.nothingWrittenError"
        | "http.transportReadFromServerError"
        | "tls.permanentError" => inner()?,
        "syscall.Errno" => errno_text(n),
        "net.DNSError" => {
            let mut s = format!("lookup {}", l.s(1));
            if !l.s(2).is_empty() {
                s = format!("{s} on {}", l.s(2));
            }
            format!("{s}: {}", l.s(0))
        }
        "url.Error" => with_inner(format!("{} \"{}\"", l.s(0), l.s(1))),
        "fs.PathError" => with_inner(format!("{} {}", l.s(0), l.s(1))),
        "net.AddrError" => format!("address {}: {}", l.s(1), l.s(0)),
        "net.ParseError" => format!("invalid {}: {}", l.s(0), l.s(1)),
        "context.deadlineExceededError" => "context deadline exceeded".into(),
        "poll.DeadlineExceededError" | "net.timeoutError" => "i/o timeout".into(),
        "net.canceledError" => "operation was canceled".into(),
        "poll.errNetClosing" => "use of closed network connection".into(),
        "http.tlsHandshakeTimeoutError" => "net/http: TLS handshake timeout".into(),
        "tls.CertificateVerificationError" => {
            with_inner("tls: failed to verify certificate".into())
        }
        "tls.alert" | "tls.AlertError" => format!("tls: {}", alert_text(n)),
        "x509.UnknownAuthorityError" => "x509: certificate signed by unknown authority".into(),
        "x509.HostnameError" => format!("x509: certificate is not valid for {}", l.s(0)),
        "x509.CertificateInvalidError" => invalid_reason(n, l.s(0)),
        "x509.SystemRootsError" => {
            let head = "x509: failed to load system roots and no roots provided".to_string();
            match inner() {
                Some(i) => format!("{head}; {i}"),
                None => head,
            }
        }
        "x509.UnhandledCriticalExtension" => "x509: unhandled critical extension".into(),
        "x509.ConstraintViolationError" => {
            "x509: invalid signature: parent certificate cannot sign this kind of certificate"
                .into()
        }
        "x509.InsecureAlgorithmError" => "x509: cannot verify signature: insecure algorithm".into(),
        "http.http2StreamError" | "http2.StreamError" => {
            with_inner(format!("stream error: {}", h2_code(n)))
        }
        "http.http2GoAwayError" | "http2.GoAwayError" => {
            format!(
                "http2: server sent GOAWAY and closed the connection; ErrCode={}",
                h2_code(n)
            )
        }
        "http.http2ConnectionError" | "http2.ConnectionError" => {
            format!("connection error: {}", h2_code(n))
        }
        "runtime.errorString" => format!("runtime error: {}", l.s(0)),
        "runtime.boundsError" => match n {
            0 => "runtime error: index out of range".into(),
            _ => "runtime error: slice bounds out of range".into(),
        },
        "runtime.TypeAssertionError" => "interface conversion: type assertion failed".into(),
        // Strings first (errors.errorString, fmt.wrapError's full message, httpError, ...),
        // else what it wraps.
        _ if printable(l.s(0)) => l.s(0).to_string(),
        _ => inner()?,
    };
    Some(m)
}

/// `error.type` from one level, when it tells.
fn category(l: &Level<'_>) -> Option<&'static str> {
    let name = l.name.trim_start_matches('*');
    let n = l.raw.num;
    match name {
        "syscall.Errno" => {
            return match n {
                111 => Some("connection_refused"),
                104 | 32 | 103 => Some("connection_reset"),
                110 => Some("timeout"),
                99..=101 | 112 | 113 => Some("unreachable"),
                _ => None,
            }
        }
        "net.DNSError" => return Some("dns"),
        "context.deadlineExceededError"
        | "poll.DeadlineExceededError"
        | "net.timeoutError"
        | "http.tlsHandshakeTimeoutError" => return Some("timeout"),
        "http.httpError" | "http.http2httpError" | "http2.httpError" if n != 0 => {
            return Some("timeout")
        }
        "net.canceledError" => return Some("canceled"),
        _ => {}
    }
    if name.starts_with("x509.") || name.starts_with("tls.") {
        return Some("tls");
    }
    if name.starts_with("http2.") || name.starts_with("http.http2") {
        return Some("http2");
    }
    let s = l.s(0);
    match s {
        "context canceled" => Some("canceled"),
        "context deadline exceeded" => Some("timeout"),
        "EOF" | "unexpected EOF" => Some("connection_closed"),
        _ if s.starts_with("net/http: request canceled") => Some("canceled"),
        _ if s.contains("timeout") || s.contains("Timeout") => Some("timeout"),
        _ if s.starts_with("tls: ") || s.starts_with("x509: ") => Some("tls"),
        _ if s.contains("malformed HTTP") => Some("protocol"),
        _ if s.contains("server closed idle connection")
            || s.contains("transport connection broken") =>
        {
            Some("connection_closed")
        }
        _ => None,
    }
}

/// Go's text of an errno: the C library's, first letter lower-cased.
fn errno_text(errno: i64) -> String {
    if !(1..4096).contains(&errno) {
        return format!("errno {errno}");
    }
    let e = std::io::Error::from_raw_os_error(errno as i32).to_string();
    let e = e.split(" (os error").next().unwrap_or(&e).to_string();
    let mut chars = e.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => e,
    }
}

/// crypto/tls's alert texts.
fn alert_text(code: i64) -> String {
    let t = match code {
        0 => "close notify",
        10 => "unexpected message",
        20 => "bad record MAC",
        21 => "decryption failed",
        22 => "record overflow",
        30 => "decompression failure",
        40 => "handshake failure",
        42 => "bad certificate",
        43 => "unsupported certificate",
        44 => "revoked certificate",
        45 => "expired certificate",
        46 => "unknown certificate",
        47 => "illegal parameter",
        48 => "unknown certificate authority",
        49 => "access denied",
        50 => "error decoding message",
        51 => "error decrypting message",
        70 => "protocol version not supported",
        71 => "insufficient security level",
        80 => "internal error",
        86 => "inappropriate fallback",
        90 => "user canceled",
        100 => "no renegotiation",
        109 => "missing extension",
        110 => "unsupported extension",
        112 => "unrecognized name",
        116 => "certificate required",
        120 => "no application protocol",
        _ => return format!("alert({code})"),
    };
    t.to_string()
}

/// crypto/x509's CertificateInvalidError texts by Reason.
fn invalid_reason(reason: i64, detail: &str) -> String {
    let with = |s: &str| {
        if detail.is_empty() {
            s.to_string()
        } else {
            format!("{s}: {detail}")
        }
    };
    match reason {
        0 => "x509: certificate is not authorized to sign other certificates".into(),
        1 => with("x509: certificate has expired or is not yet valid"),
        2 => {
            with("x509: a root or intermediate certificate is not authorized to sign for this name")
        }
        3 => with(
            "x509: a root or intermediate certificate is not authorized for an extended key usage",
        ),
        4 => "x509: too many intermediates for path length constraint".into(),
        5 => "x509: certificate specifies an incompatible key usage".into(),
        6 => "x509: issuer name does not match subject from issuing certificate".into(),
        7 => "x509: issuer has name constraints but leaf doesn't have a SAN extension".into(),
        8 => with(
            "x509: issuer has name constraints but leaf contains unknown or unconstrained name",
        ),
        9 => with("x509: no valid chains built"),
        _ => "x509: unknown error".into(),
    }
}

/// HTTP/2 error code names (RFC 9113).
fn h2_code(code: i64) -> String {
    let names = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| names.get(i))
        .map_or_else(
            || format!("unknown error code {code:#x}"),
            |s| s.to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pairs: &[(u64, &str)]) -> TypeNames {
        TypeNames {
            known: pairs.iter().map(|(a, n)| (*a, n.to_string())).collect(),
            file: None,
            range: (0, 0),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn lvl(type_addr: u64, num: i64, strs: &[&str]) -> RawLevel {
        RawLevel {
            type_addr,
            num,
            strs: strs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn chains() {
        let n = names(&[
            (1, "*net.OpError"),
            (2, "*os.SyscallError"),
            (3, "syscall.Errno"),
            (4, "*net.DNSError"),
            (5, "context.deadlineExceededError"),
            (6, "*tls.CertificateVerificationError"),
            (7, "x509.UnknownAuthorityError"),
            (8, "*errors.errorString"),
            (9, "reverseproxy.DialError"),
            (10, "*fmt.wrapError"),
        ]);
        let d = describe(
            &[
                lvl(1, 0, &["dial", "tcp"]),
                lvl(2, 0, &[]),
                lvl(3, 111, &[]),
            ],
            &n,
        );
        assert_eq!(d.message, "dial tcp: connection refused");
        assert_eq!(d.error_type, "connection_refused");
        let d = describe(
            &[
                lvl(1, 0, &["dial", "tcp"]),
                lvl(4, 0, &["no such host", "nope.invalid", "127.0.0.53:53"]),
            ],
            &n,
        );
        assert_eq!(
            d.message,
            "dial tcp: lookup nope.invalid on 127.0.0.53:53: no such host"
        );
        assert_eq!(d.error_type, "dns");
        let d = describe(&[lvl(5, 0, &[])], &n);
        assert_eq!(
            (d.message.as_str(), d.error_type.as_str()),
            ("context deadline exceeded", "timeout")
        );
        let d = describe(&[lvl(6, 0, &[]), lvl(7, 0, &[])], &n);
        assert_eq!(
            d.message,
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        );
        assert_eq!(d.error_type, "tls");
        // A wrapper of unknown layout whose first field is the error (the probe followed it).
        let d = describe(
            &[
                lvl(9, 0, &[]),
                lvl(1, 0, &["dial", "tcp"]),
                lvl(2, 0, &[]),
                lvl(3, 111, &[]),
            ],
            &n,
        );
        assert_eq!(d.message, "dial tcp: connection refused");
        let d = describe(&[lvl(8, 0, &["net/http: request canceled"])], &n);
        assert_eq!(d.error_type, "canceled");
        let d = describe(
            &[
                lvl(10, 0, &["get: context deadline exceeded"]),
                lvl(5, 0, &[]),
            ],
            &n,
        );
        assert_eq!(
            (d.message.as_str(), d.error_type.as_str()),
            ("get: context deadline exceeded", "timeout")
        );
        let d = describe(&[lvl(8, 0, &["something odd"])], &n);
        assert_eq!(d.error_type, "_OTHER");
        assert_eq!(
            describe(&[], &n).message,
            "request failed (error value not readable)"
        );
    }

    #[test]
    fn descs() {
        let v = GoVersion {
            major: 1,
            minor: 22,
            patch: 0,
        };
        let op = layouts(v)
            .into_iter()
            .find(|l| l.name == "*net.OpError")
            .unwrap();
        let d = op.desc();
        let u16_at = |i: usize| u16::from_ne_bytes([d[2 * i], d[2 * i + 1]]);
        assert_eq!(
            (u16_at(0), u16_at(1), u16_at(2), u16_at(3), u16_at(4)),
            (0, 16, NONE, 64, NONE)
        );
        assert_eq!(guess_desc()[11], ED_GUESS);
    }
}
