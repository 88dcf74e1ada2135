//! The runner: an object spec in, outputs out, until a stop signal or the duration ends.
//! Wires load → consume → decode → print; adds nothing of its own to the data.
use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libbpf_rs::MapHandle;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::consume::{ConsumeError, ConsumerBuilder, LossSource};
use crate::convention::{Keyword, MapFamily};
use crate::decode::DecodeError;
use crate::load::{LoadError, LoadOptions, Loaded};
use crate::metrics::{MetricsError, MetricsServer};
use crate::object::ObjectSpec;
use crate::print::prometheus::{
    read_entries, MapCollector, ProgramStats, RunnerMetrics, StatsGuard, StreamMetric,
};
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

/// Builds the output plan of each keyword map (and, with `--all-maps`, every other map).
pub fn plan(spec: &ObjectSpec, opts: &RunOptions) -> Result<Vec<MapOut>, RunError> {
    crate::plan::plan(spec, &opts.plan).map_err(|e| match e {
        crate::plan::PlanError::Decode { map, source } => RunError::Decode { map, source },
        crate::plan::PlanError::Hist(msg) => RunError::Convention(msg),
    })
}

/// Where user-visible notices go (stderr in the CLI).
pub type Notify<'a> = &'a mut dyn FnMut(&str);

struct StreamState {
    out: MapOut,
    printed: bool,
    metric: Option<StreamMetric>,
    events: Counter,
    decode_errors: Counter,
}

