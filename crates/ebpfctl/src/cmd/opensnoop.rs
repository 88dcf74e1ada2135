//! `ebpfctl opensnoop`: open, openat and openat2 calls with their results.
use ebpfctl_tools::common::containers::Show;
use ebpfctl_tools::common::users::parse_uid;
use ebpfctl_tools::opensnoop::{self, Config, Filters, TableStyle};

use super::containers::ContainerArgs;
use super::snoop::{self, Format};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
sudo ebpfctl opensnoop\n  \
sudo ebpfctl opensnoop -p 1234 -x -o json\n  \
sudo ebpfctl opensnoop -d 30s -n '^nginx' -e\n\n\
JSON fields: type, time, pid, tid, comm, uid, fd, errno, flags, mode, path, \
syscall, dfd. See docs/opensnoop.md.")]
pub struct Args {
    /// Output: a table, JSON lines, or nothing (with --metrics-addr).
    #[arg(short = 'o', long, value_parser = super::flags::outputs(snoop::FORMATS), default_value = "table")]
    output: Format,
    /// Only this process (thread group id); in the kernel.
    #[arg(short = 'p', long, value_name = "PID")]
    pid: Option<u32>,
    /// Only this thread; in the kernel.
    #[arg(short = 't', long, value_name = "TID")]
    tid: Option<u32>,
    /// Only this user (a uid or a user name); in the kernel.
    #[arg(short = 'u', long, value_name = "UID")]
    uid: Option<String>,
    /// Only commands whose name (comm) matches this regex.
    #[arg(short = 'n', long, value_name = "REGEX")]
    name: Option<String>,
    /// Only failed opens; in the kernel.
    #[arg(short = 'x', long)]
    failed: bool,
    /// Table: TID and FLAGS columns.
    #[arg(short = 'e', long)]
    extended: bool,
    /// Table: a TIME(s) column, seconds since tracing started.
    #[arg(short = 'T', long)]
    timestamp: bool,
    /// Table: a UID column.
    #[arg(short = 'U', long)]
    print_uid: bool,
    #[command(flatten)]
    stream: snoop::StreamArgs,
    #[command(flatten)]
    containers: ContainerArgs,
    /// Ring buffer size in KiB (a power of two); raise it if events are reported lost.
    /// 1024: an open storm at full speed (~1 M opens/s) lost up to 7 % with 512 (docs/opensnoop.md).
    #[arg(long, default_value_t = 1024, value_name = "KIB")]
    ring_kib: u32,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let cfg = Config {
        stream: args.stream.config(args.output, args.ring_kib)?,
        table: TableStyle {
            timestamp: args.timestamp,
            uid: args.print_uid,
            extended: args.extended,
            container: false,
        },
        filters: Filters {
            pid: args.pid,
            tid: args.tid,
            uid: args.uid.as_deref().map(parse_uid).transpose()?,
            failed_only: args.failed,
            name: args.name.as_deref().map(Filters::name_regex).transpose()?,
        },
        containers: args.containers.options(Show::Auto)?,
    };
    let stop = ebpfctl_core::signals::stop_flag();
    let s = opensnoop::run(&cfg, stop, snoop::sink(args.output))?;
    snoop::finish("opensnoop", &s)
}
