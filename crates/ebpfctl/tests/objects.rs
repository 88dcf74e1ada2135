//! Real-world object shapes (bcc's libbpf-tools, bumblebee's examples), each reproduced by a
//! probe of ours in examples/ and run on the real kernel: alternatives of one hook, a
//! verifier-rejected alternative, every skipped program saying why, stacks, bumblebee's
//! conventions, libbpf-tools histograms under --all-maps, struct_ops, iterators, USDT.
mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A header cache of this test binary's own: `ebpfctl build` writes its bundled headers into
/// the cache, and another ebpfctl binary on the machine (another branch) may rewrite them.
fn cache_env() -> (&'static str, String) {
    let d = tmp().join("xdg-cache");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    ("XDG_CACHE_HOME", d.display().to_string())
}

/// `examples/NAME.bpf.c` built with `ebpfctl build`.
fn probe(name: &str) -> PathBuf {
    let dir = tmp().join("objects");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}.bpf.o"));
    let (k, v) = cache_env();
    let o = Command::new(bin())
        .args(["build"])
        .arg(repo().join("examples").join(format!("{name}.bpf.c")))
        .arg("-I")
        .arg(repo().join("examples"))
        .arg("-o")
        .arg(&out)
        .env(k, v)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ebpfctl build {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// The example target under another name (its comm), started in the background.
fn spawn_target(name: &str, args: &[&str]) -> std::process::Child {
    let dir = target_dir();
    let path = dir.join(name);
    if !path.exists() {
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        copy_exe(&dir.join("ebpfctl-example-target"), &tmp);
        std::fs::rename(&tmp, &path).unwrap();
    }
    Command::new(&path).args(args).spawn().unwrap()
}

fn lines_of(stderr: &[String], what: &str) -> Vec<String> {
    stderr
        .iter()
        .filter(|l| l.contains(what))
        .cloned()
        .collect()
}

#[test]
fn alternatives_of_one_hook_attach_once_unless_both_are_named() {
    let obj = probe("alt_hooks");
    // Default: the first (tp_btf) attaches, its raw_tp alternative is skipped with a line.
    let run = quick_run(&obj, "json", &[]);
    target_as("ebpfctl-alt", &["getppid", "1"]);
    target_as("ebpfctl-alt", &["getppid", "1"]);
    let v = run.wait_json("two execs counted", |v| {
        v.iter()
            .any(|e| e["_map"] == "hits" && e["comm"] == "ebpfctl-alt" && e["value"] == 2)
    });
    assert!(
        !v.iter()
            .any(|e| e["program"] == 2 && e["comm"] == "ebpfctl-alt"),
        "the raw_tp alternative ran too: {v:?}"
    );
    assert!(v
        .iter()
        .any(|e| e["program"] == 1 && e["comm"] == "ebpfctl-alt"));
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    let skip = lines_of(&err, "program exec_raw (raw_tp/sched_process_exec) skipped");
    assert_eq!(skip.len(), 1, "{err:?}");
    assert!(
        skip[0].contains("exec_btf (tp_btf/sched_process_exec) already hooks")
            && skip[0].contains("--program exec_btf --program exec_raw"),
        "{}",
        skip[0]
    );
    assert!(err
        .iter()
        .any(|l| l.contains("running: 1 program(s) attached (exec_btf)")));

    // Both named: both run, each counting every exec.
    let run = quick_run(
        &obj,
        "json",
        &["--program", "exec_btf", "--program", "exec_raw"],
    );
    target_as("ebpfctl-alt", &["getppid", "1"]);
    run.wait_json("both programs counting", |v| {
        [1, 2].iter().all(|p| {
            v.iter()
                .any(|e| e["program"] == *p && e["comm"] == "ebpfctl-alt" && e["value"] == 1)
        })
    });
    let (_, _, err) = run.stop();
    assert!(lines_of(&err, "skipped").is_empty(), "{err:?}");

    // --skip the first: the alternative takes over.
    let run = quick_run(&obj, "json", &["--skip", "tp_btf/*"]);
    target_as("ebpfctl-alt", &["getppid", "1"]);
    run.wait_json("the raw_tp program counting", |v| {
        v.iter()
            .any(|e| e["program"] == 2 && e["comm"] == "ebpfctl-alt" && e["value"] == 1)
    });
    let (_, _, err) = run.stop();
    assert!(
        err.iter().any(|l| l.contains("attached (exec_raw)")),
        "{err:?}"
    );

    // A glob that matches nothing is refused before anything loads.
    let mark = bpf::Mark::now();
    assert_one_line_error(
        &ebpfctl(&["run", s(&obj), "--program", "exec_nope"]),
        "--program \"exec_nope\" matches no program of the object; its programs: exec_btf (tp_btf/sched_process_exec), exec_raw (raw_tp/sched_process_exec)",
    );
    assert_one_line_error(
        &ebpfctl(&["run", s(&obj), "--skip", "exec_*"]),
        "leave no program to load",
    );
    mark.assert_nothing_left("refused selections", &["exec_btf", "exec_raw"]);
}

/// Whether `ebpfctl feature` finds attach kind `kind` available on this kernel.
fn available(kind: &str) -> bool {
    let o = ebpfctl(&["feature", "-o", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let found = v["attach"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == kind)
        .unwrap_or_else(|| panic!("`ebpfctl feature` reports no {kind}"))
        .clone();
    found["available"] == true
}

/// `ebpfctl run OBJ -o OUTPUT --no-metrics --interval 200ms EXTRA...` started.
fn quick_run(obj: &std::path::Path, output: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "run",
        s(obj),
        "-o",
        output,
        "--no-metrics",
        "--interval",
        "200ms",
    ];
    args.extend_from_slice(extra);
    Run::start(&args)
}

/// Runs alt_fentry.bpf.c until the program numbered `want` (1 fentry, 2 kprobe) counted two
/// sleeps of its target; the other never counts. Returns the run's stderr.
fn alt_fentry_counts(obj: &std::path::Path, extra: &[&str], want: &[u64]) -> Vec<String> {
    let run = quick_run(obj, "json", extra);
    target_as("ebpfctl-altf", &["sleep", "2", "1000"]);
    let v = run.wait_json("two sleeps counted", |v| {
        want.iter().all(|p| {
            v.iter().any(|e| {
                e["_map"] == "sleeps"
                    && e["program"] == *p
                    && e["comm"] == "ebpfctl-altf"
                    && e["value"] == 2
            })
        })
    });
    for p in [1u64, 2] {
        if !want.contains(&p) {
            assert!(
                !v.iter()
                    .any(|e| e["program"] == p && e["comm"] == "ebpfctl-altf"),
                "program {p} ran too: {v:?}"
            );
        }
    }
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    err
}

#[test]
fn fentry_and_its_kprobe_fallback_attach_once_where_the_kernel_allows() {
    let obj = probe("alt_fentry");
    let (fentry, kprobe) = (available("fentry"), available("kprobe"));
    // Straight to fd 2 (libtest captures eprintln! of passing tests): which case ran here.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("alt_fentry: fentry available: {fentry}, kprobe available: {kprobe}\n").as_bytes(),
    );
    if !fentry && !kprobe {
        // This project's host: neither can attach, each says why, nothing stays loaded.
        let mark = bpf::Mark::now();
        let o = ebpfctl(&["run", s(&obj), "--duration", "1s"]);
        mark.assert_nothing_left("neither alternative", &["sleep_fentry", "sleep_kprobe"]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| !l.starts_with("libbpf:")).collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(
            lines[0].starts_with("ebpfctl: program sleep_fentry (fentry/do_nanosleep) skipped:")
                && lines[0].contains("BPF trampolines"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("ebpfctl: program sleep_kprobe (kprobe/do_nanosleep) skipped:")
                && lines[1].contains("no kprobes"),
            "{err}"
        );
        assert!(
            lines[2].contains("no program could be attached (2 skipped, each said above)"),
            "{err}"
        );
        return;
    }
    let err = alt_fentry_counts(&obj, &[], if fentry { &[1] } else { &[2] });
    let skip = |prog: &str| lines_of(&err, &format!("program {prog} ("));
    if fentry {
        // The fentry attaches; its kprobe alternative is skipped, saying how to run both.
        let k = skip("sleep_kprobe");
        assert_eq!(k.len(), 1, "{err:?}");
        assert!(
            k[0].contains("sleep_fentry (fentry/do_nanosleep) already hooks")
                && k[0].contains("--program sleep_fentry --program sleep_kprobe"),
            "{}",
            k[0]
        );
        assert!(
            err.iter()
                .any(|l| l.contains("running: 1 program(s) attached (sleep_fentry)")),
            "{err:?}"
        );
    } else {
        // The kernel refuses the fentry: it is skipped with its reason and the kprobe runs.
        let f = skip("sleep_fentry");
        assert_eq!(f.len(), 1, "{err:?}");
        assert!(f[0].contains("skipped:"), "{}", f[0]);
        assert!(
            err.iter()
                .any(|l| l.contains("running: 1 program(s) attached (sleep_kprobe)")),
            "{err:?}"
        );
    }
    if fentry && kprobe {
        // --skip the fentry: the kprobe takes over; --program both: both count.
        let err = alt_fentry_counts(&obj, &["--skip", "fentry/*"], &[2]);
        assert!(
            err.iter().any(|l| l.contains("attached (sleep_kprobe)")),
            "{err:?}"
        );
        let err = alt_fentry_counts(
            &obj,
            &["--program", "sleep_fentry", "--program", "sleep_kprobe"],
            &[1, 2],
        );
        assert!(lines_of(&err, "skipped").is_empty(), "{err:?}");
    }
}

#[test]
fn a_verifier_rejected_alternative_is_explained_and_the_rest_run() {
    let obj = probe("verifier_alt");
    let run = quick_run(&obj, "json", &[]);
    target_as("ebpfctl-valt", &["getppid", "3"]);
    run.wait_json("the good program's count", |v| {
        v.iter()
            .any(|e| e["_map"] == "calls" && e["key"] == 2 && e["value"] == 3)
    });
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    let all = err.join("\n");
    assert!(
        all.contains("program broken_alt (raw_tp/sys_enter) skipped: the verifier rejected program broken_alt"),
        "{all}"
    );
    assert!(all.contains("verifier_alt.bpf.c:"), "no source line: {all}");
    assert!(all.contains("hint: missing NULL check"), "{all}");
    assert!(all.contains("the other programs run without it"), "{all}");
    assert!(
        all.contains("running: 1 program(s) attached (good_alt)"),
        "{all}"
    );

    // --strict: the rejection is fatal, nothing stays loaded.
    let mark = bpf::Mark::now();
    let o = ebpfctl(&["run", s(&obj), "--strict", "--duration", "1s"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("ebpfctl: error:")
            && err.contains("the verifier rejected program broken_alt"),
        "{err}"
    );
    mark.assert_nothing_left("--strict", &["broken_alt", "good_alt"]);
}

const UNRUNNABLE: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
SEC("kprobe/ebpfctl_no_such_function") int unrun_kprobe(void *ctx) { return 0; }
SEC("fentry/vfs_raed") int BPF_PROG(unrun_fentry) { return 0; }
SEC("xdp") int unrun_xdp(struct xdp_md *x) { return 2; }
SEC("usdt") int unrun_usdt(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"#;

#[test]
fn every_skipped_program_says_why_on_its_own_line() {
    let (k, v) = cache_env();
    let dir = tmp().join("objects");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("unrunnable.bpf.c");
    std::fs::write(&src, UNRUNNABLE).unwrap();
    let obj = dir.join("unrunnable.bpf.o");
    let o = Command::new(bin())
        .args(["build", s(&src), "-o", s(&obj)])
        .env(k, v)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mark = bpf::Mark::now();
    let o = ebpfctl(&["run", s(&obj), "--duration", "1s"]);
    mark.assert_nothing_left(
        "an object nothing of which runs",
        &["unrun_kprobe", "unrun_fentry", "unrun_xdp", "unrun_usdt"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 5, "one line per program and the error:\n{err}");
    let line = |prog: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(&format!("ebpfctl: program {prog} (")))
            .unwrap_or_else(|| panic!("no line for {prog}:\n{err}"))
    };
    // No kprobes here; on a kernel with them, the function does not exist.
    if !available("kprobe") {
        assert!(line("unrun_kprobe").contains("no kprobes"), "{err}");
    }
    // ESRCH: the function is not in the kernel's BTF; the closest names are offered.
    let f = line("unrun_fentry");
    assert!(
        f.contains("vfs_raed is not a function in this kernel's BTF") && f.contains("vfs_read"),
        "{f}"
    );
    assert!(!f.contains("trampolines"), "{f}");
    assert!(line("unrun_xdp").contains("--iface"), "{err}");
    assert!(
        line("unrun_usdt").contains("SEC(\"usdt/PROVIDER:NAME\")")
            && line("unrun_usdt").contains("--target"),
        "{err}"
    );
    assert!(
        lines[4].starts_with("ebpfctl: error:")
            && lines[4].contains("no program could be attached (4 skipped, each said above)"),
        "{err}"
    );
    // inspect lists the same problems.
    let o = ebpfctl(&["inspect", s(&obj), "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for prog in ["unrun_kprobe", "unrun_fentry", "unrun_usdt"] {
        assert!(
            problems.iter().any(|p| p.contains(prog)),
            "{prog} not among {problems:?}"
        );
    }
}

#[test]
fn stacks_from_a_map_without_value_size_print_as_frames_and_fold() {
    let obj = probe("stacks");
    let run = quick_run(&obj, "json", &[]);
    // The target stays 2 s after its calls, so its user stack is symbolised while it lives.
    let linger = patient(Duration::from_secs(2)).as_millis().to_string();
    let mut child = spawn_target("ebpfctl-stk", &["getppid", "3", &linger]);
    let pid = child.id();
    let v = run.wait_json("a symbolised stack", |v| {
        v.iter().any(|e| {
            e["tgid"] == pid && e["value"] == 3 && e["ustack"][0]["sym"].as_str().is_some()
        })
    });
    child.wait().unwrap();
    let e = v
        .iter()
        .rev()
        .find(|e| e["tgid"] == pid && e["ustack"][0]["sym"].as_str().is_some())
        .unwrap();
    assert_eq!(e["comm"], "ebpfctl-stk");
    // A syscall tracepoint's kernel stack: the syscall path on 6.12 and 6.18, none on 6.1
    // (measured in the kernel matrix's guest; a raw_tp there has frames).
    let k = e["kstack"].as_array().cloned().unwrap_or_default();
    let kernel_frames = !k.is_empty();
    assert!(
        kernel_frames || kernel_version() < (6, 12),
        "no kernel frames: {e}"
    );
    assert!(
        !kernel_frames
            || k.iter()
                .any(|f| f["sym"] == "do_syscall_64" && f["module"] == "kernel"),
        "kernel frames: {k:?}"
    );
    for f in &k {
        assert!(f["addr"].as_str().unwrap().starts_with("0xffff"), "{f}");
        assert!(f["offset"].is_u64(), "{f}");
    }
    // The user stack starts in libc's syscall(), called by the target.
    let u = &e["ustack"][0];
    assert_eq!(u["sym"], "syscall", "{e}");
    assert!(u["module"].as_str().unwrap().contains("libc"), "{e}");
    run.stop();

    // -o folded: one line per key at exit, comm;user;-;kernel COUNT, outermost first.
    let run = quick_run(&obj, "folded", &[]);
    // Alive until the run has printed (it folds at exit), however slow the machine.
    let mut child = spawn_target("ebpfctl-stk", &["getppid", "5", "20000"]);
    wait_lingering(child.id());
    let (st, out, err) = run.stop();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(st.success(), "{err:?}");
    let out = String::from_utf8_lossy(&out);
    let line = out
        .lines()
        .find(|l| l.starts_with("ebpfctl-stk;") && l.ends_with(" 5"))
        .unwrap_or_else(|| panic!("no folded line for the target:\n{out}"));
    let (stack, _) = line.rsplit_once(' ').unwrap();
    let frames: Vec<&str> = stack.split(';').collect();
    // comm;user frames, then `-` and the kernel's only where there are kernel frames.
    let dash = frames.iter().position(|f| *f == "-");
    assert_eq!(dash.is_some(), kernel_frames, "{line}");
    let dash = dash.unwrap_or(frames.len());
    assert!(
        frames[1..dash].iter().any(|f| f.starts_with("syscall")),
        "{line}"
    );
    if !kernel_frames {
        return;
    }
    assert!(
        frames[dash + 1..]
            .iter()
            .any(|f| f.starts_with("do_syscall_64")),
        "{line}"
    );
    // Outermost first: the syscall entry comes before do_syscall_64.
    let entry = frames
        .iter()
        .position(|f| f.starts_with("entry_SYSCALL"))
        .expect(line);
    let sys = frames
        .iter()
        .position(|f| f.starts_with("do_syscall_64"))
        .unwrap();
    assert!(entry < sys, "{line}");
}

/// Waits (up to 30 s, however loaded the machine) until the example target `pid` made its
/// calls and lingers: blocked in nanosleep (a blocked task's `/proc/PID/syscall` starts
/// with the call's number).
fn wait_lingering(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        let nr = now.split(' ').next().and_then(|n| n.parse::<i64>().ok());
        // glibc's nanosleep() is the clock_nanosleep system call.
        if nr.is_some_and(|n| n == libc::SYS_nanosleep || n == libc::SYS_clock_nanosleep) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "target {pid} never lingered: {now}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bumblebee_style_probe_builds_and_prints_as_bumblebee_would() {
    let obj = probe("bumblebee_style");
    // inspect shows the plan: `le` with bumblebee's buckets.
    let o = ebpfctl(&["inspect", s(&obj), "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let hist = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "hist_latency")
        .unwrap();
    assert_eq!(
        hist["plan"],
        "Prometheus histogram of member le (buckets 0, 10, 20 … 5000), other members as labels"
    );
    let run = Run::start(&[
        "run",
        s(&obj),
        "-o",
        "json",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let pid = target_as("ebpfctl-bee", &["getppid", "3"]);
    let v = run.wait_json("three events", |v| {
        v.iter().filter(|e| e["pid"] == pid).count() == 3
    });
    let e = v.iter().find(|e| e["pid"] == pid).unwrap();
    assert_eq!(e["state"], "R", "a lone char prints as a character: {e}");
    assert_eq!(e["comm"], "ebpfctl-bee", "memcpy'd comm: {e}");
    std::thread::sleep(Duration::from_millis(200));
    let m = run.scrape();
    promtool_ok(&m);
    let c = "comm=\"ebpfctl-bee\"";
    assert_eq!(
        sample(&m, &format!("ebpfctl_latency_count{{{c}}}")),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, &format!("ebpfctl_latency_bucket{{le=\"10.0\",{c}}}")),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, &format!("ebpfctl_latency_bucket{{le=\"20.0\",{c}}}")),
        Some(3.0),
        "{m}"
    );
    assert!(
        m.contains(&format!("ebpfctl_latency_bucket{{le=\"5000.0\",{c}}}")),
        "{m}"
    );
    // Integral values print as integers.
    let runs = m
        .lines()
        .find(|l| l.starts_with("ebpfctl_program_runs_total{program=\"bee_getppid\"}"))
        .expect(&m);
    assert!(!runs.ends_with(".0"), "{runs}");
    run.stop();

    // --buckets overrides bumblebee's.
    let run = Run::start(&[
        "run",
        s(&obj),
        "-o",
        "none",
        "--metrics-addr",
        "127.0.0.1:0",
        "--buckets",
        "5,15,25",
    ]);
    target_as("ebpfctl-bee", &["getppid", "2"]);
    std::thread::sleep(Duration::from_millis(300));
    let m = run.scrape();
    assert_eq!(
        sample(&m, &format!("ebpfctl_latency_bucket{{le=\"5.0\",{c}}}")),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, &format!("ebpfctl_latency_bucket{{le=\"15.0\",{c}}}")),
        Some(2.0),
        "{m}"
    );
    assert!(!m.contains("le=\"5000.0\""), "{m}");
    run.stop();
    // A flag error (clap's, exit 2).
    let o = ebpfctl(&["run", s(&obj), "--buckets", "5,1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bounds must ascend: 1 after 5"));
}

#[test]
fn libbpf_tools_histograms_print_under_all_maps() {
    let obj = probe("slots_hist");
    // Without --all-maps: it says why nothing is printed.
    let run = Run::start(&["run", s(&obj), "-o", "json"]);
    let (_, out, err) = run.stop();
    assert!(out.is_empty());
    assert!(
        err.iter()
            .any(|l| l.contains("no map carries a keyword") && l.contains("--all-maps")),
        "{err:?}"
    );
    let o = ebpfctl(&["inspect", s(&obj)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("with --all-maps it prints a log2 histogram from slots[]"),
        "{text}"
    );
    assert!(
        text.contains("run prints nothing unless given --all-maps"),
        "{text}"
    );

    let run = Run::start(&[
        "run",
        s(&obj),
        "--all-maps",
        "-o",
        "json",
        "--metrics-addr",
        "127.0.0.1:0",
        "--interval",
        "200ms",
    ]);
    let pid = target_as("ebpfctl-slots", &["getppid", "4"]);
    let v = run.wait_json("the histogram", |v| {
        v.iter().any(|e| e["key"] == pid && e["slots"][5] == 4)
    });
    let e = v.iter().rev().find(|e| e["key"] == pid).unwrap();
    assert_eq!(e["_map"], "hists");
    assert_eq!(e["comm"], "ebpfctl-slots");
    assert_eq!(e["slots"].as_array().unwrap().len(), 26);
    let m = run.scrape();
    promtool_ok(&m);
    let l = format!("key=\"{pid}\",comm=\"ebpfctl-slots\"");
    assert_eq!(
        sample(&m, &format!("ebpfctl_hists_count{{{l}}}")),
        Some(4.0),
        "{m}"
    );
    // Slot 5 holds [32, 64): le 31 has none, le 63 all.
    assert_eq!(
        sample(&m, &format!("ebpfctl_hists_bucket{{le=\"31.0\",{l}}}")),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, &format!("ebpfctl_hists_bucket{{le=\"63.0\",{l}}}")),
        Some(4.0),
        "{m}"
    );
    run.stop();

    // The table draws it.
    let run = quick_run(&obj, "table", &["--all-maps"]);
    let pid = target_as("ebpfctl-slots", &["getppid", "2"]);
    std::thread::sleep(Duration::from_millis(500));
    let (_, out, _) = run.stop();
    let out = String::from_utf8_lossy(&out);
    let at = out
        .rfind(&format!("key={pid} comm=ebpfctl-slots"))
        .unwrap_or_else(|| panic!("no histogram for {pid}:\n{out}"));
    let block: Vec<&str> = out[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.contains('|'))
        .collect();
    assert_eq!(block.len(), 1, "{out}");
    assert!(
        block[0].contains("32 -> 63") && block[0].contains(": 2 ") && block[0].contains("|****"),
        "{}",
        block[0]
    );
}

/// `/proc/sys/net/ipv4/tcp_available_congestion_control` of this network namespace.
fn available_cc() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control").unwrap()
}

#[test]
fn struct_ops_congestion_control_is_registered_and_selectable_by_sysctl() {
    let obj = probe("tcp_cc");
    let o = ebpfctl(&["inspect", s(&obj), "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = v["maps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ebpfctl_cc")
        .unwrap_or_else(|| panic!("struct_ops map not listed: {}", v["maps"]));
    assert_eq!(m["type"], "struct_ops");
    assert_eq!(m["value_type"], "struct tcp_congestion_ops");

    let run = Run::start(&["run", s(&obj), "-o", "json", "--no-metrics"]);
    assert!(
        run.stderr()
            .iter()
            .any(|l| l.contains("struct_ops ebpfctl_cc registered")),
        "{:?}",
        run.stderr()
    );
    // SEC(".struct_ops.link") needs struct_ops links (6.4); before them run registers the
    // map without one and says so, and `feature` reports which.
    let f: Value = serde_json::from_slice(&ebpfctl(&["feature", "-o", "json"]).stdout).unwrap();
    let links = f["attach"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "struct_ops_link")
        .unwrap_or_else(|| panic!("feature lists no struct_ops_link: {}", f["attach"]))
        ["available"]
        == true;
    assert_eq!(links, kernel_version() >= (6, 4), "{}", f["attach"]);
    if links {
        assert!(!run.held().links.is_empty(), "the struct_ops link is held");
    } else {
        assert!(
            run.stderr().iter().any(|l| l
                .contains("struct_ops map ebpfctl_cc: this kernel has no struct_ops links (6.4)")),
            "{:?}",
            run.stderr()
        );
    }
    assert!(available_cc().contains("ebpfctl_cc"), "{}", available_cc());
    // The default of a network namespace of our own (the host's stays as it is): every
    // connection made there starts on ebpfctl_cc.
    let port = std::thread::spawn(|| {
        // SAFETY: unshare on this thread only; it ends with the thread.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        let st = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::write("/proc/sys/net/ipv4/tcp_congestion_control", "ebpfctl_cc").unwrap();
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
                .unwrap()
                .trim(),
            "ebpfctl_cc"
        );
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = l.accept().unwrap();
        drop(c);
        port
    })
    .join()
    .unwrap();
    let v = run.wait_json("the connection's init", |v| {
        v.iter().any(|e| e["remote_port"] == port)
    });
    let e = v.iter().find(|e| e["remote_port"] == port).unwrap();
    assert_eq!(e["_map"], "cc_inits");
    assert!(e["local_port"].as_u64().unwrap() > 0, "{e}");
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    assert!(
        !available_cc().contains("ebpfctl_cc"),
        "still registered: {}",
        available_cc()
    );
}

#[test]
fn task_iterator_is_read_every_interval() {
    let obj = probe("task_iter");
    let o = ebpfctl(&["inspect", s(&obj)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("run reads it every --interval and prints its text"),
        "{text}"
    );
    let mut child = spawn_target("ebpfctl-iter", &["sleep", "1", "3000000"]);
    let pid = child.id();
    let run = quick_run(&obj, "json", &[]);
    let want = format!("{pid} ebpfctl-iter ");
    let v = run.wait_json("two reads listing the target", |v| {
        v.iter()
            .filter(|e| e["_iter"] == "dump_task" && e["text"].as_str().unwrap().starts_with(&want))
            .count()
            >= 2
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(v
        .iter()
        .all(|e| e["_time"].as_str().unwrap().ends_with('Z')));
    run.stop();
}

/// examples/target/usdt_target.c, compiled once.
fn usdt_target() -> PathBuf {
    let out = tmp().join("bin").join("ebpfctl-usdt");
    if !out.exists() {
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let tmp_out = out.with_extension(std::process::id().to_string());
        let o = Command::new("gcc")
            .args(["-O1", "-o"])
            .arg(&tmp_out)
            .arg(repo().join("examples/target/usdt_target.c"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "gcc usdt_target.c (needs sys/sdt.h: apt-get install systemtap-sdt-dev): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::rename(&tmp_out, &out).unwrap();
    }
    out
}

#[test]
fn usdt_probe_resolves_with_target_or_pid() {
    let obj = probe("usdt_tick");
    let bin_path = usdt_target();
    // Without a binary: one line saying what to pass.
    let mark = bpf::Mark::now();
    assert_one_line_error(
        &ebpfctl(&["run", s(&obj), "--duration", "1s"]),
        "section names the probe ebpfctl:tick but no binary: pass --target PATH (or --pid PID)",
    );
    mark.assert_nothing_left("usdt without a target", &["on_tick"]);

    let run = Run::start(&[
        "run",
        s(&obj),
        "-o",
        "json",
        "--no-metrics",
        "--target",
        s(&bin_path),
    ]);
    let st = Command::new(&bin_path).arg("3").status().unwrap();
    assert!(st.success());
    let v = run.wait_json("three ticks", |v| {
        v.iter().filter(|e| e["_map"] == "ticks").count() >= 3
    });
    let ticks: Vec<&Value> = v.iter().filter(|e| e["_map"] == "ticks").collect();
    for (i, e) in ticks.iter().enumerate() {
        assert_eq!(e["i"], i as u64, "{e}");
        assert_eq!(e["x"], 42, "{e}");
    }
    run.stop();

    // --pid alone: the probe in that process's executable, that process only.
    // It ticks after this delay: by then the run has attached, however slow the machine.
    let delay = patient(Duration::from_millis(2500)).as_millis().to_string();
    let mut traced = Command::new(&bin_path)
        .args(["2", &delay])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = traced.id();
    let run = Run::start(&[
        "run",
        s(&obj),
        "-o",
        "json",
        "--no-metrics",
        "--pid",
        &pid.to_string(),
    ]);
    let other = Command::new(&bin_path).arg("2").status().unwrap();
    assert!(other.success());
    traced.wait().unwrap();
    let v = run.wait_json("the traced process's ticks", |v| {
        v.iter().filter(|e| e["pid"] == pid).count() == 2
    });
    assert!(
        v.iter().all(|e| e["pid"] == pid),
        "another process was traced: {v:?}"
    );
    run.stop();
}

#[test]
fn verbose_libbpf_lines_carry_one_prefix() {
    let obj = probe("verifier_alt");
    let run = Run::start(&[
        "run",
        s(&obj),
        "-o",
        "none",
        "--no-metrics",
        "-v",
        "--skip",
        "broken_alt",
    ]);
    let (_, _, err) = run.stop();
    assert!(err.iter().any(|l| l.starts_with("libbpf: ")), "{err:?}");
    assert!(
        !err.iter().any(|l| l.contains("libbpf: libbpf:")),
        "{err:?}"
    );
}
