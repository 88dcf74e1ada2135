//! Stdout that goes away or stalls, for every command that streams: run, execsnoop,
//! opensnoop, observe, top (run as root, real kernel, real events).
//!
//! - A closed pipe (`| head -1`) ends the command quickly with exit 0: on the next write
//!   (EPIPE), or with nothing more to write (the idle writer sees the reader gone).
//! - A reader that never reads (a pipe this test holds and never reads) holds neither
//!   SIGTERM nor the duration (or `top --count`) nor the metrics endpoint; the records that
//!   could not be written are counted (a metric, a line on stderr) apart from ring-buffer
//!   loss.
//!
//! Each test owns its events (a command name, a thread id, a private copy of a program)
//! and checks only the BPF objects its own ebpfctl held (ids from its fds: `common::bpf`).
//! `EBPFCTL_UNDER_TEST=/path/to/ebpfctl` runs the tests against another build (e.g. one
//! from before these fixes, to see them fail).
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::bpf::Held;
use common::{build_source, sample, scrape, target_as, tmp};

/// How fast a stop signal must be obeyed, and the margin on a duration (generous: the
/// machine is shared; the figures measured are a small fraction of these: opensnoop -d 3
/// into a stalled pipe exits 3.6-3.8 s after its start on an idle host, but up to 4.5 s
/// after its ready line with a load average of 17 on 2 cores; the bug was 16-22 s).
/// Each scaled by `EBPFCTL_TEST_PATIENCE` (a TCG guest, loaded, took 2.3 s to obey
/// SIGTERM: ring drain, writer's wait and detach run several times slower there).
fn sigterm_within() -> Duration {
    common::patient(Duration::from_secs(2))
}
fn duration_margin() -> Duration {
    common::patient(Duration::from_millis(2500))
}
/// How soon a closed pipe must end the command.
fn closed_within() -> Duration {
    common::patient(Duration::from_secs(2))
}

