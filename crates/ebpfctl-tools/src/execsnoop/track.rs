//! The process table: what each live process looks like (from the snapshot or its exec),
//! so its `exited` event repeats its `started` fields. Entries leave when processes exit.
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use ebpfctl_container::resolver::Entry;
use ebpfctl_container::select::Verdict;

use ebpfctl_core::decode::time::ktime_to_unix_ns;
use prometheus_client::metrics::counter::Counter;

use super::event::{Exec, Exit, Record, F_EXECVEAT};
use super::print::{self, Happening, TableStyle};
use super::proc::ProcInfo;
use super::Filters;
use crate::common::containers::{self, Containers};
use crate::common::fmt::cstr;
use crate::common::report::{Metrics, Output};

/// Where a table entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Snapshot,
    Exec,
    Execveat,
    /// Never seen exec'ing: a child that kept its parent's program.
    Fork,
}

#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub tid: Option<u32>,
    pub start_unix_ns: i128,
    pub parent_comm: String,
    pub comm: String,
    pub exe: String,
    pub args: Vec<String>,
    pub args_truncated: bool,
    pub cgroup_id: Option<u64>,
    pub source: Source,
    /// Its container, when containers are shown.
    pub container: Option<Arc<Entry>>,
    /// `exe` on the host, for a process in a container (another mount namespace).
    pub host_exe: Option<String>,
}

pub enum Mode {
    Json,
    Table(TableStyle),
}

/// Turns records into output lines.
pub struct Tracker<'a> {
    pub mode: Mode,
    pub filters: &'a Filters,
    procs: HashMap<u32, Proc>,
    out: &'a RefCell<Output>,
    buf: Vec<u8>,
    started: Counter,
    exited: Counter,
    errors: Counter,
    start_unix_ns: i128,
    pub decode_errors: u64,
    pub events: u64,
    pub containers: Containers,
    /// Any filter at all (user space, kernel or container): exits only of shown processes.
    filtered: bool,
    /// With container labels: counters per (kind, cgroup id).
    labelled: HashMap<(&'static str, u64), Counter>,
    metrics_events: prometheus_client::metrics::family::Family<Vec<(String, String)>, Counter>,
}

impl<'a> Tracker<'a> {
    pub fn new(
        mode: Mode,
        filters: &'a Filters,
        out: &'a RefCell<Output>,
        metrics: &Metrics,
        containers: Containers,
    ) -> Self {
        let with_labels = containers.metric_labels;
        let counter = |t: &str| {
            let mut l = vec![("type".to_string(), t.to_string())];
            if with_labels {
                // The series of processes outside containers: empty container labels.
                l.extend(containers::labels(None));
            }
            metrics.events.get_or_create(&l).clone()
        };
        Self {
            mode,
            filters,
            procs: HashMap::new(),
            out,
            buf: Vec::with_capacity(4096),
            started: counter("started"),
            exited: counter("exited"),
            errors: counter("error"),
            start_unix_ns: ktime_to_unix_ns(ebpfctl_core::decode::time::monotonic_now_ns()),
            decode_errors: 0,
            events: 0,
            filtered: filters.any() || containers.filtering(),
            containers,
            labelled: HashMap::new(),
            metrics_events: metrics.events.clone(),
        }
    }

    /// Counts one event of `kind` ("started", "exited", "error") of cgroup `cg`.
    fn count(&mut self, kind: &'static str, cg: Option<u64>) {
        if !self.containers.metric_labels {
            match kind {
                "started" => self.started.inc(),
                "exited" => self.exited.inc(),
                _ => self.errors.inc(),
            };
            return;
        }
        let cg = cg.unwrap_or(0);
        let entry = if cg == 0 {
            None
        } else {
            self.containers.entry(cg)
        };
        let family = &self.metrics_events;
        self.labelled
            .entry((kind, cg))
            .or_insert_with(|| {
                let mut l = vec![("type".to_string(), kind.to_string())];
                l.extend(containers::labels(entry.as_deref()));
                family.get_or_create(&l).clone()
            })
            .inc();
    }

    /// The container of cgroup `cg`, when containers are shown.
    fn container_of(&mut self, cg: u64) -> Option<Arc<Entry>> {
        if self.containers.show {
            self.containers.entry(cg)
        } else {
            None
        }
    }

