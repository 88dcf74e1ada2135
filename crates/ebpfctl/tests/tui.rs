//! The live terminal views on a real terminal: the binary runs in a detached tmux session
//! (its own server socket) at 80x24 and 160x50; the screen is read with `capture-pane`.
mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{bin, build_source, target_as};

/// A detached tmux server and session of our own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A shell in a `w`x`h` window.
    fn start(w: u16, h: u16) -> Tmux {
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "ebpfctl-tui-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let t = Tmux { socket };
        let (w, h) = (w.to_string(), h.to_string());
        let o = t.cmd(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &w,
            "-y",
            &h,
            "sh",
        ]);
        assert!(
            o.status.success(),
            "tmux is needed (scripts/setup.sh installs it): {o:?}"
        );
        // The window keeps the size we give it (no client is attached to choose one).
        t.cmd(&["set-option", "-g", "window-size", "manual"]);
        t
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .expect("tmux is needed: apt-get install -y tmux (scripts/setup.sh)")
    }

    /// Types `text` and Enter into the shell.
    fn type_line(&self, text: &str) {
        assert!(self
            .cmd(&["send-keys", "-t", "t", "-l", text])
            .status
            .success());
        assert!(self
            .cmd(&["send-keys", "-t", "t", "Enter"])
            .status
            .success());
    }

    fn key(&self, key: &str) {
        assert!(self.cmd(&["send-keys", "-t", "t", key]).status.success());
    }

    /// The visible screen, one string per line (trailing blanks cut by tmux).
    fn screen(&self) -> Vec<String> {
        let o = self.cmd(&["capture-pane", "-p", "-t", "t"]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn format(&self, f: &str) -> String {
        let o = self.cmd(&["display-message", "-p", "-t", "t", f]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn alternate_on(&self) -> bool {
        self.format("#{alternate_on}") == "1"
    }

    fn resize(&self, w: u16, h: u16) {
        let o = self.cmd(&[
            "resize-window",
            "-t",
            "t",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
        ]);
        assert!(o.status.success(), "{o:?}");
    }

    /// Waits until `pred` holds for the screen (or panics with it after 20 s, scaled by
    /// `EBPFCTL_TEST_PATIENCE`: a TCG guest beside two others took longer to show observe's).
    fn wait(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + common::patient(Duration::from_secs(20));
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{}",
                s.join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid of the shell's child named `ebpfctl`, once it runs.
    fn child(&self) -> u32 {
        let shell: u32 = self.format("#{pane_pid}").parse().unwrap();
        let deadline = Instant::now() + common::patient(Duration::from_secs(20));
        loop {
            for e in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // pid (comm) state ppid ...
                let Some((comm, rest)) = stat.split_once(") ") else {
                    continue;
                };
                let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
                if comm.ends_with("(ebpfctl") && ppid == Some(shell) {
                    return pid;
                }
            }
            assert!(Instant::now() < deadline, "ebpfctl did not start in tmux");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An `ebpfctl` started in a tmux shell: its pid and what it holds in the kernel.
struct Started {
    pid: u32,
    held: common::bpf::Held,
}

impl Tmux {
    /// Types `ebpfctl ARGS; echo exit=$?` and waits for its view (`ready`, named `what`).
    fn ebpfctl(&self, args: &str, what: &str, ready: impl Fn(&[String]) -> bool) -> Started {
        self.type_line(&format!("{} {args}; echo exit=$?", quote(Path::new(bin()))));
        let pid = self.child();
        self.wait(what, ready);
        assert!(self.alternate_on(), "{what} is on the alternate screen");
        Started {
            pid,
            held: common::bpf::Held::of(pid),
        }
    }

    /// Waits for the shell after `s` ended (sends `key` first, if any): exit status 0, the
    /// normal screen back, nothing of the view on it, what it loaded gone. The screen.
    fn ended(&self, s: &Started, key: Option<&str>) -> Vec<String> {
        if let Some(k) = key {
            self.key(k);
        }
        let screen = self.wait("the shell again", |s| {
            s.iter().any(|l| l.starts_with("exit="))
        });
        let all = screen.join("\n");
        assert!(all.contains("exit=0"), "{all}");
        assert!(!self.alternate_on(), "the alternate screen is left:\n{all}");
        assert!(!all.contains("events/s"), "{all}");
        s.held.assert_gone(&format!("ebpfctl (pid {})", s.pid));
        screen
    }

    /// Resizes to `w`x`h` and waits for a redraw whose status line is on the second row from
    /// the bottom (`status` starts it), nothing wrapped.
    fn resized(&self, w: u16, h: u16, status: &str) -> Vec<String> {
        self.resize(w, h);
        let s = self.wait(&format!("the redraw at {w}x{h}"), |s| {
            s.len() == h as usize && s[h as usize - 2].starts_with(status)
        });
        assert_fits(&s, w as usize, h as usize);
        s
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// Every line fits the width, and there are exactly `h` of them (nothing wrapped).
fn assert_fits(s: &[String], w: usize, h: usize) {
    assert!(
        s.len() <= h,
        "{} lines for {h} rows:\n{}",
        s.len(),
        s.join("\n")
    );
    for l in s {
        assert!(l.chars().count() <= w, "line wider than {w}: {l:?}");
    }
}

/// A probe of its own: getppid calls of processes named `ebpfctl-tui-t` go to a ring buffer
/// (`print_calls`) and are counted per pid in a 4-entry hash (`counter_by_pid`).
const PROBE: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"
struct call { __u32 pid; __u32 seq; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 16); __type(value, struct call); } print_calls SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } counter_by_pid SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int tui_getppid(void *ctx)
{
	const char want[] = "ebpfctl-tui-t";
	char comm[16];
	bpf_get_current_comm(comm, sizeof(comm));
#pragma unroll
	for (int i = 0; i < sizeof(want); i++)
		if (comm[i] != want[i])
			return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *n = bpf_map_lookup_elem(&counter_by_pid, &pid);
	__u32 seq = n ? *n + 1 : 1;
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counter_by_pid, &pid, &one, BPF_NOEXIST);
	struct call *c = bpf_ringbuf_reserve(&print_calls, sizeof(*c), 0);
	if (!c)
		return 0;
	c->pid = pid;
	c->seq = seq;
	bpf_ringbuf_submit(c, 0);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

fn quote(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
fn run_table_is_a_live_view_that_fits_resizes_and_quits_on_q() {
    let obj = build_source("tui_probe", PROBE);
    let t = Tmux::start(80, 24);
    t.type_line("printf 'before-the-view\\n'");
    let run = t.ebpfctl(
        &format!(
            "run {} -o table --interval 200ms --metrics-addr 127.0.0.1:0",
            quote(&obj)
        ),
        "the live view",
        |s| s.iter().any(|l| l.starts_with("events/s")),
    );
    assert!(
        !run.held.progs.is_empty(),
        "ebpfctl (pid {}) holds no program",
        run.pid
    );
    // Five processes: the 4-entry hash fills up.
    for _ in 0..5 {
        target_as("ebpfctl-tui-t", &["getppid", "3"]);
    }
    let s = t.wait("4 of 4 entries and 12+ events", |s| {
        let all = s.join("\n");
        all.contains("4 of 4 entries") && all.contains("FULL") && all.contains("calls 1")
    });
    assert_fits(&s, 80, 24);
    let all = s.join("\n");
    assert!(all.contains("by_pid"), "{all}");
    assert!(all.contains("PID") && all.contains("SEQ"), "{all}");
    assert!(all.contains("COUNT") || all.contains("VALUE"), "{all}");
    // The status line, then the keys, at the bottom rows.
    assert_eq!(s.len(), 24, "{all}");
    assert!(s[22].starts_with("events/s"), "{all}");
    assert!(
        s[22].contains("lost 0") && s[22].contains("dropped by output 0"),
        "{all}"
    );
    assert!(s[22].contains("metrics 127.0.0.1:"), "{all}");
    assert!(s[23].starts_with("q quit"), "{all}");

    t.resized(160, 50, "events/s");
    t.resized(80, 24, "events/s");

    // Sort by key: the keys line says so.
    t.key("k");
    t.wait("sort by key", |s| s.iter().any(|l| l.contains("[key ↑]")));

    let s = t.ended(&run, Some("q"));
    assert!(
        s.join("\n").contains("before-the-view"),
        "the normal screen is back:\n{}",
        s.join("\n")
    );
}

#[test]
fn run_table_restores_the_terminal_on_sigterm_and_duration() {
    let obj = build_source("tui_probe_end", PROBE);
    let t = Tmux::start(80, 24);
    let view = |s: &[String]| s.iter().any(|l| l.starts_with("events/s"));
    let run = t.ebpfctl(
        &format!("run {} -o table --no-metrics --duration 3s", quote(&obj)),
        "the live view",
        view,
    );
    t.ended(&run, None);

    t.type_line("clear");
    let run = t.ebpfctl(
        &format!("run {} -o table --no-metrics", quote(&obj)),
        "the live view",
        view,
    );
    // SAFETY: kill with a valid signal on the pid of the ebpfctl we started.
    unsafe { libc::kill(run.pid as i32, libc::SIGTERM) };
    t.ended(&run, None);
}

#[test]
fn top_fits_the_height_keeps_its_header_and_quits_on_q() {
    let t = Tmux::start(80, 24);
    t.type_line("printf 'before-top\\n'");
    let top = t.ebpfctl("top --interval 200ms", "top's table", |s| {
        s.len() == 24 && s[1].trim_start().starts_with("ID") && s[23].starts_with("q quit")
    });
    let s = t.screen();
    assert_fits(&s, 80, 24);
    let all = s.join("\n");
    assert!(s[0].starts_with("ebpfctl top"), "{all}");
    assert!(s[1].contains("NAME") && s[1].contains("CPU%"), "{all}");
    // Scrolling and sorting keep the header on its row.
    t.key("PageDown");
    t.key("n");
    let s = t.wait("sorted by name", |s| {
        s.first().is_some_and(|l| l.contains("sorted by name"))
    });
    assert!(s[1].trim_start().starts_with("ID"), "{}", s.join("\n"));
    t.resize(160, 50);
    let s = t.wait("the redraw at 160x50", |s| {
        s.len() == 50 && s[1].contains("TOTAL TIME") && s[49].starts_with("q quit")
    });
    assert_fits(&s, 160, 50);
    let s = t.ended(&top, Some("q"));
    assert!(s.join("\n").contains("before-top"), "{}", s.join("\n"));
}

/// The cells of the screen's table rows: box borders cut, split at runs of 2+ blanks (cells
/// are 2 apart; a cell like `sleep 1` keeps its single blank).
fn rows(s: &[String]) -> Vec<Vec<String>> {
    s.iter()
        .flat_map(|l| l.split(['│', '║']))
        .map(|part| {
            part.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// Some row starts with `want` (cells in order).
fn has_row(s: &[String], want: &[&str]) -> bool {
    rows(s)
        .iter()
        .any(|r| r.len() >= want.len() && r.iter().zip(want).all(|(c, w)| c == w))
}

/// A tool's view at 80x24: the status line, the keys, nothing wrapped.
fn assert_tool_view(s: &[String]) {
    assert_fits(s, 80, 24);
    let all = s.join("\n");
    assert_eq!(s.len(), 24, "{all}");
    assert!(s[22].starts_with("events/s"), "{all}");
    assert!(
        s[22].contains("lost 0") && s[22].contains("dropped by output 0"),
        "{all}"
    );
    assert!(
        s[23].starts_with("q quit") && s[23].contains("p pause"),
        "{all}"
    );
}

const TOOL_VIEW: fn(&[String]) -> bool = |s| s.len() >= 2 && s[s.len() - 2].starts_with("events/s");

#[test]
fn execsnoop_is_a_live_view_of_execs_and_top_commands() {
    let t = Tmux::start(80, 24);
    let run = t.ebpfctl(
        "execsnoop -n '^ebpfctl-tui-x' --metrics-addr 127.0.0.1:0",
        "execsnoop's view",
        TOOL_VIEW,
    );
    for _ in 0..3 {
        target_as("ebpfctl-tui-x", &["getppid", "1"]);
    }
    // Two failed execs (ENOENT): counted under the comm of the thread that tried.
    let missing = common::target_dir().join("ebpfctl-tui-x-missing");
    for _ in 0..2 {
        assert!(Command::new(&missing).spawn().is_err());
    }
    let s = t.wait("3 execs and 2 failed ones", |s| {
        has_row(s, &["3", "0", "ebpfctl-tui-x"]) && has_row(s, &["2", "2"])
    });
    assert_tool_view(&s);
    let all = s.join("\n");
    assert!(all.contains("execs 5 events"), "{all}");
    assert!(all.contains("top commands 2 commands"), "{all}");
    assert!(s[22].contains("events 5 |"), "{all}");
    assert!(s[22].contains("metrics 127.0.0.1:"), "{all}");
    assert!(s[1].contains("PCOMM") && s[1].contains("ARGS"), "{all}");
    let execs = rows(&s);
    let ok = execs
        .iter()
        .filter(|r| r.get(1).is_some_and(|c| c == "ebpfctl-tui-x"))
        .count();
    assert_eq!(ok, 3, "{all}");
    // The failed ones: RET -2 (ENOENT); their ARGS are cut at the edge, never wrapped.
    let failed = execs
        .iter()
        .filter(|r| r.len() == 6 && r[4] == "-2")
        .count();
    assert_eq!(failed, 2, "{all}");
    // Paused: the log stays, counting goes on.
    t.key("p");
    t.wait("paused", |s| s.iter().any(|l| l.contains("PAUSED (0 new)")));
    target_as("ebpfctl-tui-x", &["getppid", "1"]);
    let s = t.wait("4 execs counted, 1 unseen", |s| {
        has_row(s, &["4", "0", "ebpfctl-tui-x"]) && s.iter().any(|l| l.contains("PAUSED (1 new)"))
    });
    assert!(s.join("\n").contains("execs 6 events"), "{}", s.join("\n"));

    let s = t.resized(160, 50, "events/s");
    assert!(
        has_row(&s, &["4", "0", "ebpfctl-tui-x"]),
        "{}",
        s.join("\n")
    );
    t.resized(80, 24, "events/s");
    let s = t.ended(&run, Some("q"));
    assert!(
        s.iter()
            .any(|l| l.starts_with("execsnoop: stopped; 6 events")),
        "{}",
        s.join("\n")
    );
}

#[test]
fn opensnoop_is_a_live_view_of_opens_files_and_processes() {
    let t = Tmux::start(80, 24);
    let me = std::process::id().to_string();
    // This thread's opens only: the other tests' threads of this process open files too
    // (their harness reads /proc), and would push these out of the log panel.
    // SAFETY: gettid has no arguments.
    let tid = unsafe { libc::gettid() };
    let run = t.ebpfctl(
        &format!("opensnoop -t {tid}"),
        "opensnoop's view",
        TOOL_VIEW,
    );
    // A short path of our own, so that it fits the files panel at 80 columns.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("o");
    let missing = dir.path().join("m");
    std::fs::write(&file, b"x").unwrap();
    for _ in 0..3 {
        drop(std::fs::File::open(&file).unwrap());
    }
    for _ in 0..2 {
        assert!(std::fs::File::open(&missing).is_err());
    }
    let (file, missing) = (file.to_str().unwrap(), missing.to_str().unwrap());
    let s = t.wait("4 opens of the file and 2 failed ones", |s| {
        has_row(s, &["4", "0", file]) && has_row(s, &["2", "2", missing])
    });
    assert_tool_view(&s);
    let all = s.join("\n");
    assert!(
        all.contains("top files") && all.contains("top processes"),
        "{all}"
    );
    assert!(s[1].contains("COMM") && s[1].contains("PATH"), "{all}");
    // The log: the failed opens with fd -1 and ENOENT.
    let log = rows(&s);
    let failed: Vec<_> = log
        .iter()
        .filter(|r| r.len() >= 6 && r[1] == me && r.last().is_some_and(|p| p == missing))
        .collect();
    assert_eq!(failed.len(), 2, "{all}");
    assert!(failed.iter().all(|r| r[3] == "-1" && r[4] == "2"), "{all}");
    // The process panel: this process opened at least these 6.
    assert!(
        log.iter()
            .any(|r| r.len() >= 4 && r[2] == me && r[0].parse::<u64>().is_ok_and(|n| n >= 6)),
        "{all}"
    );
    let s = t.resized(160, 50, "events/s");
    assert!(has_row(&s, &["4", "0", file]), "{}", s.join("\n"));
    t.resized(80, 24, "events/s");
    // Tab selects the files panel (its border doubles).
    t.key("Tab");
    t.wait("the files panel selected", |s| {
        s.iter().any(|l| l.starts_with("╔ top files"))
    });
    t.ended(&run, Some("q"));
}

#[test]
fn observe_is_a_live_view_of_requests_by_route() {
    use common::go::{go_build, http_get, private_copy, Build, Go, Server};
    let bin = go_build(Go::Old, Build::Normal, false);
    let copy = private_copy(&bin, "tui-server");
    let server = Server::start(&copy, &[]);
    let t = Tmux::start(80, 24);
    let run = t.ebpfctl(
        &format!("observe {}", quote(&copy)),
        "observe's view",
        TOOL_VIEW,
    );
    let base = format!("http://127.0.0.1:{}", server.port);
    for _ in 0..3 {
        assert!(http_get(&format!("{base}/ok")).starts_with("HTTP/1.1 200"));
    }
    for _ in 0..2 {
        assert!(http_get(&format!("{base}/missing")).starts_with("HTTP/1.1 404"));
    }
    // A summary row: count, errors, p50, p99, side, method, route.
    let route = |s: &[String], n: &str, path: &str| {
        rows(s)
            .iter()
            .any(|r| r.len() == 7 && r[0] == n && r[1] == "0" && r[4..] == ["server", "GET", path])
    };
    let s = t.wait("3 + 2 requests by route", |s| {
        route(s, "3", "/ok") && route(s, "2", "/missing")
    });
    assert_tool_view(&s);
    let all = s.join("\n");
    assert!(all.contains("requests 5 events"), "{all}");
    assert!(all.contains("requests by route 2 routes"), "{all}");
    assert!(s[1].contains("METHOD") && s[1].contains("STATUS"), "{all}");
    let log = rows(&s);
    let served = |status: &str, path: &str| {
        log.iter()
            .filter(|r| {
                r.len() >= 7 && r[1] == "server" && r[3] == "GET" && r[4] == status && r[6] == path
            })
            .count()
    };
    assert_eq!(served("200", "/ok"), 3, "{all}");
    assert_eq!(served("404", "/missing"), 2, "{all}");
    let s = t.resized(160, 50, "events/s");
    assert!(s.join("\n").contains("P50"), "{}", s.join("\n"));
    t.resized(80, 24, "events/s");
    t.ended(&run, Some("q"));
    drop(server);
}