fn ebpfctl_bin() -> PathBuf {
    std::env::var_os("EBPFCTL_UNDER_TEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(common::bin()))
}

/// A streaming command whose stdout this test holds: read a little, closed, or never read.
struct Streamer {
    child: Child,
    stdout: Option<ChildStdout>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// When the ready line came.
    ready_at: Instant,
    /// The BPF objects the command held once ready.
    held: Held,
}

impl Streamer {
    /// Starts `ebpfctl ARGS` and waits for a stderr line containing `ready` (any line when
    /// `ready` is empty: top says nothing).
    fn start(args: &[&str], ready: &str) -> Streamer {
        // SAFETY: geteuid has no arguments and cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(euid, 0, "these tests load BPF: run as root");
        let mut cmd = Command::new(ebpfctl_bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl only affects the child being set up: it dies with this test.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        });
        let stdout = child.stdout.take();
        let mut s = Streamer {
            child,
            stdout,
            stderr,
            ready_at: Instant::now(),
            held: Held::default(),
        };
        if !ready.is_empty() {
            s.wait_stderr(ready, Duration::from_secs(60));
        }
        s.ready_at = Instant::now();
        s.held = Held::of(s.child.id());
        s
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The first stderr line containing `what`, waiting up to `timeout`.
    fn wait_stderr(&mut self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.stderr().into_iter().find(|l| l.contains(what)) {
                return l;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "exited ({st}) before {what:?}:\n{}",
                    self.stderr().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what:?} on stderr in {timeout:?}:\n{}",
                self.stderr().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The metrics address announced on stderr (`.../metrics` stripped).
    fn metrics_addr(&mut self, announced: &str) -> String {
        let l = self.wait_stderr(announced, Duration::from_secs(5));
        let url = l.rsplit("http://").next().unwrap();
        url.trim_end_matches("/metrics").to_string()
    }

    /// Reads one line of stdout, then closes it (what `| head -1` does).
    fn read_line_and_close(&mut self, timeout: Duration) -> String {
        let out = self.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // `r` (the read end) is dropped here: the pipe has no reader any more.
        });
        rx.recv_timeout(timeout)
            .unwrap_or_else(|_| panic!("no line on stdout:\n{}", self.stderr().join("\n")))
    }

    /// Closes stdout unread (what `| true` does).
    fn close_stdout(&mut self) {
        drop(self.stdout.take());
    }

    /// Waits for the exit; panics after `timeout` (then kills it).
    fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the stderr thread read the last lines.
                std::thread::sleep(Duration::from_millis(150));
                return (st, start.elapsed());
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "still running {timeout:?} later:\n{}",
                    self.stderr().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then the exit: it must come within [`sigterm_within`], with status 0.
    fn terminate(&mut self) -> Duration {
        let took = self.stop();
        assert!(
            took <= sigterm_within(),
            "SIGTERM obeyed after {took:?}:\n{}",
            self.stderr().join("\n")
        );
        took
    }

    /// SIGTERM, then a clean exit, however long it takes (up to 30 s).
    fn stop(&mut self) -> Duration {
        // SAFETY: kill(2) on our own child with a valid signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let (st, took) = self.wait_exit(Duration::from_secs(30));
        self.assert_clean_exit(st);
        took
    }

    /// Exit 0, no panic, no error line, and nothing of its own left in the kernel.
    fn assert_clean_exit(&self, st: ExitStatus) {
        let err = self.stderr().join("\n");
        assert!(st.success(), "exit {st}:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains("error:"), "{err}");
        self.held.assert_gone("the streaming command");
    }

    /// What the pipe still holds once the command exited (the test never read it).
    fn unread(&mut self) -> Vec<u8> {
        let mut b = Vec::new();
        self.stdout.take().unwrap().read_to_end(&mut b).unwrap();
        b
    }
}

impl Drop for Streamer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The total of the last "N records dropped (M in all" notice on stderr.
fn dropped_total(stderr: &[String]) -> Option<u64> {
    stderr
        .iter()
        .rev()
        .find(|l| l.contains("stdout is not being read"))
        .and_then(|l| l.split(" (").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn count_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Waits until the scrape at `addr` has `series` above 0; returns the scrape.
fn wait_metric(addr: &str, series: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let m = scrape_within(addr, Duration::from_secs(2));
        if sample(&m, series).is_some_and(|v| v > 0.0) {
            return m;
        }
        assert!(Instant::now() < deadline, "{series} stayed 0:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scrape that must answer within `limit` (the endpoint is not held by the stall).
fn scrape_within(addr: &str, limit: Duration) -> String {
    let t = Instant::now();
    let m = scrape(addr);
    assert!(t.elapsed() < limit, "scrape took {:?}", t.elapsed());
    m
}

// ---- run ----

/// Per getppid of a process named `target_comm`: 200 reservations in a 4 KiB ring buffer,
/// so about half are lost in the kernel (counted) and the rest make JSON lines.
const BURST: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"
struct ev { __u64 n; __u32 pid; char pad[20]; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); __type(value, struct ev); } print_out_burst SEC(".maps");
EBPFCTL_LOST_COUNTER(print_out_burst);
const volatile char target_comm[16] = "";
SEC("tracepoint/syscalls/sys_enter_getppid")
int out_burst(void *ctx) {
    char c[16];
    bpf_get_current_comm(c, sizeof(c));
    for (int i = 0; i < 15; i++) { if (c[i] != target_comm[i]) return 0; if (!c[i]) break; }
    for (int i = 0; i < 200; i++) {
        struct ev *e = ebpfctl_reserve(print_out_burst, struct ev);
        if (!e) continue;
        e->n = i;
        e->pid = bpf_get_current_pid_tgid() >> 32;
        bpf_ringbuf_submit(e, 0);
    }
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

fn burst_object() -> String {
    build_source("out_burst", BURST)
        .to_str()
        .unwrap()
        .to_string()
}

fn start_run(comm: &str, extra: &[&str]) -> Streamer {
    let obj = burst_object();
    let param = format!("target_comm={comm}");
    let mut args = vec!["run", obj.as_str(), "--param", param.as_str()];
    args.extend_from_slice(extra);
    Streamer::start(&args, "running:")
}

/// `| head -1`, in both outputs: the next write after the reader left ends the run.
#[test]
fn run_ends_with_exit_0_when_stdout_closes() {
    for (output, comm) in [("json", "ebpfctl-oclj"), ("table", "ebpfctl-oclt")] {
        let mut s = start_run(comm, &["-o", output, "--no-metrics", "--interval", "100ms"]);
        target_as(comm, &["getppid", "1"]);
        let first = s.read_line_and_close(Duration::from_secs(10));
        assert!(!first.is_empty(), "{output}: no first line");
        // More events, written into a pipe without a reader.
        let (stop, load) = getppid_load(comm, "1");
        let (st, took) = s.wait_exit(Duration::from_secs(30));
        drop(stop);
        load.join().unwrap();
        assert!(
            took <= closed_within(),
            "{output}: ended {took:?} after the pipe closed"
        );
        s.assert_clean_exit(st);
    }
}

/// A reader gone before the first record: nothing is written, and still the run ends.
#[test]
fn run_ends_with_exit_0_when_stdout_closes_before_any_record() {
    let mut s = start_run("ebpfctl-onone", &["-o", "json", "--no-metrics"]);
    s.close_stdout();
    let (st, took) = s.wait_exit(Duration::from_secs(30));
    assert!(
        took <= closed_within(),
        "ended {took:?} after the pipe closed"
    );
    s.assert_clean_exit(st);
}

/// Load: `calls` getppid by `comm` in a loop, until told to stop.
fn getppid_load(
    comm: &'static str,
    calls: &'static str,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<u64>) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        let mut runs = 0;
        while rx.try_recv() != Err(std::sync::mpsc::TryRecvError::Disconnected) {
            target_as(comm, &["getppid", calls]);
            runs += 1;
        }
        runs
    });
    (tx, h)
}

/// A stalled reader: SIGTERM is obeyed at once, the endpoint answers, and every event is
/// accounted for: left in the pipe, dropped by the output, or lost in the kernel.
#[test]
fn run_with_a_stalled_reader_obeys_sigterm_and_counts_what_it_dropped() {
    let comm = "ebpfctl-ostall";
    let mut s = start_run(
        comm,
        &[
            "-o",
            "json",
            "--metrics-addr",
            "127.0.0.1:0",
            "--interval",
            "100ms",
        ],
    );
    let addr = s.metrics_addr("serving metrics on");
    // Runs of 20 calls × 200 reservations (~400 KB of JSON each if all fit) until the output
    // drops: how much the 4 KiB ring buffer loses first depends on how busy the machine is.
    let mut runs = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s
        .stderr()
        .iter()
        .any(|l| l.contains("stdout is not being read"))
    {
        assert!(
            Instant::now() < deadline,
            "nothing dropped after {runs} runs:\n{}",
            s.stderr().join("\n")
        );
        for _ in 0..10 {
            target_as(comm, &["getppid", "20"]);
            runs += 1;
        }
    }
    let generated = runs * 20 * 200;
    let m = wait_metric(
        &addr,
        "ebpfctl_output_dropped_total{map=\"out_burst\"}",
        Duration::from_secs(5),
    );
    let lost_now = sample(&m, "ebpfctl_lost_events_total{map=\"out_burst\"}").unwrap();
    assert!(lost_now > 0.0, "the 4 KiB ring buffer loses events:\n{m}");
    s.terminate();
    let err = s.stderr();
    let dropped = dropped_total(&err).expect("a dropped notice");
    let lost: u64 = err
        .iter()
        .rev()
        .find(|l| l.contains("map print_out_burst: lost"))
        .and_then(|l| l.split(" (").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a loss notice");
    let loss_records = err
        .iter()
        .filter(|l| l.contains("map print_out_burst: lost"))
        .count() as u64;
    let in_pipe = count_lines(&s.unread());
    assert!(dropped > 0 && lost > 0, "dropped {dropped}, lost {lost}");
    // Lines are event records plus one loss record per loss notice.
    let made = generated - lost + loss_records;
    let counts =
        format!("{in_pipe} in the pipe + {dropped} dropped vs {generated} generated - {lost} lost + {loss_records} loss records");
    if ebpfctl_core::print::writer::pipes_take_nowait() {
        assert_eq!(in_pipe + dropped, made, "{counts}");
    } else {
        // Plain writes: the buffer left stuck in write(2) counts as dropped, though part
        // of it reached the pipe (the documented bound of the writer).
        eprintln!("KERNEL MATRIX: pipes refuse RWF_NOWAIT here: counted as plain writes");
        assert!(in_pipe + dropped >= made && dropped <= made, "{counts}");
    }
}

/// `--duration` is kept with a reader that never reads, while events keep coming.
#[test]
fn run_with_a_stalled_reader_keeps_its_duration() {
    let comm = "ebpfctl-odur";
    let mut s = start_run(comm, &["-o", "json", "--no-metrics", "--duration", "3s"]);
    let (stop, load) = getppid_load("ebpfctl-odur", "20");
    let (st, _) = s.wait_exit(Duration::from_secs(30));
    let took = s.ready_at.elapsed();
    drop(stop);
    load.join().unwrap();
    assert!(
        took <= Duration::from_secs(3) + duration_margin(),
        "--duration 3s ended after {took:?}"
    );
    s.assert_clean_exit(st);
    assert!(
        dropped_total(&s.stderr()).is_some_and(|d| d > 0),
        "{:?}",
        s.stderr()
    );
}

// ---- execsnoop ----

/// Execs of `comm` with `args` arguments of 3,000 bytes: ~`args` × 3 KB of JSON each.
fn exec_load(
    comm: &'static str,
    args: usize,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<u64>) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        let long = "a".repeat(3000);
        let mut argv = vec!["getppid", "1"];
        argv.extend(std::iter::repeat_n(long.as_str(), args));
        let mut runs = 0;
        while rx.try_recv() != Err(std::sync::mpsc::TryRecvError::Disconnected) {
            target_as(comm, &argv);
            runs += 1;
        }
        runs
    });
    (tx, h)
}

/// `execsnoop | head -1`: the header is all the reader wants; execsnoop ends without
/// waiting for an exec to write.
#[test]
fn execsnoop_ends_with_exit_0_when_stdout_closes() {
    let mut s = Streamer::start(&["execsnoop", "-n", "^ebpfctl-onever$"], "tracing (");
    let header = s.read_line_and_close(Duration::from_secs(10));
    assert!(header.contains("PID"), "{header}");
    let (st, took) = s.wait_exit(Duration::from_secs(30));
    assert!(
        took <= closed_within(),
        "ended {took:?} after the pipe closed"
    );
    s.assert_clean_exit(st);
}

/// execsnoop of the execs of `comm`, keeping 40 arguments of 3,000 bytes.
fn execsnoop_stalled(comm: &str, extra: &[&str]) -> Streamer {
    let name = format!("^{comm}$");
    let mut args = vec![
        "execsnoop",
        "-o",
        "json",
        "--no-snapshot",
        "-n",
        name.as_str(),
        "--max-args",
        "40",
        "--arg-len",
        "3000",
        "--ring-kib",
        "8192",
    ];
    args.extend_from_slice(extra);
    Streamer::start(&args, "tracing (")
}

#[test]
fn execsnoop_with_a_stalled_reader_obeys_sigterm_and_counts_what_it_dropped() {
    let mut s = execsnoop_stalled("ebpfctl-oexecs", &["--metrics-addr", "127.0.0.1:0"]);
    let addr = s.metrics_addr("metrics on");
    let (stop, load) = exec_load("ebpfctl-oexecs", 38);
    s.wait_stderr(
        "execsnoop: stdout is not being read",
        Duration::from_secs(30),
    );
    let m = wait_metric(
        &addr,
        "ebpfctl_execsnoop_output_dropped_total",
        Duration::from_secs(5),
    );
    assert!(
        m.contains("ebpfctl_execsnoop_lost_events_total "),
        "kernel loss apart:\n{m}"
    );
    s.terminate();
    drop(stop);
    load.join().unwrap();
    let err = s.stderr();
    let last = err
        .iter()
        .find(|l| l.contains("execsnoop: stopped"))
        .unwrap();
    assert!(last.contains("not written"), "{err:?}");
}

#[test]
fn execsnoop_with_a_stalled_reader_keeps_its_duration() {
    let mut s = execsnoop_stalled("ebpfctl-oexecd", &["-d", "3"]);
    let (stop, load) = exec_load("ebpfctl-oexecd", 38);
    let (st, _) = s.wait_exit(Duration::from_secs(30));
    let took = s.ready_at.elapsed();
    drop(stop);
    load.join().unwrap();
    assert!(
        took <= Duration::from_secs(3) + duration_margin(),
        "-d 3 ended after {took:?}"
    );
    s.assert_clean_exit(st);
}

// ---- opensnoop ----

/// A thread opening a missing file with a long name, from the first message on `go`: in a
/// loop until `go` is dropped, or (`once`) 3 times and then no more. Returns its tid.
fn open_load(
    once: bool,
) -> (
    u32,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    use std::sync::mpsc::TryRecvError;
    let (go, rx) = std::sync::mpsc::channel::<()>();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        // SAFETY: gettid has no arguments.
        let _ = tid_tx.send(unsafe { libc::gettid() } as u32);
        let missing = tmp().join(format!("missing-{}", "o".repeat(200)));
        if rx.recv().is_err() {
            return;
        }
        loop {
            for _ in 0..if once { 3 } else { 1000 } {
                let _ = std::fs::File::open(&missing);
            }
            if once {
                while rx.recv().is_ok() {}
                return;
            }
            if rx.try_recv() == Err(TryRecvError::Disconnected) {
                return;
            }
        }
    });
    (tid_rx.recv().unwrap(), go, h)
}

