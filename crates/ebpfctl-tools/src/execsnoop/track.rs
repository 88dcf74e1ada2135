//! The process table: what each live process looks like (from the snapshot or its exec),
//! so its `exited` event repeats its `started` fields. Entries leave when processes exit.
use std::cell::RefCell;
use std::collections::HashMap;

use ebpfctl_core::decode::time::ktime_to_unix_ns;
use prometheus_client::metrics::counter::Counter;

use super::event::{Exec, Exit, Record, F_EXECVEAT};
use super::print::{self, Happening, TableStyle};
use super::proc::ProcInfo;
use super::Filters;
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
}

impl<'a> Tracker<'a> {
    pub fn new(
        mode: Mode,
        filters: &'a Filters,
        out: &'a RefCell<Output>,
        metrics: &Metrics,
    ) -> Self {
        let counter = |t: &str| {
            metrics
                .events
                .get_or_create(&vec![("type".to_string(), t.to_string())])
                .clone()
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
        }
    }

    /// Forgets processes that no longer exist (their exit record was lost).
    pub fn prune(&mut self) {
        self.procs
            .retain(|pid, _| std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    fn emit(&mut self) {
        self.out.borrow_mut().line(&self.buf);
        self.buf.clear();
        self.events += 1;
    }

    /// One `started` per running process that passes the filters; returns their pids.
    pub fn snapshot(&mut self, list: Vec<ProcInfo>) -> Vec<u32> {
        let mut shown = Vec::new();
        let comms: HashMap<u32, String> = list.iter().map(|p| (p.pid, p.comm.clone())).collect();
        for pi in list {
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
                cgroup_id: None,
                source: Source::Snapshot,
            };
            if !self.filters.snapshot_passes(&p, pi.cgroup.as_deref()) {
                continue;
            }
            if let Mode::Json = self.mode {
                print::json(&mut self.buf, &p, &Happening::Started);
                self.emit();
                self.started.inc();
            }
            shown.push(p.pid);
            self.procs.insert(p.pid, p);
        }
        shown
    }

    /// A ring buffer record.
    pub fn on_record(&mut self, data: &[u8]) {
        match Record::parse(data) {
            Ok(Record::Exec(e)) => self.on_exec(&e),
            Ok(Record::Exit(x)) => self.on_exit(&x),
            Err(_) => self.decode_errors += 1,
        }
    }

    fn on_exec(&mut self, e: &Exec<'_>) {
        let args: Vec<String> = e.args().map(|a| a.into_owned()).collect();
        let p = Proc {
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
        };
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
            Mode::Table(style) => {
                let since = p.start_unix_ns - self.start_unix_ns;
                print::table_row(&mut self.buf, style, &p, e.ret, since);
            }
        }
        self.emit();
        if e.ret == 0 {
            self.started.inc();
            if let Mode::Json = self.mode {
                self.procs.insert(p.pid, p);
            }
        } else {
            self.errors.inc();
        }
    }

    fn on_exit(&mut self, x: &Exit<'_>) {
        let Mode::Json = self.mode else { return };
        let p = match self.procs.remove(&x.pid) {
            Some(p) => p,
            // Filters on: only processes whose `started` was shown get an `exited`.
            None if self.filters.any() => return,
            None => {
                // Never seen exec'ing: it runs its parent's program.
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
        self.exited.inc();
    }
}
