//! SIGKILL of `ebpfctl run` leaves nothing in the kernel: no program, map, link, tc filter,
//! XDP attachment, cgroup attachment or tracefs event, for every attach family, killed once
//! it runs and at points during load and attach. Legacy tc filters (kernels without tcx) are
//! the documented exception: the test forces that path and removes them with `net detach`.
//!
//! Network programs go on a veth pair in a private network namespace and cgroup programs on
//! a private cgroup, both made by the test and removed by a Drop guard, so nothing shared is
//! touched and the checks of interfaces and cgroups see only what this test attached. Kernel
//! objects are checked by the ids the child held (from /proc/PID/fdinfo), never by name.
mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bpf::Held;
use common::*;

const IFACE: &str = "ek0";

/// Runs a command to success and returns its stdout.
fn sh(prog: &str, args: &[&str]) -> String {
    let o = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{prog} is needed by this test: {e}"));
    assert!(
        o.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A private network namespace with a veth pair (`ek0` <-> `ek1`), deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("ebpfctl-sk-{}-{tag}", std::process::id());
        // A namespace of the same name can only be a leftover of a crashed run that had our pid.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        sh("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        sh(
            "ip",
            &[
                "-n", &ns.name, "link", "add", IFACE, "type", "veth", "peer", "name", "ek1",
            ],
        );
        for dev in ["lo", IFACE, "ek1"] {
            sh("ip", &["-n", &ns.name, "link", "set", dev, "up"]);
        }
        ns
    }

    /// Runs `f` on a thread that entered this namespace: the processes it starts (ebpfctl,
    /// ip, tc) live there too. The test's other threads stay where they were.
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(format!("/run/netns/{}", self.name)).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns changes only this thread's network namespace, to one whose fd
                // we hold open for the call.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A private cgroup (no processes in it), removed on drop.
struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    fn new(tag: &str) -> Cgroup {
        let root = std::fs::read_to_string("/proc/mounts")
            .unwrap()
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some("cgroup2"))
            .and_then(|l| l.split_whitespace().nth(1).map(PathBuf::from))
            .expect("cgroup v2 must be mounted for this test");
        let path = root.join(format!("ebpfctl-sk-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).unwrap();
        Cgroup { path }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Attach types of the programs on this cgroup (`bpftool cgroup show`).
    fn attached(&self) -> Vec<String> {
        let out = sh("bpftool", &["-j", "cgroup", "show", self.path()]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
        v.as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("{} (prog {})", p["attach_type"], p["id"]))
            .collect()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// SIGKILL, then reap.
fn sigkill(run: Run) {
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(run.pid() as i32, libc::SIGKILL) };
    drop(run); // waits for it
}

/// What is attached to `ek0` of the current thread's namespace, as `ip`/`tc` and
/// `ebpfctl net list` report it (tcx links are only in the latter here: bpftool 7.1 and
/// iproute2 6.1 do not show them), and the packet sockets (socket filters) open in it.
fn iface_state() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_to_string("/proc/thread-self/net/packet")
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| format!("packet socket: {l}"))
        .collect();
    let link = sh("ip", &["-d", "link", "show", "dev", IFACE]);
    if link.contains("xdp") {
        out.push(format!("ip link: {}", link.trim()));
    }
    let qdisc = sh("tc", &["qdisc", "show", "dev", IFACE]);
    if qdisc.contains("clsact") {
        out.push(format!("qdisc: {}", qdisc.trim()));
    }
    for dir in ["ingress", "egress"] {
        let f = sh("tc", &["filter", "show", "dev", IFACE, dir]);
        out.extend(f.lines().map(|l| format!("tc {dir}: {l}")));
    }
    let o = ebpfctl(&["net", "list", "--iface", IFACE, "-o", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    out.extend(v.as_array().unwrap().iter().map(|e| {
        format!(
            "net list: {} {} prog {} link {}",
            e["kind"], e["hook"], e["prog_id"], e["link_id"]
        )
    }));
    out
}

/// Uprobes/kprobes libbpf had to create through tracefs (it names them `libbpf_PID_...`);
/// those would outlive the process. Empty where the kernel has the perf PMUs.
fn tracefs_events_of(pid: u32) -> Vec<String> {
    let mark = format!("libbpf_{pid}_");
    let mut out = Vec::new();
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        for f in ["uprobe_events", "kprobe_events"] {
            if let Ok(text) = std::fs::read_to_string(Path::new(dir).join(f)) {
                out.extend(text.lines().filter(|l| l.contains(&mark)).map(String::from));
            }
        }
    }
    out
}

const HEAD: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } sk_hits SEC(".maps");
static __always_inline void hit(void) { __u32 k = 0; __u64 *n = bpf_map_lookup_elem(&sk_hits, &k); if (n) __sync_fetch_and_add(n, 1); }
char LICENSE[] SEC("license") = "GPL";
"#;

