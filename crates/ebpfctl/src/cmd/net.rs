//! `ebpfctl net`: what is attached to the network interfaces of this network namespace, and
//! removing the tc filters a killed ebpfctl left behind.
use std::io::Write;

use clap::Subcommand;
use ebpfctl_core::inspect::net;
use ebpfctl_core::load::cleanup;

use super::prog::{done, stdout, InspectArgs};

pub type Args = InspectArgs<Cmd>;

#[derive(Subcommand)]
pub enum Cmd {
    /// XDP programs, tcx links and tc filters on every interface (the default).
    #[command(alias = "ls")]
    List {
        /// Only this interface.
        #[arg(long)]
        iface: Option<String>,
    },
    /// Remove the tc filters ebpfctl added and left behind when it was killed (SIGKILL); the
    /// filters of a running ebpfctl and anyone else's are left alone.
    Detach {
        /// Only on this interface.
        #[arg(long)]
        iface: Option<String>,
        /// Say what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let f = args.out.output;
    let mut w = stdout();
    match args.cmd.unwrap_or(Cmd::List { iface: None }) {
        Cmd::List { iface } => {
            let entries = net::list(iface.as_deref())?;
            done(net::print_list(&mut w, &entries, f).and_then(|()| w.flush()))
        }
        Cmd::Detach { iface, dry_run } => {
            let c = cleanup::detach_stale(iface.as_deref(), dry_run)?;
            let verb = if dry_run { "would remove" } else { "removed" };
            let r = (|| {
                for e in &c.removed {
                    let t = e.tc.as_ref().expect("only tc filters are removed");
                    writeln!(
                        w,
                        "{verb} tc filter {} on {} {} (pref {} handle {:#x}, program {})",
                        t.name.as_deref().unwrap_or("?"),
                        e.iface,
                        e.hook,
                        t.pref,
                        t.handle,
                        e.prog_id.map_or("-".into(), |p| p.to_string())
                    )?;
                }
                for q in &c.qdiscs_removed {
                    writeln!(w, "removed the clsact qdisc ebpfctl had created on {q}")?;
                }
                if c.removed.is_empty() {
                    writeln!(w, "nothing left behind by ebpfctl")?;
                }
                w.flush()
            })();
            for e in &c.in_use {
                let t = e.tc.as_ref().expect("only tc filters are ours");
                let by: Vec<String> = e
                    .held_by
                    .iter()
                    .map(|h| format!("{}({})", h.comm, h.pid))
                    .collect();
                eprintln!(
                    "ebpfctl: kept tc filter {} on {} {}: in use by {} (removed when it exits)",
                    t.name.as_deref().unwrap_or("?"),
                    e.iface,
                    e.hook,
                    by.join(", ")
                );
            }
            done(r)
        }
    }
}
