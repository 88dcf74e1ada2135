//! `ebpfctl feature`: what this kernel supports for BPF, each with its consequence.
use std::io::Write;

use clap::Args as ClapArgs;
use ebpfctl_core::inspect::feature;

use super::prog::{done, stdout, Output};

#[derive(ClapArgs)]
#[command(after_help = "Examples:\n  \
ebpfctl feature\n  \
ebpfctl feature -o json")]
pub struct Args {
    #[command(flatten)]
    out: Output,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let f = feature::probe();
    let mut w = stdout();
    done(feature::print_features(&mut w, &f, args.out.output).and_then(|()| w.flush()))
}
