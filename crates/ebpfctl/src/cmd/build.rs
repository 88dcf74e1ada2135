//! `ebpfctl build PROBE.bpf.c`: compile a probe with this kernel's vmlinux.h and our headers.
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
ebpfctl build probe.bpf.c\n  \
ebpfctl build probe.bpf.c --out /tmp/probe.o -I include --cflag -DDEBUG")]
pub struct Args {
    /// The probe source (.bpf.c).
    source: PathBuf,
    /// The object to write [default: the source with .o instead of .c].
    #[arg(short = 'o', long = "out", visible_alias = "output", value_name = "FILE", value_parser = super::flags::out_file)]
    output: Option<PathBuf>,
    /// Target architecture [default: this machine's]: x86_64 (amd64), arm64 (aarch64),
    /// riscv64, s390x, ppc64le, arm. Sets __TARGET_ARCH_*; vmlinux.h stays this kernel's
    /// (see docs/oci.md, "Multi-architecture images", for what builds that way).
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    /// Extra include directory (repeatable).
    #[arg(short = 'I', long = "include")]
    includes: Vec<PathBuf>,
    /// Extra clang flag (repeatable), e.g. -DDEBUG.
    #[arg(long = "cflag", allow_hyphen_values = true)]
    cflags: Vec<String>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    if !a.source.is_file() {
        anyhow::bail!("{}: no such file", a.source.display());
    }
    // clang takes anything else (an object, a header) as a linker input and makes nothing.
    if a.source.extension().is_none_or(|e| e != "c") {
        anyhow::bail!(
            "{}: not a C source file (.c); `ebpfctl build` compiles a probe like probe.bpf.c",
            a.source.display()
        );
    }
    let out = a.output.unwrap_or_else(|| a.source.with_extension("o"));
    let include_dir = ebpfctl_build::default_include_dir()
        .and_then(|d| ebpfctl_build::prepare_include_dir(&d))
        .context("preparing headers (vmlinux.h, libbpf, ebpfctl.h)")?;
    if let Some(arch) = &a.arch {
        // Refused before clang runs, with the names that work.
        ebpfctl_build::target_arch_named(arch)?;
    }
    let compile = ebpfctl_build::Compile {
        src: a.source.clone(),
        out: out.clone(),
        include_dir,
        extra_includes: a.includes,
        cflags: a.cflags,
    };
    match &a.arch {
        Some(arch) => compile.run_for(arch)?,
        None => compile.run()?,
    }
    match &a.arch {
        Some(arch) => eprintln!("ebpfctl: built {} for {arch}", out.display()),
        None => eprintln!("ebpfctl: built {}", out.display()),
    }
    Ok(0)
}
