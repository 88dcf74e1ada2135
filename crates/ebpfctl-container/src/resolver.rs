//! The cache from cgroup id to container, and the thread that fills it.
//!
//! On the event path ([`View::get`]): a hash lookup in a cache local to the caller; on a
//! miss, the shared cache; on a miss there, the cgroup's path by its file handle (one
//! syscall, microseconds) and its shape (string work). A container found so is returned at
//! once with its runtime and id; its names and Kubernetes labels are asked of the runtime
//! by the resolver's own thread, and later lookups see them ([`Resolver::generation`]
//! changes). Nothing on the event path waits for a runtime.
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cgroupfs::CgroupFs;
use crate::runtime::{Meta, Paths, Runtimes};
use crate::shape::{self, Shape};
use crate::{json, Container, Error};

/// What the cache holds for one cgroup id.
#[derive(Debug, Clone)]
pub enum Slot {
    /// Not a container's cgroup (the host, a system service).
    Host,
    /// Its path is not known yet (no file handles here: a walk of the tree is on its way).
    Pending,
    Container(Arc<Entry>),
}

/// A container as the event path uses it: the data and its JSON object, rendered once.
#[derive(Debug)]
pub struct Entry {
    pub container: Container,
    /// `{"runtime":…,"id":…,…}`
    pub json: Vec<u8>,
    /// The container's own cgroup (the path component that named it and above).
    pub cgroup: String,
}

impl Entry {
    fn new(container: Container, cgroup: String) -> Arc<Entry> {
        Arc::new(Entry {
            json: json::render(&container),
            container,
            cgroup,
        })
    }
}

/// Settings of a [`Resolver`].
#[derive(Debug, Clone, Default)]
pub struct ResolverOptions {
    /// The runtimes' sockets and state directories.
    pub paths: Paths,
    /// The cgroup v2 mount (default: from /proc/self/mountinfo).
    pub cgroup_root: Option<PathBuf>,
    /// Never use file handles (tests of the walk).
    pub no_handles: bool,
}

enum Job {
    /// Ask the runtimes about the container of this cgroup (attempt number).
    Meta(u64, Shape, u32, Instant),
    Walk,
}

struct State {
    slots: HashMap<u64, Slot>,
    queue: VecDeque<Job>,
    last_walk: Option<Instant>,
}

struct Shared {
    fs: CgroupFs,
    handles: bool,
    /// containerd's state directory (the socket's), for `/<namespace>/<id>` confirmation.
    containerd_state: Option<PathBuf>,
    paths: Paths,
    state: Mutex<State>,
    wake: Condvar,
    generation: AtomicU64,
    stop: AtomicBool,
    lookups: AtomicU64,
}

/// Container resolution for one process; the thread stops on drop.
pub struct Resolver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Retries of a runtime that did not know a container yet (it may be being created).
const META_ATTEMPTS: u32 = 3;
const META_RETRY: Duration = Duration::from_millis(300);
/// Walks of the whole tree (no file handles) at most this often.
const WALK_EVERY: Duration = Duration::from_millis(200);
/// Above this many cached cgroups, those that no longer exist are forgotten.
const MAX_SLOTS: usize = 65536;

impl Resolver {
    /// Starts the resolver thread.
    pub fn start(opts: ResolverOptions) -> Result<Resolver, Error> {
        let fs = match &opts.cgroup_root {
            Some(r) => CgroupFs::at(r)?,
            None => CgroupFs::open()?,
        };
        let handles = !opts.no_handles && fs.handles_work();
        let runtimes = Runtimes::new(opts.paths.clone());
        let shared = Arc::new(Shared {
            fs,
            handles,
            containerd_state: opts.paths.containerd.parent().map(PathBuf::from),
            paths: opts.paths.clone(),
            state: Mutex::new(State {
                slots: HashMap::new(),
                queue: VecDeque::new(),
                last_walk: None,
            }),
            wake: Condvar::new(),
            generation: AtomicU64::new(1),
            stop: AtomicBool::new(false),
            lookups: AtomicU64::new(0),
        });
        let s2 = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ebpfctl-containers".into())
            .spawn(move || worker(&s2, runtimes))
            .map_err(|source| Error::Io {
                path: "resolver thread".into(),
                source,
            })?;
        Ok(Resolver {
            shared,
            thread: Some(thread),
        })
    }

    /// Whether lookups by file handle work here (else the tree is walked).
    pub fn uses_handles(&self) -> bool {
        self.shared.handles
    }

    pub fn cgroupfs(&self) -> &CgroupFs {
        &self.shared.fs
    }

    /// Changes whenever an entry changes (names arrived, a walk found paths).
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Runtime lookups done so far (for tests and benchmarks).
    pub fn runtime_lookups(&self) -> u64 {
        self.shared.lookups.load(Ordering::Relaxed)
    }

