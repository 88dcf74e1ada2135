//! `ebpfctl execsnoop`: process execution as `started` / `exited` / `error` events.
use std::path::PathBuf;

use ebpfctl_tools::common::containers::Show;
use ebpfctl_tools::common::users::parse_uid;
use ebpfctl_tools::execsnoop::{self, Config, Filters, TableStyle};

use super::containers::ContainerArgs;
use super::snoop::{self, Format};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
sudo ebpfctl execsnoop\n  \
sudo ebpfctl execsnoop -o json -d 10s -u 1000\n  \
sudo ebpfctl execsnoop --ppid 1234 -x -T\n  \
sudo ebpfctl execsnoop -o none --metrics-addr 127.0.0.1:19435\n\n\
JSON events: started (exec or already running), exited (once per process), \
error (failed exec, error_code = -errno). See docs/execsnoop.md.")]
pub struct Args {
    /// Output: a table of execs, JSON lines of started / exited / error events, or nothing
    /// (with --metrics-addr).
    #[arg(short = 'o', long, value_parser = super::flags::outputs(snoop::FORMATS), default_value = "table")]
    output: Format,
    /// Only processes of this user (a uid or a user name); in the kernel.
    #[arg(short = 'u', long, value_name = "UID")]
    uid: Option<String>,
    /// Only commands whose name (comm) or executable file name matches this regex.
    #[arg(short = 'n', long, value_name = "REGEX")]
    name: Option<String>,
    /// Only commands with an argument (after argv[0]) containing this text.
    #[arg(short = 'l', long = "line", value_name = "ARG")]
    line: Option<String>,
    /// Only failed execs; in the kernel.
    #[arg(short = 'x', long)]
    fails: bool,
    /// Only this process (its execs and its exit); in user space.
    #[arg(short = 'p', long, value_name = "PID")]
    pid: Option<u32>,
    /// Only children of this parent process; in the kernel. (libbpf-tools' execsnoop spells
    /// this -p: here -p is a PID, as in every ebpfctl command.)
    #[arg(long, value_name = "PPID")]
    ppid: Option<u32>,
    /// Only processes in this cgroup v2 directory or below it; in the kernel.
    #[arg(long, value_name = "PATH")]
    cgroup: Option<PathBuf>,
    /// Table: a TIME column (local HH:MM:SS).
    #[arg(short = 'T', long)]
    time: bool,
    /// Table: a TIME(s) column, seconds since tracing started.
    #[arg(short = 't', long)]
    timestamp: bool,
    /// Table: a UID column.
    #[arg(short = 'U', long)]
    print_uid: bool,
    /// Table: arguments in double quotes.
    #[arg(short = 'q', long)]
    quote: bool,
    /// Arguments kept per exec (1-60).
    #[arg(long, default_value_t = execsnoop::DEFAULT_MAX_ARGS, value_name = "N")]
    max_args: u32,
    /// Bytes kept per argument (1-4095); longer ones are cut and flagged.
    #[arg(long, default_value_t = execsnoop::DEFAULT_ARG_LEN, value_name = "BYTES")]
    arg_len: u32,
    /// No `started` events for processes already running.
    #[arg(long)]
    no_snapshot: bool,
    #[command(flatten)]
    stream: snoop::StreamArgs,
    #[command(flatten)]
    containers: ContainerArgs,
    /// Ring buffer size in KiB (a power of two); raise it if events are reported lost.
    #[arg(long, default_value_t = 256, value_name = "KIB")]
    ring_kib: u32,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let mut cfg = Config {
        stream: args.stream.config(args.output, args.ring_kib)?,
        table: TableStyle {
            time: args.time,
            timestamp: args.timestamp,
            uid: args.print_uid,
            quote: args.quote,
            container: false,
        },
        filters: Filters {
            uid: args.uid.as_deref().map(parse_uid).transpose()?,
            pid: args.pid,
            ppid: args.ppid,
            cgroup: args.cgroup,
            failed_only: args.fails,
            name: args.name.as_deref().map(Filters::name_regex).transpose()?,
            line: args.line,
            ..Default::default()
        },
        max_args: args.max_args,
        arg_len: args.arg_len,
        snapshot: !args.no_snapshot,
        containers: args.containers.options(Show::Auto)?,
    };
    cfg.validate()?;
    let stop = ebpfctl_core::signals::stop_flag();
    let s = execsnoop::run(&cfg, stop, snoop::sink(args.output))?;
    snoop::finish("execsnoop", &s)
}
