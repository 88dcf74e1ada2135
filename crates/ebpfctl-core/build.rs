//! Builds the C shim that takes libbpf's log messages as bytes (csrc/libbpf_log.c).
use std::{env, path::PathBuf};

fn main() {
    let inc =
        PathBuf::from(env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports its include dir"));
    cc::Build::new()
        .file("csrc/libbpf_log.c")
        .include(&inc)
        .warnings(true)
        .compile("ebpfctl_libbpf_log");
    println!("cargo:rerun-if-changed=csrc/libbpf_log.c");
}