    /// The container of cgroup `id`, if any (never waits for a runtime).
    pub fn get(&self, id: u64) -> Option<Arc<Entry>> {
        match self.slot(id) {
            Slot::Container(e) => Some(e),
            _ => None,
        }
    }

    /// What is known of cgroup `id`, classifying it now if it is new.
    pub fn slot(&self, id: u64) -> Slot {
        let mut st = lock(&self.shared.state);
        if let Some(s) = st.slots.get(&id) {
            return s.clone();
        }
        let slot = if self.shared.handles {
            match self.shared.fs.path_by_handle(id) {
                Ok(Some(path)) => classify(&self.shared, &mut st, id, &path),
                // Gone already, or never a cgroup: nothing to say, and nothing to cache
                // (the id would not come back).
                Ok(None) => return Slot::Host,
                Err(_) => Slot::Pending,
            }
        } else {
            Slot::Pending
        };
        if matches!(slot, Slot::Pending) {
            st.queue.push_back(Job::Walk);
            self.shared.wake.notify_one();
        }
        if st.slots.len() >= MAX_SLOTS {
            let fs = &self.shared.fs;
            st.slots.retain(|id, s| match s {
                Slot::Container(e) => {
                    fs.dir_of(&e.cgroup).exists() || fs.path_by_handle(*id).ok().flatten().is_some()
                }
                _ => fs.path_by_handle(*id).ok().flatten().is_some(),
            });
        }
        st.slots.insert(id, slot.clone());
        slot
    }

    /// The container of a cgroup given by its path (e.g. from /proc/PID/cgroup).
    pub fn get_path(&self, path: &str) -> Option<Arc<Entry>> {
        let id = self.shared.fs.id_of(path).ok()?;
        {
            let mut st = lock(&self.shared.state);
            if !st.slots.contains_key(&id) {
                let slot = classify(&self.shared, &mut st, id, path);
                st.slots.insert(id, slot);
            }
        }
        self.get(id)
    }

    /// The container of a process (its cgroup from /proc/PID/cgroup).
    pub fn get_pid(&self, pid: u32) -> Option<Arc<Entry>> {
        self.get_path(&crate::cgroupfs::proc_cgroup(pid)?)
    }

    /// Walks the whole tree now and asks the runtimes about every container found, on this
    /// thread (start-up: filters need the names before the first event). Returns the
    /// containers by cgroup id.
    pub fn scan(&self) -> Vec<(u64, Arc<Entry>)> {
        let all = self.shared.fs.walk();
        let mut runtimes = Runtimes::new(self.shared.paths.clone());
        let mut out = Vec::new();
        for (id, path) in all {
            let known = {
                let st = lock(&self.shared.state);
                st.slots.get(&id).cloned()
            };
            let slot = match known {
                Some(Slot::Container(e)) if e.container.resolved => Slot::Container(e),
                _ => match resolve_now(&self.shared, &mut runtimes, &path) {
                    Some(e) => Slot::Container(e),
                    None => Slot::Host,
                },
            };
            if let Slot::Container(e) = &slot {
                out.push((id, Arc::clone(e)));
            }
            lock(&self.shared.state).slots.insert(id, slot);
        }
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
        out
    }

    /// Every container cgroup known so far.
    pub fn known(&self) -> Vec<(u64, Arc<Entry>)> {
        lock(&self.shared.state)
            .slots
            .iter()
            .filter_map(|(id, s)| match s {
                Slot::Container(e) => Some((*id, Arc::clone(e))),
                _ => None,
            })
            .collect()
    }

