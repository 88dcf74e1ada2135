//! The runner: an object spec in, outputs out, until a stop signal, the duration or a closed
//! stdout. Wires load → consume → decode → print; adds nothing of its own to the data.
//!
//! [`run`] takes a `Session` through its steps, each a short method: `plan` (decoders, no
//! kernel) → `load` → `stacks` → `wire` (metrics, printer, stdout writer, loss sources) → `consumer` →
//! `serve` → `run_loop`. Stdout is written by a [`Writer`] thread, so a reader that stalls
//! never holds the loop: signals, `--duration` and the metrics server keep working.
use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libbpf_rs::{Map, MapHandle};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::consume::{ConsumeError, Consumer, ConsumerBuilder, LossSource};
use crate::convention::{Keyword, MapFamily};
use crate::decode::DecodeError;
use crate::load::{LoadError, LoadOptions, Loaded};
use crate::metrics::{MetricsError, MetricsServer};
use crate::object::ObjectSpec;
use crate::print::prometheus::{
    read_entries, MapCollector, ProgramStats, RunnerMetrics, StatsGuard, StreamMetric,
};
use crate::print::writer::{Sink, Source, Writer};
use crate::print::{
    folded::FoldedPrinter, json::JsonPrinter, table::TablePrinter, MapOut, NullPrinter, Printer,
};
use crate::{convention, signals};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("map {map}: cannot decode its type: {source}")]
    Decode { map: String, source: DecodeError },
    #[error("{0}")]
    Convention(String),
    #[error("map {0} was not created by the kernel")]
    MissingMap(String),
    /// Stdout failed for another reason than a reader that left (that one ends the run with
    /// success).
    #[error("writing output: {0}")]
    Output(std::io::Error),
}

/// Output format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Table,
    /// Folded stacks (`frame;frame;frame count`) of maps keyed by stack ids, at exit.
    Folded,
    /// Metrics only.
    None,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub load: LoadOptions,
    pub output: Output,
    /// Snapshot / redraw / loss-check period.
    pub interval: Duration,
    pub duration: Option<Duration>,
    /// Where to serve metrics; `None` serves nothing.
    pub metrics_addr: Option<SocketAddr>,
    /// Whether a bind failure on `metrics_addr` is fatal (an address the user chose).
    pub metrics_addr_explicit: bool,
    /// `--all-maps`, `--hist-key`, `--buckets`.
    pub plan: crate::plan::PlanOptions,
    /// Linear slot width for slot-keyed `hist` maps (default: log2 slots).
    pub hist_linear_step: Option<f64>,
    /// Called with the loaded object before any program is attached.
    pub before_attach: Option<BeforeAttach>,
    /// Escape codes of `Output::Table` (none unless the caller knows stdout is a terminal).
    pub table_style: crate::print::table::TableStyle,
}

/// A step between load and attach, e.g. filling a filter map so that the first events are
/// already filtered ([`Loaded::load_then`]).
#[derive(Clone)]
pub struct BeforeAttach(pub std::sync::Arc<BeforeAttachFn>);

/// What [`BeforeAttach`] calls; an error (one line) unloads everything.
pub type BeforeAttachFn = dyn Fn(&Loaded) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for BeforeAttach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeAttach(..)")
    }
}

/// Builds the output plan of each keyword map (and, with `--all-maps`, every other map);
/// `MapOut::id` is the position in the plan.
pub fn plan(spec: &ObjectSpec, opts: &RunOptions) -> Result<Vec<MapOut>, RunError> {
    crate::plan::plan(spec, &opts.plan).map_err(|e| match e {
        crate::plan::PlanError::Decode { map, source } => RunError::Decode { map, source },
        crate::plan::PlanError::Hist(msg) | crate::plan::PlanError::Clash(msg) => {
            RunError::Convention(msg)
        }
    })
}

/// Where user-visible notices go (stderr in the CLI).
pub type Notify<'a> = &'a mut dyn FnMut(&str);

/// Runs `spec` until SIGINT/SIGTERM, `opts.duration` or a closed `stdout`, which gets the
/// records.
pub fn run(
    spec: &ObjectSpec,
    opts: &RunOptions,
    stdout: Sink,
    notify: Notify<'_>,
) -> Result<(), RunError> {
    let held = Held::default();
    let result = run_held(spec, opts, stdout, &held, notify);
    // Notices that came while the live view had the terminal, now that it is back.
    for m in held.take() {
        notify(&m);
    }
    result
}

