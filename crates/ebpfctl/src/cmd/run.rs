//! `ebpfctl run OBJECT`: load any compiled BPF object and turn its maps into output.
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ebpfctl_core::convention::Keyword;
use ebpfctl_core::load::attach::AttachOptions;
use ebpfctl_core::load::LoadOptions;
use ebpfctl_core::load::Loaded;
use ebpfctl_core::object::{params, ObjectSpec};
use ebpfctl_core::plan::PlanOptions;
use ebpfctl_core::run::{BeforeAttach, Output, RunOptions};
use ebpfctl_tools::common::cgroup_filter::KernelFilter;

use super::flags::Output as Format;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
sudo ebpfctl run probe.bpf.o\n  \
sudo ebpfctl run probe.bpf.o -o json --duration 30s --param target_uid=1000\n  \
sudo ebpfctl run probe.bpf.o -o none --metrics-addr 127.0.0.1:19435 --interval 500ms\n  \
sudo ebpfctl run 127.0.0.1:5000/probes/execs:v1\n  \
ebpfctl run probe.bpf.o --list-params")]
pub struct Args {
    /// The compiled BPF object (.o), or a probe in a registry (host/repo:tag).
    object: PathBuf,
    /// How to reach the registry when OBJECT is a reference, and the store.
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    /// Output on stdout [default: table on a terminal, json otherwise].
    #[arg(short, long, value_parser = super::flags::outputs(&[Format::Json, Format::Table, Format::None, Format::Folded]))]
    output: Option<Format>,
    /// Set a `const volatile` global before load (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// List the object's parameters with types and defaults, then exit.
    #[arg(long)]
    list_params: bool,
    /// Serve Prometheus metrics here [default: 127.0.0.1:19435 when a map has a metric keyword].
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Serve no metrics.
    #[arg(long, conflicts_with = "metrics_addr")]
    no_metrics: bool,
    /// Snapshot / redraw period for key/value maps (at least 10ms).
    #[arg(long, default_value = "1s", value_parser = super::flags::duration)]
    interval: Duration,
    /// Stop after this long (default: until Ctrl-C / SIGTERM).
    #[arg(long, value_parser = super::flags::duration)]
    duration: Option<Duration>,
    /// Network interface for xdp, tc, tcx and socket programs.
    #[arg(long)]
    iface: Option<String>,
    /// cgroup directory for cgroup programs.
    #[arg(long)]
    cgroup: Option<PathBuf>,
    /// Sampling frequency for perf_event programs, per CPU.
    #[arg(long, default_value_t = 99)]
    perf_freq: u64,
    /// Attach tc programs as clsact filters even where the kernel has tcx (for tests of the
    /// older-kernel path).
    #[arg(long, hide = true)]
    force_legacy_tc: bool,
    /// Fail when any program cannot load or attach (default: report it and run the rest).
    #[arg(long)]
    strict: bool,
    /// Load only the programs whose name or section matches GLOB (repeatable); with two
    /// programs of one hook named, both run.
    #[arg(long = "program", value_name = "GLOB")]
    programs: Vec<String>,
    /// Do not load the programs whose name or section matches GLOB (repeatable).
    #[arg(long = "skip", value_name = "GLOB")]
    skip: Vec<String>,
    /// The binary for uprobe/FUNCTION and usdt/PROVIDER:NAME sections (sections that name
    /// no binary).
    #[arg(long, value_name = "PATH")]
    target: Option<PathBuf>,
    /// Trace only this process with uprobes and USDT probes (its executable is the target
    /// when --target is not given).
    #[arg(long)]
    pid: Option<i32>,
    /// Treat every map without a keyword as `print`: key/value maps snapshotted each
    /// interval, ring buffers and perf arrays printed per event (raw bytes without a BTF type),
    /// libbpf-tools `slots[]` histograms as histograms.
    #[arg(long)]
    all_maps: bool,
    /// Member observed by `hist` on ring buffers [default: first `duration` member, else
    /// `value`, else `le`].
    #[arg(long)]
    hist_key: Option<String>,
    /// Bucket upper bounds for `hist` on ring buffers, ascending, e.g. 1,5,10,50
    /// [default: doubling; bumblebee's 0,10,20,50,...,5000 for a member `le`].
    #[arg(long, value_name = "N,N,...", value_parser = parse_buckets)]
    buckets: Option<Buckets>,
    /// Slot width of slot-keyed `hist` maps [default: log2 slots].
    #[arg(long)]
    hist_linear_step: Option<f64>,
    /// Size in bytes of ring buffers declared with max_entries 0.
    #[arg(long)]
    ringbuf_size: Option<u32>,
    /// Load an object that calls helpers which change the traced system (bpf_send_signal,
    /// bpf_probe_write_user, bpf_override_return, ...: docs/security.md).
    #[arg(long)]
    allow_unsafe_helpers: bool,
    /// Show libbpf's messages.
    #[arg(short, long)]
    verbose: bool,
    /// After every `ebpfctl_cgroup_id` member, its container (runtime, id, name; pod,
    /// namespace); tables show the container's name in that column. See docs/containers.md.
    #[arg(long)]
    containers: bool,
    /// Only events of these containers, in the kernel: the object must declare
    /// `EBPFCTL_CGROUP_FILTER` and test `ebpfctl_cgroup_passes()` (include/ebpfctl.h).
    #[command(flatten)]
    filter: super::containers::FilterArgs,
}

