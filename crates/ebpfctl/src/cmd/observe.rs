//! `ebpfctl observe`: HTTP requests of Go programs (net/http), client and server, with
//! uprobes. The work is in `ebpfctl_tools::observe`; this file only maps flags.
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ebpfctl_core::print::writer::Sink;
use ebpfctl_tools::common::containers::Show;
use ebpfctl_tools::observe::graph::GraphFormat;
use ebpfctl_tools::observe::output::Format;
use ebpfctl_tools::observe::run::{
    paths_in_containers, resolve_targets, run as run_observe, RunOptions,
};

use super::containers::ContainerArgs;
use super::flags::Output;

#[derive(Clone, Copy, clap::ValueEnum)]
enum GraphArg {
    Dot,
    Mermaid,
    Json,
}

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  ebpfctl observe ./mybinary\n  ebpfctl observe -p 1234 -p 5678 --duration 1m\n  ebpfctl observe ./svc -o json --metrics-addr 127.0.0.1:19435 --otlp-endpoint http://127.0.0.1:4318 --graph dot"
)]
pub struct Args {
    /// Go executables: every process running them, now and later.
    #[arg(value_name = "EXECUTABLE")]
    paths: Vec<PathBuf>,
    /// Only these processes (repeatable); their executables are observed.
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pids: Vec<u32>,
    /// Output per request: one line, one JSON object (fields in docs/observe.md), or nothing
    /// (with --metrics-addr, --otlp-endpoint or --graph).
    #[arg(short = 'o', long = "output", default_value = "log",
          value_parser = super::flags::outputs(&[Output::Log, Output::Json, Output::None]))]
    output: Output,
    /// Serve Prometheus metrics (http_client/server_request_duration_seconds) on this address.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Export spans with OTLP/HTTP (protobuf) to this collector, e.g. http://127.0.0.1:4318
    /// [default: $OTEL_EXPORTER_OTLP_ENDPOINT when set].
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Print the service graph at exit.
    #[arg(long, value_enum)]
    graph: Option<GraphArg>,
    /// Stop after this long: 500ms, 10s, 1m, or bare seconds.
    #[arg(long, value_name = "DURATION", value_parser = super::flags::duration)]
    duration: Option<Duration>,
    /// Stop after this many requests.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// How often to collect events, 1ms-10s (probes never wake ebpfctl per event).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = super::flags::duration)]
    poll_interval: Duration,
    /// The same in milliseconds (older spelling).
    #[arg(long, value_name = "MS", hide = true, conflicts_with = "poll_interval")]
    poll_ms: Option<u64>,
    /// Print what observe found in the executables (version, functions, RET sites, offsets) and exit.
    #[arg(long)]
    inspect: bool,
    /// With --container/--pod/--namespace, EXECUTABLE paths are inside those containers.
    #[command(flatten)]
    containers: ContainerArgs,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if args.paths.is_empty() && args.pids.is_empty() {
        anyhow::bail!("nothing to observe: give a Go executable path or --pid PID");
    }
    let containers = args.containers.options(Show::Auto)?;
    if args.inspect {
        let mut paths = args.paths.clone();
        if !containers.selector.is_empty() && !paths.is_empty() {
            let r = ebpfctl_container::Resolver::start(containers.resolver.clone())?;
            paths = paths_in_containers(&paths, &r, &containers.selector)?;
        }
        let targets = resolve_targets(&paths, &args.pids)?;
        for t in &targets {
            println!(
                "{}",
                serde_json::to_string_pretty(&ebpfctl_tools::observe::inspect_json(t))?
            );
        }
        return Ok(0);
    }
    let duration = match args.duration {
        Some(d) if d.is_zero() => anyhow::bail!(
            "--duration 0 would stop at once: give a positive duration like 10s, or leave it out to run until Ctrl-C"
        ),
        d => d,
    };
    let (flag, poll) = match args.poll_ms {
        Some(ms) => ("--poll-ms", Duration::from_millis(ms)),
        None => ("--poll-interval", args.poll_interval),
    };
    if !(Duration::from_millis(1)..=Duration::from_secs(10)).contains(&poll) {
        anyhow::bail!(
            "{flag} {poll:?}: must be between 1ms and 10s (the time between collections)"
        );
    }
    let opts = RunOptions {
        paths: args.paths,
        pids: args.pids,
        format: match args.output {
            Output::Json => Format::Json,
            Output::None => Format::None,
            // Only log, json and none are offered (the parser refuses the rest).
            Output::Log | Output::Table | Output::Folded => Format::Log,
        },
        metrics_addr: args.metrics_addr,
        // The OpenTelemetry SDKs' standard variable (a base URL; /v1/traces is appended).
        otlp_endpoint: args.otlp_endpoint.or_else(|| {
            std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .ok()
                .filter(|v| !v.trim().is_empty())
        }),
        graph: args.graph.map(|g| match g {
            GraphArg::Dot => GraphFormat::Dot,
            GraphArg::Mermaid => GraphFormat::Mermaid,
            GraphArg::Json => GraphFormat::Json,
        }),
        duration,
        count: args.count,
        poll_interval: poll,
        containers,
        live: matches!(args.output, Output::Log) && std::io::stdout().is_terminal(),
        color: super::flags::color(),
    };
    let stderr = std::io::stderr();
    run_observe(&opts, Sink::stdout(), &mut stderr.lock()).context("observe")?;
    Ok(0)
}
