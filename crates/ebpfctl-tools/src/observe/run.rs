//! The `observe` main loop: analyse targets, attach, consume events, fan them out to the
//! printer, metrics, OTLP and the graph; stop on a signal, a deadline or a request count.
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ebpfctl_core::consume::ConsumerBuilder;
use ebpfctl_core::print::writer::{Sink, Source, Writer};

use super::event::{decode_proc, realtime_offset_ns, Request};
use super::graph::{Graph, GraphFormat};
use super::metrics::Metrics;
use super::otlp::OtlpExporter;
use super::output::{write_request, Format, ServiceNames};
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
    /// Requests stdout did not take in time.
    pub dropped: u64,
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

/// Runs until stopped, the deadline, the request count or a closed `out`; requests go to
/// `out` (through core's writer thread: a stalled reader never holds the loop), status
/// lines to `diag`.
pub fn run(opts: &RunOptions, out: Sink, diag: &mut dyn Write) -> Result<RunSummary, ObserveError> {
    let targets = resolve_targets(&opts.paths, &opts.pids)?;
    let stop = ebpfctl_core::signals::stop_flag();
    let mut metrics = Metrics::new();
    // Nothing on stdout (`-o none` without a graph): a closed one does not end the run.
    let out = if opts.format == Format::None && opts.graph.is_none() {
        Sink::discard()
    } else {
        out
    };
    let mut out = Writer::new(out).with_stop(stop.clone());
    let src = out.source(metrics.output_dropped.clone());
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
    let otlp = match &opts.otlp_endpoint {
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
            "observe: {} uprobes on {} ({}, functions from {:?}, offsets from {:?}{})",
            n,
            t.binary.path.display(),
            t.binary.version_string,
            t.binary.symbols,
            t.offset_source,
            if t.binary.pie { ", PIE" } else { "" }
        );
    }
    let _ = writeln!(diag, "observe: ready");
    let _ = diag.flush();

    let rt_offset = realtime_offset_ns();
    let mut graph = Graph::default();
    let pending = std::cell::RefCell::new(Vec::<Request>::new());
    let names = std::cell::RefCell::new(ServiceNames::default());
    let mut builder = ConsumerBuilder::new();
    builder.ring_buffer(observer.events(), |data: &[u8]| {
        if let Some(r) = Request::decode(data, rt_offset) {
            pending.borrow_mut().push(r);
        } else if let Some((pid, env)) = decode_proc(data) {
            names.borrow_mut().learn(pid, env);
        }
    })?;
    let consumer = builder.build()?;
    let started = Instant::now();
    let mut lost_reported = 0u64;
    let mut fan = Fanout {
        out: &mut out,
        src,
        format: opts.format,
        // Histograms only when something scrapes them.
        metrics: metrics_server.is_some().then_some(&mut metrics),
        otlp: otlp.as_ref(),
        graph: opts.graph.is_some().then_some(&mut graph),
        count: opts.count,
        requests: 0,
    };
    loop {
        consumer.poll(opts.poll_interval)?;
        for mut r in std::mem::take(&mut *pending.borrow_mut()) {
            r.service = names.borrow_mut().name(r.pid, &r.comm);
            fan.handle(&r);
        }
        fan.out.flush();
        if let Some(d) = fan.out.notice() {
            let _ = writeln!(diag, "observe: {d}");
        }
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
        r.service = names.borrow_mut().name(r.pid, &r.comm);
        fan.handle(&r);
    }
    let requests = fan.requests;
    let lost = observer.lost();
    if let Some(f) = opts.graph {
        out.line(src, graph.render(f).as_bytes());
    }
    if let Some(d) = out.finish() {
        let _ = writeln!(diag, "observe: {d}");
    }
    let dropped = out.dropped();
    let not_written = if dropped > 0 {
        format!(", {dropped} not written (stdout did not take them in time)")
    } else {
        String::new()
    };
    let _ = writeln!(
        diag,
        "observe: {requests} requests, {lost} lost events{not_written}"
    );
    // Output first, then the slow part: detaching the uprobes, flushing spans.
    drop(observer);
    if let Some(o) = otlp {
        o.shutdown();
    }
    if let Some(e) = out.take_error() {
        return Err(ObserveError::Output(e));
    }
    Ok(RunSummary {
        requests,
        lost,
        dropped,
    })
}

/// Where each request goes: the printer, metrics, OTLP and the graph; stops counting at
/// `count`.
struct Fanout<'a> {
    out: &'a mut Writer,
    src: Source,
    format: Format,
    metrics: Option<&'a mut Metrics>,
    otlp: Option<&'a OtlpExporter>,
    graph: Option<&'a mut Graph>,
    count: Option<u64>,
    requests: u64,
}

impl Fanout<'_> {
    fn handle(&mut self, r: &Request) {
        if self.count.is_some_and(|c| self.requests >= c) {
            return;
        }
        self.requests += 1;
        if self.format != Format::None {
            // Into the writer's buffer: cannot fail.
            let _ = write_request(self.out.buf(), self.format, r);
            self.out.record(self.src);
        }
        if let Some(m) = self.metrics.as_deref_mut() {
            m.observe(r);
        }
        if let Some(o) = self.otlp {
            o.export(r);
        }
        if let Some(g) = self.graph.as_deref_mut() {
            g.add(r);
        }
    }

    /// The request count is reached, or nobody reads the output any more (e.g. `| head`).
    fn done(&self) -> bool {
        self.out.closed() || self.count.is_some_and(|c| self.requests >= c)
    }
}
