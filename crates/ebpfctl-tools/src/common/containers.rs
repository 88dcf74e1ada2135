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
/// Verdicts and shown entries of cgroups that are gone are dropped once this share of the
/// kernel map is used, at most every [`PRUNE_EVERY`]: a node's containers come and go, and
/// a full map would pass every new cgroup's events up to user space.
const PRUNE_SHARE: (usize, usize) = (7, 8);
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// `--containers auto|always|never`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Show {
    /// Events in a container carry it, from whenever the first container appears (a
    /// runtime started after the tool, the first container of a fresh host); tables keep
    /// their classic layout unless a container filter is given.
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
    /// `written` or `shown` this large: prune them (see [`PRUNE_SHARE`]).
    prune_at: usize,
    last_prune: Option<Instant>,
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
            prune_at: usize::MAX,
            last_prune: None,
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
        // Auto as always: an event outside containers has no entry and prints none, and a
        // host without containers at start (a node whose runtime starts later, a fresh
        // machine) still gets its first container's events with it.
        let show = opts.show != Show::Never;
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
        self.use_verdicts(h);
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

    /// Writes verdicts into `h` (a hash of cgroup id → show), pruned at 7/8 of its size.
    fn use_verdicts(&mut self, h: MapHandle) {
        let max = h.max_entries() as usize;
        self.prune_at = (max * PRUNE_SHARE.0 / PRUNE_SHARE.1).max(1);
        self.verdicts = Some(h);
    }

    fn write(&mut self, id: u64, show: bool) {
        if self.written.get(&id) == Some(&show) {
            return;
        }
        self.prune_if_due();
        if let Some(m) = &self.verdicts {
            // A full map only means more events reach user space, which decides the same.
            if m.update(&id.to_ne_bytes(), &[u8::from(show)], MapFlags::ANY)
                .is_ok()
            {
                self.written.insert(id, show);
            }
        }
    }

    /// Forgets the cgroups that are gone (by one walk of the cgroup tree): their verdicts in
    /// the kernel map and here, and the entries they were shown with. An event of such a
    /// cgroup still in the ring is decided again, without its container.
    fn prune_if_due(&mut self) {
        if self.written.len().max(self.shown.len()) < self.prune_at
            || self.last_prune.is_some_and(|t| t.elapsed() < PRUNE_EVERY)
        {
            return;
        }
        self.last_prune = Some(Instant::now());
        let Some(live) = self.resolver().map(|r| r.cgroupfs().walk()) else {
            return;
        };
        let gone: Vec<u64> = self
            .written
            .keys()
            .filter(|id| !live.contains_key(id))
            .copied()
            .collect();
        for id in &gone {
            if let Some(m) = &self.verdicts {
                let _ = m.delete(&id.to_ne_bytes());
            }
            self.written.remove(id);
        }
        self.shown.retain(|id, _| live.contains_key(id));
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

#[cfg(test)]
mod tests {
    use super::*;
    use ebpfctl_container::runtime::Paths;
    use ebpfctl_container::testing::Tree;
    use ebpfctl_container::CgroupFs;
    use std::path::PathBuf;

    /// Options whose resolver finds no runtime (paths that do not exist); as root, since
    /// the tests make cgroups.
    fn no_runtimes() -> ContainerOptions {
        // SAFETY: geteuid has no arguments and cannot fail.
        assert_eq!(unsafe { libc::geteuid() }, 0, "makes cgroups: run as root");
        let none = PathBuf::from("/nonexistent/ebpfctl-test");
        ContainerOptions {
            resolver: ResolverOptions {
                paths: Paths {
                    containerd: none.join("containerd.sock"),
                    storage: vec![none.join("storage")],
                    docker: none.join("docker"),
                    timeout: Duration::from_millis(200),
                },
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// A host with no runtime and no container at start (a node whose runtime starts after
    /// the tool, a fresh machine): the first container that appears is still shown. Before,
    /// auto was decided at start and its events printed without their container.
    #[test]
    fn auto_shows_a_container_that_appears_after_start() {
        let opts = no_runtimes();
        assert_eq!(opts.show, Show::Auto);
        let mut c = Containers::start("test", &opts).unwrap();
        assert!(c.active() && c.show, "auto shows containers");
        assert!(!c.column, "auto alone keeps the classic table layout");
        let fs = CgroupFs::open().unwrap();
        let id: String = std::iter::repeat_n('a', 64).collect();
        let path = format!("docker/{id}");
        let tree = Tree::new(&fs, &[&path]);
        let cg = fs.id_of(&tree.rel(&path)).unwrap();
        let e = c.entry(cg).expect("the new container's entry");
        assert_eq!(e.container.id, id);
        let mut line = Vec::new();
        json_member(&mut line, Some(&e));
        assert!(
            String::from_utf8_lossy(&line).contains(&id),
            "{}",
            String::from_utf8_lossy(&line)
        );
        drop(tree);
    }

    /// The kernel's verdict map does not fill up with cgroups that are gone: with 16 slots,
    /// 10 verdicts of cgroups since removed and 10 of live ones all fit, and only the live
    /// ones stay (here and in the kernel).
    #[test]
    fn verdicts_of_cgroups_that_are_gone_are_pruned() {
        let mut opts = no_runtimes();
        opts.selector.containers = vec!["ebpfctl-no-such-container".into()];
        opts.quiet_unmatched = true;
        let mut c = Containers::start("test", &opts).unwrap();
        let map = MapHandle::create(
            libbpf_rs::MapType::Hash,
            Some("ebpfctl_cgf_test"),
            8,
            1,
            16,
            &libbpf_rs::libbpf_sys::bpf_map_create_opts {
                sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
                ..Default::default()
            },
        )
        .expect("a 16-entry hash map");
        c.use_verdicts(map);
        let fs = CgroupFs::open().unwrap();
        let names: Vec<String> = (0..10).map(|i| format!("cg{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let ids =
            |t: &Tree| -> Vec<u64> { names.iter().map(|n| fs.id_of(&t.rel(n)).unwrap()).collect() };
        let old = Tree::new(&fs, &names);
        let gone = ids(&old);
        for &id in &gone {
            assert_eq!(c.admit(id), Verdict::No);
        }
        drop(old);
        let new = Tree::new(&fs, &names);
        let live = ids(&new);
        for &id in &live {
            assert_eq!(c.admit(id), Verdict::No);
        }
        let m = c.verdicts.as_ref().unwrap();
        let mut in_kernel: Vec<u64> = m
            .keys()
            .map(|k| u64::from_ne_bytes(k.try_into().unwrap()))
            .collect();
        in_kernel.sort_unstable();
        let mut want = live.clone();
        want.sort_unstable();
        assert_eq!(
            in_kernel, want,
            "the kernel map holds the live cgroups only"
        );
        assert_eq!(c.written.len(), 10);
        assert!(gone.iter().all(|id| !c.written.contains_key(id)));
        drop(new);
    }
}
