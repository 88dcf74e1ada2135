//! Serves a Prometheus registry over HTTP (`GET /metrics`), from a background thread.
//!
//! Map-backed series are read at scrape time by collectors registered in the registry, so a
//! scrape always sees the kernel's current values and nothing polls when nobody scrapes.
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::registry::Registry;

/// The default listen address: loopback only; all interfaces only when asked.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9091";

#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {source} (is another process using the port? pick one with --metrics-addr)")]
pub struct MetricsError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// A running metrics endpoint; stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `registry` until dropped.
    pub fn start(addr: SocketAddr, registry: Arc<Mutex<Registry>>) -> Result<Self, MetricsError> {
        let listener = TcpListener::bind(addr).map_err(|source| MetricsError { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| MetricsError { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        // Blocking accept: no wake-ups while idle. Drop unblocks it with a connection of its own.
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let _ = serve_one(conn, &registry);
                    }
                }
            })
            .map_err(|source| MetricsError { addr, source })?;
        Ok(Self {
            addr,
            stop,
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
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
fn counters_to_text_format(body: &str) -> String {
    let mut out: Vec<String> = Vec::with_capacity(body.lines().count());
    for line in body.lines() {
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

fn serve_one(conn: TcpStream, registry: &Mutex<Registry>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain headers.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (status, ctype, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        let reg = registry.lock().unwrap_or_else(|p| p.into_inner());
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(&reg),
        )
    } else if path == "/" {
        (
            "200 OK",
            "text/html",
            "<a href=\"/metrics\">/metrics</a>\n".to_string(),
        )
    } else {
        (
            "404 Not Found",
            "text/plain",
            "not found; try /metrics\n".to_string(),
        )
    };
    let mut w = conn;
    write!(w, "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    w.flush()
}
