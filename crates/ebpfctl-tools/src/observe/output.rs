//! Printing requests: one log line each, or JSON lines; and naming processes.
use std::collections::HashMap;
use std::io::Write;

use super::event::{Kind, Request};
use super::otlp::ProcessIdentity;
use crate::common::live::{Event, TallySpec, ViewSpec};

/// Output format of `observe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Log,
    Json,
    /// Nothing per request (metrics, traces or the graph only).
    None,
}

/// Names processes `comm@NAME` (or `comm@SERVICE_NAME`) from their command name and
/// environment, and keeps their OpenTelemetry service name, cached per PID. The probe sends
/// each process's comm and environment before its first event (so processes that exit right
/// away are named too; events do not carry the comm); /proc/PID is the fallback.
#[derive(Default)]
pub struct ServiceNames {
    service: HashMap<u32, Known>,
}

struct Known {
    comm: String,
    id: ProcessIdentity,
}

impl ServiceNames {
    /// Records the process announced by the probe.
    pub fn learn(&mut self, pid: u32, comm: String, environ: &[u8]) {
        self.forget_exited();
        let id = identity_from_environ(environ);
        self.service.insert(pid, Known { comm, id });
    }

    fn known(&mut self, pid: u32) -> &Known {
        if !self.service.contains_key(&pid) {
            self.forget_exited();
            let id = std::fs::read(format!("/proc/{pid}/environ"))
                .map(|e| identity_from_environ(&e))
                .unwrap_or_default();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end_matches('\n').to_string())
                .unwrap_or_default();
            self.service.insert(pid, Known { comm, id });
        }
        &self.service[&pid]
    }

    /// What names `pid`, learnt from the probe or read now.
    pub fn identity(&mut self, pid: u32) -> &ProcessIdentity {
        &self.known(pid).id
    }

    /// Sets the comm and service of `r`: the process's comm, else `fallback` (the
    /// executable's name, for a process gone before it could be read).
    pub fn fill(&mut self, r: &mut Request, fallback: &str) {
        let k = self.known(r.pid);
        r.comm = if k.comm.is_empty() {
            fallback.to_string()
        } else {
            k.comm.clone()
        };
        r.service = match &k.id.name {
            Some(s) => format!("{}@{s}", r.comm),
            None => r.comm.clone(),
        };
    }

    /// Bounds the cache: PIDs of exited processes are forgotten (and may be reused).
    fn forget_exited(&mut self) {
        if self.service.len() > 4096 {
            self.service
                .retain(|p, _| std::path::Path::new(&format!("/proc/{p}")).exists());
        }
    }
}

/// From an environment block: NAME or SERVICE_NAME (NAME first), and OTEL_SERVICE_NAME or
/// else `service.name` in OTEL_RESOURCE_ATTRIBUTES.
fn identity_from_environ(env: &[u8]) -> ProcessIdentity {
    let (mut name, mut service_name, mut otel, mut otel_attr) = (None, None, None, None);
    let text = |v: &[u8]| (!v.is_empty()).then(|| String::from_utf8_lossy(v).into_owned());
    for var in env.split(|&b| b == 0) {
        if let Some(v) = var.strip_prefix(b"NAME=") {
            name = name.or(text(v));
        } else if let Some(v) = var.strip_prefix(b"SERVICE_NAME=") {
            service_name = service_name.or(text(v));
        } else if let Some(v) = var.strip_prefix(b"OTEL_SERVICE_NAME=") {
            otel = otel.or(text(v));
        } else if let Some(v) = var.strip_prefix(b"OTEL_RESOURCE_ATTRIBUTES=") {
            otel_attr = String::from_utf8_lossy(v).split(',').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (k.trim() == "service.name" && !v.trim().is_empty()).then(|| v.trim().to_string())
            });
        }
    }
    ProcessIdentity {
        otel_service_name: otel.or(otel_attr),
        name: name.or(service_name),
    }
}

