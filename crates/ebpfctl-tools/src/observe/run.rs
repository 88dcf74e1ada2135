//! The `observe` main loop: analyse targets, attach, consume events, fan them out to the
//! printer, metrics, OTLP and the graph; stop on a signal, a deadline or a request count.
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ebpfctl_core::consume::ConsumerBuilder;

use super::event::{decode_proc, realtime_offset_ns, Request};
use super::goerror::TypeNames;
use super::graph::{Graph, GraphFormat};
use super::metrics::Metrics;
use super::otlp::{OtlpExporter, ProcessIdentity};
use super::output::{write_request, Format, ServiceNames};
use super::probe::AttachMode;
use super::{analyse, pid_exe, ObserveError, Observer, ObserverConfig, Target};

/// What to observe and where results go.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub paths: Vec<PathBuf>,
    pub pids: Vec<u32>,
    pub format: Format,
    pub metrics_addr: Option<SocketAddr>,
    pub otlp_endpoint: Option<String>,
    pub graph: Option<GraphFormat>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    pub count: Option<u64>,
    /// How often user space collects events (the probes do not wake it per event).
    pub poll_interval: Duration,
}

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub requests: u64,
    pub lost: u64,
}

/// The path an executable is known by: `/proc/PID/exe` resolved, other paths made absolute.
fn executable_path(p: &std::path::Path) -> PathBuf {
    let under_proc = p.starts_with("/proc") && p.file_name().is_some_and(|n| n == "exe");
    let resolved = if under_proc {
        std::fs::read_link(p)
    } else {
        std::fs::canonicalize(p)
    };
    resolved.unwrap_or_else(|_| p.to_owned())
}

