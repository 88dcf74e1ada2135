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
    // A position-dependent executable. In a PIE the dynamic loader reads the whole relative
    // relocation table (.rela.dyn, one entry per pointer in the image) and writes every page
    // of .data.rel.ro and the GOT at start, all of it resident in each process; linked at a
    // fixed address there is no such table and those pages stay file pages, read in only
    // where used (debug build: -3.7 MiB of peak RSS for execsnoop and opensnoop; see
    // bench/README.md "snoop"). Shared libraries, stack, heap and mmaps stay randomised;
    // only the binary's own image is at a fixed address.
    let var = |k| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
