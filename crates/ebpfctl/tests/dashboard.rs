//! deploy/grafana/ebpfctl.json against a real Prometheus (Debian's, on a free loopback port
//! with a temporary config) scraping real ebpfctl processes: the runner on
//! examples/exec_print, execsnoop, opensnoop, and observe of examples/go-mesh (built here)
//! serving and calling itself with some 500s. After events were generated, every panel's
//! every expression returns data through /api/v1/query. Needs root, prometheus, Go.
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The address after "metrics on http://" on a stderr line.
fn metrics_addr(stderr: &[String]) -> String {
    stderr
        .iter()
        .find_map(|l| {
            l.split("metrics on http://")
                .nth(1)
                .map(|r| r.trim_end_matches("/metrics").to_string())
        })
        .unwrap_or_else(|| panic!("no metrics address announced:\n{}", stderr.join("\n")))
}

/// A child process killed (and waited for) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// examples/go-mesh built once with Debian's Go, under a name of its own.
fn go_mesh() -> PathBuf {
    let dir = tmp().join("dashboard-go");
    let bin = dir.join("ebpfctl-dash-mesh");
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new("go")
        .current_dir(repo().join("examples/go-mesh"))
        .env("GOCACHE", dir.join("gocache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .output()
        .expect("go (scripts/setup.sh --test) is needed by this test");
    assert!(
        o.status.success(),
        "go build examples/go-mesh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    bin
}

fn http_get(addr: &str, path_and_query: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

/// Percent-encodes a query parameter (everything but RFC 3986's unreserved characters).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus scraping `targets` every second, with its own storage; killed on drop.
struct Prometheus {
    _child: Killed,
    addr: String,
    dir: PathBuf,
}

impl Prometheus {
    fn start(targets: &[String]) -> Prometheus {
        let dir = tmp().join(format!("dashboard-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: ebpfctl\n    static_configs:\n      - targets: [{list}]\n"
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (apt-get install prometheus; scripts/setup.sh --test) is needed by this test");
        let mut p = Prometheus {
            _child: Killed(child),
            addr,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(&p.addr).is_ok()
                && http_get(&p.addr, "/-/ready").contains(" 200 ")
            {
                break;
            }
            if let Ok(Some(st)) = p._child.0.try_wait() {
                panic!("prometheus exited ({st})");
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready on {}",
                p.addr
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// The result of an instant query.
    fn query(&self, expr: &str) -> Vec<Value> {
        let resp = http_get(&self.addr, &format!("/api/v1/query?query={}", encode(expr)));
        let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        // Connection: close with chunked encoding: the JSON object is between the braces.
        let json = &body[body.find('{').unwrap_or(0)..=body.rfind('}').unwrap_or(0)];
        let v: Value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("query {expr}: not JSON ({e}): {resp}"));
        assert_eq!(v["status"], "success", "query {expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self._child.0.kill();
        let _ = self._child.0.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every (panel title, expression) of the dashboard, rows' inner panels included.
fn panel_queries(dash: &Value) -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((
                    p["title"].as_str().unwrap_or("?").to_string(),
                    t["expr"]
                        .as_str()
                        .expect("every target has an expr")
                        .to_string(),
                ));
            }
            walk(
                p["panels"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                out,
            );
        }
    }
    let mut out = Vec::new();
    walk(dash["panels"].as_array().unwrap(), &mut out);
    out
}

/// Grafana's variables as they are with everything selected.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "10s")
        .replace("$job", ".*")
        .replace("$instance", ".*")
        .replace("$namespace", ".*")
}

fn start_mesh(bin: &Path, args: &[&str]) -> Killed {
    Killed(
        Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn every_panel_returns_data_from_a_real_prometheus() {
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/ebpfctl.json")).unwrap(),
    )
    .expect("deploy/grafana/ebpfctl.json is JSON");
    let queries = panel_queries(&dash);
    assert!(queries.len() >= 10, "{queries:?}");

    let obj = example("exec_print");
    let runner = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let execsnoop = Run::start_until(
        &[
            "execsnoop",
            "-o",
            "json",
            "--no-snapshot",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        &[],
        "tracing (",
    );
    let opensnoop = Run::start_until(
        &[
            "opensnoop",
            "-o",
            "json",
            "-n",
            "^ebpfctl-dash",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        &[],
        "tracing (",
    );
    let mesh = go_mesh();
    let observe = Run::start_until(
        &[
            "observe",
            mesh.to_str().unwrap(),
            "-o",
            "none",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        &[],
        "observe: ready",
    );
    let targets: Vec<String> = [&runner, &execsnoop, &opensnoop, &observe]
        .iter()
        .map(|r| metrics_addr(&r.stderr()))
        .collect();
    let prom = Prometheus::start(&targets);

    // Events: execs and opens of the target, HTTP requests (30 % answered 500) of a server
    // and the load generator calling it every 20 ms.
    let front = format!("127.0.0.1:{}", free_port());
    let _server = start_mesh(
        &mesh,
        &["-name", "front", "-listen", &front, "-fail-rate", "0.3"],
    );
    let load_addr = format!("127.0.0.1:{}", free_port());
    let _load = start_mesh(
        &mesh,
        &[
            "-name",
            "loadgen",
            "-listen",
            &load_addr,
            "-load",
            &format!("http://{front}/"),
            "-every",
            "20ms",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending = queries.clone();
    while !pending.is_empty() {
        target_as("ebpfctl-dash-t", &["getppid"]);
        pending.retain(|(_, e)| prom.query(&substitute(e)).is_empty());
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let up = prom.query("up");
            panic!(
                "panels without data after 60 s:\n{}\nup: {up:?}",
                pending
                    .iter()
                    .map(|(t, e)| format!("  {t}: {e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every target was scraped, each by the one job the queries select with $job.
    let up = prom.query("up == 1");
    assert_eq!(up.len(), 4, "{up:?}");

    drop(prom);
    for (name, r) in [
        ("runner", runner),
        ("execsnoop", execsnoop),
        ("opensnoop", opensnoop),
        ("observe", observe),
    ] {
        let (st, _, err) = r.stop();
        assert!(st.success(), "{name}: {st}: {err:?}");
    }
}
