//! Serves a Prometheus registry over HTTP (`GET /metrics`), from a background thread.
//!
//! Map-backed series are read at scrape time by collectors registered in the registry, so a
//! scrape always sees the kernel's current values and nothing polls when nobody scrapes.
//!
//! hyper (HTTP/1.1) on a current-thread tokio runtime owned by the server's thread: every
//! connection is served concurrently, so idle or slow clients never delay a scrape; a client
//! must send its request headers within [`HEADER_TIMEOUT`] (which also closes idle keep-alive
//! connections) and a connection lives at most [`CONNECTION_LIFETIME`]; at most
//! [`MAX_CONNECTIONS`] are open at once. The text format is 0.0.4 unless the scraper's `Accept`
//! asks for OpenMetrics; the body is gzipped when `Accept-Encoding` allows gzip (docs/metrics.md).
use std::convert::Infallible;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;

/// The default listen address: loopback only; all interfaces only when asked. Port 19435 is
/// outside the ports Prometheus allocates to its components and exporters (docs/metrics.md).
pub const DEFAULT_ADDR: &str = "127.0.0.1:19435";

/// Time a client has to send a request's headers; also how long an idle keep-alive
/// connection stays open.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection may stay open, however busy (a client that never reads its response).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Open connections served at once; more are closed on arrival (file descriptors are shared
/// with the BPF objects of the process).
pub const MAX_CONNECTIONS: usize = 512;

/// The Prometheus text format, version 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// OpenMetrics 1.0 text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {source} (is another process using the port? pick one with --metrics-addr)")]
pub struct MetricsError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// A running metrics endpoint; stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `registry` until dropped.
    pub fn start(addr: SocketAddr, registry: Arc<Mutex<Registry>>) -> Result<Self, MetricsError> {
        let err = |source| MetricsError { addr, source };
        // Bound here, so that a port in use fails the caller at once.
        let listener = TcpListener::bind(addr).map_err(err)?;
        let addr = listener.local_addr().map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(err)?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                rt.block_on(serve(listener, registry, stopped));
                // Connections still open are dropped with the runtime; a scrape being
                // rendered gets a moment to finish.
                rt.shutdown_timeout(Duration::from_millis(500));
            })
            .map_err(err)?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    registry: Arc<Mutex<Registry>>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let conn = tokio::select! {
            _ = &mut stopped => return,
            conn = listener.accept() => conn,
        };
        let stream = match conn {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: let it pass rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue; // too many connections: this one is closed as it drops
        };
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let registry = Arc::clone(&registry);
                async move { Ok::<_, Infallible>(respond(req, registry).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            drop(slot);
        });
    }
}

