//! Attach kinds that need kprobes, BPF trampolines or the BPF LSM, and the examples built on
//! kprobes, run by `ebpfctl run` on the running kernel with decoded events and metrics
//! checked. This project's own machines have none of these (no CONFIG_KPROBES; trampolines
//! refused); `scripts/vm-test.sh` runs this file in QEMU guests on Debian's 6.1 and 6.12
//! kernels, which have them (docs/kernels.md).
//!
//! Each test first decides from the running kernel's config whether its kind applies. Where
//! it does, the test must pass. Where it does not, the test prints one line on stderr saying
//! why and which config says so (`KERNEL MATRIX: NOT APPLICABLE ...`), never passing silently.
mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use common::*;
use serde_json::Value;

// ---- what the running kernel has -----------------------------------------------------------

struct Kernel {
    release: String,
    /// Where the config was read from (/boot/config-RELEASE or /proc/config.gz).
    config_path: String,
    config: HashMap<String, String>,
    /// The active LSMs (/sys/kernel/security/lsm, through a private mount if need be).
    lsms: Vec<String>,
    /// Inside a scripts/vm.sh guest: every kind its config enables must work there.
    in_vm: bool,
    /// `ebpfctl feature -o json`.
    features: Value,
}

fn kernel() -> &'static Kernel {
    static K: OnceLock<Kernel> = OnceLock::new();
    K.get_or_init(|| {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap()
            .trim()
            .to_string();
        let boot = format!("/boot/config-{release}");
        let (config_path, text) = if let Ok(t) = std::fs::read_to_string(&boot) {
            (boot, t)
        } else if Path::new("/proc/config.gz").exists() {
            let o = Command::new("zcat")
                .arg("/proc/config.gz")
                .output()
                .unwrap();
            assert!(o.status.success(), "zcat /proc/config.gz failed");
            (
                "/proc/config.gz".to_string(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
            )
        } else {
            panic!(
                "kernel {release}: no {boot} and no /proc/config.gz: cannot tell which attach \
                 kinds this kernel should support (scripts/vm.sh links the guest's config in place)"
            );
        };
        let config = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        let lsm_text = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_else(|_| {
            // securityfs not mounted here: read it in a private mount namespace.
            let o = Command::new("unshare")
                .args([
                    "-m",
                    "sh",
                    "-c",
                    "mount -t securityfs none /sys/kernel/security && cat /sys/kernel/security/lsm",
                ])
                .output()
                .expect("unshare (util-linux)");
            String::from_utf8_lossy(&o.stdout).into_owned()
        });
        let o = ebpfctl(&["feature", "-o", "json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Kernel {
            release,
            config_path,
            config,
            lsms: lsm_text
                .trim()
                .split(',')
                .map(str::to_string)
                .filter(|s| !s.is_empty())
                .collect(),
            in_vm: Path::new("/ebpfctl-vm/release").exists(),
            features: serde_json::from_slice(&o.stdout).unwrap(),
        }
    })
}

impl Kernel {
    fn enabled(&self, opt: &str) -> bool {
        matches!(self.config.get(opt).map(String::as_str), Some("y" | "m"))
    }

    /// The first of `opts` that is not set, as a reason.
    fn missing(&self, opts: &[&str]) -> Option<String> {
        opts.iter().find(|o| !self.enabled(o)).map(|o| {
            format!(
                "{o} is {} in {}",
                self.config
                    .get(*o)
                    .map(|v| format!("={v}"))
                    .unwrap_or_else(|| "not set".into()),
                self.config_path
            )
        })
    }

    fn version(&self) -> (u32, u32) {
        let mut it = self
            .release
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|p| p.parse().ok());
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    /// `ebpfctl feature`'s check of one attach kind.
    fn feature(&self, kind: &str) -> &Value {
        self.features["attach"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == kind)
            .unwrap_or_else(|| panic!("`ebpfctl feature` reports no {kind}"))
    }
}

/// Every kind this file proves, in `ebpfctl feature`'s names.
const KINDS: [&str; 9] = [
    "kprobe",
    "kretprobe",
    "ksyscall",
    "kprobe.multi",
    "fentry",
    "fexit",
    "fmod_ret",
    "lsm",
    "lsm_cgroup",
];

const KPROBES: [&str; 3] = [
    "CONFIG_KPROBES",
    "CONFIG_KPROBE_EVENTS",
    "CONFIG_BPF_EVENTS",
];
const TRAMPOLINES: [&str; 4] = [
    "CONFIG_BPF_JIT",
    "CONFIG_DEBUG_INFO_BTF",
    "CONFIG_FUNCTION_TRACER",
    "CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS",
];

/// Ok when the running kernel should support `kind`; else why not (config option and file).
fn applies(kind: &str) -> Result<(), String> {
    let k = kernel();
    let mut need: Vec<&str> = Vec::new();
    match kind {
        "kprobe" | "kretprobe" | "ksyscall" => need.extend(KPROBES),
        "kprobe.multi" => need.extend(KPROBES.iter().chain(&["CONFIG_FPROBE"])),
        "fentry" | "fexit" | "fmod_ret" => need.extend(TRAMPOLINES),
        "lsm" | "lsm_cgroup" => need.extend(
            TRAMPOLINES
                .iter()
                .chain(&["CONFIG_BPF_LSM", "CONFIG_CGROUP_BPF"]),
        ),
        _ => panic!("unknown kind {kind}"),
    }
    if let Some(why) = k.missing(&need) {
        return Err(why);
    }
    if kind.starts_with("lsm") && !k.lsms.iter().any(|l| l == "bpf") {
        return Err(format!(
            "CONFIG_BPF_LSM=y but `bpf` is not an active LSM ({}; CONFIG_LSM=\"{}\" in {})",
            k.lsms.join(","),
            k.config
                .get("CONFIG_LSM")
                .map(String::as_str)
                .unwrap_or("?"),
            k.config_path
        ));
    }
    if kind == "lsm_cgroup" && k.version() < (6, 0) {
        return Err(format!(
            "BPF_LSM_CGROUP came in Linux 6.0; this is {}",
            k.release
        ));
    }
    // This project's own machines enable trampolines in their config, yet refuse even a
    // no-op tracing or LSM program with EPERM (no config option says so). Outside a
    // scripts/vm.sh guest that refusal makes the kind not applicable; inside one, nothing
    // excuses a kind the config enables.
    let family = if kind.starts_with("lsm") {
        "lsm"
    } else {
        "fentry"
    };
    if !k.in_vm && matches!(kind, "fentry" | "fexit" | "fmod_ret" | "lsm" | "lsm_cgroup") {
        let f = k.feature(family);
        let detail = f["detail"].as_str().unwrap_or("");
        if f["available"] == false && detail.contains("EPERM") {
            return Err(format!(
                "{} enables BPF trampolines ({}=y) but this kernel refuses a no-op {family} \
                 program (`ebpfctl feature`: {detail}); required in scripts/vm.sh guests",
                k.config_path, TRAMPOLINES[3]
            ));
        }
    }
    Ok(())
}

/// Prints the loud line for a kind that does not apply here.
fn not_applicable(test: &str, kind: &str, why: &str) {
    // Straight to fd 2: libtest captures print!/eprint! of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "KERNEL MATRIX: NOT APPLICABLE on {}: {test}: {kind}: {why}",
        kernel().release
    );
}

