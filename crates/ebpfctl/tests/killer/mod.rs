//! A probe of ours that kills a process of ours with bpf_send_signal, for the tests of
//! `--allow-unsafe-helpers` (security.rs, and oci.rs for a probe pulled from a registry).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// SIGKILLs the process that calls getppid when its command name is `target_comm`.
pub const KILLER: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile char target_comm[16] = "";

SEC("tracepoint/syscalls/sys_enter_getppid")
int kill_target(void *ctx)
{
	char c[16];
	bpf_get_current_comm(c, sizeof(c));
	for (int i = 0; i < 16; i++) {
		if (c[i] != target_comm[i])
			return 0;
		if (!c[i])
			break;
	}
	bpf_send_signal(9);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

pub fn killer() -> PathBuf {
    build_source("sec_killer", KILLER)
}

/// A copy of the example target under `name` (its command name), for the killer to pick.
pub fn target_named(name: &str) -> PathBuf {
    let path = tmp().join("bin").join(name);
    if !path.exists() {
        copy_exe(&target_dir().join("ebpfctl-example-target"), &path);
    }
    path
}

/// Runs `target getppid 1` and returns how it ended (within 10 s).
pub fn run_target(path: &PathBuf) -> std::process::ExitStatus {
    let mut child = Command::new(path)
        .args(["getppid", "1"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("target did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