/// The container resolver behind `--containers`, for the decoder.
struct Names(std::sync::Mutex<ebpfctl_container::resolver::View>);

impl ebpfctl_core::decode::ContainerNames for Names {
    fn lookup(&self, id: u64, found: &mut dyn FnMut(&[u8], &str)) {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = v.get(id) {
            found(&e.json, e.container.display_name());
        }
    }
}

/// `--buckets` values (a newtype: clap would split a Vec<f64> into repeated flags).
#[derive(Clone, Debug)]
pub struct Buckets(Vec<f64>);

fn parse_buckets(s: &str) -> Result<Buckets, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let x: f64 = part
            .trim()
            .parse()
            .map_err(|_| format!("{part:?} is not a number (expected N,N,... like 1,5,10)"))?;
        if !x.is_finite() {
            return Err(format!("{part:?}: bucket bounds must be finite"));
        }
        if out.last().is_some_and(|&l: &f64| x <= l) {
            return Err(format!(
                "bounds must ascend: {x} after {}",
                out.last().unwrap()
            ));
        }
        out.push(x);
    }
    Ok(Buckets(out))
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))
}

/// The shortest `--interval`: each tick reads every key/value map and redraws, and a zero
/// period turned the loop into a busy spin.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Flag values that parse but make no sense, refused before anything is pulled or loaded.
fn check_flags(a: &Args) -> anyhow::Result<()> {
    if a.interval < MIN_INTERVAL {
        anyhow::bail!(
            "--interval {:?} is too short: it must be at least 10ms (the period of map snapshots and table redraws)",
            a.interval
        );
    }
    if a.duration.is_some_and(|d| d.is_zero()) {
        anyhow::bail!("--duration 0 would stop at once: give a positive duration like 10s, or leave it out to run until Ctrl-C");
    }
    if let Some(pid) = a.pid {
        if pid <= 0 || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            anyhow::bail!("--pid {pid}: no such process");
        }
    }
    if let Some(t) = &a.target {
        if !t.is_file() {
            anyhow::bail!(
                "--target {}: not a file; give the path of the binary (or library) to probe",
                t.display()
            );
        }
    }
    if let Some(step) = a.hist_linear_step {
        if !(step.is_finite() && step > 0.0) {
            anyhow::bail!("--hist-linear-step {step}: must be a positive number (the width of one histogram slot)");
        }
    }
    Ok(())
}

/// `--container/--pod/--namespace`: the verdicts of the object's filter map, written before
/// attach and kept up to date while the run lasts (dropping the slot stops the thread).
fn container_filter(
    spec: &ObjectSpec,
    selector: ebpfctl_container::Selector,
    resolver: std::sync::Arc<ebpfctl_container::Resolver>,
) -> anyhow::Result<(BeforeAttach, FilterSlot)> {
    use ebpfctl_tools::common::containers::FILTER_MAP;
    if !spec.maps.iter().any(|m| m.name == FILTER_MAP) {
        anyhow::bail!(
            "--container/--pod/--namespace: the object has no {FILTER_MAP} map; declare EBPFCTL_CGROUP_FILTER and return early unless ebpfctl_cgroup_passes(bpf_get_current_cgroup_id()) (include/ebpfctl.h, docs/containers.md)"
        );
    }
    let slot: FilterSlot = Default::default();
    let keep = std::sync::Arc::clone(&slot);
    let hook = move |l: &Loaded| -> Result<(), String> {
        let (f, shown) = KernelFilter::start(l, std::sync::Arc::clone(&resolver), selector.clone())
            .map_err(|e| e.to_string())?;
        if shown == 0 {
            eprintln!("ebpfctl: no running container matches the container filter yet (checked every second)");
        }
        *keep.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
        Ok(())
    };
    Ok((BeforeAttach(std::sync::Arc::new(hook)), slot))
}

