//! execsnoop: every execve/execveat (successful → `started`, failed → `error`) and the
//! exit of every process (`exited`), plus one `started` per process already running.
//!
//! The probe (`execsnoop.bpf.c`) filters by uid, parent and cgroup in the kernel, and by
//! result with `-x`; the command-name regex and the argument match run here, as the kernel
//! cannot evaluate them. See docs/execsnoop.md for the event schema and table format.
pub mod event;
pub mod print;
pub mod proc;
pub mod track;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ebpfctl_core::consume::ConsumerBuilder;
use ebpfctl_core::print::writer::Sink;
use libbpf_rs::MapCore;
use regex::Regex;

pub use event::{DecodeError, MAX_ARGS_CAP};
pub use print::TableStyle;
pub use proc::{snapshot, ProcInfo};

use crate::common::containers::{ContainerOptions, Containers};
use crate::common::probe::{self, Probe};
pub use crate::common::report::Summary;
use crate::common::report::{self, Metrics, Output, StreamConfig};
use crate::common::ToolError;
use track::{Mode, Tracker};

const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/execsnoop.bpf.o"));
const TOOL: &str = "execsnoop";

/// Default and bounds of `--max-args` and `--arg-len`.
pub const DEFAULT_MAX_ARGS: u32 = 20;
pub const DEFAULT_ARG_LEN: u32 = 128;
pub const MAX_ARG_LEN: u32 = event::ARG_LEN_CAP;

/// Who is shown. uid, ppid, cgroup and failed-only run in the kernel.
#[derive(Debug, Default)]
pub struct Filters {
    pub uid: Option<u32>,
    /// This process only (its execs, its exit); in user space.
    pub pid: Option<u32>,
    pub ppid: Option<u32>,
    /// A cgroup v2 directory: its processes and those of its descendants.
    pub cgroup: Option<PathBuf>,
    pub failed_only: bool,
    /// Matched against the command name (comm) and the executable's file name.
    pub name: Option<Regex>,
    /// Matched (as a substring) against the arguments after argv[0].
    pub line: Option<String>,
    /// The cgroup's path inside the hierarchy, for the snapshot (set by `Config::validate`).
    pub cgroup_rel: Option<String>,
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

    /// True when anything narrows the output.
    pub fn any(&self) -> bool {
        self.uid.is_some()
            || self.pid.is_some()
            || self.ppid.is_some()
            || self.cgroup.is_some()
            || self.failed_only
            || self.name.is_some()
            || self.line.is_some()
    }

    /// The filters the kernel cannot apply.
    fn user_passes(&self, p: &track::Proc) -> bool {
        if self.pid.is_some_and(|pid| pid != p.pid) {
            return false;
        }
        if let Some(re) = &self.name {
            let file = p.exe.rsplit('/').next().unwrap_or("");
            if !re.is_match(&p.comm) && !re.is_match(file) {
                return false;
            }
        }
        if let Some(l) = &self.line {
            if !p.args.iter().skip(1).any(|a| a.contains(l.as_str())) {
                return false;
            }
        }
        true
    }

    /// Every filter, for processes of the snapshot (the kernel did not see them).
    fn snapshot_passes(&self, p: &track::Proc, cgroup: Option<&str>) -> bool {
        if self.uid.is_some_and(|u| u != p.uid) || self.ppid.is_some_and(|pp| pp != p.ppid) {
            return false;
        }
        if let Some(rel) = &self.cgroup_rel {
            let Some(c) = cgroup else { return false };
            let under = c == rel
                || rel == "/"
                || c.strip_prefix(rel.as_str())
                    .is_some_and(|r| r.starts_with('/'));
            if !under {
                return false;
            }
        }
        self.user_passes(p)
    }
}

/// Everything `ebpfctl execsnoop` can be asked.
#[derive(Debug)]
pub struct Config {
    pub stream: StreamConfig,
    pub table: TableStyle,
    pub filters: Filters,
    pub max_args: u32,
    pub arg_len: u32,
    pub snapshot: bool,
    pub containers: ContainerOptions,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            stream: StreamConfig::with_ring(256 << 10),
            table: TableStyle::default(),
            filters: Filters::default(),
            max_args: DEFAULT_MAX_ARGS,
            arg_len: DEFAULT_ARG_LEN,
            snapshot: true,
            containers: ContainerOptions::default(),
        }
    }
}

/// Checks `--ring-kib`: a power of two of at least 4 KiB.
pub fn ring_bytes_from_kib(kib: u32) -> Result<u32, ToolError> {
    match kib.checked_mul(1024) {
        Some(b) if b.is_power_of_two() && b >= 4096 => Ok(b),
        _ => Err(ToolError::BadInput(format!(
            "--ring-kib {kib}: expected a power of two between 4 and 2097152"
        ))),
    }
}

