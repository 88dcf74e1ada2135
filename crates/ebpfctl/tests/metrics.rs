//! The metrics server of `ebpfctl run` (docs/metrics.md) under idle and slow clients, its
//! format negotiation (0.0.4 text, OpenMetrics, gzip) checked with promtool, and a real
//! Prometheus scraping both formats. Needs root, promtool and prometheus.
mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const COMM: &str = "ebpfctl-mtarget";

/// `ebpfctl run syscall_counter` counting the syscalls of our target only, serving metrics
/// on a free loopback port.
fn start() -> Run {
    let obj = example("syscall_counter");
    let param = format!("target_comm={COMM}");
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "none",
        "--param",
        &param,
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    target_as(COMM, &["getppid", "5"]);
    run
}

/// A response: status line, headers (lower-case names), body as sent.
struct Reply {
    status: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body, gunzipped when it says it is gzip.
    fn text(&self) -> String {
        if self.header("content-encoding") == Some("gzip") {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_string(&mut out)
                .expect("valid gzip");
            out
        } else {
            String::from_utf8(self.body.clone()).expect("UTF-8 body")
        }
    }
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

fn get(addr: &str, headers: &[(&str, &str)]) -> Reply {
    let r = request(addr, "GET", "/metrics", headers);
    assert!(r.status.starts_with("HTTP/1.1 200"), "{}", r.status);
    r
}

/// What Prometheus 2.42 sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// promtool's OpenMetrics parser (the TSDB importer) must accept the body: a timestamp is
/// added to each sample, as that importer requires; nothing else changes.
fn promtool_openmetrics_ok(body: &str) {
    // One directory per call: tests run in parallel threads of one process.
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = tmp().join(format!("om-check-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let stamped: String = body
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                format!("{l}\n")
            } else {
                format!("{l} 1700000000\n")
            }
        })
        .collect();
    let file = dir.join("metrics.om");
    std::fs::write(&file, stamped).unwrap();
    let o = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(dir.join("blocks"))
        .output()
        .expect("promtool (apt-get install prometheus) is needed by this test");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    // The importer reports a parse error on stderr (its exit code stays 0 in 2.42).
    assert!(
        o.status.success() && out.contains("NUM SAMPLES") && !out.contains("getting min and max"),
        "promtool rejected the OpenMetrics body:\n{out}\n--- body:\n{body}"
    );
}

#[test]
fn idle_and_half_open_connections_do_not_delay_a_scrape() {
    let run = start();
    let addr = run.metrics_addr();
    // 150 connections that say nothing, and 20 that stop in the middle of their headers.
    let mut held: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    for _ in 0..20 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..5 {
        let t = Instant::now();
        let body = get(&addr, &[]).text();
        let took = t.elapsed();
        // The old one-at-a-time server made this wait for every idle client's 2 s timeout.
        assert!(
            took < patient(Duration::from_secs(1)),
            "a scrape took {took:?} with 170 idle connections open"
        );
        assert!(
            sample(&body, "ebpfctl_program_runs_total").is_some(),
            "{body}"
        );
    }
    // Stopping with all of them still open is immediate.
    let t = Instant::now();
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    assert!(
        t.elapsed() < patient(Duration::from_secs(3)),
        "stopping took {:?}",
        t.elapsed()
    );
    drop(held);
}

#[test]
fn a_slow_loris_is_cut_by_the_header_timeout() {
    let run = start();
    let addr = run.metrics_addr();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    let mut scraped_meanwhile = false;
    let cut = loop {
        // One header byte every 250 ms, never finishing.
        if s.write_all(b"a").is_err() {
            break started.elapsed();
        }
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(_) => break started.elapsed(), // closed (0) or an error status, then closed
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break started.elapsed(),
        }
        if !scraped_meanwhile && started.elapsed() > Duration::from_secs(2) {
            let t = Instant::now();
            get(&addr, &[]);
            assert!(
                t.elapsed() < patient(Duration::from_secs(1)),
                "scrape beside the slow client took {:?}",
                t.elapsed()
            );
            scraped_meanwhile = true;
        }
        assert!(
            started.elapsed() < patient(Duration::from_secs(20)),
            "a client sending headers byte by byte was never cut off"
        );
    };
    assert!(scraped_meanwhile);
    // HEADER_TIMEOUT is 5 s.
    assert!(
        cut >= Duration::from_secs(4)
            && cut < Duration::from_secs(5) + patient(Duration::from_secs(4)),
        "cut after {cut:?}"
    );
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