/// The kinds of `kinds` that apply (the others get their loud line).
fn applicable<'a>(test: &str, kinds: &[&'a str]) -> Vec<&'a str> {
    kinds
        .iter()
        .copied()
        .filter(|k| match applies(k) {
            Ok(()) => true,
            Err(why) => {
                not_applicable(test, k, &why);
                false
            }
        })
        .collect()
}

// ---- shared probe pieces -------------------------------------------------------------------

/// One event layout for every kind: which program, who, a value, a name.
const EVENT: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "ebpfctl.h"

enum kind { KPROBE = 1, KRETPROBE, KSYSCALL, KPROBE_MULTI, FENTRY, FEXIT, FMOD_RET, LSM, LSM_CGROUP };

struct event {
	enum kind kind;
	pid pid;
	comm comm;
	__s64 value;
	char name[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct event);
} print_events SEC(".maps");
EBPFCTL_LOST_COUNTER(print_events);

const volatile char target_comm[16] = "";

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

static __always_inline struct event *emit(enum kind k, __s64 value)
{
	struct event *e = ebpfctl_reserve(print_events, struct event);
	if (!e)
		return 0;
	e->kind = k;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->value = value;
	e->name[0] = 0;
	return e;
}

/* The last path component of an open file. */
static __always_inline void file_name(struct event *e, struct file *file)
{
	const unsigned char *n = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	bpf_probe_read_kernel_str(e->name, sizeof(e->name), n);
}
"#;

