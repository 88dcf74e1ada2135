//! OTLP/HTTP (protobuf) trace export with the OpenTelemetry SDK's exporter: one span per
//! request, with the probe's start and end times. Client spans start new traces; a server
//! span whose request carried a W3C `traceparent` header becomes a child of the caller's
//! span (read only: nothing is injected into the observed program).
//!
//! Each observed process is its own resource (`service.name`, `process.pid`,
//! `process.executable.path`, `telemetry.sdk.*`). Spans are made here and handed to one
//! thread, which batches them by process and sends each batch with its resource through
//! one exporter (a tracer provider per process would be a thread per process).
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SpanData, SpanEvents, SpanExporter, SpanLinks,
};
use opentelemetry_sdk::Resource;

use super::event::{parse_traceparent, Kind, Request};
use super::metrics::error_type;
use super::ObserveError;

/// Spans sent in one request at most, and how long one waits to be sent.
const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Spans queued for the sending thread at most; more are dropped (counted).
const QUEUE: usize = 8192;

/// Exports spans to one OTLP/HTTP collector.
pub struct OtlpExporter {
    tx: Option<SyncSender<(u32, Arc<Resource>, SpanData)>>,
    thread: Option<JoinHandle<()>>,
    resources: HashMap<u32, Arc<Resource>>,
    ids: RandomIdGenerator,
    scope: InstrumentationScope,
    dropped: u64,
}

/// `http://host:4318` → `http://host:4318/v1/traces` (a URL already ending so is kept).
pub fn traces_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/traces") {
        e.to_string()
    } else {
        format!("{e}/v1/traces")
    }
}

/// What names a process in its resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// `OTEL_SERVICE_NAME`, or `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, from the
    /// process's environment.
    pub otel_service_name: Option<String>,
    /// Its `NAME` or `SERVICE_NAME` variable (what `service` in JSON lines carries).
    pub name: Option<String>,
}

/// The resource of one observed process: `service.name` (see [`ProcessIdentity`], else the
/// executable's file name), `process.pid`, `process.executable.path` and `.name`, the
/// SDK's `telemetry.sdk.*`, ebpfctl as `telemetry.distro.*`.
pub fn process_resource(pid: u32, exe: &Path, who: &ProcessIdentity) -> Resource {
    let exe_name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let service = who
        .otel_service_name
        .clone()
        .or_else(|| who.name.clone())
        .unwrap_or_else(|| exe_name.clone());
    let mut attrs = vec![
        KeyValue::new("process.pid", pid as i64),
        KeyValue::new("process.executable.path", exe.display().to_string()),
        KeyValue::new("process.executable.name", exe_name),
        KeyValue::new("telemetry.distro.name", "ebpfctl"),
        KeyValue::new("telemetry.distro.version", env!("CARGO_PKG_VERSION")),
    ];
    attrs.extend(platform_attributes(pid));
    Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_service_name(service)
        .with_attributes(attrs)
        .build()
}

/// Where the process runs, beyond the host: container and Kubernetes attributes
/// (`container.id`, `k8s.pod.name`, ...) go here once observe knows containers.
fn platform_attributes(_pid: u32) -> Vec<KeyValue> {
    Vec::new()
}

impl OtlpExporter {
    /// Checks the endpoint and starts the sending thread; the connection is made when
    /// spans are sent.
    pub fn new(endpoint: &str) -> Result<OtlpExporter, ObserveError> {
        let url = traces_url(endpoint);
        let bad = |what: String| ObserveError::Otlp {
            endpoint: endpoint.to_string(),
            what,
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad(
                "not an http:// or https:// URL (OTLP/HTTP, e.g. http://127.0.0.1:4318)".into(),
            ));
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("observe-otlp".into())
            .spawn(move || send_loop(exporter, rx))
            .map_err(|e| bad(format!("cannot start the exporting thread: {e}")))?;
        Ok(OtlpExporter {
            tx: Some(tx),
            thread: Some(thread),
            resources: HashMap::new(),
            ids: RandomIdGenerator::default(),
            scope: InstrumentationScope::builder("ebpfctl-observe")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            dropped: 0,
        })
    }

    /// Queues one span of `r`, from the executable `exe` (sent in batches from the
    /// exporter's thread).
    pub fn export(&mut self, r: &Request, exe: &Path, who: &ProcessIdentity) {
        if self.resources.len() > 4096 {
            // Bounded: processes that exited get a fresh resource if their PID comes back.
            self.resources
                .retain(|p, _| Path::new(&format!("/proc/{p}")).exists());
        }
        let resource = self
            .resources
            .entry(r.pid)
            .or_insert_with(|| Arc::new(process_resource(r.pid, exe, who)))
            .clone();
        let span = self.span(r);
        let Some(tx) = &self.tx else {
            return;
        };
        match tx.try_send((r.pid, resource, span)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.dropped += 1,
        }
    }