#[test]
fn text_openmetrics_and_gzip_are_negotiated_and_promtool_accepts_both() {
    let run = start();
    let addr = run.metrics_addr();

    // No preference: the 0.0.4 text format, as before.
    let plain = get(&addr, &[]);
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(plain.header("content-encoding"), None);
    let text = plain.text();
    assert!(
        text.contains("# TYPE ebpfctl_program_runs_total counter"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    let syscalls = format!("ebpfctl_syscalls_total{{nr=\"getppid\",comm=\"{COMM}\"}}");
    assert!(sample(&text, &syscalls).unwrap() >= 5.0, "{text}");
    promtool_ok(&text);

    // What Prometheus asks for: OpenMetrics, gzipped.
    let om = get(
        &addr,
        &[("Accept", PROMETHEUS_ACCEPT), ("Accept-Encoding", "gzip")],
    );
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(om.header("content-encoding"), Some("gzip"));
    assert_eq!(om.header("vary"), Some("Accept, Accept-Encoding"));
    let body = om.text();
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(
        body.contains("# TYPE ebpfctl_program_runs counter"),
        "{body}"
    );
    assert!(sample(&body, &syscalls).unwrap() >= 5.0, "{body}");
    promtool_openmetrics_ok(&body);

    // Text, gzipped; OpenMetrics, not.
    let r = get(&addr, &[("Accept-Encoding", "deflate, gzip;q=0.8")]);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(
        r.body.len() < r.text().len() / 3,
        "gzip should shrink the body"
    );
    promtool_ok(&r.text());
    let r = get(
        &addr,
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    );
    assert_eq!(r.header("content-encoding"), None);
    promtool_openmetrics_ok(&r.text());
    // gzip refused explicitly.
    let r = get(&addr, &[("Accept-Encoding", "gzip;q=0")]);
    assert_eq!(r.header("content-encoding"), None);

    // Other methods and paths.
    let r = request(&addr, "HEAD", "/metrics", &[]);
    assert!(r.status.starts_with("HTTP/1.1 200"), "{}", r.status);
    assert!(r.body.is_empty());
    assert!(request(&addr, "POST", "/metrics", &[])
        .status
        .contains(" 405"));
    assert!(request(&addr, "GET", "/nope", &[]).status.contains(" 404"));

    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

#[test]
fn the_default_address_is_port_19435_on_loopback() {
    let obj = example("syscall_counter");
    let param = format!("target_comm={COMM}");
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "none",
        "--param",
        &param,
    ]);
    let err = run.stderr().join("\n");
    // Another run on this machine may hold the port: then the default is reported, not fatal.
    assert!(
        err.contains("serving metrics on http://127.0.0.1:19435/metrics")
            || err.contains("metrics disabled: cannot serve metrics on 127.0.0.1:19435"),
        "{err}"
    );
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

/// A one-request-per-connection HTTP relay in front of the metrics server: optionally
/// replaces the scraper's `Accept`, and records the `Content-Type` and `Content-Encoding` of
/// every response it relays.
struct Relay {
    addr: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Relay {
    fn start(upstream: String, accept: Option<&'static str>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        // Ends with the test process.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = relay_one(conn, &upstream, accept, &seen2);
            }
        });
        Relay { addr, seen }
    }
}