fn with_event(body: &str) -> String {
    format!("{EVENT}\n{body}\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n")
}

/// Objects are compiled once per test process (on an emulated guest a compile takes ~40 s).
fn compiled(name: &str, body: &str) -> PathBuf {
    static DONE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut done = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    done.entry(name.to_string())
        .or_insert_with(|| build_source(name, &with_event(body)))
        .clone()
}

/// The programs the runner said it attached, from its "running: N program(s) attached
/// (a, b)" line.
fn attached(stderr: &[String]) -> Vec<String> {
    stderr
        .iter()
        .find_map(|l| l.split("attached (").nth(1))
        .map(|r| {
            r.split(')')
                .next()
                .unwrap_or("")
                .split(", ")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Checks that each program of `progs` was attached when its kind applies, or skipped with
/// one line naming it when it does not.
fn check_attached(stderr: &[String], progs: &[(&str, &str)], kinds: &[&str]) {
    let on = attached(stderr);
    for (kind, prog) in progs {
        if kinds.contains(kind) {
            assert!(
                on.iter().any(|p| p == prog),
                "{kind}: {prog} not attached:\n{}",
                stderr.join("\n")
            );
        } else {
            assert!(
                stderr
                    .iter()
                    .any(|l| l.contains(prog) && l.contains("skipped")),
                "{kind}: {prog} neither attached nor reported skipped:\n{}",
                stderr.join("\n")
            );
        }
    }
}

fn events_of<'a>(lines: &'a [Value], kind: &str, pid: u32) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|e| e["_map"] == "events" && e["kind"] == kind && e["pid"] == pid)
        .collect()
}

/// A copy of a system binary under a name of ours, so its command name is ours.
fn renamed(src: &str, name: &str) -> PathBuf {
    let dir = tmp().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let dst = dir.join(name);
    if !dst.exists() {
        common::copy_exe(Path::new(src), &dst);
    }
    dst
}

// ---- feature ---------------------------------------------------------------------------

#[test]
fn feature_reports_each_kind_the_kernel_config_enables() {
    let k = kernel();
    for kind in KINDS {
        let f = k.feature(kind);
        match applies(kind) {
            Ok(()) => assert_eq!(f["available"], true, "{kind} on {}: {f}", k.release),
            Err(why) => {
                not_applicable("feature", kind, &why);
                assert_eq!(f["available"], false, "{kind} on {}: {f}", k.release);
            }
        }
        assert!(!f["detail"].as_str().unwrap().is_empty(), "{f}");
    }
}

// ---- kprobe, kretprobe, ksyscall, kprobe.multi -------------------------------------------

const KPROBE_KINDS: &str = r#"
SEC("kprobe/hrtimer_nanosleep")
int BPF_KPROBE(kind_kprobe, ktime_t rqtp)
{
	if (ours()) { struct event *e = emit(KPROBE, rqtp); if (e) bpf_ringbuf_submit(e, 0); }
	return 0;
}

