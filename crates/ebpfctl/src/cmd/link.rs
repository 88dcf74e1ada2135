//! `ebpfctl link`: BPF links in the kernel (what each program is attached to).
use std::io::Write;

use clap::Subcommand;
use ebpfctl_core::inspect::link;

use super::prog::{done, stdout, InspectArgs};

pub type Args = InspectArgs<Cmd>;

#[derive(Subcommand)]
pub enum Cmd {
    /// Every link (the default).
    #[command(alias = "ls")]
    List,
    /// One link by id.
    Show { id: u32 },
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let f = args.out.output;
    let mut w = stdout();
    let links = match args.cmd.unwrap_or(Cmd::List) {
        Cmd::List => link::list()?,
        Cmd::Show { id } => vec![link::show(id)?],
    };
    done(link::print_list(&mut w, &links, f).and_then(|()| w.flush()))
}