    /// A cache for one thread's event path.
    pub fn view(self: &Arc<Self>) -> View {
        View {
            resolver: Arc::clone(self),
            local: IdMap::default(),
            generation: 0,
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Hashes a cgroup id (an inode number: already well spread) with one multiplication.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

/// A per-thread front of the cache: one hash lookup per event, no lock while nothing
/// changed.
pub struct View {
    resolver: Arc<Resolver>,
    local: IdMap<Option<Arc<Entry>>>,
    generation: u64,
}

impl View {
    #[inline]
    pub fn get(&mut self, id: u64) -> Option<&Arc<Entry>> {
        let g = self.resolver.generation();
        if g != self.generation {
            self.local.clear();
            self.generation = g;
        }
        use std::collections::hash_map::Entry as MapEntry;
        match self.local.entry(id) {
            MapEntry::Occupied(o) => o.into_mut().as_ref(),
            MapEntry::Vacant(v) => {
                let found = match self.resolver.slot(id) {
                    Slot::Container(e) => Some(e),
                    // Not cached locally: asked again after the walk (the generation changes).
                    Slot::Pending => return None,
                    Slot::Host => None,
                };
                v.insert(found).as_ref()
            }
        }
    }

    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The container a shape names, before any runtime was asked.
fn from_shape(s: &Shape) -> Container {
    Container {
        runtime: s.runtime,
        id: s.id.clone(),
        pod_uid: s.pod_uid.clone(),
        monitor: s.monitor,
        ..Container::default()
    }
}

fn merge(mut c: Container, m: Option<Meta>) -> Container {
    if let Some(m) = m {
        c.runtime = c.runtime.or(m.runtime);
        c.name = m.name.or(c.name);
        c.pod = m.pod.or(c.pod);
        c.namespace = m.namespace.or(c.namespace);
        c.pod_uid = c.pod_uid.or(m.pod_uid);
        c.container = m.container.or(c.container);
    }
    c.resolved = true;
    c
}

/// `/<namespace>/<id>` is a container if containerd runs a task of that name.
fn ctr_confirmed(shared: &Shared, ns: &str, id: &str) -> bool {
    let Some(state) = &shared.containerd_state else {
        return false;
    };
    [
        "io.containerd.runtime.v2.task",
        "io.containerd.runtime.v1.linux",
    ]
    .iter()
    .any(|d| state.join(d).join(ns).join(id).is_dir())
}

/// A new cgroup: its slot now, and a runtime lookup queued for a container.
fn classify(shared: &Shared, st: &mut State, id: u64, path: &str) -> Slot {
    let Some(s) = shape::parse(path) else {
        return Slot::Host;
    };
    if let Some(ns) = &s.ctr_namespace {
        if !ctr_confirmed(shared, ns, &s.id) {
            return Slot::Host;
        }
    }
    let e = Entry::new(from_shape(&s), s.cgroup.clone());
    st.queue.push_back(Job::Meta(id, s, 0, Instant::now()));
    shared.wake.notify_one();
    Slot::Container(e)
}

/// Path → container with the runtimes asked now (scan).
fn resolve_now(shared: &Shared, runtimes: &mut Runtimes, path: &str) -> Option<Arc<Entry>> {
    let s = shape::parse(path)?;
    if let Some(ns) = &s.ctr_namespace {
        if !ctr_confirmed(shared, ns, &s.id) {
            return None;
        }
    }
    shared.lookups.fetch_add(1, Ordering::Relaxed);
    let meta = runtimes.lookup(&s);
    Some(Entry::new(merge(from_shape(&s), meta), s.cgroup.clone()))
}

fn worker(shared: &Shared, mut runtimes: Runtimes) {
    loop {
        let job = {
            let mut st = lock(&shared.state);
            loop {
                if shared.stop.load(Ordering::Acquire) {
                    return;
                }
                let now = Instant::now();
                // The first job that is due.
                let due = st.queue.iter().position(|j| match j {
                    Job::Meta(_, _, _, at) => *at <= now,
                    Job::Walk => st
                        .last_walk
                        .is_none_or(|t| now.duration_since(t) >= WALK_EVERY),
                });
                if let Some(i) = due {
                    break st.queue.remove(i).expect("index from position");
                }
                let wait = if st.queue.is_empty() {
                    Duration::from_secs(1)
                } else {
                    Duration::from_millis(20)
                };
                st = shared
                    .wake
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        match job {
            Job::Meta(id, s, attempt, _) => {
                shared.lookups.fetch_add(1, Ordering::Relaxed);
                let meta = runtimes.lookup(&s);
                let unknown = meta.is_none();
                if unknown && attempt + 1 < META_ATTEMPTS {
                    let mut st = lock(&shared.state);
                    st.queue
                        .push_back(Job::Meta(id, s, attempt + 1, Instant::now() + META_RETRY));
                    continue;
                }
                let e = Entry::new(merge(from_shape(&s), meta), s.cgroup.clone());
                lock(&shared.state).slots.insert(id, Slot::Container(e));
                shared.generation.fetch_add(1, Ordering::AcqRel);
            }
            Job::Walk => {
                let all = shared.fs.walk();
                let mut st = lock(&shared.state);
                st.last_walk = Some(Instant::now());
                // Other walk requests queued meanwhile are answered by this one.
                st.queue.retain(|j| !matches!(j, Job::Walk));
                for (id, path) in all {
                    let known = st.slots.get(&id);
                    if known.is_none() || matches!(known, Some(Slot::Pending)) {
                        let slot = classify(shared, &mut st, id, &path);
                        st.slots.insert(id, slot);
                    }
                }
                // Ids the walk did not find are gone: no container to tell of.
                for s in st.slots.values_mut() {
                    if matches!(s, Slot::Pending) {
                        *s = Slot::Host;
                    }
                }
                drop(st);
                shared.generation.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}
