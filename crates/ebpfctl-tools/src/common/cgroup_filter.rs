//! `ebpfctl run --container/--pod/--namespace`: the verdict map of a probe that declares
//! `EBPFCTL_CGROUP_FILTER` (include/ebpfctl.h), kept by a thread. The runner does not see
//! which cgroup an arbitrary probe's record belongs to, so unlike the tools it cannot decide
//! per event: it drops every cgroup by default (verdict 0 under key 0) and shows the cgroups
//! of the matching containers, re-checked every [`KernelFilter::EVERY`].
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ebpfctl_container::select::Verdict;
use ebpfctl_container::{Resolver, Selector};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use ebpfctl_core::load::Loaded;

use super::containers::FILTER_MAP;
use super::ToolError;

/// Key 0: the verdict of cgroups without one of their own (no cgroup has id 0).
const DEFAULT_KEY: u64 = 0;

/// The verdicts of a runner's probe, written until dropped.
pub struct KernelFilter {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

struct Writer {
    map: MapHandle,
    resolver: Arc<Resolver>,
    selector: Selector,
    written: HashMap<u64, bool>,
}

impl Writer {
    fn put(&mut self, id: u64, show: bool) -> Result<(), libbpf_rs::Error> {
        if self.written.get(&id) == Some(&show) {
            return Ok(());
        }
        self.map
            .update(&id.to_ne_bytes(), &[u8::from(show)], MapFlags::ANY)?;
        self.written.insert(id, show);
        Ok(())
    }

    /// Walks the cgroup tree and writes a verdict for every container cgroup whose names
    /// are known: shown when it matches, dropped (explicitly, so that a cgroup id reused
    /// later is decided again) when not; the verdicts of cgroups gone since the last walk
    /// are deleted, so the map holds the live containers only. Returns how many cgroups are
    /// shown.
    fn sync(&mut self) -> Result<usize, libbpf_rs::Error> {
        let mut shown = 0;
        let live = self.resolver.scan();
        let ids: HashSet<u64> = live.iter().map(|(id, _)| *id).collect();
        let gone: Vec<u64> = (self.written.keys())
            .filter(|&&id| id != DEFAULT_KEY && !ids.contains(&id))
            .copied()
            .collect();
        for id in gone {
            // Already absent is as good as deleted.
            let _ = self.map.delete(&id.to_ne_bytes());
            self.written.remove(&id);
        }
        for (id, e) in live {
            let show = match self.selector.verdict(Some(&e.container)) {
                Verdict::Yes => true,
                Verdict::No => false,
                // Names not known yet: dropped until they are (the next pass).
                Verdict::Unknown => continue,
            };
            shown += usize::from(show);
            self.put(id, show)?;
        }
        Ok(shown)
    }
}

impl KernelFilter {
    /// How often the cgroup tree is walked for new containers.
    pub const EVERY: Duration = Duration::from_secs(1);

    /// Writes the verdicts of every container running now (before the caller attaches, so
    /// that the first events are filtered), then keeps them up to date on a thread. Returns
    /// the filter and how many cgroups it shows now (0: no running container matches yet).
    pub fn start(
        loaded: &Loaded,
        resolver: Arc<Resolver>,
        selector: Selector,
    ) -> Result<(KernelFilter, usize), ToolError> {
        let what = |source| ToolError::Map {
            what: format!("writing {FILTER_MAP}"),
            source,
        };
        let map = loaded.map(FILTER_MAP).ok_or(ToolError::MissingMap {
            tool: "given",
            map: FILTER_MAP,
        })?;
        let map = MapHandle::try_from(&map).map_err(what)?;
        let mut w = Writer {
            map,
            resolver,
            selector,
            written: HashMap::new(),
        };
        w.put(DEFAULT_KEY, false).map_err(what)?;
        let shown = w.sync().map_err(what)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("cgroup-filter".into())
            .spawn(move || {
                let (lock, cv) = &*flag;
                let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                while !*stopped {
                    stopped = cv
                        .wait_timeout(stopped, Self::EVERY)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    if !*stopped {
                        // A full map or a failed update only delays a new container's
                        // events to the next pass.
                        let _ = w.sync();
                    }
                }
            })
            .map_err(|source| ToolError::Io {
                what: "starting the container filter thread".into(),
                source,
            })?;
        Ok((
            KernelFilter {
                stop,
                thread: Some(thread),
            },
            shown,
        ))
    }
}

impl Drop for KernelFilter {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