    /// Forgets processes that no longer exist (their exit record was lost).
    pub fn prune(&mut self) {
        self.procs
            .retain(|pid, _| std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    fn emit(&mut self) {
        if !self.buf.is_empty() {
            self.out.borrow_mut().line(&self.buf);
        }
        self.buf.clear();
        self.events += 1;
    }

    /// One `started` per running process that passes the filters; returns their pids.
    pub fn snapshot(&mut self, list: Vec<ProcInfo>) -> Vec<u32> {
        let mut shown = Vec::new();
        let comms: HashMap<u32, String> = list.iter().map(|p| (p.pid, p.comm.clone())).collect();
        let resolver = self.containers.resolver().cloned();
        for pi in list {
            let entry = match (&resolver, &pi.cgroup) {
                (Some(r), Some(path)) => r.get_path(path),
                _ => None,
            };
            let cgroup_id = match (&resolver, &pi.cgroup) {
                (Some(r), Some(path)) => r.cgroupfs().id_of(path).ok(),
                _ => None,
            };
            if self.containers.filtering()
                && cgroup_id.is_none_or(|cg| self.containers.admit(cg) != Verdict::Yes)
            {
                continue;
            }
            let shown_entry = if self.containers.show { entry } else { None };
            let host_exe = match &shown_entry {
                Some(e) => self.containers.host_path(e, pi.pid, &pi.exe),
                None => None,
            };
            let p = Proc {
                pid: pi.pid,
                ppid: pi.ppid,
                uid: pi.uid,
                gid: pi.gid,
                tid: None,
                start_unix_ns: pi.start_unix_ns,
                parent_comm: comms.get(&pi.ppid).cloned().unwrap_or_default(),
                comm: pi.comm,
                exe: pi.exe,
                args: pi.args,
                args_truncated: pi.args_truncated,
                cgroup_id,
                source: Source::Snapshot,
                container: shown_entry,
                host_exe,
            };
            if !self.filters.snapshot_passes(&p, pi.cgroup.as_deref()) {
                continue;
            }
            if let Mode::Json = self.mode {
                print::json(&mut self.buf, &p, &Happening::Started);
                self.emit();
                self.count("started", p.cgroup_id);
            }
            shown.push(p.pid);
            self.procs.insert(p.pid, p);
        }
        shown
    }

    /// A ring buffer record.
    pub fn on_record(&mut self, data: &[u8]) {
        let rec = match Record::parse(data) {
            Ok(r) => r,
            Err(_) => {
                self.decode_errors += 1;
                return;
            }
        };
        let cg = match &rec {
            Record::Exec(e) => e.cgroup_id,
            Record::Exit(x) => x.cgroup_id,
        };
        if self.containers.holding(cg) {
            // Behind events of that cgroup that wait: keep the order.
            self.containers.hold(cg, data);
            return;
        }
        if let Record::Exec(_) = rec {
            match self.containers.admit(cg) {
                Verdict::Yes => {}
                Verdict::No => return,
                Verdict::Unknown => {
                    // A new container whose names are not known yet: decided once they are.
                    self.containers.hold(cg, data);
                    return;
                }
            }
        }
        self.dispatch(&rec);
    }

    fn dispatch(&mut self, rec: &Record<'_>) {
        match rec {
            Record::Exec(e) => self.on_exec(e),
            Record::Exit(x) => self.on_exit(x),
        }
    }

    /// Records that waited for their container's names, now shown (or dropped).
    pub fn on_poll(&mut self) {
        for data in self.containers.release() {
            if let Ok(rec) = Record::parse(&data) {
                self.dispatch(&rec);
            }
        }
    }

    fn on_exec(&mut self, e: &Exec<'_>) {
        let args: Vec<String> = e.args().map(|a| a.into_owned()).collect();
        let container = self.container_of(e.cgroup_id);
        let mut p = Proc {
            pid: e.pid,
            ppid: e.ppid,
            uid: e.uid,
            gid: e.gid,
            tid: Some(e.tid),
            start_unix_ns: ktime_to_unix_ns(e.enter_ns),
            parent_comm: cstr(e.parent_comm).into_owned(),
            comm: cstr(e.comm).into_owned(),
            exe: match (e.ret, e.exe()) {
                (0, Some(x)) => x,
                _ => e.filename().into_owned(),
            },
            args,
            args_truncated: e.truncated(),
            cgroup_id: Some(e.cgroup_id),
            source: if e.flags & F_EXECVEAT != 0 {
                Source::Execveat
            } else {
                Source::Exec
            },
            container: None,
            host_exe: None,
        };
        if let (Some(c), 0) = (&container, e.ret) {
            p.host_exe = self.containers.host_path(c, e.pid, &p.exe);
        }
        p.container = container;
        if !self.filters.user_passes(&p) {
            // A process we show no more (it exec'd into something filtered out).
            self.procs.remove(&p.pid);
            return;
        }
        match &self.mode {
            Mode::Json => {
                let what = if e.ret == 0 {
                    Happening::Started
                } else {
                    Happening::Error { code: e.ret }
                };
                print::json(&mut self.buf, &p, &what);
            }
            Mode::Table(style) if self.out.borrow().is_live() => {
                let ev = print::live_event(style, &p, e.ret);
                self.out.borrow_mut().event(ev);
            }
            Mode::Table(style) => {
                let since = p.start_unix_ns - self.start_unix_ns;
                print::table_row(&mut self.buf, style, &p, e.ret, since);
            }
        }
        self.emit();
        if e.ret == 0 {
            self.count("started", Some(e.cgroup_id));
            if let Mode::Json = self.mode {
                self.procs.insert(p.pid, p);
            }
        } else {
            self.count("error", Some(e.cgroup_id));
        }
    }

    fn on_exit(&mut self, x: &Exit<'_>) {
        let Mode::Json = self.mode else { return };
        let p = match self.procs.remove(&x.pid) {
            Some(p) => p,
            // Filters on: only processes whose `started` was shown get an `exited`.
            None if self.filtered => return,
            None => {
                // Never seen exec'ing: it runs its parent's program.
                let container = self.container_of(x.cgroup_id);
                let parent = self.procs.get(&x.ppid);
                let comm = cstr(x.comm).into_owned();
                Proc {
                    pid: x.pid,
                    ppid: x.ppid,
                    uid: x.uid,
                    gid: x.gid,
                    tid: None,
                    start_unix_ns: ktime_to_unix_ns(x.start_ns),
                    parent_comm: cstr(x.parent_comm).into_owned(),
                    exe: parent.map(|p| p.exe.clone()).unwrap_or_default(),
                    args: parent
                        .map(|p| p.args.clone())
                        .unwrap_or_else(|| vec![comm.clone()]),
                    args_truncated: parent.is_some_and(|p| p.args_truncated),
                    comm,
                    cgroup_id: Some(x.cgroup_id),
                    source: Source::Fork,
                    host_exe: parent.and_then(|p| p.host_exe.clone()),
                    container,
                }
            }
        };
        print::json(
            &mut self.buf,
            &p,
            &Happening::Exited {
                end_unix_ns: ktime_to_unix_ns(x.exit_ns),
                status: x.exit_code,
            },
        );
        self.emit();
        self.count("exited", p.cgroup_id);
    }
}