#[test]
fn opensnoop_ends_with_exit_0_when_stdout_closes() {
    // Three opens, then none: the reader leaves while opensnoop has nothing to write.
    let (tid, stop, load) = open_load(true);
    let mut s = Streamer::start(
        &["opensnoop", "-o", "json", "-t", &tid.to_string()],
        "tracing (",
    );
    stop.send(()).unwrap();
    let first = s.read_line_and_close(Duration::from_secs(10));
    assert!(first.contains("\"tid\""), "{first}");
    let (st, took) = s.wait_exit(Duration::from_secs(30));
    drop(stop);
    load.join().unwrap();
    assert!(
        took <= closed_within(),
        "ended {took:?} after the pipe closed"
    );
    s.assert_clean_exit(st);
}

#[test]
fn opensnoop_with_a_stalled_reader_obeys_sigterm_and_counts_what_it_dropped() {
    let (tid, stop, load) = open_load(false);
    let tid = tid.to_string();
    let mut s = Streamer::start(
        &[
            "opensnoop",
            "-o",
            "json",
            "-t",
            &tid,
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        "tracing (",
    );
    stop.send(()).unwrap();
    let addr = s.metrics_addr("metrics on");
    s.wait_stderr(
        "opensnoop: stdout is not being read",
        Duration::from_secs(30),
    );
    let m = wait_metric(
        &addr,
        "ebpfctl_opensnoop_output_dropped_total",
        Duration::from_secs(5),
    );
    assert!(
        m.contains("ebpfctl_opensnoop_lost_events_total "),
        "kernel loss apart:\n{m}"
    );
    s.terminate();
    drop(stop);
    load.join().unwrap();
    assert!(s
        .stderr()
        .iter()
        .any(|l| l.contains("stopped") && l.contains("not written")));
}

#[test]
fn opensnoop_with_a_stalled_reader_keeps_its_duration() {
    let (tid, stop, load) = open_load(false);
    let mut s = Streamer::start(
        &["opensnoop", "-o", "json", "-t", &tid.to_string(), "-d", "3"],
        "tracing (",
    );
    stop.send(()).unwrap();
    let (st, _) = s.wait_exit(Duration::from_secs(30));
    let took = s.ready_at.elapsed();
    drop(stop);
    load.join().unwrap();
    assert!(
        took <= Duration::from_secs(3) + duration_margin(),
        "-d 3 ended after {took:?}"
    );
    s.assert_clean_exit(st);
    assert!(
        dropped_total(&s.stderr()).is_some_and(|d| d > 0),
        "{:?}",
        s.stderr()
    );
}

// ---- observe ----

/// A Go program that serves on loopback and GETs itself N times (0: until killed), a pause
/// of P µs after each, with a long URL so that each request makes a long JSON line.
const FLOOD_GO: &str = r#"package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	pause, _ := strconv.Atoi(os.Args[2])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	url := "http://" + ln.Addr().String() + "/" + strings.Repeat("x", 400)
	for i := 0; n == 0 || i < n; i++ {
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(time.Duration(pause) * time.Microsecond)
	}
}
"#;