SEC("kretprobe/hrtimer_nanosleep")
int BPF_KRETPROBE(kind_kretprobe, long ret)
{
	if (ours()) { struct event *e = emit(KRETPROBE, ret); if (e) bpf_ringbuf_submit(e, 0); }
	return 0;
}

SEC("ksyscall/getppid")
int BPF_KSYSCALL(kind_ksyscall)
{
	if (ours()) { struct event *e = emit(KSYSCALL, 0); if (e) bpf_ringbuf_submit(e, 0); }
	return 0;
}

SEC("kprobe.multi/hrtimer_nanosleep")
int BPF_KPROBE(kind_kprobe_multi, ktime_t rqtp)
{
	if (ours()) { struct event *e = emit(KPROBE_MULTI, rqtp); if (e) bpf_ringbuf_submit(e, 0); }
	return 0;
}
"#;

#[test]
fn kprobe_kretprobe_ksyscall_and_kprobe_multi_attach_and_decode() {
    let kinds = applicable(
        "kprobes",
        &["kprobe", "kretprobe", "ksyscall", "kprobe.multi"],
    );
    if kinds.is_empty() {
        return;
    }
    let obj = compiled("kinds_kprobe", KPROBE_KINDS);
    let comm = "ebpfctl-kprobes";
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--no-metrics",
        "--param",
        &format!("target_comm={comm}"),
    ]);
    // Two sleeps of 1.5 ms: hrtimer_nanosleep(rqtp = 1500000 ns) twice; three getppid calls.
    let sleeper = target_as(comm, &["sleep", "2", "1500"]);
    let caller = target_as(comm, &["getppid", "3"]);
    let want: Vec<(&str, u32, usize)> = [
        ("kprobe", "KPROBE", sleeper, 2),
        ("kretprobe", "KRETPROBE", sleeper, 2),
        ("ksyscall", "KSYSCALL", caller, 3),
        ("kprobe.multi", "KPROBE_MULTI", sleeper, 2),
    ]
    .into_iter()
    .filter(|(k, ..)| kinds.contains(k))
    .map(|(_, name, pid, n)| (name, pid, n))
    .collect();
    let lines = run.wait_json("an event of every applicable kind", |v| {
        want.iter()
            .all(|(name, pid, n)| events_of(v, name, *pid).len() >= *n)
    });
    for (name, pid, n) in &want {
        let evs = events_of(&lines, name, *pid);
        assert_eq!(evs.len(), *n, "{name}: {evs:?}");
        for e in evs {
            assert_eq!(e["comm"], comm, "{e}");
            let value = e["value"].as_i64().unwrap();
            match *name {
                "KPROBE" | "KPROBE_MULTI" => assert_eq!(value, 1_500_000, "{e}"),
                "KRETPROBE" => assert_eq!(value, 0, "{e}"),
                _ => {}
            }
        }
    }
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    check_attached(
        &err,
        &[
            ("kprobe", "kind_kprobe"),
            ("kretprobe", "kind_kretprobe"),
            ("ksyscall", "kind_ksyscall"),
            ("kprobe.multi", "kind_kprobe_multi"),
        ],
        &kinds,
    );
}

// ---- fentry, fexit, fmod_ret ---------------------------------------------------------------

const TRAMPOLINE_KINDS: &str = r#"
SEC("fentry/hrtimer_nanosleep")
int BPF_PROG(kind_fentry, ktime_t rqtp)
{
	if (ours()) { struct event *e = emit(FENTRY, rqtp); if (e) bpf_ringbuf_submit(e, 0); }
	return 0;
}

SEC("fexit/hrtimer_nanosleep")
int BPF_PROG(kind_fexit, ktime_t rqtp, enum hrtimer_mode mode, clockid_t clockid, long ret)
{
	if (ours()) { struct event *e = emit(FEXIT, ret); if (e) bpf_ringbuf_submit(e, 0); }
	return 0;
}