    /// Spans dropped because the exporter fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn span(&self, r: &Request) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(r.start_unix_ns);
        let end = start + Duration::from_nanos(r.duration_ns);
        let (host, port) = super::metrics::split_host_port(&r.host, &r.scheme);
        let mut attrs = vec![
            KeyValue::new("http.request.method", r.method.clone()),
            KeyValue::new("server.address", host),
            KeyValue::new("server.port", port.parse::<i64>().unwrap_or(0)),
            KeyValue::new("url.scheme", r.scheme.clone()),
            KeyValue::new(
                "network.protocol.version",
                super::metrics::protocol_version(&r.proto),
            ),
        ];
        if r.status != 0 {
            attrs.push(KeyValue::new("http.response.status_code", r.status as i64));
        }
        let err = error_type(r);
        if !err.is_empty() {
            attrs.push(KeyValue::new("error.type", err));
        }
        let failed = match r.kind {
            Kind::Client => r.error.is_some() || r.status >= 400,
            Kind::Server => r.status >= 500,
        };
        let mut parent = None;
        let kind = match r.kind {
            Kind::Client => {
                attrs.push(KeyValue::new("url.full", r.url.clone()));
                SpanKind::Client
            }
            Kind::Server => {
                attrs.push(KeyValue::new("url.path", r.path.clone()));
                if !r.query.is_empty() {
                    attrs.push(KeyValue::new("url.query", r.query.clone()));
                }
                if let Some(remote) = &r.remote_addr {
                    if let Some((a, p)) = remote.rsplit_once(':') {
                        attrs.push(KeyValue::new(
                            "client.address",
                            a.trim_matches(['[', ']']).to_string(),
                        ));
                        attrs.push(KeyValue::new("client.port", p.parse::<i64>().unwrap_or(0)));
                    }
                }
                parent = r.traceparent.as_deref().and_then(parse_traceparent);
                SpanKind::Server
            }
        };
        let (trace_id, parent_span_id) = match parent {
            Some((trace, span, _)) => (
                opentelemetry::trace::TraceId::from_bytes(trace.to_be_bytes()),
                SpanId::from_bytes(span.to_be_bytes()),
            ),
            None => (self.ids.new_trace_id(), SpanId::INVALID),
        };
        let status = if failed {
            Status::error(r.error.clone().unwrap_or_default())
        } else {
            Status::Unset
        };
        SpanData {
            span_context: SpanContext::new(
                trace_id,
                self.ids.new_span_id(),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id,
            parent_span_is_remote: parent.is_some(),
            span_kind: kind,
            name: r.method.clone().into(),
            start_time: start,
            end_time: end,
            attributes: attrs,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        }
    }

    /// Sends what is queued and stops the exporter.
    pub fn shutdown(mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The exporter's thread: batches by process, sent every [`FLUSH_EVERY`] or when
/// [`BATCH`] spans wait, and at the end.
fn send_loop(
    mut exporter: opentelemetry_otlp::SpanExporter,
    rx: Receiver<(u32, Arc<Resource>, SpanData)>,
) {
    let mut pending: HashMap<u32, (Arc<Resource>, Vec<SpanData>)> = HashMap::new();
    let mut waiting = 0usize;
    let mut next = Instant::now() + FLUSH_EVERY;
    loop {
        let left = next.saturating_duration_since(Instant::now());
        let done = match rx.recv_timeout(left) {
            Ok((pid, res, span)) => {
                let e = pending
                    .entry(pid)
                    .or_insert_with(|| (res.clone(), Vec::new()));
                e.0 = res;
                e.1.push(span);
                waiting += 1;
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if done || waiting >= BATCH || Instant::now() >= next {
            for (_, (res, spans)) in pending.iter_mut() {
                if spans.is_empty() {
                    continue;
                }
                exporter.set_resource(res);
                // The blocking HTTP client does its work when polled: a minimal executor.
                let _ = futures_executor::block_on(exporter.export(std::mem::take(spans)));
            }
            pending.retain(|_, (_, spans)| !spans.is_empty());
            waiting = 0;
            next = Instant::now() + FLUSH_EVERY;
        }
        if done {
            break;
        }
    }
    let _ = exporter.shutdown_with_timeout(Duration::from_secs(5));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/v1/traces/"),
            "http://c:4318/v1/traces"
        );
    }

    #[test]
    fn resource() {
        let r = process_resource(42, Path::new("/usr/bin/caddy"), &ProcessIdentity::default());
        let get = |k: &str| {
            r.iter()
                .find(|(key, _)| key.as_str() == k)
                .map(|(_, v)| v.to_string())
        };
        assert_eq!(get("service.name").as_deref(), Some("caddy"));
        assert_eq!(get("process.pid").as_deref(), Some("42"));
        assert_eq!(
            get("process.executable.path").as_deref(),
            Some("/usr/bin/caddy")
        );
        assert_eq!(get("telemetry.sdk.language").as_deref(), Some("rust"));
        let named = process_resource(
            1,
            Path::new("/x"),
            &ProcessIdentity {
                otel_service_name: Some("orders".into()),
                name: Some("web".into()),
            },
        );
        assert!(named
            .iter()
            .any(|(k, v)| k.as_str() == "service.name" && v.to_string() == "orders"));
    }
}
