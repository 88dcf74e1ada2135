//! `ebpfctl top`: live per-program BPF run time (turns BPF statistics on while running).
use std::time::Duration;

use clap::Args as ClapArgs;
use ebpfctl_core::inspect::top::{self, Filter};
use ebpfctl_core::signals;

use ebpfctl_core::print::writer::Sink;

use super::prog::done_lib;

#[derive(ClapArgs)]
pub struct Args {
    /// Print one JSON line per interval instead of the live view.
    #[arg(long)]
    json: bool,
    /// Seconds between samples.
    #[arg(long, default_value = "1")]
    interval: f64,
    /// Stop after this many samples (0: until Ctrl-C).
    #[arg(long, default_value = "0")]
    count: u64,
    /// Only these program ids (repeatable).
    #[arg(long = "id")]
    ids: Vec<u32>,
    /// Only programs whose name contains this.
    #[arg(long)]
    name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if !(args.interval.is_finite() && args.interval >= 0.05) {
        anyhow::bail!("--interval must be at least 0.05 seconds");
    }
    let stop = signals::stop_flag();
    let filter = Filter {
        ids: args.ids,
        name: args.name,
    };
    let interval = Duration::from_secs_f64(args.interval);
    let notify = &mut |msg: &str| eprintln!("ebpfctl: top: {msg}");
    let out = Sink::stdout();
    if args.json {
        done_lib(top::run_json(
            out, filter, interval, args.count, &stop, notify,
        ))
    } else {
        done_lib(top::run_tui(
            out, filter, interval, args.count, &stop, notify,
        ))
    }
}