/* security_* functions may have their return value replaced; returning 0 keeps the real one. */
SEC("fmod_ret/security_file_open")
int BPF_PROG(kind_fmod_ret, struct file *file, int ret)
{
	if (ours()) {
		struct event *e = emit(FMOD_RET, ret);
		if (e) {
			file_name(e, file);
			bpf_ringbuf_submit(e, 0);
		}
	}
	return 0;
}
"#;

#[test]
fn fentry_fexit_and_fmod_ret_attach_and_decode() {
    let kinds = applicable("trampolines", &["fentry", "fexit", "fmod_ret"]);
    if kinds.is_empty() {
        return;
    }
    let obj = compiled("kinds_trampoline", TRAMPOLINE_KINDS);
    let comm = "ebpfctl-tramp";
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--no-metrics",
        "--param",
        &format!("target_comm={comm}"),
    ]);
    let sleeper = target_as(comm, &["sleep", "2", "1500"]);
    let want: Vec<(&str, usize)> = [("fentry", "FENTRY", 2), ("fexit", "FEXIT", 2)]
        .into_iter()
        .filter(|(k, ..)| kinds.contains(k))
        .map(|(_, name, n)| (name, n))
        .collect();
    let modret = kinds.contains(&"fmod_ret");
    let lines = run.wait_json("fentry/fexit/fmod_ret events", |v| {
        want.iter()
            .all(|(name, n)| events_of(v, name, sleeper).len() >= *n)
            && (!modret
                || events_of(v, "FMOD_RET", sleeper)
                    .iter()
                    .any(|e| e["name"] == "libc.so.6"))
    });
    for (name, n) in &want {
        let evs = events_of(&lines, name, sleeper);
        assert_eq!(evs.len(), *n, "{name}: {evs:?}");
        for e in evs {
            let want_value = if *name == "FENTRY" { 1_500_000 } else { 0 };
            assert_eq!(e["value"], want_value, "{e}");
        }
    }
    if modret {
        // The dynamic loader opened libc for the target; the open went through (value 0:
        // no earlier fmod_ret program changed it, and the process ran).
        let libc = events_of(&lines, "FMOD_RET", sleeper);
        assert!(libc.iter().all(|e| e["value"] == 0), "{libc:?}");
    }
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    check_attached(
        &err,
        &[
            ("fentry", "kind_fentry"),
            ("fexit", "kind_fexit"),
            ("fmod_ret", "kind_fmod_ret"),
        ],
        &kinds,
    );
}

// ---- lsm, lsm_cgroup -----------------------------------------------------------------------

const LSM_KIND: &str = r#"
SEC("lsm/file_open")
int BPF_PROG(kind_lsm, struct file *file)
{
	if (ours()) {
		struct event *e = emit(LSM, 0);
		if (e) {
			file_name(e, file);
			bpf_ringbuf_submit(e, 0);
		}
	}
	return 0; /* allow */
}
"#;

#[test]
fn lsm_hook_attaches_and_decodes() {
    if applicable("lsm", &["lsm"]).is_empty() {
        return;
    }
    let obj = compiled("kinds_lsm", LSM_KIND);
    let comm = "ebpfctl-lsm";
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--no-metrics",
        "--param",
        &format!("target_comm={comm}"),
    ]);
    let pid = target_as(comm, &["getppid", "1"]);
    let lines = run.wait_json("lsm/file_open of libc", |v| {
        events_of(v, "LSM", pid)
            .iter()
            .any(|e| e["name"] == "libc.so.6")
    });
    assert!(events_of(&lines, "LSM", pid)
        .iter()
        .all(|e| e["comm"] == comm));
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    check_attached(&err, &[("lsm", "kind_lsm")], &["lsm"]);
}

const LSM_CGROUP_KIND: &str = r#"
SEC("lsm_cgroup/socket_bind")
int BPF_PROG(kind_lsm_cgroup, struct socket *sock, struct sockaddr *address, int addrlen)
{
	struct sockaddr_in sin = {};
	bpf_probe_read_kernel(&sin, sizeof(sin), address);
	struct event *e = emit(LSM_CGROUP, sin.sin_family == 2 ? bpf_ntohs(sin.sin_port) : -1);
	if (e)
		bpf_ringbuf_submit(e, 0);
	return 1; /* lsm_cgroup: 1 allows */
}
"#;