/// Notices kept while the live view has the terminal (none without the `tui` feature).
#[cfg(feature = "tui")]
use crate::print::tui::Held;

#[cfg(not(feature = "tui"))]
#[derive(Clone, Default)]
struct Held {}

#[cfg(not(feature = "tui"))]
impl Held {
    fn hold(&self, _: &str) -> bool {
        false
    }
    fn take(&self) -> Vec<String> {
        Vec::new()
    }
}

/// [`run`], with the notices of the loop held by the live view while it is up; everything
/// (the screen, then the programs) is released when this returns.
fn run_held(
    spec: &ObjectSpec,
    opts: &RunOptions,
    stdout: Sink,
    held: &Held,
    notify: Notify<'_>,
) -> Result<(), RunError> {
    let mut session = Session::plan(spec, opts, held.clone())?;
    let loaded = session.load(notify)?;
    session.stacks(&loaded, notify)?;
    let (wired, registry) = session.wire(&loaded, stdout, notify)?;
    let maps = session.stream_maps(&loaded)?;
    let consumer = session.consumer(&wired, &maps)?;
    let serving = session.serve(registry, notify)?;
    if let Some(s) = &serving._server {
        wired.events.borrow_mut().printer.serving(s.local_addr());
    }
    session.announce(&loaded, notify);
    let notify = &mut |m: &str| {
        if !held.hold(m) {
            notify(m)
        }
    };
    session.run_loop(&loaded, &wired, &consumer, notify)
}

/// One run of an object: what to do with each map, and the options.
struct Session<'s> {
    spec: &'s ObjectSpec,
    opts: &'s RunOptions,
    outs: Vec<MapOut>,
    #[cfg_attr(not(feature = "tui"), allow(dead_code))]
    held: Held,
}

/// One stream map (ring buffer / perf array) and its per-event series.
struct Stream {
    out: MapOut,
    printed: bool,
    metric: Option<StreamMetric>,
    events: Counter,
    decode_errors: Counter,
}

/// What the consumer's callbacks and the loop share (one borrow per event).
struct Events {
    streams: Vec<Stream>,
    /// Dropped before the printer (fields drop in order): what is queued is written (bounded
    /// wait) before a live view restores the terminal in its drop.
    out: Writer,
    printer: Box<dyn Printer>,
}

impl Events {
    fn on_event(&mut self, i: usize, data: &[u8]) {
        let s = &self.streams[i];
        s.events.inc();
        if data.len() < s.out.value.size {
            s.decode_errors.inc();
            return;
        }
        if s.printed {
            self.printer.event(&mut self.out, &s.out, data);
        }
        if let Some(m) = &s.metric {
            m.on_event(&s.out, data);
        }
    }
}

/// Where one stream map's losses are read, and what was reported so far.
struct Loss {
    stream: usize,
    source: LossSource,
    seen: u64,
    counter: Counter,
}

/// Outputs wired to a loaded object.
struct Wired {
    events: RefCell<Events>,
    /// Key/value maps, snapshotted each interval.
    kv: Vec<(MapOut, MapHandle)>,
    losses: RefCell<Vec<Loss>>,
    /// The writer's source of each iterator's records, in [`Loaded::iterators`] order.
    iters: Vec<Source>,
}

/// Kept alive while the loop runs: the metrics endpoint and BPF statistics.
struct Serving {
    _server: Option<MetricsServer>,
    _stats: Option<StatsGuard>,
}

