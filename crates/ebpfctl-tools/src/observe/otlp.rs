//! OTLP/HTTP (protobuf) trace export with the OpenTelemetry SDK: one span per request, with
//! the probe's start and end times. Client spans start new traces; a server span whose
//! request carried a W3C `traceparent` header becomes a child of the caller's span (read
//! only: nothing is injected into the observed program).
//!
//! One tracer provider per service, so each span carries its own `service.name` resource.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

use super::event::{parse_traceparent, Kind, Request};
use super::metrics::error_type;
use super::ObserveError;

/// Exports spans to one OTLP/HTTP collector.
pub struct OtlpExporter {
    endpoint: String,
    providers: Mutex<HashMap<String, SdkTracerProvider>>,
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

/// The service name of a request: its NAME/SERVICE_NAME when set, else its comm.
fn service_name(r: &Request) -> String {
    match r.service.split_once('@') {
        Some((_, name)) if !name.is_empty() => name.to_string(),
        _ => r.comm.clone(),
    }
}

impl OtlpExporter {
    /// Checks the endpoint; the connection is made when spans are sent.
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
        // Build one exporter now so a malformed URL fails before anything is loaded.
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(OtlpExporter {
            endpoint: url,
            providers: Mutex::new(HashMap::new()),
        })
    }

    fn provider(&self, service: &str) -> Option<SdkTracerProvider> {
        let mut map = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(service) {
            return Some(p.clone());
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(self.endpoint.clone())
            .with_timeout(Duration::from_secs(5))
            .build()
            .ok()?;
        let resource = Resource::builder_empty()
            .with_service_name(service.to_string())
            .with_attributes([KeyValue::new("telemetry.sdk.name", "ebpfctl-observe")])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build();
        map.insert(service.to_string(), provider.clone());
        Some(provider)
    }

    /// Queues one span (sent in batches from the SDK's thread).
    pub fn export(&self, r: &Request) {
        let Some(provider) = self.provider(&service_name(r)) else {
            return;
        };
        let tracer = provider.tracer("ebpfctl-observe");
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
                r.proto.strip_prefix("HTTP/").unwrap_or("").to_string(),
            ),
            KeyValue::new("process.pid", r.pid as i64),
        ];
        if r.status != 0 {
            attrs.push(KeyValue::new("http.response.status_code", r.status as i64));
        }
        let err = error_type(r);
        let failed = match r.kind {
            Kind::Client => r.error.is_some() || r.status >= 400,
            Kind::Server => r.status >= 500,
        };
        if !err.is_empty() {
            attrs.push(KeyValue::new("error.type", err));
        }
        let (kind, parent) = match r.kind {
            Kind::Client => {
                attrs.push(KeyValue::new("url.full", r.url.clone()));
                (SpanKind::Client, Context::new())
            }
            Kind::Server => {
                attrs.push(KeyValue::new("url.path", r.path.clone()));
                if let Some(remote) = &r.remote_addr {
                    if let Some((a, p)) = remote.rsplit_once(':') {
                        attrs.push(KeyValue::new(
                            "client.address",
                            a.trim_matches(['[', ']']).to_string(),
                        ));
                        attrs.push(KeyValue::new("client.port", p.parse::<i64>().unwrap_or(0)));
                    }
                }
                let parent = match r.traceparent.as_deref().and_then(parse_traceparent) {
                    Some((trace, span, flags)) => {
                        Context::new().with_remote_span_context(SpanContext::new(
                            TraceId::from_bytes(trace.to_be_bytes()),
                            SpanId::from_bytes(span.to_be_bytes()),
                            TraceFlags::new(flags),
                            true,
                            TraceState::default(),
                        ))
                    }
                    None => Context::new(),
                };
                (SpanKind::Server, parent)
            }
        };
        let mut span = tracer
            .span_builder(r.method.clone())
            .with_kind(kind)
            .with_start_time(start)
            .with_attributes(attrs)
            .start_with_context(&tracer, &parent);
        if failed {
            use opentelemetry::trace::Span as _;
            span.set_status(Status::error(r.error.clone().unwrap_or_default()));
        }
        use opentelemetry::trace::Span as _;
        span.end_with_timestamp(end);
    }

    /// Sends what is queued and stops the exporters.
    pub fn shutdown(self) {
        let map = self
            .providers
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        for (_, p) in map {
            let _ = p.force_flush();
            let _ = p.shutdown_with_timeout(Duration::from_secs(5));
        }
    }
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
}
