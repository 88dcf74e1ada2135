//! `ebpfctl inspect OBJECT.o`: one view of a BPF object file.
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args as ClapArgs;
use ebpfctl_core::inspect::object;

use super::prog::{done, stdout, Output};

#[derive(ClapArgs)]
#[command(after_help = "Examples:\n  \
ebpfctl inspect probe.bpf.o\n  \
ebpfctl inspect probe.bpf.o -o json")]
pub struct Args {
    /// A BPF object compiled with `clang -target bpf -g` (or `ebpfctl build`), or a probe
    /// image: a name in the store, else pulled from its registry (host/repo:tag).
    object: PathBuf,
    #[command(flatten)]
    out: Output,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let path = super::registry::resolve(&args.object, &args.registry)?;
    let v = object::inspect(&path).with_context(|| args.object.display().to_string())?;
    let mut w = stdout();
    done(object::print_view(&mut w, &v, args.out.output).and_then(|()| w.flush()))
}
