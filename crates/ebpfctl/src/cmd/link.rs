//! `ebpfctl link`: BPF links in the kernel (what each program is attached to).
use std::io::Write;

use clap::Subcommand;
use ebpfctl_core::inspect::{link, ObjKind};

use super::prog::{done, stdout, InspectArgs, Target};

pub type Args = InspectArgs<Cmd>;

#[derive(Subcommand)]
pub enum Cmd {
    /// Every link (the default).
    #[command(alias = "ls")]
    List,
    /// A link by id or pin: `show 3`, `show pinned /sys/fs/bpf/l`.
    Show {
        #[command(flatten)]
        target: Target,
    },
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let f = args.out.output;
    let mut w = stdout();
    let links = match args.cmd.unwrap_or(Cmd::List) {
        Cmd::List => link::list()?,
        Cmd::Show { target } => link::select(&target.selector(ObjKind::Link)?)?,
    };
    done(link::print_list(&mut w, &links, f).and_then(|()| w.flush()))
}