/// A cgroup v2 child of the root, removed on drop.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(tag: &str) -> Cgroup {
        let root = cgroup2_root();
        let p = root.join(format!("ebpfctl-test-{tag}-{}", std::process::id()));
        std::fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        Cgroup(p)
    }

    /// `sh -c 'echo $$ > cgroup.procs; exec PROG ARGS'`: runs PROG inside this cgroup.
    fn command(&self, prog: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("echo $$ > \"$0\" && exec \"$@\"")
            .arg(self.0.join("cgroup.procs"))
            .arg(prog)
            .args(args);
        c
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("cgroup2"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(PathBuf::from)
        .expect("cgroup v2 is not mounted")
}

#[test]
fn lsm_cgroup_hook_runs_only_for_its_cgroup() {
    if applicable("lsm_cgroup", &["lsm_cgroup"]).is_empty() {
        return;
    }
    let obj = compiled("kinds_lsm_cgroup", LSM_CGROUP_KIND);
    let cg = Cgroup::new("lsmcg");
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--no-metrics",
        "--cgroup",
        cg.0.to_str().unwrap(),
    ]);
    // A bind from this process (outside the cgroup) is not seen...
    let outside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let outside_port = outside.local_addr().unwrap().port();
    drop(outside);
    // ...a bind from a process inside is, with its port.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let py = format!("import socket; s = socket.socket(); s.bind(('127.0.0.1', {port}))");
    let mut child = cg
        .command(Path::new("python3"), &["-c", &py])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(
        child.wait().unwrap().success(),
        "bind inside the cgroup failed"
    );
    let lines = run.wait_json("lsm_cgroup/socket_bind", |v| {
        !events_of(v, "LSM_CGROUP", pid).is_empty()
    });
    let evs = events_of(&lines, "LSM_CGROUP", pid);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["value"], port, "{}", evs[0]);
    assert_eq!(evs[0]["comm"], "python3", "{}", evs[0]);
    assert!(
        !lines
            .iter()
            .any(|e| e["pid"] == std::process::id() || e["value"] == outside_port),
        "an event from outside the cgroup: {lines:?}"
    );
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    check_attached(&err, &[("lsm_cgroup", "kind_lsm_cgroup")], &["lsm_cgroup"]);
}

// ---- examples on kprobes (examples/*.bpf.c) ------------------------------------------------