/// Where a family's programs go.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// Tracing: nothing but `--perf-freq` for perf_event.
    Kernel,
    /// `--iface ek0` in a private network namespace.
    Net,
    /// `--cgroup` on a private cgroup.
    Cgroup,
}

/// Starts `ebpfctl run` on `body` (programs appended to [`HEAD`]), checks that it holds
/// programs and links and that `attached()` sees them, SIGKILLs it and checks that every id
/// it held, every interface/cgroup attachment and every tracefs event is gone.
fn sigkill_leaves_nothing(tag: &str, body: &str, place: Place, want_links: usize) {
    let obj = build_source(&format!("sk_{tag}"), &format!("{HEAD}{body}"));
    let obj = obj.to_str().unwrap().to_string();
    let mut args: Vec<String> = ["run", &obj, "-o", "none", "--no-metrics", "--strict"]
        .map(String::from)
        .to_vec();
    let cgroup = (place == Place::Cgroup).then(|| Cgroup::new(tag));
    let netns = (place == Place::Net).then(|| Netns::new(tag));
    match place {
        Place::Net => args.extend(["--iface".into(), IFACE.into()]),
        Place::Cgroup => args.extend(["--cgroup".into(), cgroup.as_ref().unwrap().path().into()]),
        Place::Kernel => args.extend(["--perf-freq".into(), "10".into()]),
    }
    let body = || {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = Run::start(&argv);
        let pid = run.pid();
        let held = Held::of(pid);
        assert!(!held.progs.is_empty(), "{tag}: no program fds in {pid}");
        assert!(
            held.links.len() >= want_links,
            "{tag}: expected {want_links}+ links, held {held:?}"
        );
        let before = match place {
            Place::Net => iface_state(),
            Place::Cgroup => cgroup.as_ref().unwrap().attached(),
            Place::Kernel => vec!["-".into()],
        };
        assert!(!before.is_empty(), "{tag}: nothing attached while running");
        sigkill(run);
        held.assert_gone(tag);
        let after = match place {
            Place::Net => iface_state(),
            Place::Cgroup => cgroup.as_ref().unwrap().attached(),
            Place::Kernel => Vec::new(),
        };
        assert!(after.is_empty(), "{tag}: left after SIGKILL: {after:?}");
        assert_eq!(tracefs_events_of(pid), Vec::<String>::new(), "{tag}");
        (held, before)
    };
    let (held, before) = match &netns {
        Some(ns) => ns.run(body),
        None => body(),
    };
    eprintln!("{tag}: held {held:?}; attached {before:?}; all gone after SIGKILL");
}

#[test]
fn sigkill_tracepoint() {
    sigkill_leaves_nothing(
        "tp",
        r#"SEC("tracepoint/syscalls/sys_enter_getppid") int sk_tp(void *ctx) { hit(); return 0; }"#,
        Place::Kernel,
        1,
    );
}

