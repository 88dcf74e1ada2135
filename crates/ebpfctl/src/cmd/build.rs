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
    let out = a.output.unwrap_or_else(|| a.source.with_extension("o"));
    let include_dir = ebpfctl_build::default_include_dir()
        .and_then(|d| ebpfctl_build::prepare_include_dir(&d))
        .context("preparing headers (vmlinux.h, libbpf, ebpfctl.h)")?;
    ebpfctl_build::Compile {
        src: a.source.clone(),
        out: out.clone(),
        include_dir,
        extra_includes: a.includes,
        cflags: a.cflags,
    }
    .run()?;
    eprintln!("ebpfctl: built {}", out.display());
    Ok(0)
}