impl<'s> Session<'s> {
    /// Compiles the decoders of every keyword map (no kernel involved).
    fn plan(
        spec: &'s ObjectSpec,
        opts: &'s RunOptions,
        held: Held,
    ) -> Result<Session<'s>, RunError> {
        Ok(Session {
            spec,
            opts,
            outs: plan(spec, opts)?,
            held,
        })
    }

    /// Installs the stop signals, then loads (with `before_attach` between load and attach)
    /// and attaches; skipped programs (also those of a load that failed) and the loader's
    /// notices are reported, and an object without keyword maps is told so.
    fn load(&self, notify: Notify<'_>) -> Result<Loaded, RunError> {
        signals::stop_flag();
        let loaded = match &self.opts.before_attach {
            Some(h) => Loaded::load_then(self.spec, &self.opts.load, &mut |l| (h.0)(l)),
            None => Loaded::load(self.spec, &self.opts.load),
        };
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                // Several programs skipped: one line each, then the error counts them.
                for s in e.skipped() {
                    notify(&s.to_string());
                }
                return Err(e.into());
            }
        };
        for s in &loaded.skipped {
            notify(&s.to_string());
        }
        for n in &loaded.notices {
            notify(n);
        }
        // Once loaded: an object that fails gets its error alone.
        if self.outs.is_empty() && !self.spec.maps.is_empty() {
            notify("no map carries a keyword (print_, counter_, gauge_, hist_ or SEC(\".maps.KEYWORD\")), so nothing will be printed; --all-maps prints every map");
        }
        Ok(loaded)
    }

    /// Stack members print frames from the object's stack-trace map (the first one).
    fn stacks(&mut self, loaded: &Loaded, notify: Notify<'_>) -> Result<(), RunError> {
        let stack_maps: Vec<&str> = self
            .spec
            .maps
            .iter()
            .filter(|m| m.map_type == convention::BPF_MAP_TYPE_STACK_TRACE)
            .map(|m| m.name.as_str())
            .collect();
        let Some(first) = stack_maps.first() else {
            return Ok(());
        };
        let uses_stacks = self
            .outs
            .iter()
            .any(|o| o.value.has_stack() || o.key.as_ref().is_some_and(|k| k.has_stack()));
        if !uses_stacks {
            return Ok(());
        }
        if stack_maps.len() > 1 {
            notify(&format!(
                "the object has {} stack-trace maps ({}); kernel_stack/user_stack members are looked up in {first}",
                stack_maps.len(),
                stack_maps.join(", ")
            ));
        }
        let map = loaded
            .map(first)
            .ok_or_else(|| RunError::MissingMap(first.to_string()))?;
        let handle = MapHandle::try_from(&map)
            .map_err(|e| RunError::Convention(format!("map {first}: {e}")))?;
        let stacks: Arc<dyn crate::decode::stack::StackResolve> =
            Arc::new(crate::decode::stack::Stacks::new(handle));
        for o in &mut self.outs {
            o.value.set_stacks(&stacks);
            if let Some(k) = &mut o.key {
                k.set_stacks(&stacks);
            }
        }
        Ok(())
    }

    /// The registry (runner series, one metric per keyword map, program statistics), the
    /// printer and stdout's writer, and each stream map's loss source.
    fn wire(
        &self,
        loaded: &Loaded,
        stdout: Sink,
        notify: Notify<'_>,
    ) -> Result<(Wired, Registry), RunError> {
        let mut reg = Registry::default();
        let runner = RunnerMetrics::register(&mut reg);
        // `-o none` leaves stdout alone (a closed one does not end the run).
        let stdout = match self.opts.output {
            Output::None => Sink::discard(),
            _ => stdout,
        };
        let mut out = Writer::new(stdout).with_stop(signals::stop_flag());
        let mut streams = Vec::new();
        let mut kv = Vec::new();
        for m in &self.outs {
            let map = loaded
                .map(&m.name)
                .ok_or_else(|| RunError::MissingMap(m.name.clone()))?;
            let printed = self.prints(m);
            let labels = RunnerMetrics::map_labels(m);
            // Maps that never print keep their dropped count out of the metrics.
            out.source(if printed && self.records_per_map() {
                runner.output_dropped.get_or_create(&labels).clone()
            } else {
                Counter::default()
            });
            if m.is_stream() {
                streams.push(self.stream(&mut reg, &runner, m, printed)?);
            } else {
                let mut m = m.clone();
                m.max_entries = libbpf_rs::MapCore::max_entries(&map);
                let handle = self.kv_map(&mut reg, &map, &m)?;
                kv.push((m, handle));
            }
        }
        reg.register_collector(Box::new(ProgramStats {
            programs: program_fds(loaded),
        }));
        let iters = self.iter_sources(loaded, &mut out, &runner);
        let printer = self.printer(&mut out, &runner);
        let losses = self.losses(loaded, &streams, &runner, notify);
        let events = Events {
            streams,
            printer,
            out,
        };
        let wired = Wired {
            events: RefCell::new(events),
            kv,
            losses: RefCell::new(losses),
            iters,
        };
        Ok((wired, reg))
    }

    /// Whether `m`'s records reach stdout: tables show every map, JSON only `print` maps,
    /// folded stacks the maps keyed by stacks.
    fn prints(&self, m: &MapOut) -> bool {
        match self.opts.output {
            Output::Table => true,
            Output::Json => m.keyword == Keyword::Print,
            Output::Folded => m.key.as_ref().is_some_and(|k| k.has_stack()),
            Output::None => false,
        }
    }

    /// Whether the output writes records of each map (counted per map when dropped); a table
    /// is counted per redraw instead.
    fn records_per_map(&self) -> bool {
        matches!(self.opts.output, Output::Json | Output::Folded)
    }

    /// One writer source per iterator program (`map="_iter/PROG"` in the dropped counts).
    fn iter_sources(
        &self,
        loaded: &Loaded,
        out: &mut Writer,
        runner: &RunnerMetrics,
    ) -> Vec<Source> {
        loaded
            .iterators()
            .map(|(prog, _)| {
                out.source(if self.opts.output == Output::Json {
                    let labels = vec![("map".to_string(), format!("_iter/{prog}"))];
                    runner.output_dropped.get_or_create(&labels).clone()
                } else {
                    Counter::default()
                })
            })
            .collect()
    }

    /// A stream map's state, with its `counter` / `hist` metric when it has one.
    fn stream(
        &self,
        reg: &mut Registry,
        runner: &RunnerMetrics,
        m: &MapOut,
        printed: bool,
    ) -> Result<Stream, RunError> {
        let metric = match m.keyword {
            Keyword::Counter | Keyword::Hist => {
                Some(StreamMetric::register(reg, m).map_err(RunError::Convention)?)
            }
            _ => None,
        };
        let labels = RunnerMetrics::map_labels(m);
        Ok(Stream {
            out: m.clone(),
            printed,
            metric,
            events: runner.events.get_or_create(&labels).clone(),
            decode_errors: runner.decode_errors.get_or_create(&labels).clone(),
        })
    }

    /// A key/value map's handle for snapshots; metric keywords are read at scrape time.
    fn kv_map(&self, reg: &mut Registry, map: &Map<'_>, m: &MapOut) -> Result<MapHandle, RunError> {
        let handle = || {
            MapHandle::try_from(map)
                .map_err(|e| RunError::Convention(format!("map {}: {e}", m.name)))
        };
        if m.keyword != Keyword::Print || m.slots.is_some() {
            let collector = MapCollector::new(handle()?, m.clone(), self.opts.hist_linear_step);
            reg.register_collector(Box::new(collector));
        }
        handle()
    }

    fn printer(&self, out: &mut Writer, runner: &RunnerMetrics) -> Box<dyn Printer> {
        match self.opts.output {
            Output::Json => Box::new(JsonPrinter),
            Output::None => Box::new(NullPrinter),
            Output::Table => {
                let labels = vec![("map".to_string(), "_table".to_string())];
                let frames = out.source(runner.output_dropped.get_or_create(&labels).clone());
                #[cfg(feature = "tui")]
                if self.opts.table_style.tui {
                    return Box::new(crate::print::tui::live::TuiPrinter::new(
                        frames,
                        self.opts.interval,
                        self.opts.table_style.bold,
                        self.held.clone(),
                    ));
                }
                Box::new(TablePrinter::new(
                    frames,
                    self.opts.interval,
                    self.opts.table_style,
                ))
            }
            Output::Folded => Box::new(FoldedPrinter::new()),
        }
    }

    /// Where each stream map's losses are counted: perf buffers count their own (see
    /// [`Session::consumer`]); ring buffers need the probe's `.bss` counter.
    fn losses(
        &self,
        loaded: &Loaded,
        streams: &[Stream],
        runner: &RunnerMetrics,
        notify: Notify<'_>,
    ) -> Vec<Loss> {
        let mut losses = Vec::new();
        for (i, s) in streams.iter().enumerate() {
            let source = if convention::family(s.out.map_type) == MapFamily::RingBuf {
                self.ring_loss(loaded, &s.out, notify)
            } else {
                LossSource::Unknown
            };
            losses.push(Loss {
                stream: i,
                source,
                seen: 0,
                counter: runner
                    .lost
                    .get_or_create(&RunnerMetrics::map_labels(&s.out))
                    .clone(),
            });
        }
        losses
    }

    fn ring_loss(&self, loaded: &Loaded, m: &MapOut, notify: Notify<'_>) -> LossSource {
        let offset = self.spec.map(&m.name).and_then(|s| s.lost_counter);
        match (offset, loaded.bss()) {
            (Some(offset), Some(bss)) => match MapHandle::try_from(&bss) {
                Ok(bss) => LossSource::BssCounter { bss, offset },
                Err(_) => LossSource::Unknown,
            },
            _ => {
                notify(&format!(
                    "map {0}: losses are not counted (reserve with ebpfctl_reserve and declare EBPFCTL_LOST_COUNTER({0}) to count them)",
                    m.name
                ));
                LossSource::Unknown
            }
        }
    }

    /// The kernel maps of the stream maps, in plan order.
    fn stream_maps<'l>(&self, loaded: &'l Loaded) -> Result<Vec<Map<'l>>, RunError> {
        self.outs
            .iter()
            .filter(|m| m.is_stream())
            .map(|m| {
                loaded
                    .map(&m.name)
                    .ok_or_else(|| RunError::MissingMap(m.name.clone()))
            })
            .collect()
    }

    /// One consumer over every stream map; each record goes to [`Events::on_event`].
    fn consumer<'c>(
        &self,
        wired: &'c Wired,
        maps: &'c [Map<'c>],
    ) -> Result<Consumer<'c>, RunError> {
        let mut builder = ConsumerBuilder::new();
        let mut losses = wired.losses.borrow_mut();
        for (i, map) in maps.iter().enumerate() {
            let events = &wired.events;
            if convention::family(events.borrow().streams[i].out.map_type) == MapFamily::RingBuf {
                let unread =
                    builder.ring_buffer(map, move |data| events.borrow_mut().on_event(i, data))?;
                // Records the shutdown drain leaves in the ring are lost: counted with the rest.
                let source = std::mem::replace(&mut losses[i].source, LossSource::Unknown);
                losses[i].source = source.with_unread(unread);
            } else {
                let lost = builder.perf_buffer(map, 64, move |_cpu, data| {
                    events.borrow_mut().on_event(i, data)
                })?;
                losses[i].source = LossSource::Counted(lost);
            }
        }
        Ok(builder.build()?)
    }

    /// Serves the registry when asked; BPF statistics stay on while it serves.
    fn serve(&self, registry: Registry, notify: Notify<'_>) -> Result<Serving, RunError> {
        let mut serving = Serving {
            _server: None,
            _stats: None,
        };
        let Some(addr) = self.opts.metrics_addr else {
            return Ok(serving);
        };
        match MetricsServer::start(addr, Arc::new(Mutex::new(registry))) {
            Ok(s) => {
                notify(&format!(
                    "serving metrics on http://{}/metrics",
                    s.local_addr()
                ));
                serving._server = Some(s);
                serving._stats = StatsGuard::enable();
            }
            Err(e) if self.opts.metrics_addr_explicit => return Err(e.into()),
            Err(e) => notify(&format!("metrics disabled: {e}")),
        }
        Ok(serving)
    }

    fn announce(&self, loaded: &Loaded, notify: Notify<'_>) {
        let attached: Vec<&str> = loaded.attachments.iter().map(|(n, _)| n.as_str()).collect();
        let registered: String = loaded
            .struct_ops
            .iter()
            .map(|(n, _)| format!("; struct_ops {n} registered"))
            .collect();
        notify(&format!(
            "running: {} program(s) attached ({}){registered}; stop with Ctrl-C",
            attached.len(),
            attached.join(", ")
        ));
    }

    /// Polls, ticks every interval, flushes every cycle; then drains what is left.
    fn run_loop(
        &self,
        loaded: &Loaded,
        wired: &Wired,
        consumer: &Consumer<'_>,
        notify: Notify<'_>,
    ) -> Result<(), RunError> {
        let started = Instant::now();
        let mut next_tick = started;
        while !self.done(wired, started) {
            consumer.poll(self.wait(started, next_tick))?;
            if Instant::now() >= next_tick {
                self.tick(loaded, wired, notify);
                // After a long poll, the next tick is one interval from now, not a burst.
                next_tick += self.opts.interval;
                next_tick = next_tick.max(Instant::now());
            }
            wired.flush(notify);
        }
        consumer.drain()?;
        self.tick(loaded, wired, notify);
        wired.finish(notify)
    }

    /// A stop signal, the end of the duration, or a stdout that closed.
    fn done(&self, wired: &Wired, started: Instant) -> bool {
        signals::stop_requested()
            || self.opts.duration.is_some_and(|d| started.elapsed() >= d)
            || wired.events.borrow().out.closed()
    }

    /// How long the next poll may wait: until the next tick or the end, at most 100 ms.
    fn wait(&self, started: Instant, next_tick: Instant) -> Duration {
        let mut wait = next_tick.saturating_duration_since(Instant::now());
        if let Some(d) = self.opts.duration {
            wait = wait.min(d.saturating_sub(started.elapsed()));
        }
        wait.min(Duration::from_millis(100))
    }

    /// Snapshots of key/value maps that print, iterator reads, and new losses (record,
    /// metric, notice).
    fn tick(&self, loaded: &Loaded, wired: &Wired, notify: Notify<'_>) {
        let mut ev = wired.events.borrow_mut();
        let Events {
            streams,
            printer,
            out,
        } = &mut *ev;
        for (m, handle) in &wired.kv {
            if self.prints(m) {
                printer.snapshot(out, m, &read_entries(handle, m));
            }
        }
        // Iterators: each read runs the program over the kernel's objects once.
        for ((prog, link), &src) in loaded.iterators().zip(&wired.iters) {
            let mut text = Vec::new();
            let read = libbpf_rs::Iter::new(link)
                .map_err(std::io::Error::other)
                .and_then(|mut it| std::io::Read::read_to_end(&mut it, &mut text));
            match read {
                Ok(_) => printer.iter_text(out, src, prog, &String::from_utf8_lossy(&text)),
                Err(e) => notify(&format!("iterator {prog}: cannot read it: {e}")),
            }
        }
        for loss in wired.losses.borrow_mut().iter_mut() {
            let Some(total) = loss.source.total().filter(|&t| t > loss.seen) else {
                continue;
            };
            let new = total - loss.seen;
            loss.seen = total;
            loss.counter.inc_by(new);
            let m = &streams[loss.stream].out;
            printer.lost(out, m, new, total);
            notify(&format!(
                "map {}: lost {new} events ({total} in all)",
                m.name
            ));
        }
    }
}

impl Wired {
    /// Once per poll cycle: the printer flushes or redraws; drops are reported (rate-limited).
    fn flush(&self, notify: Notify<'_>) {
        let mut ev = self.events.borrow_mut();
        let Events { printer, out, .. } = &mut *ev;
        printer.flush(out);
        if let Some(d) = out.notice() {
            notify(&d.to_string());
        }
    }

    /// At exit: what is pending goes out, within the writer's bounded wait.
    fn finish(&self, notify: Notify<'_>) -> Result<(), RunError> {
        let mut ev = self.events.borrow_mut();
        let Events { printer, out, .. } = &mut *ev;
        printer.finish(out);
        if let Some(d) = out.finish() {
            notify(&d.to_string());
        }
        match out.take_error() {
            Some(e) => Err(RunError::Output(e)),
            None => Ok(()),
        }
    }
}

/// Each loaded program's name and an fd of it, for run time and count at scrape time.
fn program_fds(loaded: &Loaded) -> Vec<(String, std::os::fd::OwnedFd)> {
    loaded
        .object
        .progs()
        .filter_map(|p| {
            let fd = p.as_fd().try_clone_to_owned().ok()?;
            Some((p.name().to_string_lossy().into_owned(), fd))
        })
        .collect()
}