/// Runs `spec` until SIGINT/SIGTERM or `opts.duration`. Stdout gets the records.
pub fn run(
    spec: &ObjectSpec,
    opts: &RunOptions,
    stdout: Box<dyn Write>,
    notify: Notify<'_>,
) -> Result<(), RunError> {
    let mut outs = plan(spec, opts)?;
    signals::stop_flag();
    let loaded = match &opts.before_attach {
        Some(h) => Loaded::load_then(spec, &opts.load, &mut |l| (h.0)(l)),
        None => Loaded::load(spec, &opts.load),
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
    if outs.is_empty() && !spec.maps.is_empty() {
        notify("no map carries a keyword (print_, counter_, gauge_, hist_ or SEC(\".maps.KEYWORD\")), so nothing will be printed; --all-maps prints every map");
    }
    // Stack members print frames from the object's stack-trace map.
    let stack_maps: Vec<&str> = spec
        .maps
        .iter()
        .filter(|m| m.map_type == convention::BPF_MAP_TYPE_STACK_TRACE)
        .map(|m| m.name.as_str())
        .collect();
    if let Some(first) = stack_maps.first() {
        if outs
            .iter()
            .any(|o| o.value.has_stack() || o.key.as_ref().is_some_and(|k| k.has_stack()))
        {
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
            for o in &mut outs {
                o.value.set_stacks(&stacks);
                if let Some(k) = &mut o.key {
                    k.set_stacks(&stacks);
                }
            }
        }
    }

    // Metrics: registry, the runner's own series, one metric per keyword map.
    let mut reg = Registry::default();
    let runner = RunnerMetrics::register(&mut reg);
    let mut streams: Vec<Rc<RefCell<StreamState>>> = Vec::new();
    let mut kv: Vec<(MapOut, MapHandle)> = Vec::new();
    for out in &outs {
        let map = loaded
            .map(&out.name)
            .ok_or_else(|| RunError::MissingMap(out.name.clone()))?;
        if out.is_stream() {
            let metric = match out.keyword {
                Keyword::Counter | Keyword::Hist => {
                    Some(StreamMetric::register(&mut reg, out).map_err(RunError::Convention)?)
                }
                _ => None,
            };
            let labels = RunnerMetrics::map_labels(out);
            streams.push(Rc::new(RefCell::new(StreamState {
                out: out.clone(),
                // Tables show every stream map's latest events; JSON only `print` maps.
                printed: out.keyword == Keyword::Print || opts.output == Output::Table,
                metric,
                events: runner.events.get_or_create(&labels).clone(),
                decode_errors: runner.decode_errors.get_or_create(&labels).clone(),
            })));
        } else {
            let handle = MapHandle::try_from(&map)
                .map_err(|e| RunError::Convention(format!("map {}: {e}", out.name)))?;
            if out.keyword != Keyword::Print || out.slots.is_some() {
                let h = MapHandle::try_from(&map)
                    .map_err(|e| RunError::Convention(format!("map {}: {e}", out.name)))?;
                reg.register_collector(Box::new(MapCollector::new(
                    h,
                    out.clone(),
                    opts.hist_linear_step,
                )));
            }
            kv.push((out.clone(), handle));
        }
    }
    let mut prog_fds = Vec::new();
    for p in loaded.object.progs() {
        if let Ok(fd) = p.as_fd().try_clone_to_owned() {
            prog_fds.push((p.name().to_string_lossy().into_owned(), fd));
        }
    }
    reg.register_collector(Box::new(ProgramStats { programs: prog_fds }));

    let printer: Rc<RefCell<Box<dyn Printer>>> = Rc::new(RefCell::new(match opts.output {
        Output::Json => Box::new(JsonPrinter::new(stdout)),
        Output::None => Box::new(NullPrinter),
        Output::Table => Box::new(TablePrinter::new(stdout, opts.interval, opts.table_style)),
        Output::Folded => Box::new(FoldedPrinter::new(stdout)),
    }));

    // Consumers, and where each stream map's losses are counted.
    let maps: Vec<_> = streams
        .iter()
        .map(|s| loaded.map(&s.borrow().out.name))
        .collect();
    let mut builder = ConsumerBuilder::new();
    let mut losses: Vec<(usize, LossSource, u64)> = Vec::new();
    for (i, (state, map)) in streams.iter().zip(maps.iter()).enumerate() {
        let map = map.as_ref().expect("checked above");
        let st = Rc::clone(state);
        let pr = Rc::clone(&printer);
        let on_event = move |data: &[u8]| {
            let s = st.borrow();
            s.events.inc();
            if data.len() < s.out.value.size {
                s.decode_errors.inc();
                return;
            }
            if s.printed {
                pr.borrow_mut().event(&s.out, data);
            }
            if let Some(m) = &s.metric {
                m.on_event(&s.out, data);
            }
        };
        let family = convention::family(state.borrow().out.map_type);
        let loss = if family == MapFamily::RingBuf {
            builder.ring_buffer(map, on_event)?;
            let spec_map = spec.map(&state.borrow().out.name);
            match (spec_map.and_then(|m| m.lost_counter), loaded.bss()) {
                (Some(offset), Some(bss)) => match MapHandle::try_from(&bss) {
                    Ok(bss) => LossSource::BssCounter { bss, offset },
                    Err(_) => LossSource::Unknown,
                },
                _ => {
                    notify(&format!(
                        "map {}: losses are not counted (reserve with ebpfctl_reserve and declare EBPFCTL_LOST_COUNTER({}) to count them)",
                        state.borrow().out.name,
                        state.borrow().out.name
                    ));
                    LossSource::Unknown
                }
            }
        } else {
            let cb = on_event;
            LossSource::Counted(builder.perf_buffer(map, 64, move |_cpu, data| cb(data))?)
        };
        losses.push((i, loss, 0));
    }
    let consumer = builder.build()?;

    // Serve metrics.
    let reg = Arc::new(Mutex::new(reg));
    let mut _server = None;
    let mut _stats = None;
    if let Some(addr) = opts.metrics_addr {
        match MetricsServer::start(addr, Arc::clone(&reg)) {
            Ok(s) => {
                notify(&format!(
                    "serving metrics on http://{}/metrics",
                    s.local_addr()
                ));
                _server = Some(s);
                _stats = StatsGuard::enable();
            }
            Err(e) if opts.metrics_addr_explicit => return Err(e.into()),
            Err(e) => notify(&format!("metrics disabled: {e}")),
        }
    }
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

    let started = Instant::now();
    let mut next_tick = Instant::now();
    let lost_counters: Vec<Counter> = losses
        .iter()
        .map(|(i, _, _)| {
            runner
                .lost
                .get_or_create(&RunnerMetrics::map_labels(&streams[*i].borrow().out))
                .clone()
        })
        .collect();
    let tick = |printer: &mut Box<dyn Printer>,
                notify: Notify<'_>,
                losses: &mut Vec<(usize, LossSource, u64)>| {
        for (out, handle) in &kv {
            let wanted = match opts.output {
                Output::Json => out.keyword == Keyword::Print,
                Output::Table => true,
                Output::Folded => out.key.as_ref().is_some_and(|k| k.has_stack()),
                Output::None => false,
            };
            if wanted {
                printer.snapshot(out, &read_entries(handle, out));
            }
        }
        // Iterators: each read runs the program over the kernel's objects once.
        for (prog, link) in loaded.iterators() {
            let mut text = Vec::new();
            let read = libbpf_rs::Iter::new(link)
                .map_err(std::io::Error::other)
                .and_then(|mut it| std::io::Read::read_to_end(&mut it, &mut text));
            match read {
                Ok(_) => printer.iter_text(prog, &String::from_utf8_lossy(&text)),
                Err(e) => notify(&format!("iterator {prog}: cannot read it: {e}")),
            }
        }
        for (j, (i, src, seen)) in losses.iter_mut().enumerate() {
            if let Some(total) = src.total() {
                if total > *seen {
                    let new = total - *seen;
                    *seen = total;
                    lost_counters[j].inc_by(new);
                    let out = &streams[*i].borrow().out;
                    printer.lost(out, new, total);
                    notify(&format!(
                        "map {}: lost {new} events ({total} in all)",
                        out.name
                    ));
                }
            }
        }
    };
    loop {
        let now = Instant::now();
        let done = signals::stop_requested()
            || opts
                .duration
                .is_some_and(|d| now.duration_since(started) >= d);
        if done {
            break;
        }
        let mut wait = next_tick.saturating_duration_since(now);
        if let Some(d) = opts.duration {
            wait = wait.min(d.saturating_sub(now.duration_since(started)));
        }
        consumer.poll(wait.min(Duration::from_millis(100)))?;
        if Instant::now() >= next_tick {
            tick(&mut printer.borrow_mut(), notify, &mut losses);
            // After a long poll, the next tick is one interval from now, not a burst of ticks.
            next_tick += opts.interval;
            if next_tick < Instant::now() {
                next_tick = Instant::now() + opts.interval;
            }
        }
        printer.borrow_mut().flush();
    }
    consumer.drain()?;
    tick(&mut printer.borrow_mut(), notify, &mut losses);
    printer.borrow_mut().finish();
    Ok(())
}
