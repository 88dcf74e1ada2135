//! Builds the btf_dump shim and bundles libbpf's BPF-side headers plus `include/ebpfctl.h`.
use std::{env, fs, path::PathBuf};

fn main() {
    let inc =
        PathBuf::from(env::var("DEP_BPF_INCLUDE").expect("libbpf-sys exports its include dir"));
    cc::Build::new()
        .file("csrc/btfdump.c")
        .include(&inc)
        .warnings(true)
        .compile("ebpfctl_btfdump");
    println!("cargo:rerun-if-changed=csrc/btfdump.c");

    // Copy the headers a probe needs next to our own so `include_bytes!` can bundle them.
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("headers");
    fs::create_dir_all(out.join("bpf")).unwrap();
    for h in [
        "bpf_helpers.h",
        "bpf_helper_defs.h",
        "bpf_tracing.h",
        "bpf_core_read.h",
        "bpf_endian.h",
        "usdt.bpf.h",
    ] {
        fs::copy(inc.join("bpf").join(h), out.join("bpf").join(h)).unwrap();
    }
    for h in ["ebpfctl.h", "solo_types.h"] {
        let ours = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap())
            .join("../../include")
            .join(h);
        fs::copy(&ours, out.join(h)).unwrap();
        println!("cargo:rerun-if-changed={}", ours.display());
    }
}