/// Resolves paths and PIDs into analysed targets (bad input fails here, before the kernel).
pub fn resolve_targets(paths: &[PathBuf], pids: &[u32]) -> Result<Vec<Target>, ObserveError> {
    let mut targets = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(ObserveError::Read {
                path: p.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        targets.push(analyse(p)?);
    }
    for &pid in pids {
        let exe = pid_exe(pid)?;
        let t = analyse(&exe)?;
        if !targets.iter().any(|x: &Target| x.file_id == t.file_id) {
            targets.push(t);
        }
    }
    if targets.is_empty() {
        return Err(ObserveError::NoTarget);
    }
    Ok(targets)
}

/// Runs until stopped; requests go to `out`, status lines to `diag`.
pub fn run(
    opts: &RunOptions,
    out: &mut dyn Write,
    diag: &mut dyn Write,
) -> Result<RunSummary, ObserveError> {
    let targets = resolve_targets(&opts.paths, &opts.pids)?;
    let stop = ebpfctl_core::signals::stop_flag();
    let mut metrics = Metrics::new();
    let metrics_server = match opts.metrics_addr {
        Some(a) => Some(ebpfctl_core::metrics::MetricsServer::start(
            a,
            metrics.registry.clone(),
        )?),
        None => None,
    };
    if let Some(s) = &metrics_server {
        let _ = writeln!(
            diag,
            "observe: metrics on http://{}/metrics",
            s.local_addr()
        );
    }
    let mut otlp = match &opts.otlp_endpoint {
        Some(e) => Some(OtlpExporter::new(e)?),
        None => None,
    };
    let cfg = ObserverConfig {
        pids: opts.pids.clone(),
        capture_headers: opts.otlp_endpoint.is_some() || opts.format == Format::Json,
        ..ObserverConfig::default()
    };
    let observer = Observer::start(targets, &cfg)?;
    for (t, n) in observer.attached() {
        let _ = writeln!(
            diag,
            "observe: {} uprobes on {} ({}, functions from {:?}, offsets from {:?}{}{})",
            n,
            t.binary.path.display(),
            t.binary.version_string,
            t.binary.symbols,
            t.offset_source,
            if t.binary.pie { ", PIE" } else { "" },
            match observer.mode() {
                AttachMode::Multi => ", uprobe-multi links",
                AttachMode::PerfEvent => ", perf-event uprobes",
            }
        );
    }
    let _ = writeln!(diag, "observe: ready");
    let _ = diag.flush();

    // Names of error types and the executable's path, per probe instance (events carry the
    // instance's index).
    let type_names: Vec<TypeNames> = observer
        .attached()
        .map(|(t, _)| TypeNames::new(&t.binary.path, t.binary.types.as_ref()))
        .collect();
    let exes: Vec<PathBuf> = observer
        .attached()
        .map(|(t, _)| executable_path(&t.binary.path))
        .collect();
    let rt_offset = realtime_offset_ns();
    let mut graph = Graph::default();
    let pending = std::cell::RefCell::new(Vec::<Request>::new());
    let names = std::cell::RefCell::new(ServiceNames::default());
    let mut builder = ConsumerBuilder::new();
    builder.ring_buffer(observer.events(), |data: &[u8]| {
        if let Some(mut r) = Request::decode(data, rt_offset) {
            if let Some(names) = type_names.get(r.instance as usize) {
                r.resolve_error(names);
            }
            pending.borrow_mut().push(r);
        } else if let Some((pid, env)) = decode_proc(data) {
            names.borrow_mut().learn(pid, env);
        }
    })?;
    let consumer = builder.build()?;
    let started = Instant::now();
    let mut lost_reported = 0u64;
    let mut fan = Fanout {
        out,
        format: opts.format,
        // Histograms only when something scrapes them.
        metrics: metrics_server.is_some().then_some(&mut metrics),
        otlp: otlp.as_mut(),
        exes: &exes,
        graph: opts.graph.is_some().then_some(&mut graph),
        count: opts.count,
        requests: 0,
        write_failed: false,
    };
    loop {
        consumer.poll(opts.poll_interval)?;
        for mut r in std::mem::take(&mut *pending.borrow_mut()) {
            let mut names = names.borrow_mut();
            r.service = names.name(r.pid, &r.comm);
            fan.handle(&r, names.identity(r.pid));
        }
        let _ = fan.out.flush();
        let lost_now = observer.lost();
        if lost_now > lost_reported {
            let _ = writeln!(
                diag,
                "observe: {} requests lost (ring buffer full; {lost_now} so far): lower the load or --poll-ms",
                lost_now - lost_reported
            );
            lost_reported = lost_now;
        }
        if let Some(m) = fan.metrics.as_deref_mut() {
            m.set_lost(lost_now);
        }
        if stop.load(Ordering::Relaxed)
            || fan.done()
            || opts.duration.is_some_and(|d| started.elapsed() >= d)
        {
            break;
        }
    }
    // What arrived since the last poll (e.g. right before Ctrl-C) is not dropped.
    consumer.drain()?;
    drop(consumer);
    for mut r in std::mem::take(&mut *pending.borrow_mut()) {
        let mut names = names.borrow_mut();
        r.service = names.name(r.pid, &r.comm);
        fan.handle(&r, names.identity(r.pid));
    }
    let requests = fan.requests;
    let lost = observer.lost();
    drop(observer);
    if let Some(o) = otlp {
        if o.dropped() > 0 {
            let _ = writeln!(
                diag,
                "observe: {} spans dropped (the OTLP collector did not keep up)",
                o.dropped()
            );
        }
        o.shutdown();
    }
    if let Some(f) = opts.graph {
        let _ = write!(out, "{}", graph.render(f));
    }
    let _ = out.flush();
    let _ = writeln!(diag, "observe: {requests} requests, {lost} lost events");
    Ok(RunSummary { requests, lost })
}

/// Where each request goes: the printer, metrics, OTLP and the graph; stops counting at
/// `count`.
struct Fanout<'a> {
    out: &'a mut dyn Write,
    format: Format,
    metrics: Option<&'a mut Metrics>,
    otlp: Option<&'a mut OtlpExporter>,
    /// The executable of each probe instance.
    exes: &'a [PathBuf],
    graph: Option<&'a mut Graph>,
    count: Option<u64>,
    requests: u64,
    write_failed: bool,
}

impl Fanout<'_> {
    fn handle(&mut self, r: &Request, who: &ProcessIdentity) {
        if self.count.is_some_and(|c| self.requests >= c) {
            return;
        }
        self.requests += 1;
        if !self.write_failed && write_request(self.out, self.format, r).is_err() {
            // Reader gone (e.g. `| head`): stop printing, and stop.
            self.write_failed = true;
        }
        if let Some(m) = self.metrics.as_deref_mut() {
            m.observe(r);
        }
        if let Some(o) = self.otlp.as_deref_mut() {
            let exe = self
                .exes
                .get(r.instance as usize)
                .map_or(std::path::Path::new(""), PathBuf::as_path);
            o.export(r, exe, who);
        }
        if let Some(g) = self.graph.as_deref_mut() {
            g.add(r);
        }
    }

    /// The request count is reached, or nobody reads the output any more.
    fn done(&self) -> bool {
        self.write_failed || self.count.is_some_and(|c| self.requests >= c)
    }
}