#[test]
fn sigkill_raw_tracepoint() {
    sigkill_leaves_nothing(
        "rawtp",
        r#"SEC("raw_tp/sys_enter") int sk_rawtp(void *ctx) { hit(); return 0; }"#,
        Place::Kernel,
        1,
    );
}

#[test]
fn sigkill_tp_btf() {
    sigkill_leaves_nothing(
        "tpbtf",
        r#"SEC("tp_btf/sched_process_exec") int BPF_PROG(sk_tpbtf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) { hit(); return 0; }"#,
        Place::Kernel,
        1,
    );
}

#[test]
fn sigkill_uprobe_and_uretprobe() {
    let target = target_dir().join("ebpfctl-example-target");
    let t = target.display();
    sigkill_leaves_nothing(
        "uprobe",
        &format!(
            r#"SEC("uprobe/{t}:main") int sk_up(void *ctx) {{ hit(); return 0; }}
SEC("uretprobe/{t}:main") int sk_uret(void *ctx) {{ hit(); return 0; }}"#
        ),
        Place::Kernel,
        2,
    );
}

#[test]
fn sigkill_perf_event() {
    sigkill_leaves_nothing(
        "perf",
        r#"SEC("perf_event") int sk_perf(void *ctx) { hit(); return 0; }"#,
        Place::Kernel,
        1,
    );
}

#[test]
fn sigkill_iter() {
    sigkill_leaves_nothing(
        "iter",
        r#"SEC("iter/task") int sk_iter(struct bpf_iter__task *ctx) { hit(); return 0; }"#,
        Place::Kernel,
        1,
    );
}

#[test]
fn sigkill_xdp() {
    sigkill_leaves_nothing(
        "xdp",
        r#"SEC("xdp") int sk_xdp(struct xdp_md *ctx) { hit(); return XDP_PASS; }"#,
        Place::Net,
        1,
    );
}

/// `ebpfctl run OBJ --strict` on the test interface, nothing printed.
fn net_run_args(obj: &Path) -> [&str; 8] {
    let obj = obj.to_str().unwrap();
    [
        "run",
        obj,
        "-o",
        "none",
        "--no-metrics",
        "--strict",
        "--iface",
        IFACE,
    ]
}

const TC_BODY: &str = r#"SEC("tc/ingress") int sk_tc_in(struct __sk_buff *s) { hit(); return 0; }
SEC("tc/egress") int sk_tc_eg(struct __sk_buff *s) { hit(); return 0; }
SEC("classifier") int sk_cls(struct __sk_buff *s) { hit(); return -1; }"#;

#[test]
fn sigkill_tc_sections_are_tcx_links() {
    if !kernel_has_tcx() {
        eprintln!(
            "KERNEL MATRIX: kernel {:?} has no tcx (Linux 6.6+): tc/ sections attach as legacy tc filters, which a SIGKILL leaves in place (netlink holds them, no fd or link)",
            kernel_version()
        );
        let obj = build_source("sk_tc", &format!("{HEAD}{TC_BODY}"));
        let ns = Netns::new("tc");
        ns.run(|| {
            let run = Run::start(&net_run_args(&obj));
            assert!(Held::of(run.pid()).links.is_empty(), "links before 6.6");
            let before = iface_state();
            assert!(
                before.iter().any(|l| l.starts_with("tc ingress:")),
                "no legacy filter: {before:?}"
            );
            sigkill(run);
            assert_eq!(iface_state(), before, "the filters outlive the process");
        });
        // The private namespace takes its interface, filters and programs with it.
        return;
    }
    sigkill_leaves_nothing("tc", TC_BODY, Place::Net, 3);
}

