//! `ebpfctl top`: live per-program BPF run time (turns BPF statistics on while running).
use std::time::Duration;

use clap::Args as ClapArgs;
use ebpfctl_core::inspect::top::{self, Filter};
use ebpfctl_core::signals;

use ebpfctl_core::print::writer::Sink;

use super::flags::{outputs, Output};
use super::prog::done_lib;

#[derive(ClapArgs)]
#[command(after_help = "Examples:\n  \
sudo ebpfctl top\n  \
sudo ebpfctl top --interval 500ms --name xdp\n  \
sudo ebpfctl top -o json --interval 2s --count 5")]
pub struct Args {
    /// Output: the live view (a table), or one JSON line per interval.
    #[arg(short = 'o', long, value_parser = outputs(&[Output::Table, Output::Json]), default_value = "table")]
    output: Output,
    /// The same as `-o json` (older spelling).
    #[arg(long, hide = true, conflicts_with = "output")]
    json: bool,
    /// Time between samples (at least 50ms): 500ms, 2s, or bare seconds.
    #[arg(long, default_value = "1s", value_parser = super::flags::duration)]
    interval: Duration,
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
    if args.interval < Duration::from_millis(50) {
        anyhow::bail!(
            "--interval {:?} is too short: it must be at least 50ms (the sampling period)",
            args.interval
        );
    }
    let stop = signals::stop_flag();
    let filter = Filter {
        ids: args.ids,
        name: args.name,
    };
    let interval = args.interval;
    let notify = &mut |msg: &str| eprintln!("ebpfctl: top: {msg}");
    let out = Sink::stdout();
    if args.json || args.output == Output::Json {
        done_lib(top::run_json(
            out, filter, interval, args.count, &stop, notify,
        ))
    } else if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        let color = super::flags::color();
        done_lib(top::run_live(
            out, filter, interval, args.count, color, &stop, notify,
        ))
    } else {
        done_lib(top::run_tui(
            out, filter, interval, args.count, &stop, notify,
        ))
    }
}
