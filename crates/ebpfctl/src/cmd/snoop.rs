//! What `execsnoop` and `opensnoop` share on the command line: the output format, the
//! stream options (`-d`, `--metrics-addr`; `--ring-kib` has a default per tool) and the
//! closing lines.
use std::io::IsTerminal;
use std::time::Duration;

use ebpfctl_tools::common::report::{parse_metrics_addr, StreamConfig, Summary};
use ebpfctl_tools::execsnoop::ring_bytes_from_kib;

pub use super::flags::Output as Format;

/// `-o` of the snoop tools: the table (default), JSON lines, or nothing (metrics only).
pub const FORMATS: &[Format] = &[Format::Table, Format::Json, Format::None];

/// Where the tool writes: stdout, or nowhere for `-o none` (JSON mode, so the metrics
/// count what `-o json` would print).
pub fn sink(output: Format) -> ebpfctl_core::print::writer::Sink {
    use ebpfctl_core::print::writer::Sink;
    match output {
        Format::None => Sink::discard(),
        _ => Sink::stdout(),
    }
}

/// `-d`: zero would stop at once.
fn positive(v: Option<Duration>) -> anyhow::Result<Option<Duration>> {
    match v {
        Some(d) if d.is_zero() => anyhow::bail!(
            "--duration 0 would stop at once: give a positive duration like 10s, or leave it out to run until Ctrl-C"
        ),
        v => Ok(v),
    }
}

/// `-d` and `--metrics-addr`, the same for both tools.
#[derive(clap::Args)]
pub struct StreamArgs {
    /// Stop after this long: 500ms, 10s, 1m, or bare seconds.
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = super::flags::duration)]
    duration: Option<Duration>,
    /// Serve Prometheus metrics (events, lost events) at this address, e.g. 127.0.0.1:19435.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<String>,
}

impl StreamArgs {
    /// The stream settings with the tool's `-o` and `--ring-kib`; bad values fail before
    /// anything is loaded.
    pub fn config(&self, output: Format, ring_kib: u32) -> anyhow::Result<StreamConfig> {
        let base = StreamConfig::with_ring(ring_bytes_from_kib(ring_kib)?);
        Ok(StreamConfig {
            wakeup_bytes: wakeup_bytes(base.wakeup_bytes)?,
            json: matches!(output, Format::Json | Format::None),
            live: output == Format::Table && std::io::stdout().is_terminal(),
            color: super::flags::color(),
            duration: positive(self.duration)?,
            metrics_addr: self
                .metrics_addr
                .as_deref()
                .map(parse_metrics_addr)
                .transpose()?,
            ..base
        })
    }
}

/// `EBPFCTL_WAKEUP_BYTES` (for benchmarks, bench/README.md "snoop"): the backlog at which
/// the probe wakes the reader instead of `default`; 0 wakes it as the kernel does by
/// default (whenever a record lands in a ring the reader had emptied).
fn wakeup_bytes(default: u32) -> anyhow::Result<u32> {
    match std::env::var("EBPFCTL_WAKEUP_BYTES") {
        Err(_) => Ok(default),
        Ok(v) => v.parse().map_err(|_| {
            anyhow::anyhow!(
                "EBPFCTL_WAKEUP_BYTES={v:?} is not a byte count: give a number like 65536, or 0 for a wake-up per record"
            )
        }),
    }
}

/// The closing lines on stderr; exit code 0.
pub fn finish(tool: &str, s: &Summary) -> anyhow::Result<i32> {
    let dropped = if s.dropped > 0 {
        format!(
            ", {} not written (stdout did not take them in time)",
            s.dropped
        )
    } else {
        String::new()
    };
    eprintln!(
        "{tool}: stopped; {} events, {} lost{dropped}",
        s.events, s.lost
    );
    if s.decode_errors > 0 {
        eprintln!("{tool}: {} records could not be decoded", s.decode_errors);
    }
    Ok(0)
}