#[test]
fn sigkill_tcx() {
    let body = r#"SEC("tcx/ingress") int sk_tcx_in(struct __sk_buff *s) { hit(); return -1; }
SEC("tcx/egress") int sk_tcx_eg(struct __sk_buff *s) { hit(); return -1; }"#;
    if !kernel_has_tcx() {
        eprintln!(
            "KERNEL MATRIX: kernel {:?} has no tcx (Linux 6.6+): run --strict must refuse tcx/ sections and attach nothing",
            kernel_version()
        );
        let obj = build_source("sk_tcx", &format!("{HEAD}{body}"));
        let ns = Netns::new("tcx");
        ns.run(|| {
            let o = ebpfctl(&net_run_args(&obj));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{err}");
            assert!(err.contains("tcx needs Linux 6.6+"), "{err}");
            assert_eq!(iface_state(), Vec::<String>::new());
        });
        return;
    }
    sigkill_leaves_nothing("tcx", body, Place::Net, 2);
}

#[test]
fn sigkill_socket_filter() {
    // A packet socket holds the program: no link.
    sigkill_leaves_nothing(
        "socket",
        r#"SEC("socket") int sk_sock(struct __sk_buff *s) { hit(); return 0; }"#,
        Place::Net,
        0,
    );
}

#[test]
fn sigkill_cgroup_programs() {
    sigkill_leaves_nothing(
        "cgroup",
        r#"SEC("cgroup_skb/ingress") int sk_skb_in(struct __sk_buff *s) { hit(); return 1; }
SEC("cgroup_skb/egress") int sk_skb_eg(struct __sk_buff *s) { hit(); return 1; }
SEC("cgroup/sock_create") int sk_sock_create(struct bpf_sock *sk) { hit(); return 1; }
SEC("cgroup/post_bind4") int sk_post_bind4(struct bpf_sock *sk) { hit(); return 1; }
SEC("cgroup/connect4") int sk_connect4(struct bpf_sock_addr *ctx) { hit(); return 1; }
SEC("cgroup/sendmsg4") int sk_sendmsg4(struct bpf_sock_addr *ctx) { hit(); return 1; }
SEC("cgroup/getsockopt") int sk_getsockopt(struct bpf_sockopt *ctx) { hit(); return 1; }
SEC("cgroup/setsockopt") int sk_setsockopt(struct bpf_sockopt *ctx) { hit(); return 1; }
SEC("cgroup/sysctl") int sk_sysctl(struct bpf_sysctl *ctx) { hit(); return 1; }
SEC("cgroup/dev") int sk_dev(struct bpf_cgroup_dev_ctx *ctx) { hit(); return 1; }"#,
        Place::Cgroup,
        10,
    );
}

/// One object with a program of every family that attaches somewhere lasting (interface,
/// cgroup, perf events, uprobes), for the kill-during-attach test. Before tcx (6.6) without
/// the tc programs: tcx sections cannot attach, and tc's legacy filters outlive a SIGKILL
/// (sigkill_tc_sections_are_tcx_links checks that there).
fn everything() -> String {
    let target = target_dir().join("ebpfctl-example-target");
    let tc = if kernel_has_tcx() {
        r#"SEC("tc/ingress") int ka_tc(struct __sk_buff *s) { hit(); return 0; }
SEC("tcx/egress") int ka_tcx(struct __sk_buff *s) { hit(); return -1; }"#
    } else {
        ""
    };
    format!(
        r#"{HEAD}
SEC("xdp") int ka_xdp(struct xdp_md *ctx) {{ hit(); return XDP_PASS; }}
{tc}
SEC("socket") int ka_sock(struct __sk_buff *s) {{ hit(); return 0; }}
SEC("cgroup_skb/egress") int ka_cg(struct __sk_buff *s) {{ hit(); return 1; }}
SEC("cgroup/sock_create") int ka_cgsock(struct bpf_sock *sk) {{ hit(); return 1; }}
SEC("tracepoint/syscalls/sys_enter_getppid") int ka_tp(void *ctx) {{ hit(); return 0; }}
SEC("raw_tp/sys_enter") int ka_rawtp(void *ctx) {{ hit(); return 0; }}
SEC("uprobe/{t}:main") int ka_up(void *ctx) {{ hit(); return 0; }}
SEC("perf_event") int ka_perf(void *ctx) {{ hit(); return 0; }}
"#,
        t = target.display()
    )
}