impl Config {
    /// Checks ranges and resolves the cgroup; fails before anything is loaded.
    pub fn validate(&mut self) -> Result<(), ToolError> {
        if self.max_args == 0 || self.max_args > MAX_ARGS_CAP {
            return Err(ToolError::BadInput(format!(
                "--max-args {}: expected 1 to {MAX_ARGS_CAP}",
                self.max_args
            )));
        }
        if self.arg_len == 0 || self.arg_len > MAX_ARG_LEN {
            return Err(ToolError::BadInput(format!(
                "--arg-len {}: expected 1 to {MAX_ARG_LEN} bytes",
                self.arg_len
            )));
        }
        if let Some(path) = &self.filters.cgroup {
            probe::cgroup_id(path)?;
            let canon = std::fs::canonicalize(path)
                .map_err(|e| ToolError::BadInput(format!("--cgroup {}: {e}", path.display())))?;
            let root = cgroup2_root().unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
            let rel = canon
                .strip_prefix(&root)
                .map(|r| format!("/{}", r.display()))
                .map_err(|_| {
                    ToolError::BadInput(format!(
                        "--cgroup {}: not under the cgroup v2 hierarchy at {}",
                        path.display(),
                        root.display()
                    ))
                })?;
            self.filters.cgroup_rel = Some(if rel == "/" {
                rel
            } else {
                rel.trim_end_matches('/').to_string()
            });
        }
        Ok(())
    }

    fn params(&self) -> Vec<(&'static str, u32)> {
        let f = &self.filters;
        let mut bits = 0;
        if f.uid.is_some() {
            bits |= event::FILTER_UID;
        }
        if f.ppid.is_some() {
            bits |= event::FILTER_PPID;
        }
        if f.cgroup.is_some() {
            bits |= event::FILTER_CGROUP;
        }
        if f.failed_only {
            bits |= event::FILTER_FAILED;
        }
        if !self.containers.selector.is_empty() {
            bits |= event::FILTER_CONTAINER;
        }
        // Exits matter only for JSON `exited` events.
        let exits = self.stream.json && !f.failed_only;
        let p = |n: &'static str, v: u32| (n, v);
        vec![
            p("esnp_filters", bits),
            p("esnp_uid", f.uid.unwrap_or(0)),
            p("esnp_ppid", f.ppid.unwrap_or(0)),
            p("esnp_max_args", self.max_args),
            p("esnp_arg_len", self.arg_len),
            p("esnp_wakeup_bytes", self.stream.wakeup_param()),
            p("esnp_exits", u32::from(exits)),
        ]
    }
}

/// Where cgroup v2 is mounted, from /proc/self/mountinfo.
fn cgroup2_root() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// Traces until `stop` is raised, the duration ends or the output closes.
pub fn run(cfg: &Config, stop: Arc<AtomicBool>, out: Sink) -> Result<Summary, ToolError> {
    let metrics = Metrics::new(TOOL, cfg.stream.metrics_addr)?;
    let mut containers = Containers::start(TOOL, &cfg.containers)?;
    let probe = Probe::load(TOOL, OBJECT, &cfg.params(), cfg.stream.ring_bytes)?;
    if let Some(path) = &cfg.filters.cgroup {
        probe.set_cgroup("cgroup_filter", path)?;
    }
    containers.attach_filter(&probe)?;
    let container_filter = containers.filtering();
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
    let mode = if cfg.stream.json {
        Mode::Json
    } else {
        Mode::Table(table)
    };
    let tracker = RefCell::new(Tracker::new(mode, &cfg.filters, &out, &metrics, containers));
    let mut builder = ConsumerBuilder::new();
    let unread = builder.ring_buffer(&events_map, |data| tracker.borrow_mut().on_record(data))?;
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
    // Attached first, then the snapshot: a process cannot fall between the two.
    if cfg.stream.json && cfg.snapshot && !cfg.filters.failed_only {
        let list = proc::snapshot(cfg.max_args as usize, cfg.arg_len as usize);
        let shown = tracker.borrow_mut().snapshot(list);
        let f = &cfg.filters;
        if f.uid.is_some() || f.ppid.is_some() || f.cgroup.is_some() || container_filter {
            // The probe sends exits of shown processes only: tell it about these.
            let tracked = probe.map("tracked")?;
            for pid in shown {
                // A process gone meanwhile costs nothing; a full map only its `exited`.
                let _ = tracked.update(&pid.to_ne_bytes(), &[1u8], libbpf_rs::MapFlags::ANY);
            }
        }
    }
    out.borrow_mut().flush();
    eprintln!(
        "{TOOL}: tracing ({} programs attached); Ctrl-C to stop",
        probe.attached().len()
    );

    let lc = cfg.stream.loop_config(TOOL, stop);
    // A lost exit would leave its process in the table for good (and a reused pid would
    // inherit it): after losses, drop the entries of processes that are gone.
    let prune = || tracker.borrow_mut().prune();
    let on_poll = || tracker.borrow_mut().on_poll();
    let s = report::run_loop(&lc, &consumer, &loss, &metrics, &out, &prune, &on_poll)?;
    let t = tracker.borrow();
    Ok(Summary {
        events: t.events,
        lost: s.lost,
        decode_errors: t.decode_errors,
        dropped: s.dropped,
    })
}