fn relay_one(
    mut client: TcpStream,
    upstream: &str,
    accept: Option<&str>,
    seen: &Mutex<Vec<(String, String)>>,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut out = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if name == "connection" || (accept.is_some() && name == "accept") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if let Some(a) = accept {
        out.push_str(&format!("Accept: {a}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(out.as_bytes())?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw)?;
    let reply = parse_reply(&raw);
    seen.lock().unwrap().push((
        reply.header("content-type").unwrap_or("").to_string(),
        reply.header("content-encoding").unwrap_or("").to_string(),
    ));
    client.write_all(&raw)
}

/// A Prometheus server with its own config and storage; killed (and its directory removed)
/// on drop.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    addr: String,
}

impl Prometheus {
    fn start(jobs: &[(&str, &str)]) -> Prometheus {
        let dir = tmp().join(format!("prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut config =
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n".to_string();
        for (job, target) in jobs {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        // SAFETY: prctl is async-signal-safe and touches only the child being set up.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .expect("prometheus (apt-get install prometheus) is needed by this test");
        let mut p = Prometheus { child, dir, addr };
        let deadline = Instant::now() + patient(Duration::from_secs(30));
        loop {
            if let Ok(Some(st)) = p.child.try_wait() {
                panic!("prometheus exited ({st}):\n{}", p.log());
            }
            if TcpStream::connect(&p.addr).is_ok()
                && request(&p.addr, "GET", "/-/ready", &[])
                    .status
                    .contains(" 200")
            {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// An instant query's result vector.
    fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let enc: String = q
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let r = request(
            &self.addr,
            "GET",
            &format!("/api/v1/query?query={enc}"),
            &[],
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("query {q}: {e}: {}", String::from_utf8_lossy(&r.body)));
        assert_eq!(v["status"], "success", "{v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The scrape error Prometheus reports for `job`, if any.
    fn last_error(&self, job: &str) -> String {
        let r = request(&self.addr, "GET", "/api/v1/targets", &[]);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        v["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["labels"]["job"] == job)
            .map(|t| t["lastError"].to_string())
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_real_prometheus_scrapes_both_formats() {
    let run = start();
    let addr = run.metrics_addr();
    // Prometheus asks for OpenMetrics; the second relay makes it a plain text scrape.
    let om = Relay::start(addr.clone(), None);
    let text = Relay::start(addr.clone(), Some("text/plain;version=0.0.4"));
    let prom = Prometheus::start(&[("om", &om.addr), ("text", &text.addr)]);
    let deadline = Instant::now() + patient(Duration::from_secs(40));
    let series = format!("ebpfctl_syscalls_total{{nr=\"getppid\",comm=\"{COMM}\"}}");
    loop {
        let up: Vec<(String, String)> = prom
            .query("up")
            .iter()
            .map(|r| {
                (
                    r["metric"]["job"].as_str().unwrap_or("").to_string(),
                    r["value"][1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let both_up = ["om", "text"]
            .iter()
            .all(|j| up.iter().any(|(job, v)| job == j && v == "1"));
        let jobs_with_series: Vec<String> = prom
            .query(&series)
            .iter()
            .filter(|r| r["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()) >= Some(5.0))
            .map(|r| r["metric"]["job"].as_str().unwrap_or("").to_string())
            .collect();
        if both_up
            && jobs_with_series.contains(&"om".to_string())
            && jobs_with_series.contains(&"text".to_string())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not scrape both formats: up {up:?}, {series} in {jobs_with_series:?}; errors om={} text={}\n{}",
            prom.last_error("om"),
            prom.last_error("text"),
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The series have the same names whichever format carried them.
    for job in ["om", "text"] {
        let runs = prom.query(&format!("ebpfctl_program_runs_total{{job=\"{job}\"}}"));
        assert_eq!(runs.len(), 1, "{job}: {runs:?}");
        assert_eq!(runs[0]["metric"]["program"], "count_syscalls");
    }
    let seen_om = om.seen.lock().unwrap().clone();
    let seen_text = text.seen.lock().unwrap().clone();
    assert!(
        !seen_om.is_empty()
            && seen_om
                .iter()
                .all(|(t, e)| t.starts_with("application/openmetrics-text") && e == "gzip"),
        "{seen_om:?}"
    );
    assert!(
        !seen_text.is_empty()
            && seen_text
                .iter()
                .all(|(t, e)| t.starts_with("text/plain; version=0.0.4") && e == "gzip"),
        "{seen_text:?}"
    );
    drop(prom);
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

#[test]
fn histograms_and_gauges_are_valid_in_both_formats() {
    let obj = example("sleep_latency");
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "none",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    target(&["sleep", "5", "2000"]);
    let addr = run.metrics_addr();
    let om = get(&addr, &[("Accept", PROMETHEUS_ACCEPT)]).text();
    assert!(
        om.contains("# TYPE ebpfctl_sleeps_seconds histogram"),
        "{om}"
    );
    assert!(om.contains("ebpfctl_sleeps_seconds_bucket{"), "{om}");
    promtool_openmetrics_ok(&om);
    promtool_ok(&get(&addr, &[]).text());
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

/// A probe that says its maps' units in its source (`EBPFCTL_UNIT`, `EBPFCTL_HELP`,
/// `EBPFCTL_BUCKETS`): each records the sleep our target *asked for* (known durations).
const UNITS_PROBE: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"

const volatile char target_comm[16] = "";

/* log2 slots of microseconds */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} hist_sleep_req SEC(".maps") EBPFCTL_UNIT(us) EBPFCTL_HELP("Sleeps the target asked for");

/* the last request, in milliseconds */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} gauge_last_req SEC(".maps") EBPFCTL_UNIT(ms);

/* one KiB per sleep */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counter_asked SEC(".maps") EBPFCTL_UNIT(KiB);

struct sleep_req { __u64 value; };
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct sleep_req);
} hist_req_events SEC(".maps") EBPFCTL_UNIT(us) EBPFCTL_BUCKETS("100,1000,2000,4000");

/* printed: JSON records say the unit */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct sleep_req);
} print_requests SEC(".maps") EBPFCTL_UNIT(us);

static __always_inline bool ours(void)
{
	char c[16];
	bpf_get_current_comm(c, sizeof(c));
	for (int i = 0; i < 16; i++) {
		if (c[i] != target_comm[i])
			return false;
		if (!c[i])
			break;
	}
	return true;
}

SEC("tracepoint/syscalls/sys_enter_clock_nanosleep")
int asked(struct trace_event_raw_sys_enter *ctx)
{
	if (!ours())
		return 0;
	struct __kernel_timespec ts = {};
	bpf_probe_read_user(&ts, sizeof(ts), (void *)ctx->args[2]);
	__u64 us = (ts.tv_sec * 1000000000ull + ts.tv_nsec) / 1000;
	__u32 slot = ebpfctl_log2(us), zero = 0;
	__u64 one = 1, *n = bpf_map_lookup_elem(&hist_sleep_req, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&hist_sleep_req, &slot, &one, BPF_NOEXIST);
	__u64 ms = us / 1000;
	bpf_map_update_elem(&gauge_last_req, &zero, &ms, BPF_ANY);
	n = bpf_map_lookup_elem(&counter_asked, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	struct sleep_req *e = bpf_ringbuf_reserve(&hist_req_events, sizeof(*e), 0);
	if (e) {
		e->value = us;
		bpf_ringbuf_submit(e, 0);
	}
	e = bpf_ringbuf_reserve(&print_requests, sizeof(*e), 0);
	if (e) {
		e->value = us;
		bpf_ringbuf_submit(e, 0);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// `histogram_quantile(q, ...)` as Prometheus computes it, from `(le, cumulative count)`
/// pairs in ascending order (the last is +Inf).
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let total = buckets.last().unwrap().1;
    let rank = q * total;
    let i = buckets.iter().position(|(_, c)| *c >= rank).unwrap();
    let (lo, below) = if i == 0 { (0.0, 0.0) } else { buckets[i - 1] };
    let (hi, count) = buckets[i];
    lo + (hi - lo) * (rank - below) / (count - below)
}

/// The `(le, count)` samples of histogram `name` in a text exposition.
fn buckets_of(text: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            let (le, tail) = rest.split_once('"').unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, tail.rsplit(' ').next().unwrap().parse().unwrap())
        })
        .collect()
}

#[test]
fn units_from_decl_tags_become_seconds_and_bytes() {
    const UCOMM: &str = "ebpfctl-units";
    let obj = build_source("units_tags", UNITS_PROBE);
    let param = format!("target_comm={UCOMM}");
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--interval",
        "200ms",
        "--param",
        &param,
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    // Known durations: 1 sleep of 100 µs (log2 µs slot 6), then 3 of 3 ms (slot 11).
    target_as(UCOMM, &["sleep", "1", "100"]);
    target_as(UCOMM, &["sleep", "3", "3000"]);
    let addr = run.metrics_addr();
    let text = get(&addr, &[]).text();
    promtool_ok(&text);

    // The µs slot histogram: `le` in seconds, so the quantile is in seconds.
    let h = "ebpfctl_sleep_req_seconds";
    assert!(
        text.contains(&format!("# HELP {h} Sleeps the target asked for\n")),
        "{text}"
    );
    let b = buckets_of(&text, h);
    assert_eq!(b.last(), Some(&(f64::INFINITY, 4.0)), "{text}");
    assert!(b.contains(&(0.000127, 1.0)), "slot 6 ends at 127 µs: {b:?}");
    assert!(b.contains(&(0.002047, 1.0)), "{b:?}");
    assert!(
        b.contains(&(0.004095, 4.0)),
        "slot 11 ends at 4095 µs: {b:?}"
    );
    let p50 = histogram_quantile(0.5, &b);
    assert!((0.002047..=0.004095).contains(&p50), "p50 {p50} s");
    let sum = sample(&text, &format!("{h}_sum")).unwrap();
    assert!((0.005..0.02).contains(&sum), "sum {sum} s");

    // A ms gauge in seconds, a KiB counter in bytes (`_total` last).
    assert_eq!(
        sample(&text, "ebpfctl_last_req_seconds{"),
        Some(0.003),
        "{text}"
    );
    assert!(
        text.contains("# TYPE ebpfctl_asked_bytes_total counter"),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ebpfctl_asked_bytes_total{"),
        Some(4096.0),
        "{text}"
    );

    // A µs ring-buffer hist with its own bounds, converted to seconds.
    let r = buckets_of(&text, "ebpfctl_req_events_seconds");
    assert_eq!(
        r,
        vec![
            (0.0001, 1.0),
            (0.001, 1.0),
            (0.002, 1.0),
            (0.004, 4.0),
            (f64::INFINITY, 4.0)
        ],
        "{text}"
    );

    // OpenMetrics names the units.
    let om = get(&addr, &[("Accept", PROMETHEUS_ACCEPT)]).text();
    for (name, unit) in [
        (h, "seconds"),
        ("ebpfctl_last_req_seconds", "seconds"),
        ("ebpfctl_asked_bytes", "bytes"),
        ("ebpfctl_req_events_seconds", "seconds"),
    ] {
        assert!(
            om.contains(&format!("# UNIT {name} {unit}\n")),
            "{name}:\n{om}"
        );
    }
    promtool_openmetrics_ok(&om);

    // A real Prometheus computes the quantile in seconds.
    let prom = Prometheus::start(&[("units", &addr)]);
    let deadline = Instant::now() + patient(Duration::from_secs(40));
    let q = format!("histogram_quantile(0.5, {h}_bucket)");
    let got = loop {
        let r = prom.query(&q);
        if let Some(v) = r
            .first()
            .and_then(|r| r["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok())
        {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no {q}: {}\n{}",
            prom.last_error("units"),
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        (got - p50).abs() < 1e-9,
        "prometheus {got} s, by hand {p50} s"
    );
    drop(prom);

    // JSON records of a printed map carry the unit the probe recorded in.
    let lines = run.wait_json("4 requests", |v| {
        v.iter().filter(|l| l["_map"] == "requests").count() == 4
    });
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    let ev: Vec<&serde_json::Value> = lines.iter().filter(|l| l["_map"] == "requests").collect();
    assert!(ev.iter().all(|l| l["_unit"] == "us"), "{ev:?}");
    assert_eq!(ev[0]["value"], 100, "{ev:?}");
    assert_eq!(ev[3]["value"], 3000, "{ev:?}");
}

/// A probe with one slot-keyed hash map `hist_x` carrying `tags`.
fn tagged_probe(name: &str, tags: &str) -> PathBuf {
    build_source(
        name,
        &format!(
            r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"
struct {{
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
}} hist_x SEC(".maps") {tags};
SEC("tracepoint/syscalls/sys_enter_getppid")
int f(void *ctx)
{{
	__u32 k = 0;
	__u64 one = 1;
	bpf_map_update_elem(&hist_x, &k, &one, BPF_ANY);
	return 0;
}}
char LICENSE[] SEC("license") = "GPL";
"#
        ),
    )
}

#[test]
fn unit_tags_are_checked_and_shown_before_load() {
    let bad = tagged_probe("units_bad_unit", "EBPFCTL_UNIT(parsecs)");
    let o = ebpfctl(&["run", bad.to_str().unwrap(), "-o", "none"]);
    assert_one_line_error(
        &o,
        "map hist_x: tag `ebpfctl:unit=parsecs`: unknown unit (known: ns, us",
    );
    let bounds = tagged_probe("units_bad_bounds", "EBPFCTL_BUCKETS(\"1,2,3\")");
    let o = ebpfctl(&["run", bounds.to_str().unwrap(), "-o", "none"]);
    assert_one_line_error(&o, "bounds are for ring-buffer hist maps");
    let lin = tagged_probe(
        "units_linear",
        "EBPFCTL_UNIT(ms) EBPFCTL_BUCKETS(\"linear:5\")",
    );
    let o = ebpfctl(&["inspect", lin.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains("linear slots of width 5 of ms, exposed in seconds"),
        "{out}"
    );
}

/// The init template's shape: a ring buffer `execs` (section keyword) and a counter
/// `counter_execs` would both show as `execs`.
const SHARED_NAME_PROBE: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"
const volatile char target_comm[16] = "";
struct ev { comm comm; };
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct ev);
} execs SEC(".maps.print");
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct ev);
	__type(value, __u64);
} counter_execs SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int f(void *ctx)
{
	struct ev k = {};
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	for (int i = 0; i < 16; i++) {
		if (k.comm[i] != target_comm[i])
			return 0;
		if (!k.comm[i])
			break;
	}
	struct ev *e = bpf_ringbuf_reserve(&execs, sizeof(*e), 0);
	if (e) {
		__builtin_memcpy(e->comm, k.comm, sizeof(k.comm));
		bpf_ringbuf_submit(e, 0);
	}
	__u64 one = 1, *n = bpf_map_lookup_elem(&counter_execs, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counter_execs, &k, &one, BPF_NOEXIST);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

#[test]
fn maps_sharing_a_display_name_are_refused_and_renamed_run() {
    const SCOMM: &str = "ebpfctl-shared";
    let obj = build_source("shared_name", SHARED_NAME_PROBE);
    let o = ebpfctl(&["run", obj.to_str().unwrap(), "-o", "none"]);
    assert_one_line_error(
        &o,
        "maps execs and counter_execs both show as `execs` (tables, JSON and metrics would mix them): rename one so that the names differ once the keyword prefix is removed (outputs show counter_execs as `execs`)",
    );
    // `inspect` says so too, without the kernel.
    let o = ebpfctl(&["inspect", obj.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("refused: maps execs and counter_execs"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // Renamed as the init template now does: each map its own name, every metric unique.
    let fixed = build_source(
        "shared_name_fixed",
        &SHARED_NAME_PROBE.replace("counter_execs", "counter_exec_calls"),
    );
    let param = format!("target_comm={SCOMM}");
    let run = Run::start(&[
        "run",
        fixed.to_str().unwrap(),
        "-o",
        "json",
        "--param",
        &param,
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    target_as(SCOMM, &["getppid", "3"]);
    let lines = run.wait_json("3 events", |v| {
        v.iter().filter(|l| l["_map"] == "execs").count() == 3
    });
    let m = run.scrape();
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    promtool_ok(&m);
    assert!(lines.iter().all(|l| l["_map"] == "execs"), "{lines:?}");
    assert_eq!(
        sample(&m, &format!("ebpfctl_exec_calls_total{{comm=\"{SCOMM}\"}}")),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "ebpfctl_events_total{map=\"execs\"}"),
        Some(3.0),
        "{m}"
    );
    let mut families: Vec<&str> = m
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let n = families.len();
    families.sort_unstable();
    families.dedup();
    assert_eq!(families.len(), n, "{m}");
}

#[test]
fn metric_names_that_would_clash_are_refused_before_load() {
    let src = |maps: &str, prog: &str| {
        format!(
            r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
{maps}
SEC("tracepoint/syscalls/sys_enter_getppid")
int f(void *ctx) {{ __u32 k = 0; {prog} return 0; }}
char LICENSE[] SEC("license") = "GPL";
"#
        )
    };
    let hash = |name: &str, value: &str| {
        format!("struct {{ __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, __u32); __type(value, {value}); }} {name} SEC(\".maps\");\n")
    };
    // A map taking the runner's own series.
    let own = build_source(
        "clash_own",
        &src(
            &hash("counter_events", "__u64"),
            "bpf_map_lookup_elem(&counter_events, &k);",
        ),
    );
    let o = ebpfctl(&["run", own.to_str().unwrap(), "-o", "none"]);
    assert_one_line_error(
        &o,
        "map counter_events: its metric ebpfctl_events is also written by ebpfctl's own series: rename the map",
    );
    // A struct member's series and another map's.
    let members = build_source(
        "clash_members",
        &src(
            &format!(
                "struct req_stats {{ __u64 bytes; __u64 calls; }};\n{}{}",
                hash("counter_req", "struct req_stats"),
                hash("gauge_req_bytes", "__u64")
            ),
            "bpf_map_lookup_elem(&counter_req, &k); bpf_map_lookup_elem(&gauge_req_bytes, &k);",
        ),
    );
    let o = ebpfctl(&["run", members.to_str().unwrap(), "-o", "none"]);
    assert_one_line_error(
        &o,
        "map gauge_req_bytes: its metric ebpfctl_req_bytes is also written by map counter_req: rename the map",
    );
}
