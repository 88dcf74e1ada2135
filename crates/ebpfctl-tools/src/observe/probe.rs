//! Loading `observe.bpf.c` once per distinct Go executable (each has its own struct offsets
//! in `.rodata`) and attaching its uprobes: function entries and the RETs of roundTrip. All
//! instances share one ring buffer and one PID filter map. Everything is detached and
//! unloaded on drop.
//!
//! Detaching is what takes time: the kernel waits for a grace period when a uprobe goes
//! (about 0.1 s each on the test VM, so 1.7 s for one binary's 16 perf-event uprobes, one
//! after the other). Where the kernel has uprobe-multi links (Linux 6.6+), each program is
//! attached to all its sites of a binary with one link, released with one wait; and all
//! links are closed at once, from as many threads, so the waits overlap.
use std::collections::HashSet;
use std::os::fd::AsFd;
use std::path::Path;

use ebpfctl_core::consume::LossSource;
use ebpfctl_core::snapshot::{read_map, Layout};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, Object, ObjectBuilder};

use super::deferred::ResultSlot;
use super::goelf::{DeferredExit, GoFunc};
use super::goerror;
use super::{ObserveError, Target};

static PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/observe.bpf.o"));

/// Size of `struct obs_config` in observe.h (the whole `.rodata`).
const CONFIG_SIZE: usize = 144;
/// Size of `struct obs_sites` in observe.h.
const SITES_SIZE: usize = 776;
/// `OBS_FRAME_MAX` in observe.h: the most client_deferred copies of its stack at once.
const FRAME_MAX: u32 = 512;

/// How the probes behave.
#[derive(Debug, Clone)]
pub struct ObserverConfig {
    /// Only these processes (empty: every process running an observed executable).
    pub pids: Vec<u32>,
    /// Copy the server's raw request head to read `traceparent`.
    pub capture_headers: bool,
    /// Wake user space early when this many bytes come to be waiting in the ring buffer.
    pub wakeup_bytes: u64,
}

impl Default for ObserverConfig {
    fn default() -> Self {
        ObserverConfig {
            pids: Vec::new(),
            capture_headers: true,
            wakeup_bytes: 1 << 20,
        }
    }
}

/// How uprobes are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// One uprobe-multi link per program and binary (`BPF_TRACE_UPROBE_MULTI`).
    Multi,
    /// One perf-event uprobe per site (kernels before 6.6, or `EBPFCTL_UPROBE_MULTI=0`).
    PerfEvent,
}

impl AttachMode {
    /// Uprobe-multi links when the kernel has them, unless `EBPFCTL_UPROBE_MULTI=0`.
    pub fn detect() -> AttachMode {
        if std::env::var_os("EBPFCTL_UPROBE_MULTI").is_some_and(|v| v == "0") {
            return AttachMode::PerfEvent;
        }
        match ebpfctl_core::inspect::feature::uprobe_multi() {
            Ok(()) => AttachMode::Multi,
            Err(_) => AttachMode::PerfEvent,
        }
    }
}

struct Instance {
    // Field order is drop order: links go before the object they belong to.
    _links: Vec<Link>,
    bss: MapHandle,
    /// The in-flight slot maps (SLOT_MAPS).
    slots: Vec<MapHandle>,
    _obj: Object,
    target: Target,
    attached: usize,
}

/// Probes loaded and attached; detached and unloaded when dropped.
pub struct Observer {
    instances: Vec<Instance>,
    events: MapHandle,
    _pids: MapHandle,
    mode: AttachMode,
}

impl Drop for Observer {
    fn drop(&mut self) {
        // Links before the objects they belong to (the instances drop after this).
        let links: Vec<Link> = self
            .instances
            .iter_mut()
            .flat_map(|i| std::mem::take(&mut i._links))
            .collect();
        detach_all(links);
    }
}

/// Closes `links` from one thread each (at most 64 at a time): each close waits for the
/// kernel's grace period, and waits that overlap end together.
fn detach_all(links: Vec<Link>) {
    let mut links = links;
    while !links.is_empty() {
        let batch: Vec<Link> = links.drain(..links.len().min(64)).collect();
        std::thread::scope(|s| {
            for link in batch {
                let spawned = std::thread::Builder::new()
                    .name("observe-detach".into())
                    .stack_size(64 << 10)
                    .spawn_scoped(s, move || drop(link));
                // No thread (resource limits): the link was dropped with the closure.
                drop(spawned);
            }
        });
    }
}

