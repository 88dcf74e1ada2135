//! `ebpfctl map`: BPF maps in the kernel.
use std::io::Write;

use clap::Subcommand;
use ebpfctl_core::inspect::{map, ObjKind};

use super::prog::{done, done_lib, one, stdout, InspectArgs, Target};

pub type Args = InspectArgs<Cmd>;

#[derive(Subcommand)]
pub enum Cmd {
    /// Every map (the default).
    #[command(alias = "ls")]
    List,
    /// Maps by id, name or pin: `show 7`, `show name counter_exec_calls`, `show pinned /sys/fs/bpf/m`.
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// Every entry, keys and values decoded through the map's BTF (hex without BTF), streamed
    /// (`dump 7`, `dump name NAME`, `dump pinned PATH`: one map).
    Dump {
        #[command(flatten)]
        target: Target,
    },
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let f = args.out.output;
    let mut w = stdout();
    match args.cmd.unwrap_or(Cmd::List) {
        Cmd::List => {
            let maps = map::list()?;
            done(map::print_list(&mut w, &maps, f).and_then(|()| w.flush()))
        }
        Cmd::Show { target } => {
            let maps = map::select(&target.selector(ObjKind::Map)?)?;
            done(map::print_list(&mut w, &maps, f).and_then(|()| w.flush()))
        }
        Cmd::Dump { target } => {
            let sel = target.selector(ObjKind::Map)?;
            let m = one(&sel, map::select(&sel)?, |m| m.id)?;
            done_lib(map::dump(m.id, &mut w, f))
        }
    }
}
