//! What the tools share about containers (docs/containers.md): whether to show them, the
//! `--container/--pod/--namespace` filter with its kernel verdict map, events that wait for a
//! new container's names, host paths of container paths, and metric labels.
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebpfctl_container::mounts::RootMap;
use ebpfctl_container::resolver::{Entry, View};
use ebpfctl_container::select::Verdict;
use ebpfctl_container::{Resolver, ResolverOptions, Selector};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::probe::Probe;
use super::ToolError;

/// The map `EBPFCTL_CGROUP_FILTER` declares (include/ebpfctl.h).
pub const FILTER_MAP: &str = "ebpfctl_cgroup_filter";

/// How long an event of a new container waits for its names, and how many per container.
const HOLD_FOR: Duration = Duration::from_secs(1);
const HOLD_MAX: usize = 1024;

/// `--containers auto|always|never`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Show {
    /// When this host has containers (a runtime's state, or a container cgroup at start).
    #[default]
    Auto,
    Always,
    Never,
}

/// What a tool was asked about containers.
#[derive(Debug, Clone, Default)]
pub struct ContainerOptions {
    pub show: Show,
    pub selector: Selector,
    /// `container`, `pod`, `namespace` labels on the tool's metrics.
    pub metric_labels: bool,
    /// Runtimes' sockets and state (default: theirs).
    pub resolver: ResolverOptions,
    /// Say nothing when no running container matches the filter (the caller fails then).
    pub quiet_unmatched: bool,
}

impl ContainerOptions {
    /// Whether anything needs the resolver.
    pub fn wanted(&self) -> bool {
        self.show != Show::Never || !self.selector.is_empty() || self.metric_labels
    }
}

/// A tool's container state, used from its event thread.
pub struct Containers {
    view: Option<View>,
    /// Whether events carry a `container` member.
    pub show: bool,
    /// Whether tables have a CONTAINER column: asked for (`--containers [always]`) or a
    /// container filter given; `auto` alone keeps the classic table layout.
    pub column: bool,
    selector: Selector,
    pub metric_labels: bool,
    verdicts: Option<MapHandle>,
    /// Verdicts written into the kernel map (cgroup id → show).
    written: HashMap<u64, bool>,
    /// The container each shown cgroup was admitted for: its events print with it even
    /// when the resolver no longer answers for the cgroup (gone by the time its late
    /// events are read).
    shown: HashMap<u64, Arc<Entry>>,
    /// Events of containers whose names are not known yet: (cgroup id, since, record).
    held: VecDeque<(u64, Instant, Vec<u8>)>,
    held_per: HashMap<u64, usize>,
    roots: HashMap<String, Option<RootMap>>,
}

impl Containers {
    /// No containers: nothing shown, nothing filtered.
    pub fn off() -> Containers {
        Containers {
            view: None,
            show: false,
            column: false,
            selector: Selector::default(),
            metric_labels: false,
            verdicts: None,
            written: HashMap::new(),
            shown: HashMap::new(),
            held: VecDeque::new(),
            held_per: HashMap::new(),
            roots: HashMap::new(),
        }
    }

    /// Starts the resolver (when anything needs it) and scans the host's containers once,
    /// so that filters know every running container's names before the first event.
    pub fn start(tool: &str, opts: &ContainerOptions) -> Result<Containers, ToolError> {
        if !opts.wanted() {
            return Ok(Containers::off());
        }
        let resolver = match Resolver::start(opts.resolver.clone()) {
            Ok(r) => Arc::new(r),
            Err(e)
                if opts.show == Show::Auto && opts.selector.is_empty() && !opts.metric_labels =>
            {
                eprintln!("{tool}: containers are not shown: {e}");
                return Ok(Containers::off());
            }
            Err(e) => return Err(ToolError::BadInput(format!("containers: {e}"))),
        };
        let found = resolver.scan();
        let show = match opts.show {
            Show::Always => true,
            Show::Never => false,
            Show::Auto => !found.is_empty() || resolver.containers_present(),
        };
        if !opts.selector.is_empty()
            && !opts.quiet_unmatched
            && !found
                .iter()
                .any(|(_, e)| opts.selector.verdict(Some(&e.container)) == Verdict::Yes)
        {
            eprintln!("{tool}: no running container matches the container filter yet");
        }
        Ok(Containers {
            view: Some(resolver.view()),
            show,
            column: show && (opts.show == Show::Always || !opts.selector.is_empty()),
            selector: opts.selector.clone(),
            metric_labels: opts.metric_labels,
            ..Containers::off()
        })
    }

    /// Whether a container filter is given.
    pub fn filtering(&self) -> bool {
        !self.selector.is_empty()
    }

    /// Whether the resolver runs.
    pub fn active(&self) -> bool {
        self.view.is_some()
    }

    pub fn resolver(&self) -> Option<&Arc<Resolver>> {
        self.view.as_ref().map(View::resolver)
    }

    /// Takes the probe's verdict map and writes the verdicts of every known container
    /// (and of the cgroups seen so far).
    pub fn attach_filter(&mut self, probe: &Probe) -> Result<(), ToolError> {
        if !self.filtering() {
            return Ok(());
        }
        let map = probe.map(FILTER_MAP)?;
        let h = MapHandle::try_from(&map).map_err(|source| ToolError::Map {
            what: format!("{}: opening {FILTER_MAP}", probe.tool),
            source,
        })?;
        self.verdicts = Some(h);
        let known = self.resolver().map(|r| r.known()).unwrap_or_default();
        for (id, e) in known {
            match self.selector.verdict(Some(&e.container)) {
                Verdict::Yes => self.show_cgroup(id, e),
                Verdict::No => self.write(id, false),
                Verdict::Unknown => {}
            }
        }
        Ok(())
    }