async fn respond(
    req: Request<hyper::body::Incoming>,
    registry: Arc<Mutex<Registry>>,
) -> Response<Full<Bytes>> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let format = Format::accepted(req.headers());
            let gzip = accepts_gzip(req.headers());
            // Collectors read BPF maps: off the runtime's thread, so other connections go on.
            let body = tokio::task::spawn_blocking(move || {
                let reg = registry.lock().unwrap_or_else(|p| p.into_inner());
                let text = match format {
                    Format::Text => render(&reg),
                    Format::OpenMetrics => render_openmetrics(&reg),
                };
                drop(reg);
                if gzip {
                    compress(text.as_bytes())
                } else {
                    text.into_bytes()
                }
            })
            .await;
            let Ok(body) = body else {
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n");
            };
            let len = body.len();
            let mut r = Response::new(Full::new(if head {
                Bytes::new()
            } else {
                Bytes::from(body)
            }));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(match format {
                    Format::Text => TEXT_CONTENT_TYPE,
                    Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
                }),
            );
            h.insert(
                header::VARY,
                HeaderValue::from_static("Accept, Accept-Encoding"),
            );
            if gzip {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            if head {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            r
        }
        "/" => {
            let mut r = plain(StatusCode::OK, "<a href=\"/metrics\">/metrics</a>\n");
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            r
        }
        _ => plain(StatusCode::NOT_FOUND, "not found; try /metrics\n"),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// Exposition formats a scraper can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4: the default, and what `promtool check metrics` reads.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when `Accept` lists `application/openmetrics-text` with a q-value above 0
    /// at least as high as the best text/plain (or wildcard) entry; the 0.0.4 text otherwise.
    pub fn accepted(headers: &HeaderMap) -> Format {
        let (mut om, mut text) = (0.0f32, 0.0f32);
        for (media, q) in accept_entries(headers, header::ACCEPT) {
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "*/*" | "text/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// True when `Accept-Encoding` allows gzip (`gzip` or `*` with a q-value above 0).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let entries = accept_entries(headers, header::ACCEPT_ENCODING);
    match entries.iter().find(|(c, _)| c == "gzip") {
        Some((_, q)) => *q > 0.0,
        None => entries.iter().any(|(c, q)| c == "*" && *q > 0.0),
    }
}

/// `(lower-cased value, q)` of every comma-separated entry of a header (q defaults to 1).
fn accept_entries(headers: &HeaderMap, name: header::HeaderName) -> Vec<(String, f32)> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| {
            let mut parts = entry.split(';');
            let value = parts.next()?.trim().to_ascii_lowercase();
            if value.is_empty() {
                return None;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((value, q))
        })
        .collect()
}

fn compress(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Renders the registry in OpenMetrics 1.0 text, as prometheus-client encodes it.
pub fn render_openmetrics(registry: &Registry) -> String {
    let mut body = String::new();
    // Writing into a String cannot fail; a collector error leaves a partial body.
    let _ = prometheus_client::encoding::text::encode_registry(&mut body, registry);
    body.push_str("# EOF\n");
    body
}

/// Renders the registry in the Prometheus text format (what `promtool check metrics` reads).
pub fn render(registry: &Registry) -> String {
    let mut body = String::new();
    // Writing into a String cannot fail; a collector error leaves a partial body.
    let _ = prometheus_client::encoding::text::encode_registry(&mut body, registry);
    counters_to_text_format(&body)
}

/// prometheus-client names counter families OpenMetrics-style (`# TYPE x counter` over samples
/// `x_total`); the Prometheus text format wants the HELP and TYPE lines to name `x_total`.
/// OpenMetrics-only lines (`# UNIT`, `# EOF`) are dropped.
fn counters_to_text_format(body: &str) -> String {
    let mut out: Vec<String> = Vec::with_capacity(body.lines().count());
    for line in body.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|r| r.strip_suffix(" counter"))
        {
            if !name.ends_with("_total") {
                if let Some(help) = out
                    .last_mut()
                    .filter(|l| l.starts_with(&format!("# HELP {name} ")))
                {
                    *help = help.replacen(name, &format!("{name}_total"), 1);
                }
                out.push(format!("# TYPE {name}_total counter"));
                continue;
            }
        }
        out.push(line.to_string());
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn negotiation() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            Format::accepted(&headers(&[(header::ACCEPT, prom)])),
            Format::OpenMetrics
        );
        assert_eq!(Format::accepted(&headers(&[])), Format::Text);
        assert_eq!(
            Format::accepted(&headers(&[(header::ACCEPT, "*/*")])),
            Format::Text
        );
        assert_eq!(
            Format::accepted(&headers(&[(
                header::ACCEPT,
                "text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"
            )])),
            Format::Text
        );
        assert_eq!(
            Format::accepted(&headers(&[(
                header::ACCEPT,
                "application/openmetrics-text;q=0"
            )])),
            Format::Text
        );
        assert!(accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, "gzip")])));
        assert!(accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "deflate, gzip;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, "*")])));
        assert!(!accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip;q=0, *"
        )])));
        assert!(!accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "identity"
        )])));
        assert!(!accepts_gzip(&headers(&[])));
    }

    #[test]
    fn serves_and_stops_at_once_with_a_client_still_connected() {
        use std::io::Read;
        let reg = Arc::new(Mutex::new(Registry::default()));
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), reg).unwrap();
        let addr = server.local_addr();
        let _idle = std::net::TcpStream::connect(addr).unwrap();
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("\r\n\r\n# EOF\n"), "{reply}");
        let t = std::time::Instant::now();
        drop(server);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert!(std::net::TcpStream::connect(addr).is_err());
    }

    #[test]
    fn a_port_in_use_fails_start() {
        let reg = Arc::new(Mutex::new(Registry::default()));
        let first = MetricsServer::start("127.0.0.1:0".parse().unwrap(), Arc::clone(&reg)).unwrap();
        let e = MetricsServer::start(first.local_addr(), reg).err().unwrap();
        assert!(e.to_string().contains("--metrics-addr"), "{e}");
    }

    #[test]
    fn text_format_drops_openmetrics_only_lines() {
        let om = "# HELP a_seconds A.\n# TYPE a_seconds counter\n# UNIT a_seconds seconds\na_seconds_total 1\n# EOF\n";
        assert_eq!(
            counters_to_text_format(om),
            "# HELP a_seconds_total A.\n# TYPE a_seconds_total counter\na_seconds_total 1\n"
        );
    }
}
