//! `ebpfctl btf`: list kernel BTF objects; dump the kernel's, a file's or a loaded object's types.
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use ebpfctl_core::inspect::btf::{self, BtfTarget};

use super::prog::{done, done_lib, stdout, InspectArgs};

pub type Args = InspectArgs<Cmd>;

#[derive(Subcommand)]
pub enum Cmd {
    /// Every BTF object loaded in the kernel (the default).
    #[command(alias = "ls")]
    List,
    /// Every type of a BTF blob, as C (a `vmlinux.h` for CO-RE probes) or as raw records.
    Dump {
        #[command(subcommand)]
        source: Source,
        /// c: a compilable header (libbpf's dumper); raw: one line (or JSON record) per type.
        #[arg(long, value_enum, default_value = "raw", global = true)]
        format: DumpFormat,
        /// Write to this file instead of stdout.
        #[arg(long = "out", global = true)]
        out_file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Clone)]
pub enum Source {
    /// The running kernel's BTF (/sys/kernel/btf/vmlinux).
    Vmlinux,
    /// A raw BTF file or a BPF object (its .BTF section).
    File { path: PathBuf },
    /// A BTF object loaded in the kernel, by id (`ebpfctl btf list`).
    Id { id: u32 },
}

#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    C,
    Raw,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let f = args.out.output;
    match args.cmd.unwrap_or(Cmd::List) {
        Cmd::List => {
            let objs = btf::list()?;
            let mut w = stdout();
            done(btf::print_list(&mut w, &objs, f).and_then(|()| w.flush()))
        }
        Cmd::Dump {
            source,
            format,
            out_file,
        } => {
            let target = match source {
                Source::Vmlinux => BtfTarget::Vmlinux,
                Source::File { path } => BtfTarget::File(path),
                Source::Id { id } => BtfTarget::Id(id),
            };
            if format == DumpFormat::C && f == ebpfctl_core::inspect::print::Format::Json {
                anyhow::bail!("-o json applies to --format raw; --format c writes a C header");
            }
            // Parse first, so a bad source leaves no half-written --out file behind. Raw
            // records of malformed BTF are shown as they are, with what is wrong.
            let parsed = match format {
                DumpFormat::Raw => {
                    let (b, problem) = btf::load_records(&target)?;
                    if let Some(p) = problem {
                        eprintln!("ebpfctl: warning: {p}; showing the records as they are");
                    }
                    Some(b)
                }
                DumpFormat::C => None,
            };
            let mut w: Box<dyn Write> = match &out_file {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(stdout()),
            };
            let res = match &parsed {
                Some(b) => btf::dump_raw(b, &mut w, f),
                None => btf::dump_c(&target, &mut w).and_then(|()| {
                    w.flush()
                        .map_err(ebpfctl_core::inspect::InspectError::Output)
                }),
            };
            if res.is_err() {
                if let Some(p) = &out_file {
                    let _ = std::fs::remove_file(p);
                }
            }
            done_lib(res)
        }
    }
}