/// The series of `metric` whose labels include every `label="value"` of `labels`.
fn series_value(metrics: &str, metric: &str, labels: &[(&str, String)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Scrapes until `pred` holds (metrics from ring buffers arrive a moment after the event).
fn scrape_until(run: &Run, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let m = run.scrape();
        if pred(&m) {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}:\n{m}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn example_tcp_connect_counts_connections_by_address() {
    // Compiled everywhere (a broken example fails on every machine), run where kprobes are.
    let obj = example("tcp_connect");
    if applicable("example tcp_connect", &["kprobe"]).is_empty() {
        return;
    }
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "none",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for _ in 0..2 {
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(c.local_addr().unwrap().ip().to_string(), "127.0.0.1");
    }
    // Nothing listens on 127.0.0.3: the SYN still goes out, so the attempt counts.
    let _ = std::net::TcpStream::connect(("127.0.0.3", port));
    let to = |daddr: &str| {
        vec![
            ("saddr", "127.0.0.1".to_string()),
            ("daddr", daddr.to_string()),
            ("dport", port.to_string()),
        ]
    };
    let m = scrape_until(
        &run,
        "two connects to 127.0.0.1 and one to 127.0.0.3",
        |m| {
            series_value(m, "ebpfctl_connects_total", &to("127.0.0.1")) == Some(2.0)
                && series_value(m, "ebpfctl_connects_total", &to("127.0.0.3")) == Some(1.0)
        },
    );
    promtool_ok(&m);
    assert!(
        sample(
            &m,
            "ebpfctl_program_runs_total{program=\"tcp_connect_count\"}"
        )
        .unwrap()
            >= 3.0,
        "{m}"
    );
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

#[test]
fn example_oom_kill_reports_a_memory_cgroup_kill() {
    // Compiled everywhere (a broken example fails on every machine), run where kprobes are.
    let obj = example("oom_kill");
    if applicable("example oom_kill", &["kprobe"]).is_empty() {
        return;
    }
    let k = kernel();
    if let Some(why) = k.missing(&["CONFIG_MEMCG"]) {
        not_applicable("example oom_kill", "memory cgroup", &why);
        return;
    }
    let root = cgroup2_root();
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap();
    assert!(
        controllers.split_whitespace().any(|c| c == "memory"),
        "CONFIG_MEMCG=y but no memory controller in {}: {controllers}",
        root.display()
    );
    std::fs::write(root.join("cgroup.subtree_control"), "+memory").unwrap();
    let cg = Cgroup::new("oom");
    // 32 MiB and no swap: the limit the kill is against is 8192 pages.
    std::fs::write(cg.0.join("memory.max"), "33554432").unwrap();
    let _ = std::fs::write(cg.0.join("memory.swap.max"), "0");
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    // `tail /dev/zero` keeps one ever-growing line: it allocates until the cgroup kills it.
    let hog = renamed("/usr/bin/tail", "ebpfctl-oom");
    let mut child = cg
        .command(&hog, &["/dev/zero"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let st = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(9),
        "the memory hog was not OOM-killed: {st}"
    );
    let lines = run.wait_json("the OOM kill", |v| {
        v.iter()
            .any(|e| e["_map"] == "oom_events" && e["victim_pid"] == pid)
    });
    let e = lines
        .iter()
        .find(|e| e["_map"] == "oom_events" && e["victim_pid"] == pid)
        .unwrap();
    assert_eq!(e["victim_comm"], "ebpfctl-oom", "{e}");
    assert_eq!(e["trigger_pid"], pid, "{e}");
    assert_eq!(e["trigger_comm"], "ebpfctl-oom", "{e}");
    assert_eq!(e["total_pages"], 8192, "{e}");
    assert_eq!(e["message"], "Memory cgroup out of memory", "{e}");
    assert!(e["victim_points"].as_i64().unwrap() > 0, "{e}");
    assert!(e["at"].as_str().unwrap().ends_with('Z'), "{e}");
    let m = scrape_until(&run, "the kill counted", |m| {
        series_value(
            m,
            "ebpfctl_oom_kills_total",
            &[("victim", "ebpfctl-oom".into())],
        ) == Some(1.0)
    });
    promtool_ok(&m);
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

#[test]
fn example_capable_logs_checks_filtered_by_parameters() {
    // Compiled everywhere (a broken example fails on every machine), run where kprobes are.
    let obj = example("capable");
    if applicable("example capable", &["kprobe"]).is_empty() {
        return;
    }
    let comm = "ebpfctl-cap";
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--metrics-addr",
        "127.0.0.1:0",
        "--param",
        &format!("target_comm={comm}"),
        "--param",
        "only_cap=23",
    ]);
    // Lowering a nice value below 0 needs CAP_SYS_NICE (the RLIMIT_NICE default allows none).
    let nice = renamed("/usr/bin/nice", comm);
    let mut child = Command::new(&nice)
        .args(["-n", "-5", "true"])
        .spawn()
        .unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    let lines = run.wait_json("the CAP_SYS_NICE check", |v| {
        v.iter()
            .any(|e| e["_map"] == "cap_checks" && e["pid"] == pid)
    });
    let checks: Vec<&Value> = lines.iter().filter(|e| e["_map"] == "cap_checks").collect();
    // Both filters held in the kernel: one command, one capability.
    for e in &checks {
        assert_eq!(e["comm"], comm, "{e}");
        assert_eq!(e["cap"], "CAP_SYS_NICE", "{e}");
    }
    let e = checks.iter().find(|e| e["pid"] == pid).unwrap();
    assert_eq!(e["uid"], 0, "{e}");
    assert_eq!(e["audit"], true, "{e}");
    let m = scrape_until(&run, "the check counted", |m| {
        series_value(
            m,
            "ebpfctl_capability_checks_total",
            &[("cap", "CAP_SYS_NICE".into()), ("comm", comm.into())],
        )
        .is_some_and(|n| n >= 1.0)
    });
    promtool_ok(&m);
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

#[test]
fn example_func_latency_histogram_of_do_nanosleep() {
    let obj = example("func_latency");
    if applicable("example func_latency", &["kprobe", "kretprobe"]).len() < 2 {
        return;
    }
    let comm = "ebpfctl-flat";
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "none",
        "--metrics-addr",
        "127.0.0.1:0",
        "--param",
        &format!("target_comm={comm}"),
    ]);
    target_as(comm, &["sleep", "5", "2000"]);
    let c = format!("{{comm=\"{comm}\"}}");
    let m = scrape_until(&run, "five observations", |m| {
        sample(m, &format!("ebpfctl_function_latency_seconds_count{c}")) == Some(5.0)
    });
    promtool_ok(&m);
    let sum = sample(&m, &format!("ebpfctl_function_latency_seconds_sum{c}")).unwrap();
    assert!((0.0099..5.0).contains(&sum), "sum {sum}:\n{m}");
    // Each call slept at least 2 ms: nothing below 1.024 ms, all five by +Inf.
    let bucket = |le: &str| {
        sample(
            &m,
            &format!("ebpfctl_function_latency_seconds_bucket{{le=\"{le}\",comm=\"{comm}\"}}"),
        )
    };
    assert_eq!(bucket("0.001024"), Some(0.0), "{m}");
    assert_eq!(bucket("+Inf"), Some(5.0), "{m}");
    assert_eq!(
        sample(&m, "ebpfctl_lost_events_total{map=\"function_latency\"}"),
        Some(0.0),
        "{m}"
    );
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

// ---- `ebpfctl init` for the kinds only guests have ---------------------------------------

/// `ebpfctl init --kind kprobe` (hrtimer_nanosleep) → build → run: between this test and
/// `init_lsm_every_map_and_keyword` every map/keyword pair runs on a guest-only kind (each
/// compile takes ~40 s under TCG, so each kind takes half of them; tests/init.rs runs all
/// seven on the kinds this machine has, from the same generator).
#[test]
fn init_kprobe_every_map_and_keyword() {
    if applicable("init kprobe", &["kprobe"]).is_empty() {
        return;
    }
    let comm = "ebpfctl-ini-kp";
    let fire = || {
        target_as(comm, &["sleep", "2", "100"]);
    };
    for (map, kw) in [
        ("ringbuf", "print"),
        ("hash", "gauge"),
        ("ringbuf", "hist"),
        ("hash", "counter"),
    ] {
        common::init::check(
            "kprobe",
            &[],
            map,
            kw,
            "sleeps",
            &common::init::Trigger {
                run_args: &[],
                label: ("comm", comm),
                fire: &fire,
                value: ("age", None),
            },
        );
    }
}

/// `ebpfctl init --kind lsm` (file_open) → build → run; see the kprobe test above.
#[test]
fn init_lsm_every_map_and_keyword() {
    if applicable("init lsm", &["lsm"]).is_empty() {
        return;
    }
    let comm = "ebpfctl-ini-lsm";
    let fire = || {
        target_as(comm, &["getppid", "1"]);
    };
    for (map, kw) in [("ringbuf", "counter"), ("hash", "print"), ("hash", "hist")] {
        common::init::check(
            "lsm",
            &[],
            map,
            kw,
            "opens",
            &common::init::Trigger {
                run_args: &[],
                label: ("comm", comm),
                fire: &fire,
                value: ("age", None),
            },
        );
    }
}
