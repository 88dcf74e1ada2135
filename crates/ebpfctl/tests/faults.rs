//! Smaller faults found by hand: flag values that spun or did nothing, and lines that sent
//! the user the wrong way. Each refusal is one line that says what is wrong and what to do.
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{assert_one_line_error, bpf, build_source, ebpfctl, example, tmp};

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// `ebpfctl ARGS` must fail fast (before loading anything) with one line containing `want`.
fn refused_fast(args: &[&str], want: &str) {
    let t = Instant::now();
    let o = ebpfctl(args);
    assert_one_line_error(&o, want);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "ebpfctl {args:?} took {:?} to refuse",
        t.elapsed()
    );
}

#[test]
fn run_interval_zero_is_refused() {
    let obj = example("syscall_counter");
    for v in ["0s", "0", "0ms", "999us"] {
        refused_fast(
            &["run", s(&obj), "--interval", v, "--duration", "2s"],
            "--interval",
        );
    }
    let o = ebpfctl(&["run", s(&obj), "--interval", "0s", "--duration", "2s"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("at least 10ms"), "no minimum given: {err}");
}

#[test]
fn run_duration_zero_is_refused() {
    let obj = example("syscall_counter");
    refused_fast(&["run", s(&obj), "--duration", "0s"], "--duration");
}

#[test]
fn run_hist_linear_step_must_be_positive() {
    let obj = example("syscall_counter");
    for v in ["0", "-1", "NaN", "inf"] {
        let flag = format!("--hist-linear-step={v}");
        refused_fast(
            &["run", s(&obj), &flag, "--duration", "1s"],
            "--hist-linear-step",
        );
    }
}

#[test]
fn top_interval_zero_is_refused() {
    refused_fast(&["top", "--json", "--interval", "0"], "at least 50ms");
}

#[test]
fn observe_poll_and_duration_out_of_range_are_refused() {
    // Checked before the executables are looked at.
    let missing = "/nonexistent/go-binary";
    refused_fast(&["observe", missing, "--poll-ms", "0"], "--poll-ms");
    refused_fast(&["observe", missing, "--poll-ms", "60000"], "--poll-ms");
    refused_fast(&["observe", missing, "--duration", "0"], "--duration");
}

#[test]
fn snoop_duration_zero_is_refused() {
    for tool in ["execsnoop", "opensnoop"] {
        refused_fast(&[tool, "-d", "0"], "--duration");
    }
}

/// An object with no programs used to run for the whole duration and exit 0.
#[test]
fn object_without_programs_is_refused() {
    let obj = build_source(
        "faults_noprog",
        r#"#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counter_things SEC(".maps");
char LICENSE[] SEC("license") = "GPL";
"#,
    );
    refused_fast(&["run", s(&obj), "--duration", "3s"], "no programs");
    let o = ebpfctl(&["run", s(&obj), "--duration", "3s"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("SEC("),
        "does not say what a program is: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// An unknown section name was reported as "the verifier rejected program ...".
#[test]
fn unknown_section_name_is_named_with_close_ones() {
    let obj = build_source(
        "faults_badsec",
        r#"#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("tracepiont/syscalls/sys_enter_getpid")
int on_getpid(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"#,
    );
    let mark = bpf::Mark::now();
    let o = ebpfctl(&["run", s(&obj), "--duration", "2s"]);
    mark.assert_nothing_left("run of an unknown section", &["on_getpid"]);
    assert_one_line_error(&o, "tracepiont/syscalls/sys_enter_getpid");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("verifier"), "{err}");
    assert!(err.contains("on_getpid"), "program not named: {err}");
    assert!(
        err.contains("did you mean tracepoint/"),
        "no close name: {err}"
    );
    assert!(
        err.contains("docs/conventions.md"),
        "no pointer to the list: {err}"
    );
}

/// A section name nothing is close to still says where the names are listed.
#[test]
fn unknown_section_name_without_close_ones() {
    let obj = build_source(
        "faults_badsec2",
        r#"#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("zzqqxx")
int odd(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"#,
    );
    let o = ebpfctl(&["run", s(&obj), "--duration", "2s"]);
    assert_one_line_error(&o, "\"zzqqxx\"");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("did you mean"), "{err}");
    assert!(err.contains("docs/conventions.md"), "{err}");
}

fn truncated(name: &str, keep: f64) -> PathBuf {
    let full = std::fs::read(example("exec_print")).unwrap();
    let p = tmp().join(format!("{name}.o"));
    std::fs::write(&p, &full[..(full.len() as f64 * keep) as usize]).unwrap();
    p
}

/// `btf dump file` said "compile with -g" for a truncated object.
#[test]
fn truncated_elf_is_called_truncated() {
    for (i, keep) in [0.1, 0.5, 0.99].into_iter().enumerate() {
        let p = truncated(&format!("faults_trunc{i}"), keep);
        for args in [
            vec!["btf", "dump", "file", s(&p)],
            vec!["inspect", s(&p)],
            vec!["run", s(&p), "--duration", "1s"],
        ] {
            let o = ebpfctl(&args);
            assert_one_line_error(&o, "truncated or corrupt");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!err.contains("-g"), "ebpfctl {args:?}: {err}");
        }
    }
}

/// Without --strict, an XDP program skipped for want of --iface left only "(1 skipped)".
#[test]
fn skipped_xdp_program_says_why() {
    let obj = example("xdp_udp");
    let mark = bpf::Mark::now();
    let o = ebpfctl(&["run", s(&obj), "--duration", "2s"]);
    mark.assert_nothing_left("run without --iface", &["count_udp"]);
    assert_one_line_error(&o, "no program could be attached");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("count_udp"), "{err}");
    assert!(err.contains("--iface"), "reason hidden: {err}");
}