type FilterSlot = std::sync::Arc<std::sync::Mutex<Option<KernelFilter>>>;

pub fn run(mut a: Args) -> anyhow::Result<i32> {
    check_flags(&a)?;
    let selector = a.filter.selector()?;
    a.object = super::registry::resolve(&a.object, &a.registry)?;
    let spec = ObjectSpec::from_path(&a.object).with_context(|| a.object.display().to_string())?;
    if a.list_params {
        print_params(&spec);
        return Ok(0);
    }
    for c in &spec.changes {
        if a.verbose {
            eprintln!("ebpfctl: {c}");
        }
    }
    let plan_opts = PlanOptions {
        all_maps: a.all_maps,
        hist_key: a.hist_key,
        buckets: a.buckets.map(|b| b.0),
    };
    // Metric keywords, or libbpf-tools histograms under --all-maps.
    let wants_metrics = spec.maps.iter().any(|m| {
        matches!(
            m.keyword,
            Some(Keyword::Counter | Keyword::Gauge | Keyword::Hist)
        )
    }) || (a.all_maps
        && ebpfctl_core::plan::plan(&spec, &plan_opts)
            .is_ok_and(|p| p.iter().any(|o| o.slots.is_some())));
    let metrics_addr = match (a.no_metrics, a.metrics_addr) {
        (true, _) => None,
        (false, Some(addr)) => Some(addr),
        (false, None) if wants_metrics => Some(ebpfctl_core::metrics::DEFAULT_ADDR.parse()?),
        _ => None,
    };
    let output = match a.output {
        Some(Format::Json) => Output::Json,
        // `log` is not among run's -o values.
        Some(Format::Table | Format::Log) => Output::Table,
        Some(Format::None) => Output::None,
        Some(Format::Folded) => Output::Folded,
        None if std::io::stdout().is_terminal() => Output::Table,
        None => Output::Json,
    };
    let mut opts = RunOptions {
        load: LoadOptions {
            params: a.params,
            attach: AttachOptions {
                iface: a.iface,
                cgroup: a.cgroup,
                perf_freq: a.perf_freq,
                force_legacy_tc: a.force_legacy_tc,
                target: a.target,
                pid: a.pid,
            },
            strict: a.strict,
            ringbuf_bytes: a.ringbuf_size,
            verbose: a.verbose,
            no_attach: false,
            allow_unsafe_helpers: a.allow_unsafe_helpers,
            programs: a.programs,
            skip: a.skip,
        },
        output,
        interval: a.interval,
        duration: a.duration,
        metrics_addr,
        metrics_addr_explicit: a.metrics_addr.is_some(),
        plan: plan_opts,
        hist_linear_step: a.hist_linear_step,
        before_attach: None,
        table_style: ebpfctl_core::print::table::TableStyle {
            redraw: std::io::stdout().is_terminal(),
            bold: super::flags::color(),
            tui: std::io::stdout().is_terminal(),
        },
    };
    let mut _filter_slot = None;
    if a.containers || !selector.is_empty() {
        let r = std::sync::Arc::new(
            ebpfctl_container::Resolver::start(Default::default()).context("containers")?,
        );
        r.scan();
        if !selector.is_empty() {
            let (hook, slot) = container_filter(&spec, selector, std::sync::Arc::clone(&r))?;
            opts.before_attach = Some(hook);
            _filter_slot = Some(slot);
        }
        if a.containers {
            ebpfctl_core::decode::set_container_names(Box::new(Names(std::sync::Mutex::new(
                r.view(),
            ))));
        }
    }
    let stdout = ebpfctl_core::print::writer::Sink::stdout();
    ebpfctl_core::run::run(&spec, &opts, stdout, &mut |msg: &str| {
        eprintln!("ebpfctl: {msg}")
    })
    .with_context(|| a.object.display().to_string())?;
    Ok(0)
}

fn print_params(spec: &ObjectSpec) {
    if spec.params.is_empty() {
        println!("no parameters (declare them as `const volatile` globals)");
        return;
    }
    let btf = spec.btf.as_ref().expect("parameters come from BTF");
    println!("{:<24} {:<20} DEFAULT", "NAME", "TYPE");
    for p in &spec.params {
        println!(
            "{:<24} {:<20} {}",
            p.name,
            p.type_name,
            params::render(btf, p, &p.default)
        );
    }
}