    fn write(&mut self, id: u64, show: bool) {
        if self.written.get(&id) == Some(&show) {
            return;
        }
        if let Some(m) = &self.verdicts {
            // A full map only means more events reach user space, which decides the same.
            if m.update(&id.to_ne_bytes(), &[u8::from(show)], MapFlags::ANY)
                .is_ok()
            {
                self.written.insert(id, show);
            }
        }
    }

    fn show_cgroup(&mut self, id: u64, e: Arc<Entry>) {
        self.shown.insert(id, e);
        self.write(id, true);
    }

    /// The container of a cgroup id (never waits for a runtime).
    #[inline]
    pub fn entry(&mut self, cgroup_id: u64) -> Option<Arc<Entry>> {
        match self.view.as_mut()?.get(cgroup_id) {
            Some(e) => Some(Arc::clone(e)),
            None => self.shown.get(&cgroup_id).cloned(),
        }
    }

    /// The filter's verdict for an event of cgroup `id`; a decided verdict is written to
    /// the kernel so that later events of that cgroup are filtered there.
    pub fn admit(&mut self, id: u64) -> Verdict {
        if !self.filtering() {
            return Verdict::Yes;
        }
        if let Some(&v) = self.written.get(&id) {
            return if v { Verdict::Yes } else { Verdict::No };
        }
        let e = self.entry(id);
        let v = self.selector.verdict(e.as_ref().map(|e| &e.container));
        match (v, e) {
            (Verdict::Yes, Some(e)) => self.show_cgroup(id, e),
            (Verdict::Yes, None) => self.write(id, true),
            (Verdict::No, _) => self.write(id, false),
            (Verdict::Unknown, _) => {}
        }
        v
    }

    /// Whether events of cgroup `id` are waiting (later ones wait behind them).
    pub fn holding(&self, id: u64) -> bool {
        !self.held.is_empty() && self.held_per.contains_key(&id)
    }

    /// Keeps an event of a container whose names are not known yet.
    pub fn hold(&mut self, id: u64, record: &[u8]) {
        let n = self.held_per.entry(id).or_default();
        if *n >= HOLD_MAX {
            return;
        }
        *n += 1;
        self.held.push_back((id, Instant::now(), record.to_vec()));
    }

    /// Held events whose container is now decided and shown (in their order); those
    /// decided against, or waiting too long, are dropped.
    pub fn release(&mut self) -> Vec<Vec<u8>> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut keep = VecDeque::new();
        let mut verdicts: HashMap<u64, Verdict> = HashMap::new();
        for (id, since, rec) in std::mem::take(&mut self.held) {
            let v = match verdicts.get(&id) {
                Some(v) => *v,
                None => {
                    let v = self.admit(id);
                    verdicts.insert(id, v);
                    v
                }
            };
            match v {
                Verdict::Yes => out.push(rec),
                Verdict::No => {}
                Verdict::Unknown if since.elapsed() >= HOLD_FOR => {}
                Verdict::Unknown => keep.push_back((id, since, rec)),
            }
        }
        self.held_per.clear();
        for (id, _, _) in &keep {
            *self.held_per.entry(*id).or_default() += 1;
        }
        self.held = keep;
        out
    }

    /// The host path of a container's absolute path, for a process of that container.
    /// `None` for processes with the host's root and when it cannot be worked out.
    pub fn host_path(&mut self, e: &Entry, pid: u32, path: &str) -> Option<String> {
        if !path.starts_with('/') {
            return None;
        }
        let root = match self.roots.get(&e.container.id) {
            Some(r) => r.clone(),
            None => {
                if !ebpfctl_container::mounts::other_root(pid) {
                    // Gone, or still on the host's root (the runtime before it switched
                    // roots): nothing to map; asked again for the next process.
                    return None;
                }
                let r = RootMap::of_pid(pid);
                if r.is_some() {
                    if self.roots.len() > 4096 {
                        self.roots.clear();
                    }
                    self.roots.insert(e.container.id.clone(), r.clone());
                }
                r
            }
        };
        root?.host_path(path)
    }
}

/// Label values `container`, `pod`, `namespace` of an entry (empty outside containers).
pub fn labels(e: Option<&Entry>) -> [(String, String); 3] {
    let c = e.map(|e| &e.container);
    [
        (
            "container".to_string(),
            c.map(|c| c.display_name().to_string()).unwrap_or_default(),
        ),
        (
            "pod".to_string(),
            c.and_then(|c| c.pod.clone()).unwrap_or_default(),
        ),
        (
            "namespace".to_string(),
            c.and_then(|c| c.namespace.clone()).unwrap_or_default(),
        ),
    ]
}

/// The CONTAINER cell of a table row.
pub fn cell(e: Option<&Entry>) -> &str {
    e.map(|e| e.container.display_name()).unwrap_or("-")
}

/// Appends `,"container":{...}` for an entry.
pub fn json_member(out: &mut Vec<u8>, e: Option<&Entry>) {
    if let Some(e) = e {
        out.extend_from_slice(b",\"container\":");
        out.extend_from_slice(&e.json);
    }
}
