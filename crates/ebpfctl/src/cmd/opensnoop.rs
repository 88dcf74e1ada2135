//! `ebpfctl opensnoop`: open, openat and openat2 calls with their results.
use std::time::Duration;

use ebpfctl_tools::common::report::parse_metrics_addr;
use ebpfctl_tools::common::users::parse_uid;
use ebpfctl_tools::execsnoop::ring_bytes_from_kib;
use ebpfctl_tools::opensnoop::{self, Config, Filters, TableStyle};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args)]
#[command(
    after_help = "JSON fields: type, time, pid, tid, comm, uid, fd, errno, flags, mode, path, \
syscall, dfd. See docs/opensnoop.md."
)]
pub struct Args {
    /// Output: a table, or JSON lines.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
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
    /// Stop after this many seconds.
    #[arg(short = 'd', long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Serve Prometheus metrics (events, lost events) at this address, e.g. 127.0.0.1:9091.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<String>,
    /// Ring buffer size in KiB (a power of two); raise it if events are reported lost.
    #[arg(long, default_value_t = 512, value_name = "KIB")]
    ring_kib: u32,
}

/// `-d SECONDS` as a duration; rejects negative, zero and non-finite values.
pub fn seconds(v: Option<f64>) -> anyhow::Result<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => anyhow::bail!("--duration {s}: expected a positive number of seconds"),
    }
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let cfg = Config {
        json: args.output == Format::Json,
        table: TableStyle {
            timestamp: args.timestamp,
            uid: args.print_uid,
            extended: args.extended,
        },
        filters: Filters {
            pid: args.pid,
            tid: args.tid,
            uid: args.uid.as_deref().map(parse_uid).transpose()?,
            failed_only: args.failed,
            name: args.name.as_deref().map(Filters::name_regex).transpose()?,
        },
        duration: seconds(args.duration)?,
        metrics_addr: args
            .metrics_addr
            .as_deref()
            .map(parse_metrics_addr)
            .transpose()?,
        ring_bytes: ring_bytes_from_kib(args.ring_kib)?,
        ..Default::default()
    };
    let stop = ebpfctl_core::signals::stop_flag();
    let s = opensnoop::run(&cfg, stop, Box::new(std::io::stdout()))?;
    eprintln!("opensnoop: stopped; {} events, {} lost", s.events, s.lost);
    if s.decode_errors > 0 {
        eprintln!(
            "opensnoop: {} records could not be decoded",
            s.decode_errors
        );
    }
    Ok(0)
}
