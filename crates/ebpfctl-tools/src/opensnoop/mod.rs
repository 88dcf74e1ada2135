//! opensnoop: open, openat and openat2 with their result and the path passed.
//!
//! The probe (`opensnoop.bpf.c`) keeps each call's arguments at entry and reads the path at
//! exit, when the kernel has faulted it in; each record is as long as its path. pid, tid,
//! uid and failed-only filter in the kernel; the command-name regex runs here.
//! See docs/opensnoop.md.
pub mod event;
pub mod print;

use std::cell::RefCell;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use std::collections::HashMap;

use ebpfctl_container::select::Verdict;
use ebpfctl_core::consume::ConsumerBuilder;
use ebpfctl_core::decode::time::{ktime_to_unix_ns, monotonic_now_ns};
use ebpfctl_core::print::writer::Sink;
use prometheus_client::metrics::counter::Counter;
use regex::Regex;

pub use event::{flag_names, DecodeError, Open, Syscall};
use print::Place;
pub use print::TableStyle;

use crate::common::containers::{self, ContainerOptions, Containers};
use crate::common::probe::{self, Probe};
pub use crate::common::report::Summary;
use crate::common::report::{self, Metrics, Output, StreamConfig};
use crate::common::ToolError;

const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/opensnoop.bpf.o"));
const TOOL: &str = "opensnoop";

/// Who is shown. pid, tid, uid and failed-only run in the kernel.
#[derive(Debug, Default)]
pub struct Filters {
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    pub uid: Option<u32>,
    pub failed_only: bool,
    /// Matched against the command name (comm).
    pub name: Option<Regex>,
}

impl Filters {
    /// Compiles `-n`'s regex; the error names the flag.
    pub fn name_regex(text: &str) -> Result<Regex, ToolError> {
        Regex::new(text).map_err(|e| {
            let msg = e.to_string();
            let last = msg.lines().last().unwrap_or("").trim().to_string();
            ToolError::BadInput(format!("--name {text:?}: not a valid regex: {last}"))
        })
    }
}

#[derive(Debug)]
pub struct Config {
    pub stream: StreamConfig,
    pub table: TableStyle,
    pub filters: Filters,
    pub containers: ContainerOptions,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            stream: StreamConfig::with_ring(512 << 10),
            table: TableStyle::default(),
            filters: Filters::default(),
            containers: ContainerOptions::default(),
        }
    }
}

impl Config {
    fn params(&self) -> Vec<(&'static str, u32)> {
        let f = &self.filters;
        let mut bits = 0;
        if f.pid.is_some() {
            bits |= event::FILTER_PID;
        }
        if f.tid.is_some() {
            bits |= event::FILTER_TID;
        }
        if f.uid.is_some() {
            bits |= event::FILTER_UID;
        }
        if f.failed_only {
            bits |= event::FILTER_FAILED;
        }
        if !self.containers.selector.is_empty() {
            bits |= event::FILTER_CONTAINER;
        }
        let p = |n: &'static str, v: u32| (n, v);
        vec![
            p("osnp_filters", bits),
            p("osnp_pid", f.pid.unwrap_or(0)),
            p("osnp_tid", f.tid.unwrap_or(0)),
            p("osnp_uid", f.uid.unwrap_or(0)),
            p("osnp_wakeup_bytes", self.stream.wakeup_param()),
        ]
    }
}

/// Turns records into output lines.
struct Printer<'a> {
    cfg: &'a Config,
    out: &'a RefCell<Output>,
    ok: Counter,
    failed: Counter,
    containers: Containers,
    table: TableStyle,
    /// With container labels: one counter per (cgroup, failed).
    labelled: HashMap<(u64, bool), Counter>,
    metrics: &'a Metrics,
    start_unix_ns: i128,
    events: u64,
    decode_errors: u64,
}