#[test]
fn sigkill_during_load_and_attach_leaves_nothing() {
    let obj = build_source("sk_attach", &everything());
    let obj = obj.to_str().unwrap().to_string();
    let cg = Cgroup::new("attach");
    let ns = Netns::new("attach");
    let args: Vec<&str> = vec![
        "run",
        &obj,
        "-o",
        "none",
        "--no-metrics",
        "--strict",
        "--iface",
        IFACE,
        "--cgroup",
        cg.path(),
        "--perf-freq",
        "10",
    ];
    ns.run(|| {
        // How long start-up takes here: the kills below are spread over it.
        let t0 = Instant::now();
        let run = Run::start(&args);
        let startup = t0.elapsed();
        let held = Held::of(run.pid());
        assert!(held.links.len() >= 8, "links held: {held:?}");
        sigkill(run);
        held.assert_gone("after start-up");

        let steps = 12;
        for i in 0..=steps {
            // 0 %, ~9 %, ... 110 % of the start-up time, plus up to 7 ms of jitter.
            let now = std::time::SystemTime::now();
            let nanos = now
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let jitter = u64::from(nanos % 7_000_000);
            let delay = startup.mul_f64(1.1 * f64::from(i) / f64::from(steps))
                + Duration::from_nanos(jitter);
            let mut cmd = Command::new(bin());
            cmd.args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe and touches only the child being set up.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut child = cmd.spawn().unwrap();
            let pid = child.id();
            // Record every id the child holds until the kill.
            let mut seen = Held::default();
            let kill_at = Instant::now() + delay;
            while Instant::now() < kill_at {
                seen.add(pid);
                std::thread::sleep(Duration::from_millis(2));
            }
            // SAFETY: kill on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            child.wait().unwrap();
            let what = format!("killed after {delay:?} (start-up {startup:?})");
            seen.assert_gone(&what);
            let left = iface_state();
            assert!(left.is_empty(), "{what}: left on {IFACE}: {left:?}");
            let left = cg.attached();
            assert!(left.is_empty(), "{what}: left on the cgroup: {left:?}");
            assert_eq!(tracefs_events_of(pid), Vec::<String>::new(), "{what}");
            eprintln!(
                "{what}: had {} progs, {} links; nothing left",
                seen.progs.len(),
                seen.links.len()
            );
        }
    });
}

