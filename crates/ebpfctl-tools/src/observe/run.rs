//! The `observe` main loop: analyse targets, attach, consume events, fan them out to the
//! printer, metrics, OTLP and the graph; stop on a signal, a deadline or a request count.
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use ebpfctl_container::select::Verdict;
use ebpfctl_container::{Resolver, Selector};
use ebpfctl_core::consume::ConsumerBuilder;
use ebpfctl_core::print::writer::{Sink, Source, Writer};

use crate::common::containers::{ContainerOptions, Containers};

use super::event::{decode_proc, realtime_offset_ns, Request};
use super::goerror::TypeNames;
use super::graph::{Graph, GraphFormat};
use super::metrics::Metrics;
use super::otlp::{OtlpExporter, ProcessIdentity};
use super::output::{live_event, live_spec, write_request, Format, ServiceNames};
use super::probe::AttachMode;
use super::{analyse, pid_exe, ObserveError, Observer, ObserverConfig, Target};
use crate::common::live::Live;

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
    /// Containers shown, filtered, labelled; with a filter, `paths` are inside the
    /// chosen containers.
    pub containers: ContainerOptions,
    /// `Format::Log` as a live view (stdout is a terminal; feature `tui`).
    pub live: bool,
    /// Bold and reverse video in the live view (`--color`, `NO_COLOR`).
    pub color: bool,
}

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub requests: u64,
    pub lost: u64,
    /// Requests stdout did not take in time.
    pub dropped: u64,
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

