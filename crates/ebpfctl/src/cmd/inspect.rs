//! `ebpfctl inspect OBJECT.o`: one view of a BPF object file.
use std::io::Write;
use std::path::PathBuf;

use clap::Args as ClapArgs;
use ebpfctl_core::inspect::object;

use super::prog::{done, stdout, Output};

#[derive(ClapArgs)]
#[command(after_help = "Examples:\n  \
ebpfctl inspect probe.bpf.o\n  \
ebpfctl inspect probe.bpf.o -o json")]
pub struct Args {
    /// A BPF object compiled with `clang -target bpf -g` (or `ebpfctl build`).
    object: PathBuf,
    #[command(flatten)]
    out: Output,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let v = object::inspect(&args.object)?;
    let mut w = stdout();
    done(object::print_view(&mut w, &v, args.out.output).and_then(|()| w.flush()))
}
