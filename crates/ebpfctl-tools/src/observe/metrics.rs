//! Prometheus histograms named and labelled after the OpenTelemetry HTTP semantic
//! conventions (`http.client.request.duration`, `http.server.request.duration`; attribute
//! dots become underscores), plus the lost-event and output-dropped counters.
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::event::{Kind, Request};

/// Bucket bounds in seconds: the semantic conventions' advice (5 ms … 10 s) with finer
/// buckets below 5 ms, where loopback and in-cluster calls land.
pub const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub http_request_method: String,
    /// Empty when the request failed.
    pub http_response_status_code: String,
    pub server_address: String,
    pub server_port: String,
    pub url_scheme: String,
    pub network_protocol_version: String,
    /// Set when the request failed: its kind (`timeout`, `dns`, ...), the status code of a
    /// client's 4xx/5xx or a server's 5xx, `panic`.
    pub error_type: String,
    /// The observed process (comm@NAME).
    pub service_name: String,
    /// With `--metrics-container-labels`: `container`, `pod`, `namespace`.
    #[prometheus(flatten)]
    pub container: Vec<(String, String)>,
}

fn new_histogram() -> Histogram {
    Histogram::new(BUCKETS.iter().copied())
}

/// The metrics of one `observe` run.
pub struct Metrics {
    pub registry: Arc<Mutex<Registry>>,
    client: Family<HttpLabels, Histogram, fn() -> Histogram>,
    server: Family<HttpLabels, Histogram, fn() -> Histogram>,
    lost: Counter,
    lost_seen: u64,
    /// Requests a stalled stdout did not take in time.
    pub output_dropped: Counter,
    /// The histogram of each series seen, by a hash of the request fields its labels come
    /// from: a request like an earlier one costs a hash and a comparison, no label strings.
    series: HashMap<u64, Vec<(SeriesKey, Histogram)>>,
    /// Container labels on every series.
    container_labels: bool,
}

/// The request fields a series' labels are made of.
#[derive(Debug)]
struct SeriesKey {
    kind: Kind,
    method: String,
    status: u16,
    host: String,
    scheme: String,
    proto: String,
    error_type: Option<String>,
    service: String,
    container: Option<[String; 3]>,
}

/// What a request's container labels are made of: (name, pod, namespace).
fn container_key(r: &Request) -> Option<(&str, &str, &str)> {
    r.container.as_ref().map(|c| {
        (
            c.display_name(),
            c.pod.as_deref().unwrap_or(""),
            c.namespace.as_deref().unwrap_or(""),
        )
    })
}

impl SeriesKey {
    fn of(r: &Request) -> SeriesKey {
        SeriesKey {
            kind: r.kind,
            method: r.method.clone(),
            status: r.status,
            host: r.host.clone(),
            scheme: r.scheme.clone(),
            proto: r.proto.clone(),
            error_type: r.error_type.clone(),
            service: r.service.clone(),
            container: container_key(r).map(|(a, b, c)| [a.into(), b.into(), c.into()]),
        }
    }

    fn matches(&self, r: &Request) -> bool {
        self.kind == r.kind
            && self.status == r.status
            && self.method == r.method
            && self.host == r.host
            && self.scheme == r.scheme
            && self.proto == r.proto
            && self.error_type == r.error_type
            && self.service == r.service
            && self
                .container
                .as_ref()
                .map(|[a, b, c]| (a.as_str(), b.as_str(), c.as_str()))
                == container_key(r)
    }

    /// The hash `r`'s series is filed under.
    fn hash_of(r: &Request) -> u64 {
        let mut h = DefaultHasher::new();
        r.kind.hash(&mut h);
        r.method.hash(&mut h);
        r.status.hash(&mut h);
        r.host.hash(&mut h);
        r.scheme.hash(&mut h);
        r.proto.hash(&mut h);
        r.error_type.hash(&mut h);
        r.service.hash(&mut h);
        container_key(r).hash(&mut h);
        h.finish()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// "GET" stays; anything outside the well-known methods becomes "_OTHER" (bounded cardinality).
fn method_label(m: &str) -> String {
    const KNOWN: &[&str] = &[
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    if KNOWN.contains(&m) {
        m.to_string()
    } else {
        "_OTHER".to_string()
    }
}

pub fn split_host_port(host: &str, scheme: &str) -> (String, String) {
    let default_port = if scheme == "https" { "443" } else { "80" };
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once("]:") {
            return (h.to_string(), p.to_string());
        }
        return (rest.trim_end_matches(']').to_string(), default_port.into());
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
            (h.to_string(), p.to_string())
        }
        _ => (host.to_string(), default_port.into()),
    }
}

/// OpenTelemetry's `network.protocol.version` of a Go `Proto`: `HTTP/1.1` → `1.1`,
/// `HTTP/2.0` → `2`.
pub fn protocol_version(proto: &str) -> String {
    let v = proto.strip_prefix("HTTP/").unwrap_or("");
    match v {
        "2.0" => "2".into(),
        "3.0" => "3".into(),
        _ => v.to_string(),
    }
}

/// `error.type` of a request (see [`Request::error_type`]), empty when none.
pub fn error_type(r: &Request) -> String {
    r.error_type.clone().unwrap_or_default()
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::with_container_labels(false)
    }