/// Largest in-flight slot array (`OBS_SLOT_BITS_MAX` in observe.h).
const SLOT_BITS_MAX: u32 = 12;
/// Size of `struct obs_slot` in observe.h; its first word is the owner (0: free).
const SLOT_SIZE: usize = 64;
/// The maps of in-flight slots (struct obs_slot), freed of processes that are gone.
const SLOT_MAPS: [&str; 2] = ["client_slots", "server_slots"];

/// log2 of the in-flight slots per side: `EBPFCTL_OBSERVE_SLOTS` (a power of two up to
/// 4096; default 4096). Requests beyond them go to the slower LRU hashes.
fn slot_bits() -> Result<u32, ObserveError> {
    let Some(v) = std::env::var_os("EBPFCTL_OBSERVE_SLOTS") else {
        return Ok(SLOT_BITS_MAX);
    };
    let n: Option<u32> = v.to_str().and_then(|s| s.trim().parse().ok());
    match n {
        Some(n) if n.is_power_of_two() && n.trailing_zeros() <= SLOT_BITS_MAX => {
            Ok(n.trailing_zeros())
        }
        _ => Err(ObserveError::BadSlots(v.to_string_lossy().into_owned())),
    }
}

fn config_bytes(t: &Target, cfg: &ObserverConfig, instance: u16, slot_bits: u32) -> Vec<u8> {
    let mut b = t.offsets.to_bytes();
    b.extend_from_slice(&u32::from(!cfg.pids.is_empty()).to_ne_bytes());
    b.extend_from_slice(&u32::from(cfg.capture_headers).to_ne_bytes());
    b.extend_from_slice(&u32::from(instance).to_ne_bytes());
    b.extend_from_slice(&slot_bits.to_ne_bytes());
    let frame = t
        .binary
        .client_exit
        .as_ref()
        .map_or(0, |exit| frame_len(exit.returns.iter().map(|r| r.results)));
    b.extend_from_slice(&frame.to_ne_bytes());
    b.extend_from_slice(&cfg.wakeup_bytes.to_ne_bytes());
    let exec = t.binary.types.as_ref().map_or(0, |t| t.exec_vaddr);
    b.extend_from_slice(&exec.to_ne_bytes());
    b
}

impl Observer {
    /// Loads and attaches the probes for every target (one instance per distinct file).
    pub fn start(targets: Vec<Target>, cfg: &ObserverConfig) -> Result<Observer, ObserveError> {
        if targets.is_empty() {
            return Err(ObserveError::NoTarget);
        }
        use ebpfctl_core::caps;
        caps::require(
            "tracing Go programs with uprobes",
            &[caps::BPF, caps::TRACING, caps::UPROBES],
        )?;
        if !Path::new("/sys/bus/event_source/devices/uprobe").exists() {
            // libbpf falls back to tracefs' uprobe_events without the uprobe PMU.
            ebpfctl_core::mounts::ensure_tracing()?;
        }
        let mode = AttachMode::detect();
        let slot_bits = slot_bits()?;
        let mut seen = HashSet::new();
        let mut instances: Vec<Instance> = Vec::new();
        let mut shared: Option<(MapHandle, MapHandle)> = None;
        for target in targets {
            if !seen.insert(target.file_id) {
                continue;
            }
            let index = u16::try_from(instances.len())
                .map_err(|_| ObserveError::Object("too many executables".into()))?;
            let inst = match load_instance(target, cfg, shared.as_ref(), index, mode, slot_bits) {
                Ok(i) => i,
                Err(e) => {
                    // What is attached so far goes the quick way too.
                    detach_all(
                        instances
                            .iter_mut()
                            .flat_map(|i| std::mem::take(&mut i._links))
                            .collect(),
                    );
                    return Err(e);
                }
            };
            if shared.is_none() {
                let find = |name: &str| -> Result<MapHandle, ObserveError> {
                    let map = inst
                        ._obj
                        .maps()
                        .find(|m| m.name() == name)
                        .ok_or_else(|| ObserveError::Object(format!("map {name} missing")))?;
                    MapHandle::try_from(&map).map_err(ObserveError::Load)
                };
                shared = Some((find("events")?, find("pids")?));
            }
            instances.push(inst);
        }
        let (events, pids) = shared.ok_or(ObserveError::NoTarget)?;
        for pid in &cfg.pids {
            pids.update(&pid.to_ne_bytes(), &[1u8], MapFlags::ANY)
                .map_err(ObserveError::Load)?;
        }
        Ok(Observer {
            instances,
            events,
            _pids: pids,
            mode,
        })
    }

    /// How the uprobes were attached.
    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// The ring buffer all instances write to.
    pub fn events(&self) -> &MapHandle {
        &self.events
    }