#[test]
fn legacy_tc_filter_survives_sigkill_and_net_detach_removes_only_ours() {
    let obj = build_source(
        "sk_legacy",
        &format!(
            r#"{HEAD}
SEC("tc/ingress") int lg_in(struct __sk_buff *s) {{ hit(); return 0; }}
SEC("tc/egress") int lg_eg(struct __sk_buff *s) {{ hit(); return 0; }}"#
        ),
    );
    let obj = obj.to_str().unwrap();
    let ns = Netns::new("legacy");
    ns.run(|| {
        // First with someone else's clsact qdisc and filter at pref 1 handle 1 (the slot
        // ebpfctl used to take with replace): it must survive everything below.
        sh("tc", &["qdisc", "add", "dev", IFACE, "clsact"]);
        let foreign = [
            "filter",
            "add",
            "dev",
            IFACE,
            "ingress",
            "pref",
            "1",
            "handle",
            "1",
            "bpf",
            "bytecode",
            "1,6 0 0 0,",
        ];
        sh("tc", &foreign);
        let foreign_there = || {
            sh("tc", &["filter", "show", "dev", IFACE, "ingress"]).contains("bytecode '1,6 0 0 0'")
        };
        let args = [
            "run",
            obj,
            "-o",
            "none",
            "--no-metrics",
            "--strict",
            "--iface",
            IFACE,
            "--force-legacy-tc",
        ];
        let run = Run::start(&args);
        let pid = run.pid();
        let notices: Vec<String> = run
            .stderr()
            .into_iter()
            .filter(|l| l.contains("tc filter on"))
            .collect();
        assert_eq!(notices.len(), 2, "{:?}", run.stderr());
        for n in &notices {
            assert!(
                n.contains("SIGKILL") && n.contains("ebpfctl net detach"),
                "the notice must say what a SIGKILL leaves and how to remove it: {n}"
            );
        }
        assert!(foreign_there(), "someone else's filter was replaced");
        let listed = net_list();
        let ours: Vec<&serde_json::Value> = listed
            .iter()
            .filter(|e| e["ebpfctl"]["pid"] == pid)
            .collect();
        assert_eq!(ours.len(), 2, "{listed:?}");
        assert!(ours
            .iter()
            .all(|e| e["stale"] == false && e["link_id"].is_null()));
        // Not our qdisc: the mark says so.
        assert!(ours.iter().all(|e| e["ebpfctl"]["created_qdisc"] == false));
        // A running ebpfctl's filters are not removed.
        let o = ebpfctl(&["net", "detach"]);
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("in use by ebpfctl"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(net_list().len(), 3);
        let held = Held::of(pid);
        sigkill(run);
        // The documented exception: the filters and their programs stay.
        std::thread::sleep(Duration::from_millis(300));
        let progs = Held {
            progs: held.progs.clone(),
            ..Held::default()
        };
        assert_eq!(progs.still_there().len(), progs.progs.len(), "{held:?}");
        let stale: Vec<serde_json::Value> = net_list()
            .into_iter()
            .filter(|e| e["stale"] == true)
            .collect();
        assert_eq!(stale.len(), 2, "{stale:?}");
        let o = ebpfctl(&["net", "detach", "--dry-run"]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout)
                .matches("would remove")
                .count(),
            2
        );
        assert_eq!(net_list().len(), 3, "--dry-run removed something");
        let o = ebpfctl(&["net", "detach"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            out.matches("removed tc filter ebpfctl[").count(),
            2,
            "{out}"
        );
        assert!(!out.contains("clsact"), "not our qdisc: {out}");
        held.assert_gone("after net detach");
        assert!(foreign_there(), "net detach removed someone else's filter");
        assert_eq!(net_list().len(), 1);
        let o = ebpfctl(&["net", "detach"]);
        assert!(String::from_utf8_lossy(&o.stdout).contains("nothing left behind"));

        // Then on a bare interface: ebpfctl makes the qdisc, marks it, and `net detach`
        // removes it with the filters.
        sh("tc", &["qdisc", "del", "dev", IFACE, "clsact"]);
        let run = Run::start(&args);
        let held = Held::of(run.pid());
        assert!(net_list()
            .iter()
            .all(|e| e["ebpfctl"]["created_qdisc"] == true));
        sigkill(run);
        let o = ebpfctl(&["net", "detach", "--iface", IFACE]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("removed the clsact qdisc ebpfctl had created on ek0"),
            "{out}"
        );
        held.assert_gone("after net detach");
        let left = iface_state();
        assert!(left.is_empty(), "{left:?}");

        // And a clean stop removes filters and qdisc itself.
        let run = Run::start(&args);
        let held = Held::of(run.pid());
        let (st, _, err) = run.stop();
        assert!(st.success(), "{err:?}");
        held.assert_gone("after SIGINT");
        let left = iface_state();
        assert!(left.is_empty(), "{left:?}");
    });
}

/// `ebpfctl net list -o json` for `ek0`.
fn net_list() -> Vec<serde_json::Value> {
    let o = ebpfctl(&["net", "list", "--iface", IFACE, "-o", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<serde_json::Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn net_list_of_an_unknown_interface_is_one_line() {
    let o = ebpfctl(&["net", "list", "--iface", "ebpfctl-nope0"]);
    assert_one_line_error(&o, "no network interface named ebpfctl-nope0");
    let o = ebpfctl(&["net", "detach", "--iface", "ebpfctl-nope0"]);
    assert_one_line_error(&o, "no network interface named ebpfctl-nope0");
}