    /// With `container`, `pod` and `namespace` labels on every series.
    pub fn with_container_labels(container_labels: bool) -> Metrics {
        let mut registry = Registry::default();
        let client =
            Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(new_histogram);
        let server =
            Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(new_histogram);
        let lost = Counter::default();
        let output_dropped = Counter::default();
        registry.register_with_unit(
            "http_client_request_duration",
            "Duration of HTTP client requests (net/http.(*Transport).roundTrip) of observed Go programs",
            Unit::Seconds,
            client.clone(),
        );
        registry.register_with_unit(
            "http_server_request_duration",
            "Duration of HTTP server requests (net/http.serverHandler.ServeHTTP) of observed Go programs",
            Unit::Seconds,
            server.clone(),
        );
        registry.register(
            "ebpfctl_observe_lost_events",
            "Requests dropped because the ring buffer was full",
            lost.clone(),
        );
        registry.register(
            "ebpfctl_observe_output_dropped",
            "Requests read from the kernel but dropped because stdout did not take them in time (a stalled reader); not ring-buffer loss",
            output_dropped.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            client,
            server,
            lost,
            lost_seen: 0,
            output_dropped,
            series: HashMap::new(),
            container_labels,
        }
    }

    pub fn observe(&mut self, r: &Request) {
        let secs = r.duration_ns as f64 / 1e9;
        let bucket = self.series.entry(SeriesKey::hash_of(r)).or_default();
        if let Some((_, h)) = bucket.iter().find(|(k, _)| k.matches(r)) {
            h.observe(secs);
            return;
        }
        let h = Self::series_of(&self.client, &self.server, r, self.container_labels);
        h.observe(secs);
        bucket.push((SeriesKey::of(r), h));
    }

    /// The histogram of `r`'s series, created in its family if new.
    fn series_of(
        client: &Family<HttpLabels, Histogram, fn() -> Histogram>,
        server: &Family<HttpLabels, Histogram, fn() -> Histogram>,
        r: &Request,
        container_labels: bool,
    ) -> Histogram {
        let (addr, port) = split_host_port(&r.host, &r.scheme);
        let status = if r.status == 0 {
            String::new()
        } else {
            r.status.to_string()
        };
        let labels = HttpLabels {
            http_request_method: method_label(&r.method),
            http_response_status_code: status,
            server_address: addr,
            server_port: port,
            url_scheme: r.scheme.clone(),
            network_protocol_version: protocol_version(&r.proto),
            error_type: error_type(r),
            service_name: r.service.clone(),
            container: if container_labels {
                let (n, p, ns) = container_key(r).unwrap_or(("", "", ""));
                vec![
                    ("container".into(), n.into()),
                    ("pod".into(), p.into()),
                    ("namespace".into(), ns.into()),
                ]
            } else {
                Vec::new()
            },
        };
        let family = match r.kind {
            Kind::Client => client,
            Kind::Server => server,
        };
        family.get_or_create(&labels).clone()
    }

    /// Brings the lost-event counter up to `total`.
    pub fn set_lost(&mut self, total: u64) {
        if total > self.lost_seen {
            self.lost.inc_by(total - self.lost_seen);
            self.lost_seen = total;
        }
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        ebpfctl_core::metrics::render(&reg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_reused_and_told_apart() {
        let mut m = Metrics::new();
        let ok = Request::for_test(Kind::Client, "a", "h:80", 200, false, 1_000_000);
        let failed = Request::for_test(Kind::Client, "a", "h:80", 0, true, 2_000_000);
        let server = Request::for_test(Kind::Server, "a", "h:80", 200, false, 1_000_000);
        for r in [&ok, &ok, &failed, &server] {
            m.observe(r);
        }
        assert_eq!(m.series.values().map(Vec::len).sum::<usize>(), 3);
        let text = m.render();
        let count = |prefix: &str, needle: &str| {
            text.lines()
                .filter(|l| l.starts_with(prefix) && l.contains(needle))
                .map(|l| l.rsplit(' ').next().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let client = "http_client_request_duration_seconds_count";
        assert_eq!(count(client, "status_code=\"200\""), ["2"], "{text}");
        assert_eq!(
            count(client, "error_type=\"connection_refused\""),
            ["1"],
            "{text}"
        );
        let server = "http_server_request_duration_seconds_count";
        assert_eq!(count(server, ""), ["1"], "{text}");
    }

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("localhost:9091", "http"),
            ("localhost".into(), "9091".into())
        );
        assert_eq!(
            split_host_port("example.com", "https"),
            ("example.com".into(), "443".into())
        );
        assert_eq!(
            split_host_port("[::1]:80", "http"),
            ("::1".into(), "80".into())
        );
    }
}
