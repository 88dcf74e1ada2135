//! `ebpfctl map`: BPF maps in the kernel.
use std::io::Write;

use clap::Subcommand;
use ebpfctl_core::inspect::map;

use super::prog::{done, done_lib, stdout, InspectArgs};

pub type Args = InspectArgs<Cmd>;

#[derive(Subcommand)]
pub enum Cmd {
    /// Every map (the default).
    #[command(alias = "ls")]
    List,
    /// One map by id.
    Show { id: u32 },
    /// Every entry, keys and values decoded through the map's BTF (hex without BTF), streamed.
    Dump { id: u32 },
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let f = args.out.output;
    let mut w = stdout();
    match args.cmd.unwrap_or(Cmd::List) {
        Cmd::List => {
            let maps = map::list()?;
            done(map::print_list(&mut w, &maps, f).and_then(|()| w.flush()))
        }
        Cmd::Show { id } => {
            let m = map::show(id)?;
            done(map::print_list(&mut w, std::slice::from_ref(&m), f).and_then(|()| w.flush()))
        }
        Cmd::Dump { id } => done_lib(map::dump(id, &mut w, f)),
    }
}