    /// Events lost because the ring buffer was full, over all instances.
    pub fn lost(&self) -> u64 {
        self.loss_sources().iter().filter_map(|l| l.total()).sum()
    }

    /// One lost-event counter per instance (the `.bss` global `ebpfctl_lost_events`).
    pub fn loss_sources(&self) -> Vec<LossSource> {
        self.instances
            .iter()
            .filter_map(|i| {
                let bss = MapHandle::try_from(&i.bss).ok()?;
                Some(LossSource::BssCounter { bss, offset: 0 })
            })
            .collect()
    }

    /// Frees the in-flight slots held by processes that are gone (killed while a request was
    /// in flight: no end probe ran); returns how many. The owner's PID is the kernel's
    /// (root namespace) PID, so this runs only where /proc shows those: in the root PID
    /// namespace (a DaemonSet with hostPID). Elsewhere such slots stay taken, and their
    /// goroutines' requests go to the LRU hashes.
    pub fn free_slots_of_gone_processes(&self) -> usize {
        if !in_root_pid_namespace() {
            return 0;
        }
        let mut freed = 0;
        for map in self.instances.iter().flat_map(|i| &i.slots) {
            let layout = Layout {
                key_size: 4,
                value_size: SLOT_SIZE,
                percpu: false,
                ncpu: 1,
                max_entries: map.max_entries(),
            };
            // The whole array in a few BPF_MAP_LOOKUP_BATCH calls, the dead owners' slots
            // written back one by one (there are few).
            let mut gone: Vec<Vec<u8>> = Vec::new();
            let read = read_map(map.as_fd(), &layout, "observe slots", |key, value| {
                let owner = value
                    .first_chunk::<8>()
                    .map_or(0, |w| u64::from_ne_bytes(*w));
                let pid = (owner >> 32) as u32;
                if owner != 0 && !Path::new(&format!("/proc/{pid}")).exists() {
                    gone.push(key.to_vec());
                }
                Ok(())
            });
            if read.is_err() {
                continue;
            }
            // A process that is gone starts no request: the slot stays its own until this
            // write (a new process would need the same PID and goroutine).
            for key in gone {
                if map.update(&key, &[0; SLOT_SIZE], MapFlags::ANY).is_ok() {
                    freed += 1;
                }
            }
        }
        freed
    }

    /// (target, number of uprobes attached) per instance.
    pub fn attached(&self) -> impl Iterator<Item = (&Target, usize)> {
        self.instances.iter().map(|i| (&i.target, i.attached))
    }
}

/// Whether this process sees the root PID namespace (its inode is fixed: PROC_PID_INIT_INO).
fn in_root_pid_namespace() -> bool {
    std::fs::read_link("/proc/self/ns/pid").is_ok_and(|l| l.as_os_str() == "pid:[4026531836]")
}

/// How many bytes from RSP at the deferred closure's entry cover its return address and,
/// of every return's `results`, the two a successful request needs (the *Response and the
/// error's type word; the error's data word is read alone, after an error):
/// `obs_config.frame_len`, one read for all. 0 (a read each) when that is more than the
/// probe copies or a slot lies below roundTrip's RSP. (A copy of 256 bytes or more costs
/// half as much again as one of 248 here: bench/README.md.)
fn frame_len(returns: impl IntoIterator<Item = [ResultSlot; 3]>) -> u32 {
    let mut len = 8u32; // the return address
    for slot in returns.into_iter().flat_map(|r| [r[0], r[1]]) {
        if let ResultSlot::Frame(d) = slot {
            let Some(end) = u32::try_from(d).ok().and_then(|d| d.checked_add(16)) else {
                return 0;
            };
            len = len.max(end);
        }
    }
    if len > FRAME_MAX {
        0
    } else {
        len
    }
}