/// The flood program built once (Debian's Go), then copied under `name`: observe traces
/// per executable file, so each test sees only its own copy.
fn flood_program(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let bin = built
        .get_or_insert_with(|| {
            let dir = tmp().join("go-flood");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("main.go"), FLOOD_GO).unwrap();
            std::fs::write(dir.join("go.mod"), "module flood\n\ngo 1.17\n").unwrap();
            let out = dir.join("flood");
            let o = Command::new("/usr/bin/go")
                .current_dir(&dir)
                .env("GOCACHE", dir.join("cache"))
                .env("GOPATH", dir.join("gopath"))
                .env("GOTOOLCHAIN", "local")
                .env("CGO_ENABLED", "0")
                .env_remove("GOROOT")
                .args(["build", "-o"])
                .arg(&out)
                .arg(".")
                .output()
                .expect("/usr/bin/go (scripts/setup.sh --test installs it)");
            assert!(
                o.status.success(),
                "go build: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            out
        })
        .clone();
    let copy = tmp().join("bin").join(name);
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    common::copy_exe(&bin, &copy);
    copy
}

/// The flood program running until dropped.
struct Flood(Child);

/// The pause between requests: a steady stream (some MB/s of JSON) that leaves observe the
/// CPU it needs on a small shared machine; unpaced, the Go program and its uprobe traps
/// starve everything else.
const FLOOD_PAUSE_US: &str = "300";

