//! Records the git commit the binary is built from, for `ebpfctl --version`.
//! `EBPFCTL_GIT_COMMIT` in the environment wins (builds from a tarball or an image
//! context without .git); outside git and without it, the commit is "unknown".
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(o.stdout).ok()?.trim().to_string();
    (o.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=EBPFCTL_GIT_COMMIT");
    let commit = std::env::var("EBPFCTL_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    // Rebuilt when HEAD moves: HEAD itself, the branch it points at, packed refs.
    if commit.is_some() {
        let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(r);
        }
        for w in watch {
            if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", &w]) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    println!(
        "cargo:rustc-env=EBPFCTL_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    // Cargo features of this crate (CARGO_FEATURE_*), for --version.
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(|f| f.to_lowercase()))
        .collect();
    features.sort();
    println!("cargo:rustc-env=EBPFCTL_FEATURES={}", features.join(","));
    // Relative relocations packed (DT_RELR, glibc 2.36+, binutils 2.38+). The dynamic loader
    // reads a PIE's whole relative relocation table at start; as .rela.dyn it is one 24-byte
    // entry per pointer in the image (4.2 MiB here, all of it resident in every process), as
    // .relr.dyn a bitmap of 29 KiB. Measured on execsnoop (debug build, bench/snoop/smaps.py):
    // peak RSS 23.0 MiB as a plain PIE, 20.7 with RELR, 19.3 linked position-dependent
    // (-no-pie). We keep the PIE: a root tool reading hostile input keeps its image at a
    // random address for the last 1.4 MiB.
    let var = |k| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // Function order (release builds, rust-lld: the default linker of x86_64-unknown-linux-gnu
    // since Rust 1.90). Each page fault on the binary maps a 64 KiB+ neighbourhood of it
    // (fault-around, large page-cache folios), so what start-up and the event loop cost is
    // how many neighbourhoods they touch. link-order.txt lists the ~650 functions execsnoop
    // and opensnoop call (bench/layout/order.py records them with uprobes); lld puts them
    // first in .text, together. Measured (bench/snoop/smaps.py, 3 rounds): resident text
    // 5.3 -> 0.8 MiB, VmHWM 10.4 -> 5.6 MiB (execsnoop), 10.4 -> 5.8 MiB (opensnoop). Only
    // placement changes; a stale list costs pages, never correctness (unknown names are
    // ignored). EBPFCTL_LINK_ORDER=0 turns it off (linkers without --symbol-ordering-file).
    println!("cargo:rerun-if-env-changed=EBPFCTL_LINK_ORDER");
    let order = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("link-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    if var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("EBPFCTL_LINK_ORDER") != "0"
        && order.exists()
    {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={},--no-warn-symbol-ordering",
            order.display()
        );
    }
}
