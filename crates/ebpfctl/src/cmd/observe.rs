//! `ebpfctl observe`: HTTP requests of Go programs (net/http), client and server, with
//! uprobes. The work is in `ebpfctl_tools::observe`; this file only maps flags.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ebpfctl_tools::common::containers::Show;
use ebpfctl_tools::observe::graph::GraphFormat;
use ebpfctl_tools::observe::output::Format;
use ebpfctl_tools::observe::run::{
    paths_in_containers, resolve_targets, run as run_observe, RunOptions,
};

use super::containers::ContainerArgs;

#[derive(Clone, Copy, clap::ValueEnum)]
enum OutputArg {
    /// One line per request.
    Log,
    /// One JSON object per line (fields in docs/observe.md).
    Json,
    /// Nothing per request (with --metrics-addr, --otlp-endpoint or --graph).
    None,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GraphArg {
    Dot,
    Mermaid,
    Json,
}

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  ebpfctl observe ./mybinary\n  ebpfctl observe --pid 1234 --pid 5678\n  ebpfctl observe ./svc -o json --metrics-addr 127.0.0.1:19435 --otlp-endpoint http://127.0.0.1:4318 --graph dot"
)]
pub struct Args {
    /// Go executables: every process running them, now and later.
    #[arg(value_name = "EXECUTABLE")]
    paths: Vec<PathBuf>,
    /// Only these processes (repeatable); their executables are observed.
    #[arg(long = "pid", value_name = "PID")]
    pids: Vec<u32>,
    /// Output per request.
    #[arg(short = 'o', long = "output", value_enum, default_value = "log")]
    output: OutputArg,
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
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Stop after this many requests.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// How often to collect events, in milliseconds, 1-10000 (probes never wake ebpfctl per event).
    #[arg(long, value_name = "MS", default_value_t = 100)]
    poll_ms: u64,
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
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(_) => anyhow::bail!("--duration must be a positive number of seconds"),
        None => None,
    };
    if !(1..=10_000).contains(&args.poll_ms) {
        anyhow::bail!(
            "--poll-ms {}: must be between 1 and 10000 (milliseconds between collections)",
            args.poll_ms
        );
    }
    let opts = RunOptions {
        paths: args.paths,
        pids: args.pids,
        format: match args.output {
            OutputArg::Log => Format::Log,
            OutputArg::Json => Format::Json,
            OutputArg::None => Format::None,
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
        poll_interval: Duration::from_millis(args.poll_ms),
        containers,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_observe(&opts, &mut stdout.lock(), &mut stderr.lock()).context("observe")?;
    Ok(0)
}