impl Printer<'_> {
    fn on_record(&mut self, data: &[u8]) {
        let o = match Open::parse(data) {
            Ok(o) => o,
            Err(_) => {
                self.decode_errors += 1;
                return;
            }
        };
        if let Some(re) = &self.cfg.filters.name {
            if !re.is_match(&o.comm()) {
                return;
            }
        }
        match self.containers.admit(o.cgroup_id) {
            Verdict::Yes => self.print(&o),
            Verdict::No => {}
            // A new container whose names are not known yet: decided once they are.
            Verdict::Unknown => self.containers.hold(o.cgroup_id, data),
        }
    }

    fn print(&mut self, o: &Open<'_>) {
        let c = &mut self.containers;
        let entry = if c.show || c.metric_labels {
            c.entry(o.cgroup_id)
        } else {
            None
        };
        let host_path = match (&entry, c.show) {
            (Some(e), true) => c.host_path(e, o.pid, &o.path()),
            _ => None,
        };
        let place = Place {
            entry: if c.show { entry.as_deref() } else { None },
            host_path: host_path.as_deref(),
        };
        let mut out = self.out.borrow_mut();
        if self.cfg.stream.json {
            print::json(out.buf(), o, &place);
        } else if out.is_live() {
            out.event(print::live_event(&self.table, o, &place));
        } else {
            let since = ktime_to_unix_ns(o.time_ns) - self.start_unix_ns;
            print::table_row(out.buf(), &self.table, o, since, &place);
        }
        if !out.is_live() {
            out.written();
        }
        self.events += 1;
        let failed = o.ret < 0;
        if self.containers.metric_labels {
            let metrics = self.metrics;
            self.labelled
                .entry((o.cgroup_id, failed))
                .or_insert_with(|| {
                    let mut l = vec![(
                        "result".to_string(),
                        if failed { "error" } else { "ok" }.to_string(),
                    )];
                    l.extend(containers::labels(entry.as_deref()));
                    metrics.events.get_or_create(&l).clone()
                })
                .inc();
        } else if failed {
            self.failed.inc();
        } else {
            self.ok.inc();
        }
    }

    /// Events that waited for their container's names.
    fn on_poll(&mut self) {
        for rec in self.containers.release() {
            if let Ok(o) = Open::parse(&rec) {
                self.print(&o);
            }
        }
    }
}

/// Traces until `stop` is raised, the duration ends or the output closes.
pub fn run(cfg: &Config, stop: Arc<AtomicBool>, out: Sink) -> Result<Summary, ToolError> {
    let metrics = Metrics::new(TOOL, cfg.stream.metrics_addr)?;
    let mut containers = Containers::start(TOOL, &cfg.containers)?;
    let probe = Probe::load(TOOL, OBJECT, &cfg.params(), cfg.stream.ring_bytes)?;
    containers.attach_filter(&probe)?;
    let table = TableStyle {
        container: containers.column,
        ..cfg.table
    };
    let events_map = probe.map(probe::EVENTS_MAP)?;
    let loss = probe.loss_source()?;
    let out = RefCell::new(Output::new(
        out,
        metrics.output_dropped.clone(),
        Arc::clone(&stop),
    ));
    let with_labels = containers.metric_labels;
    let counter = |r: &str| {
        let mut l = vec![("result".to_string(), r.to_string())];
        if with_labels {
            // The series of events outside containers: empty container labels.
            l.extend(containers::labels(None));
        }
        metrics.events.get_or_create(&l).clone()
    };
    let printer = RefCell::new(Printer {
        cfg,
        out: &out,
        ok: counter("ok"),
        failed: counter("error"),
        containers,
        table,
        labelled: HashMap::new(),
        metrics: &metrics,
        start_unix_ns: ktime_to_unix_ns(monotonic_now_ns()),
        events: 0,
        decode_errors: 0,
    });
    let mut builder = ConsumerBuilder::new();
    let unread = builder.ring_buffer(&events_map, |data| printer.borrow_mut().on_record(data))?;
    // Records left in the ring when the shutdown drain gives up are lost too.
    let loss = loss.with_unread(unread);
    let consumer = builder.build()?;
    if cfg.stream.live && !cfg.stream.json {
        out.borrow_mut()
            .live(print::live_spec(&table), cfg.stream.color);
    }
    if !cfg.stream.json && !out.borrow().is_live() {
        out.borrow_mut()
            .line(print::table_header(&table).as_bytes());
    }
    out.borrow_mut().flush();
    eprintln!(
        "{TOOL}: tracing ({} programs attached); Ctrl-C to stop",
        probe.attached().len()
    );
    let lc = cfg.stream.loop_config(TOOL, stop);
    let on_poll = || printer.borrow_mut().on_poll();
    let s = report::run_loop(&lc, &consumer, &loss, &metrics, &out, &|| {}, &on_poll)?;
    let p = printer.borrow();
    Ok(Summary {
        events: p.events,
        lost: s.lost,
        decode_errors: p.decode_errors,
        dropped: s.dropped,
    })
}