/// `struct obs_site` (observe.h) for each return of roundTrip its deferred closure sees.
fn fill_client_sites(obj: &Object, exit: &DeferredExit) -> Result<(), ObserveError> {
    const SLOT_ZERO: i32 = i32::MIN; // OBS_SLOT_ZERO
    const MAX_SITES: usize = 32; // OBS_MAX_SITES
    if exit.returns.len() > MAX_SITES {
        return Err(ObserveError::Object(format!(
            "{} deferred returns, the probe has room for {MAX_SITES}",
            exit.returns.len()
        )));
    }
    let map = obj
        .maps()
        .find(|m| m.name() == "client_sites")
        .ok_or_else(|| ObserveError::Object("map client_sites missing".into()))?;
    // struct obs_sites: key[MAX_SITES] (i64), site[MAX_SITES] (3 x i32 + pad), n, pad.
    let mut keys = Vec::with_capacity(8 * MAX_SITES);
    let mut sites = Vec::with_capacity(16 * MAX_SITES);
    for r in &exit.returns {
        // The return address relative to the closure's probe (its IP when the probe runs).
        let key = (r.return_site as i64).wrapping_sub(exit.closure.entry_addr as i64);
        keys.extend_from_slice(&key.to_ne_bytes());
        for slot in r.results {
            let v = match slot {
                ResultSlot::Frame(d) => d,
                ResultSlot::Zero => SLOT_ZERO,
            };
            sites.extend_from_slice(&v.to_ne_bytes());
        }
        sites.extend_from_slice(&0u32.to_ne_bytes());
    }
    keys.resize(8 * MAX_SITES, 0);
    sites.resize(16 * MAX_SITES, 0);
    let mut value = keys;
    value.extend_from_slice(&sites);
    value.extend_from_slice(&(exit.returns.len() as u32).to_ne_bytes());
    value.extend_from_slice(&0u32.to_ne_bytes());
    debug_assert_eq!(value.len(), SITES_SIZE);
    map.update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
        .map_err(ObserveError::Load)?;
    Ok(())
}

/// The layouts of the binary's error types (map `err_types`, see `goerror.rs`).
fn fill_err_types(obj: &Object, target: &Target) -> Result<(), ObserveError> {
    let Some(types) = &target.binary.types else {
        return Ok(());
    };
    let map = obj
        .maps()
        .find(|m| m.name() == "err_types")
        .ok_or_else(|| ObserveError::Object("map err_types missing".into()))?;
    let max = map.max_entries() as usize;
    for (addr, desc) in goerror::map_entries(types, target.binary.version)
        .into_iter()
        .take(max)
    {
        map.update(&addr.to_ne_bytes(), &desc, MapFlags::ANY)
            .map_err(ObserveError::Load)?;
    }
    Ok(())
}