impl Flood {
    fn start(bin: &PathBuf, n: u32) -> Flood {
        Flood(
            Command::new(bin)
                .args([n.to_string().as_str(), FLOOD_PAUSE_US])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// observe detaches its 20 uprobes after its closing line ("observe: N requests, ..."),
// and that takes seconds on a loaded machine whatever stdout does: its stop is timed to
// that line, and the exit then only has to be clean.
const OBSERVE_DONE: &str = "observe: ";

/// Waits for observe's closing line; returns how long it took from `since`. Then the exit
/// must be clean.
fn observe_closing_line(s: &mut Streamer, since: Instant) -> Duration {
    s.wait_stderr(" requests, ", Duration::from_secs(30));
    let took = since.elapsed();
    let (st, _) = s.wait_exit(Duration::from_secs(30));
    s.assert_clean_exit(st);
    took
}

#[test]
fn observe_ends_with_exit_0_when_stdout_closes() {
    let bin = flood_program("obs-out-close");
    let mut s = Streamer::start(
        &["observe", bin.to_str().unwrap(), "-o", "json"],
        "observe: ready",
    );
    // A few requests, then none: the reader leaves while observe has nothing to write.
    let mut f = Flood::start(&bin, 3);
    let first = s.read_line_and_close(Duration::from_secs(20));
    let closed = Instant::now();
    assert!(first.contains("\"method\""), "{first}");
    let _ = f.0.wait();
    let took = observe_closing_line(&mut s, closed);
    assert!(
        took <= closed_within(),
        "ended {took:?} after the pipe closed"
    );
}

#[test]
fn observe_with_a_stalled_reader_obeys_sigterm_and_counts_what_it_dropped() {
    let bin = flood_program("obs-out-stall");
    let mut s = Streamer::start(
        &[
            "observe",
            bin.to_str().unwrap(),
            "-o",
            "json",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        "observe: ready",
    );
    let addr = s.metrics_addr("observe: metrics on");
    let _flood = Flood::start(&bin, 0);
    s.wait_stderr("observe: stdout is not being read", Duration::from_secs(30));
    let m = wait_metric(
        &addr,
        "ebpfctl_observe_output_dropped_total",
        Duration::from_secs(5),
    );
    assert!(
        m.contains("ebpfctl_observe_lost_events_total "),
        "kernel loss apart:\n{m}"
    );
    let sent = Instant::now();
    // SAFETY: kill(2) on our own child with a valid signal.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let took = observe_closing_line(&mut s, sent);
    assert!(took <= sigterm_within(), "SIGTERM obeyed after {took:?}");
    let err = s.stderr();
    assert!(
        err.iter().any(|l| l.starts_with(OBSERVE_DONE)
            && l.contains("lost events")
            && l.contains("not written")),
        "{err:?}"
    );
}

#[test]
fn observe_with_a_stalled_reader_keeps_its_duration() {
    let bin = flood_program("obs-out-dur");
    let mut s = Streamer::start(
        &[
            "observe",
            bin.to_str().unwrap(),
            "-o",
            "json",
            "--duration",
            "3",
        ],
        "observe: ready",
    );
    let _flood = Flood::start(&bin, 0);
    let ready = s.ready_at;
    let took = observe_closing_line(&mut s, ready);
    assert!(
        took <= Duration::from_secs(3) + duration_margin(),
        "--duration 3 ended after {took:?}"
    );
    assert!(
        dropped_total(&s.stderr()).is_some_and(|d| d > 0),
        "{:?}",
        s.stderr()
    );
}

// ---- top ----

/// 150 programs of our own, so each `top` frame is long (~20 KB of JSON).
fn many_programs() -> Streamer {
    let mut src = String::from("#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\n");
    // At most 64 programs per tracepoint: 30 on each of 5.
    let calls = ["getppid", "getpid", "getuid", "getgid", "geteuid"];
    for i in 0..150 {
        src.push_str(&format!(
            "SEC(\"tracepoint/syscalls/sys_enter_{}\") int otop_{i}(void *c) {{ return 0; }}\n",
            calls[i % calls.len()]
        ));
    }
    src.push_str("char LICENSE[] SEC(\"license\") = \"GPL\";\n");
    let obj = build_source("out_top", &src);
    let s = Streamer::start(
        &["run", obj.to_str().unwrap(), "-o", "none", "--no-metrics"],
        "running:",
    );
    assert!(s.held.progs.len() >= 150, "{:?}", s.held.progs);
    s
}

fn top_args(progs: &BTreeSet<u32>, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["top", "--json", "--interval", "0.05"]
        .map(String::from)
        .to_vec();
    for id in progs {
        a.push("--id".into());
        a.push(id.to_string());
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

#[test]
fn top_ends_with_exit_0_when_stdout_closes() {
    // One frame, then nothing to write for 5 s: the reader's leaving is seen before.
    let mut s = Streamer::start(&["top", "--json", "--interval", "5"], "");
    let first = s.read_line_and_close(Duration::from_secs(20));
    assert!(first.contains("\"programs\""), "{first}");
    let (st, took) = s.wait_exit(Duration::from_secs(30));
    assert!(
        took <= closed_within(),
        "ended {took:?} after the pipe closed"
    );
    s.assert_clean_exit(st);
}

#[test]
fn top_with_a_stalled_reader_obeys_sigterm_and_keeps_its_count() {
    let mut run = many_programs();
    let progs = run.held.progs.clone();
    // --count: 80 frames of 50 ms, about 4 s, kept though nobody reads.
    let args = top_args(&progs, &["--count", "80"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = Streamer::start(&args, "");
    let (st, _) = s.wait_exit(Duration::from_secs(60));
    let took = s.ready_at.elapsed();
    assert!(
        took <= Duration::from_secs(4) + duration_margin() * 2,
        "--count 80 took {took:?}"
    );
    s.assert_clean_exit(st);
    assert!(
        s.stderr()
            .iter()
            .any(|l| l.contains("ebpfctl: top: stdout is not being read")),
        "{:?}",
        s.stderr()
    );
    // SIGTERM, stalled.
    let args = top_args(&progs, &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut s = Streamer::start(&args, "");
    std::thread::sleep(Duration::from_secs(3));
    s.terminate();
    // Not the stream under test: detaching 150 programs takes its time.
    run.stop();
}