/// Paths inside containers (`--container NAME /app/server`) as host paths through a
/// process of each chosen container: `/proc/PID/root/app/server`.
pub fn paths_in_containers(
    paths: &[PathBuf],
    resolver: &Resolver,
    selector: &Selector,
) -> Result<Vec<PathBuf>, ObserveError> {
    let chosen: Vec<_> = resolver
        .scan()
        .into_iter()
        .filter(|(_, e)| selector.verdict(Some(&e.container)) == Verdict::Yes)
        .collect();
    if chosen.is_empty() {
        return Err(ObserveError::Containers(
            "no running container matches --container/--pod/--namespace (see `podman ps`, `ctr -n NS containers ls`, `crictl ps`)".into(),
        ));
    }
    let fs = resolver.cgroupfs();
    let mut out = Vec::new();
    for p in paths {
        let rel = p.strip_prefix("/").map_err(|_| {
            ObserveError::Containers(format!(
                "{}: with --container, give the executable's absolute path inside the container",
                p.display()
            ))
        })?;
        let mut found = false;
        for (_, e) in &chosen {
            // A process of the container: its own cgroup or one below it.
            let mut dirs = vec![e.cgroup.clone()];
            let mut pid = None;
            while let Some(d) = dirs.pop() {
                if let Some(p) = fs.procs(&d).into_iter().next() {
                    pid = Some(p);
                    break;
                }
                if let Ok(rd) = std::fs::read_dir(fs.dir_of(&d)) {
                    for ent in rd.flatten() {
                        if ent.file_type().is_ok_and(|t| t.is_dir()) {
                            dirs.push(format!("{d}/{}", ent.file_name().to_string_lossy()));
                        }
                    }
                }
            }
            let Some(pid) = pid else { continue };
            let host = PathBuf::from(format!("/proc/{pid}/root")).join(rel);
            if host.exists() {
                out.push(host);
                found = true;
            }
        }
        if !found {
            return Err(ObserveError::Containers(format!(
                "{}: not found in the chosen containers ({})",
                p.display(),
                chosen
                    .iter()
                    .map(|(_, e)| e.container.display_name().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(out)
}

/// What observe knows of a pid: its cgroup id and its pid in its own namespace.
#[derive(Clone, Copy)]
struct PidInfo {
    cgroup: Option<u64>,
    ns_pid: Option<u32>,
}

/// Containers of requests, by pid (read once per process from /proc).
struct PidContainers {
    containers: Containers,
    pids: HashMap<u32, PidInfo>,
    /// Requests of containers whose names are not known yet.
    waiting: Vec<(Instant, Request)>,
}

impl PidContainers {
    fn info(&mut self, pid: u32) -> PidInfo {
        if let Some(i) = self.pids.get(&pid) {
            return *i;
        }
        if self.pids.len() > 4096 {
            self.pids.clear();
        }
        let cgroup = self.containers.resolver().and_then(|r| {
            let path = ebpfctl_container::cgroupfs::proc_cgroup(pid)?;
            r.cgroupfs().id_of(&path).ok()
        });
        let ns_pid = ebpfctl_container::mounts::ns_pid(pid).filter(|&n| n != pid);
        let i = PidInfo { cgroup, ns_pid };
        self.pids.insert(pid, i);
        i
    }

    /// Fills the request's container fields and applies the filter.
    fn place(&mut self, mut r: Request) -> Placed {
        if !self.containers.active() {
            return Placed::Show(r);
        }
        let info = self.info(r.pid);
        r.container_pid = info.ns_pid;
        if self.containers.filtering() {
            match info.cgroup.map(|cg| self.containers.admit(cg)) {
                Some(Verdict::Yes) => {}
                Some(Verdict::Unknown) => return Placed::Wait(r),
                _ => return Placed::Drop,
            }
        }
        if self.containers.show || self.containers.metric_labels {
            r.container = info
                .cgroup
                .and_then(|cg| self.containers.entry(cg))
                .map(|e| e.container.clone());
        }
        Placed::Show(r)
    }
}

/// What the container filter makes of a request.
enum Placed {
    Show(Request),
    Drop,
    /// Its container's names are not known yet.
    Wait(Request),
}

/// How often the in-flight slots of processes that are gone are freed (see
/// [`Observer::free_slots_of_gone_processes`]).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Runs until stopped, the deadline, the request count or a closed `out`; requests go to
/// `out` (through core's writer thread: a stalled reader never holds the loop), status
/// lines to `diag`.
pub fn run(opts: &RunOptions, out: Sink, diag: &mut dyn Write) -> Result<RunSummary, ObserveError> {
    let copts = ContainerOptions {
        // With paths inside containers, no match is an error of its own below.
        quiet_unmatched: !opts.paths.is_empty(),
        ..opts.containers.clone()
    };
    let containers = Containers::start("observe", &copts)
        .map_err(|e| ObserveError::Containers(e.to_string()))?;
    let paths = match containers.resolver() {
        Some(r) if !opts.containers.selector.is_empty() && !opts.paths.is_empty() => {
            paths_in_containers(&opts.paths, r, &opts.containers.selector)?
        }
        _ => opts.paths.clone(),
    };
    let targets = resolve_targets(&paths, &opts.pids)?;
    let stop = ebpfctl_core::signals::stop_flag();
    let mut metrics = Metrics::with_container_labels(opts.containers.metric_labels);
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
    // The comm of a process gone before it was announced or read: its executable's name,
    // cut as the kernel cuts it.
    let exe_comms: Vec<String> = exes
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default();
            String::from_utf8_lossy(&name[..name.len().min(15)]).into_owned()
        })
        .collect();
    let fallback_comm = |i: u16| exe_comms.get(usize::from(i)).map_or("", String::as_str);
    let rt_offset = realtime_offset_ns();
    let mut graph = Graph::default();
    let pending = std::cell::RefCell::new(Vec::<Request>::new());
    let names = std::cell::RefCell::new(ServiceNames::default());
    let mut builder = ConsumerBuilder::new();
    let unread = builder.ring_buffer(observer.events(), |data: &[u8]| {
        if let Some(mut r) = Request::decode(data, rt_offset) {
            if let Some(names) = type_names.get(r.instance as usize) {
                r.resolve_error(names);
            }
            pending.borrow_mut().push(r);
        } else if let Some(p) = decode_proc(data) {
            names.borrow_mut().learn(p.pid, p.comm, p.environ);
        }
    })?;
    let consumer = builder.build()?;
    let mut placed = PidContainers {
        containers,
        pids: HashMap::new(),
        waiting: Vec::new(),
    };
    let started = Instant::now();
    let mut swept = started;
    let mut lost_reported = 0u64;
    let live = if opts.live && opts.format == Format::Log {
        Live::new(live_spec(), src, opts.color)
    } else {
        Live::default()
    };
    let metrics_at = metrics_server.as_ref().map(|s| s.local_addr());
    let mut fan = Fanout {
        out: &mut out,
        src,
        live,
        format: opts.format,
        // Histograms only when something scrapes them.
        metrics: metrics_server.is_some().then_some(&mut metrics),
        otlp: otlp.as_mut(),
        exes: &exes,
        graph: opts.graph.is_some().then_some(&mut graph),
        count: opts.count,
        requests: 0,
    };
    loop {
        consumer.poll(opts.poll_interval)?;
        // Requests whose container is not decided wait up to a second, in order.
        let mut batch: Vec<(Instant, Request)> = std::mem::take(&mut placed.waiting)
            .into_iter()
            .filter(|(since, _)| since.elapsed() < Duration::from_secs(1))
            .collect();
        let now = Instant::now();
        batch.extend(
            std::mem::take(&mut *pending.borrow_mut())
                .into_iter()
                .map(|r| (now, r)),
        );
        for (since, mut r) in batch {
            let mut names = names.borrow_mut();
            let fallback = fallback_comm(r.instance);
            names.fill(&mut r, fallback);
            match placed.place(r) {
                Placed::Show(r) => fan.handle(&r, names.identity(r.pid)),
                Placed::Drop => {}
                Placed::Wait(r) => placed.waiting.push((since, r)),
            }
        }
        fan.out.flush();
        if let Some(d) = fan.out.notice() {
            fan.notice(diag, &format!("observe: {d}"));
        }
        let lost_now = observer.lost();
        if lost_now > lost_reported {
            let msg = format!(
                "observe: {} requests lost (ring buffer full; {lost_now} so far): lower the load or --poll-ms",
                lost_now - lost_reported
            );
            fan.notice(diag, &msg);
            lost_reported = lost_now;
        }
        fan.live.counters(lost_now, metrics_at);
        fan.live.tick(fan.out);
        if let Some(m) = fan.metrics.as_deref_mut() {
            m.set_lost(lost_now);
        }
        if swept.elapsed() >= SWEEP_EVERY {
            observer.free_slots_of_gone_processes();
            swept = Instant::now();
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
        let fallback = fallback_comm(r.instance);
        names.fill(&mut r, fallback);
        if let Placed::Show(r) = placed.place(r) {
            fan.handle(&r, names.identity(r.pid));
        }
    }
    let requests = fan.requests;
    let mut live = std::mem::take(&mut fan.live);
    // The terminal back after the last frame (the graph goes to the normal screen).
    live.leave(&mut out);
    // Records the shutdown drain left in the ring are lost too.
    let lost = observer.lost() + unread.load(Ordering::Relaxed);
    if let Some(f) = opts.graph {
        out.line(src, graph.render(f).as_bytes());
    }
    let done = out.finish();
    // Raw mode off; what the view held goes to stderr.
    live.close();
    if let Some(d) = done {
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
        if o.dropped() > 0 {
            let _ = writeln!(
                diag,
                "observe: {} spans dropped (the OTLP collector did not keep up)",
                o.dropped()
            );
        }
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
    /// The live view instead of log lines (a terminal, feature `tui`).
    live: Live,
    format: Format,
    metrics: Option<&'a mut Metrics>,
    otlp: Option<&'a mut OtlpExporter>,
    /// The executable of each probe instance.
    exes: &'a [PathBuf],
    graph: Option<&'a mut Graph>,
    count: Option<u64>,
    requests: u64,
}

impl Fanout<'_> {
    fn handle(&mut self, r: &Request, who: &ProcessIdentity) {
        if self.count.is_some_and(|c| self.requests >= c) {
            return;
        }
        self.requests += 1;
        if self.live.on() {
            self.live.event(live_event(r));
        } else if self.format != Format::None {
            // Into the writer's buffer: cannot fail.
            let _ = write_request(self.out.buf(), self.format, r);
            self.out.record(self.src);
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

    /// A status line: to `diag`, or held by the live view while it is up.
    fn notice(&self, diag: &mut dyn Write, msg: &str) {
        if self.live.on() {
            self.live.notice(msg);
        } else {
            let _ = writeln!(diag, "{msg}");
        }
    }

    /// The request count is reached, or nobody reads the output any more (e.g. `| head`).
    fn done(&self) -> bool {
        self.out.closed() || self.count.is_some_and(|c| self.requests >= c)
    }
}