fn load_instance(
    target: Target,
    cfg: &ObserverConfig,
    shared: Option<&(MapHandle, MapHandle)>,
    instance: u16,
    mode: AttachMode,
    slot_bits: u32,
) -> Result<Instance, ObserveError> {
    let mut builder = ObjectBuilder::default();
    builder.name("observe").map_err(ObserveError::Load)?;
    let mut open = builder.open_memory(PROBE).map_err(ObserveError::Load)?;
    if mode == AttachMode::Multi {
        // Loaded for uprobe-multi links (such a program cannot attach to a perf event).
        for mut prog in open.progs_mut() {
            prog.set_attach_type(libbpf_rs::ProgramAttachType::TraceUprobeMulti);
        }
    }
    let config = config_bytes(&target, cfg, instance, slot_bits);
    debug_assert_eq!(config.len(), CONFIG_SIZE);
    let mut rodata_set = false;
    for mut map in open.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        if name.ends_with(".rodata") {
            let v = map
                .initial_value_mut()
                .ok_or_else(|| ObserveError::Object(".rodata has no initial value".into()))?;
            if v.len() != CONFIG_SIZE {
                return Err(ObserveError::Object(format!(
                    ".rodata is {} bytes, expected struct obs_config of {CONFIG_SIZE}",
                    v.len()
                )));
            }
            v.copy_from_slice(&config);
            rodata_set = true;
        } else if SLOT_MAPS.contains(&name.as_str()) || name == "server_head_slots" {
            let heads = name == "server_head_slots";
            let n = if heads && !cfg.capture_headers {
                1
            } else {
                1 << slot_bits
            };
            map.set_max_entries(n).map_err(ObserveError::Load)?;
        } else if let Some((events, pids)) = shared {
            let fd = match name.as_str() {
                "events" => Some(events.as_fd()),
                "pids" => Some(pids.as_fd()),
                _ => None,
            };
            if let Some(fd) = fd {
                map.reuse_fd(fd).map_err(ObserveError::Load)?;
            }
        }
    }
    if !rodata_set {
        return Err(ObserveError::Object(
            "no .rodata map (struct obs_config)".into(),
        ));
    }
    let obj = open.load().map_err(ObserveError::Load)?;
    fill_err_types(&obj, &target)?;
    let bss = obj
        .maps()
        .find(|m| m.name().to_string_lossy().ends_with(".bss"))
        .ok_or_else(|| ObserveError::Object("no .bss map (lost-event counter)".into()))
        .and_then(|m| MapHandle::try_from(&m).map_err(ObserveError::Load))?;
    let slots = SLOT_MAPS
        .iter()
        .map(|name| {
            let map = obj
                .maps()
                .find(|m| m.name() == *name)
                .ok_or_else(|| ObserveError::Object(format!("map {name} missing")))?;
            MapHandle::try_from(&map).map_err(ObserveError::Load)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut links = Vec::new();
    let mut sites = 0;
    let path = target.binary.path.clone();
    let mut attach = |prog_name: &str, offsets: &[u64]| -> Result<(), ObserveError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let prog = obj
            .progs_mut()
            .find(|p| p.name() == prog_name)
            .ok_or_else(|| ObserveError::Object(format!("program {prog_name} missing")))?;
        sites += offsets.len();
        if mode == AttachMode::Multi {
            let opts = libbpf_rs::UprobeMultiOpts {
                offsets: offsets.iter().map(|&o| o as usize).collect(),
                ..Default::default()
            };
            let link = prog
                .attach_uprobe_multi_with_opts(-1, &path, "", opts)
                .map_err(|source| ObserveError::Attach {
                    prog: prog_name.into(),
                    path: path.clone(),
                    offset: offsets[0],
                    source,
                })?;
            links.push(link);
            return Ok(());
        }
        for &offset in offsets {
            let link = prog
                .attach_uprobe(false, -1, &path, offset as usize)
                .map_err(|source| ObserveError::Attach {
                    prog: prog_name.into(),
                    path: path.clone(),
                    offset,
                    source,
                })?;
            links.push(link);
        }
        Ok(())
    };
    let entry = |f: &GoFunc| vec![f.entry_offset];
    if let Some(f) = &target.binary.round_trip {
        attach("client_enter", &entry(f))?;
        let mut rets = f.ret_offsets.clone();
        if let Some(exit) = &target.binary.client_exit {
            fill_client_sites(&obj, exit)?;
            attach("client_deferred", &entry(&exit.closure))?;
            rets.retain(|r| !exit.covered_rets.contains(r));
        }
        if let Some(ok) = &target.binary.client_success {
            attach("client_success", &[ok.probe_offset])?;
            rets.retain(|r| *r != ok.covered_ret);
        }
        attach("client_return", &rets)?;
    }
    if let Some(f) = &target.binary.serve_http {
        attach("server_enter", &entry(f))?;
        // The end of a request: finishRequest's entry (an emulated probe) when the binary has
        // it, else every RET of ServeHTTP (single-stepped, much slower on some hypervisors).
        match &target.binary.finish_request {
            Some(fin) => attach("server_finish", &entry(fin))?,
            None => attach("server_return", &f.ret_offsets)?,
        }
        if let Some(h) = &target.binary.hijack {
            attach("server_hijack", &entry(h))?;
        }
        // A handler's panic: conn.serve's recovering closure runs once per connection.
        if let Some(r) = &target.binary.server_recover {
            attach("server_recover", &entry(r))?;
        }
        // HTTP/2: the request ends at runHandler's deferred closure (a panic, or else the
        // handler returned and handlerDone comes next), when its entry is emulated; else at
        // handlerDone (a panic then goes unseen).
        if target.offsets.has_h2() {
            match (&target.binary.h2_recover, &target.binary.h2_handler_done) {
                (Some(r), _) if r.entry_emulated => attach("server_h2_recover", &entry(r))?,
                (_, Some(h2)) => attach("server_h2_done", &entry(h2))?,
                _ => {}
            }
        }
        // Only for traceparent: one more probe per HTTP/2 request, on the connection's
        // goroutine.
        if let Some(nw) = &target.binary.h2_new_request {
            if cfg.capture_headers && target.offsets.has_h2_trace() {
                attach("server_h2_hdrs", &entry(nw))?;
            }
        }
    }
    let attached = sites;
    Ok(Instance {
        _links: links,
        bss,
        slots,
        _obj: obj,
        target,
        attached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_covers_every_slot_or_is_zero() {
        use ResultSlot::{Frame, Zero};
        // Go 1.27.3's roundTrip: results at RSP+128, +232, +240 of its frame; the last
        // (the error's data) is not in the copy.
        assert_eq!(frame_len([[Frame(128), Frame(232), Frame(240)]]), 248);
        assert_eq!(frame_len([[Zero, Zero, Zero]]), 8);
        assert_eq!(frame_len([[Frame(0), Frame(8), Zero]]), 24);
        assert_eq!(
            frame_len([[Frame(0), Zero, Frame(400)], [Zero, Frame(40), Zero]]),
            56
        );
        assert_eq!(frame_len([[Frame(496), Zero, Zero]]), 512);
        assert_eq!(
            frame_len([[Frame(497), Zero, Zero]]),
            0,
            "past OBS_FRAME_MAX"
        );
        assert_eq!(frame_len([[Zero, Frame(-8), Zero]]), 0, "below the frame");
    }
}
