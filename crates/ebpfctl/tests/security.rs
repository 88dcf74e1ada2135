//! What `run` refuses to load (docs/security.md): objects calling helpers or kfuncs that
//! change the traced system, unless `--allow-unsafe-helpers` is given. Needs root.
mod common;
mod killer;

use std::os::unix::process::ExitStatusExt;

use common::*;
use killer::*;

/// Writes into the memory of every process calling getppid (the kernel refuses it here).
const WRITER: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_getppid")
int poke_user(void *ctx)
{
	int zero = 0;
	bpf_probe_write_user((void *)0x1000, &zero, sizeof(zero));
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

/// Unsafe calls hidden away from the program's own code: in a static subprogram, in a
/// global subprogram, in a bpf_loop callback, and a kfunc.
const HIDDEN: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern int bpf_sock_destroy(struct sock_common *sk) __ksym __weak;

static __noinline int static_sub(int sig)
{
	return bpf_send_signal(sig);
}

__noinline int global_sub(int x)
{
	bpf_override_return((void *)0, x);
	return x;
}

static long loop_body(__u32 i, void *ctx)
{
	bpf_send_signal_thread(9);
	return 1;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int via_subprograms(void *ctx)
{
	return static_sub(0) + global_sub(0);
}

SEC("raw_tracepoint/sys_enter")
int via_callback(void *ctx)
{
	bpf_loop(1, loop_body, (void *)0, 0);
	return 0;
}

SEC("iter/tcp")
int via_kfunc(struct bpf_iter__tcp *ctx)
{
	struct sock_common *sk = ctx->sk_common;
	if (sk)
		bpf_sock_destroy(sk);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int harmless(void *ctx)
{
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

#[test]
fn send_signal_is_refused_without_the_flag_and_runs_with_it() {
    let obj = killer();
    let o = obj.to_str().unwrap();
    let comm = format!("seckill{}", std::process::id() % 100000);
    let param = format!("target_comm={comm}");
    let out = ebpfctl(&["run", o, "--param", &param, "--duration", "5"]);
    assert_one_line_error(
        &out,
        "program kill_target (tracepoint/syscalls/sys_enter_getppid) calls bpf_send_signal",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--allow-unsafe-helpers"), "{err}");
    // Refused before the kernel saw it: the target runs undisturbed.
    let target = target_named(&comm);
    assert!(run_target(&target).success());

    let run = Run::start(&[
        "run",
        o,
        "--allow-unsafe-helpers",
        "--param",
        &param,
        "-o",
        "json",
    ]);
    let st = run_target(&target);
    assert_eq!(
        st.signal(),
        Some(9),
        "the probe should have killed it: {st}"
    );
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

#[test]
fn probe_write_user_is_refused_without_the_flag_and_by_lockdown_with_it() {
    let obj = build_source("sec_writer", WRITER);
    let o = obj.to_str().unwrap();
    let out = ebpfctl(&["run", o, "--duration", "2"]);
    assert_one_line_error(
        &out,
        "program poke_user (tracepoint/syscalls/sys_enter_getppid) calls bpf_probe_write_user (writes into the memory of the traced process)",
    );
    // Allowed by us; the kernel refuses it under lockdown (integrity on this machine, none in
    // the Debian guests of scripts/vm.sh), and the message says why.
    let feature = ebpfctl(&["feature", "-o", "json"]);
    let feature: serde_json::Value = serde_json::from_slice(&feature.stdout).unwrap();
    let mode = feature["lockdown"]["detail"]
        .as_str()
        .and_then(|d| d.strip_prefix("mode "))
        .unwrap_or_else(|| panic!("feature's lockdown check: {}", feature["lockdown"]))
        .to_string();
    let out = ebpfctl(&["run", o, "--allow-unsafe-helpers", "--duration", "2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if mode == "none" {
        assert!(
            out.status.success(),
            "lockdown is off, so it should run: {err}"
        );
        assert!(err.contains("1 program(s) attached (poke_user)"), "{err}");
        return;
    }
    assert!(!out.status.success(), "lockdown {mode}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.starts_with("ebpfctl: error:"), "{err}");
    assert!(
        err.contains("bpf_probe_write_user") && err.contains("lockdown"),
        "the kernel's refusal should name lockdown: {err}"
    );
}

#[test]
fn calls_in_subprograms_callbacks_and_kfuncs_are_found() {
    let obj = build_source("sec_hidden", HIDDEN);
    let o = obj.to_str().unwrap();
    let out = ebpfctl(&["inspect", o, "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut calls: Vec<(String, String, String)> = v["unsafe_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["program"].as_str().unwrap().to_string(),
                c["function"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    calls.sort();
    let want = [
        ("via_callback", "bpf_send_signal_thread", "helper"),
        ("via_kfunc", "bpf_sock_destroy", "kfunc"),
        ("via_subprograms", "bpf_override_return", "helper"),
        ("via_subprograms", "bpf_send_signal", "helper"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(calls, want);
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .filter(|p| p.contains("--allow-unsafe-helpers"))
        .collect();
    assert_eq!(problems.len(), 4, "{problems:?}");
    // The human view lists them among the problems too.
    let human = String::from_utf8_lossy(&ebpfctl(&["inspect", o]).stdout).into_owned();
    assert!(
        human.contains("program via_kfunc (iter/tcp) calls bpf_sock_destroy"),
        "{human}"
    );

    // `run` names every program and helper on one line.
    let out = ebpfctl(&["run", o, "--duration", "1"]);
    assert_one_line_error(
        &out,
        "program via_subprograms (tracepoint/syscalls/sys_enter_getppid) calls bpf_override_return (makes a kernel function return an error it did not produce) and bpf_send_signal (",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for f in [
        "bpf_override_return",
        "bpf_send_signal_thread",
        "bpf_sock_destroy",
    ] {
        assert!(err.contains(f), "{f} missing: {err}");
    }
    assert!(!err.contains("harmless"), "{err}");

    // Our own probes call none of them.
    for name in ["exec_print", "syscall_counter", "sleep_latency", "signals"] {
        let v: serde_json::Value = serde_json::from_slice(
            &ebpfctl(&["inspect", example(name).to_str().unwrap(), "-o", "json"]).stdout,
        )
        .unwrap();
        assert_eq!(v["unsafe_calls"], serde_json::json!([]), "{name}");
    }
}
