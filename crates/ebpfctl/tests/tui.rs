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

    /// Waits until `pred` holds for the screen (or panics with it after 20 s).
    fn wait(&self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
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
        let deadline = Instant::now() + Duration::from_secs(20);
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
    t.type_line(&format!(
        "{} run {} -o table --interval 200ms --metrics-addr 127.0.0.1:0; echo exit=$?",
        quote(Path::new(bin())),
        quote(&obj)
    ));
    let pid = t.child();
    t.wait("the live view", |s| {
        s.iter().any(|l| l.starts_with("events/s"))
    });
    assert!(t.alternate_on(), "the view is on the alternate screen");
    let held = common::bpf::Held::of(pid);
    assert!(
        !held.progs.is_empty(),
        "ebpfctl (pid {pid}) holds no program"
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

    t.resize(160, 50);
    let s = t.wait("the redraw at 160x50", |s| {
        s.len() == 50 && s[48].starts_with("events/s")
    });
    assert_fits(&s, 160, 50);
    t.resize(80, 24);
    let s = t.wait("the redraw at 80x24", |s| {
        s.len() == 24 && s[22].starts_with("events/s")
    });
    assert_fits(&s, 80, 24);

    // Sort by key: the keys line says so.
    t.key("k");
    t.wait("sort by key", |s| s.iter().any(|l| l.contains("[key ↑]")));

    t.key("q");
    let s = t.wait("the shell again", |s| {
        s.iter().any(|l| l.starts_with("exit="))
    });
    let all = s.join("\n");
    assert!(all.contains("exit=0"), "{all}");
    assert!(
        all.contains("before-the-view"),
        "the normal screen is back:\n{all}"
    );
    assert!(!t.alternate_on());
    assert!(!all.contains("events/s"), "{all}");
    held.assert_gone(&format!("ebpfctl (pid {pid})"));
}

#[test]
fn run_table_restores_the_terminal_on_sigterm_and_duration() {
    let obj = build_source("tui_probe_end", PROBE);
    let t = Tmux::start(80, 24);
    t.type_line(&format!(
        "{} run {} -o table --no-metrics --duration 3s; echo exit=$?",
        quote(Path::new(bin())),
        quote(&obj)
    ));
    let pid = t.child();
    t.wait("the live view", |s| {
        s.iter().any(|l| l.starts_with("events/s"))
    });
    let held = common::bpf::Held::of(pid);
    let s = t.wait("the end of --duration", |s| {
        s.iter().any(|l| l.starts_with("exit="))
    });
    assert!(s.join("\n").contains("exit=0"), "{}", s.join("\n"));
    assert!(!t.alternate_on());
    held.assert_gone(&format!("ebpfctl (pid {pid})"));

    t.type_line("clear");
    t.type_line(&format!(
        "{} run {} -o table --no-metrics; echo exit=$?",
        quote(Path::new(bin())),
        quote(&obj)
    ));
    let pid = t.child();
    t.wait("the live view", |s| {
        s.iter().any(|l| l.starts_with("events/s"))
    });
    let held = common::bpf::Held::of(pid);
    // SAFETY: kill with a valid signal on the pid of the ebpfctl we started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let s = t.wait("the shell after SIGTERM", |s| {
        s.iter().any(|l| l.starts_with("exit="))
    });
    assert!(s.join("\n").contains("exit=0"), "{}", s.join("\n"));
    assert!(!t.alternate_on());
    held.assert_gone(&format!("ebpfctl (pid {pid})"));
}

#[test]
fn top_fits_the_height_keeps_its_header_and_quits_on_q() {
    let t = Tmux::start(80, 24);
    t.type_line("printf 'before-top\\n'");
    t.type_line(&format!(
        "{} top --interval 200ms; echo exit=$?",
        quote(Path::new(bin()))
    ));
    let s = t.wait("top's table", |s| {
        s.len() == 24 && s[1].trim_start().starts_with("ID") && s[23].starts_with("q quit")
    });
    assert_fits(&s, 80, 24);
    let all = s.join("\n");
    assert!(s[0].starts_with("ebpfctl top"), "{all}");
    assert!(s[1].contains("NAME") && s[1].contains("CPU%"), "{all}");
    assert!(t.alternate_on());
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
    t.key("q");
    let s = t.wait("the shell again", |s| {
        s.iter().any(|l| l.starts_with("exit="))
    });
    let all = s.join("\n");
    assert!(
        all.contains("exit=0") && all.contains("before-top"),
        "{all}"
    );
    assert!(!t.alternate_on());
}
