//! What `execsnoop` and `opensnoop` share on the command line: the output format, the
//! stream options (`-d`, `--metrics-addr`; `--ring-kib` has a default per tool) and the
//! closing lines.
use std::time::Duration;

use ebpfctl_tools::common::report::{parse_metrics_addr, StreamConfig, Summary};
use ebpfctl_tools::execsnoop::ring_bytes_from_kib;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// `-d SECONDS` as a duration; rejects negative, zero and non-finite values.
fn seconds(v: Option<f64>) -> anyhow::Result<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => anyhow::bail!("--duration {s}: expected a positive number of seconds"),
    }
}

/// `-d` and `--metrics-addr`, the same for both tools.
#[derive(clap::Args)]
pub struct StreamArgs {
    /// Stop after this many seconds.
    #[arg(short = 'd', long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Serve Prometheus metrics (events, lost events) at this address, e.g. 127.0.0.1:19435.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<String>,
}

impl StreamArgs {
    /// The stream settings with the tool's `-o` and `--ring-kib`; bad values fail before
    /// anything is loaded.
    pub fn config(&self, output: Format, ring_kib: u32) -> anyhow::Result<StreamConfig> {
        Ok(StreamConfig {
            json: output == Format::Json,
            duration: seconds(self.duration)?,
            metrics_addr: self
                .metrics_addr
                .as_deref()
                .map(parse_metrics_addr)
                .transpose()?,
            ..StreamConfig::with_ring(ring_bytes_from_kib(ring_kib)?)
        })
    }
}

/// The closing lines on stderr; exit code 0.
pub fn finish(tool: &str, s: &Summary) -> anyhow::Result<i32> {
    eprintln!("{tool}: stopped; {} events, {} lost", s.events, s.lost);
    if s.decode_errors > 0 {
        eprintln!("{tool}: {} records could not be decoded", s.decode_errors);
    }
    Ok(0)
}