/// The reason phrase of common status codes.
pub fn status_text(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        418 => "I'm a teapot",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// `1.3 ms`, `850 µs`, `2.04 s`.
pub fn format_duration(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{} µs", (ns + 500) / 1000)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

/// One line, e.g. `frontend@web -[GET HTTP/1.1]-> http://localhost:9091/api [200 OK, 512 B, 1.3 ms]`.
pub fn log_line(r: &Request) -> String {
    let outcome = match &r.error {
        Some(e) if r.kind == Kind::Client => {
            format!("error: {e}, {}", format_duration(r.duration_ns))
        }
        // A handler's panic: the 500 it stands for, and what it panicked with.
        Some(e) => format!(
            "{} {}, {e}, {}",
            r.status,
            status_text(r.status),
            format_duration(r.duration_ns)
        ),
        None => {
            let text = status_text(r.status);
            let mut status = if text.is_empty() {
                r.status.to_string()
            } else {
                format!("{} {text}", r.status)
            };
            if r.hijacked {
                status = match r.status {
                    0 => "hijacked".to_string(),
                    _ => format!("{status}, hijacked"),
                };
            }
            let size = if r.content_length < 0 {
                "? B".to_string()
            } else {
                format!("{} B", r.content_length)
            };
            format!("{status}, {size}, {}", format_duration(r.duration_ns))
        }
    };
    let proto = if r.proto.is_empty() {
        String::new()
    } else {
        format!(" {}", r.proto)
    };
    let line = match r.kind {
        Kind::Client => format!(
            "{} -[{}{proto}]-> {} [{outcome}]",
            r.service, r.method, r.url
        ),
        Kind::Server => {
            let from = r.remote_addr.as_deref().unwrap_or("?");
            format!(
                "{from} -[{}{proto}]-> {} {} [{outcome}]",
                r.method, r.service, r.url
            )
        }
    };
    match &r.container {
        Some(c) => format!("{line} (container {})", c.display_name()),
        None => line,
    }
}

/// The live view: one log row per request, and count, errors and p50/p99 duration per
/// (side, method, route).
pub fn live_spec() -> ViewSpec {
    let columns = [
        "time", "side", "service", "method", "status", "duration", "route", "error",
    ];
    ViewSpec {
        log: "requests".into(),
        columns: columns.into_iter().map(String::from).collect(),
        tallies: vec![TallySpec {
            title: "requests by route".into(),
            noun: "routes".into(),
            keys: ["side", "method", "route"].map(String::from).to_vec(),
            count: "count".into(),
            errors: "errors".into(),
            durations: true,
        }],
    }
}

/// What a request is counted under: a client's host and path, a server's path.
fn route(r: &Request) -> String {
    match r.kind {
        Kind::Client => format!("{}{}", r.host, r.path),
        Kind::Server => r.path.clone(),
    }
}

/// The live view's event for one request.
pub fn live_event(r: &Request) -> Event {
    let side = r.kind.as_str().to_string();
    let route = route(r).replace(['\n', '\r'], "?");
    let status = match r.status {
        0 => "-".to_string(),
        s => s.to_string(),
    };
    let error = r
        .error
        .as_deref()
        .or(r.error_type.as_deref())
        .unwrap_or("")
        .replace(['\n', '\r'], " ");
    Event {
        cells: vec![
            crate::common::fmt::local_hms(i128::from(r.start_unix_ns)),
            side.clone(),
            r.service.clone(),
            r.method.clone(),
            status,
            format_duration(r.duration_ns),
            route.clone(),
            error,
        ],
        keys: vec![vec![side, r.method.clone(), route]],
        error: r.error_type.is_some(),
        duration_ns: Some(r.duration_ns),
    }
}

/// Writes one request in `format`.
pub fn write_request(
    w: &mut (impl Write + ?Sized),
    format: Format,
    r: &Request,
) -> std::io::Result<()> {
    match format {
        Format::Log => writeln!(w, "{}", log_line(r)),
        Format::Json => {
            serde_json::to_writer(&mut *w, r)?;
            writeln!(w)
        }
        Format::None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        let id = identity_from_environ(
            b"A=1\0NAME=web\0SERVICE_NAME=svc\0OTEL_RESOURCE_ATTRIBUTES=a=b,service.name=orders\0",
        );
        assert_eq!(id.name.as_deref(), Some("web"));
        assert_eq!(id.otel_service_name.as_deref(), Some("orders"));
        let id = identity_from_environ(b"SERVICE_NAME=svc\0OTEL_SERVICE_NAME=shop\0");
        assert_eq!(id.name.as_deref(), Some("svc"));
        assert_eq!(id.otel_service_name.as_deref(), Some("shop"));
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(1_300_000), "1.3 ms");
        assert_eq!(format_duration(850_000), "850 µs");
        assert_eq!(format_duration(2_040_000_000), "2.04 s");
    }
}
