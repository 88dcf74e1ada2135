//! `observe`: HTTP requests of Go programs (net/http), client and server side, with uprobes.
//!
//! The path of data: [`analyse`] reads a Go executable (version, functions, RET sites, struct
//! offsets) → [`probe::Observer`] loads `observe.bpf.c` once per distinct executable and
//! attaches it → events come through one ring buffer → [`event::Request`] → printers
//! ([`output`]), Prometheus histograms ([`metrics`]), OTLP traces ([`otlp`]) and the service
//! graph ([`graph`]).
use std::path::{Path, PathBuf};

pub mod deferred;
pub mod event;
pub mod goelf;
pub mod goerror;
pub mod graph;
pub mod metrics;
pub mod moduledata;
pub mod offsets;
pub mod otlp;
pub mod output;
pub mod pclntab;
pub mod probe;
pub mod run;
pub mod success;

pub use event::{Kind, Request};
pub use goelf::{GoBinary, GoTypes, GoVersion};
pub use offsets::{OffsetSource, Offsets};
pub use probe::{Observer, ObserverConfig};

/// Everything that can go wrong in `observe`, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not an ELF executable; give the path of a Go program or --pid of a running one")]
    NotElf(PathBuf),
    #[error("{0}: not a Go program (no Go build info); observe traces Go executables only")]
    NotGo(PathBuf),
    #[error("{path}: built with {version}; observe needs Go 1.17 or newer (register ABI): rebuild it with a newer Go")]
    GoTooOld { path: PathBuf, version: String },
    #[error("{path}: built for {arch}; this ebpfctl observes {host} programs (build ebpfctl for {arch} to observe it)", host = goelf::HOST_ARCH)]
    UnsupportedArch { path: PathBuf, arch: String },
    #[error("{0}: does not use net/http (neither net/http.(*Transport).roundTrip nor net/http.serverHandler.ServeHTTP is in it); nothing to observe")]
    NoNetHttp(PathBuf),
    #[error("{path}: {what}")]
    Malformed { path: PathBuf, what: String },
    #[error("{path}: built with {version} without DWARF, and the built-in table has no struct offsets for it (missing: {missing}); rebuild without -w or use a supported Go (1.17 to 1.27)")]
    NoOffsets {
        path: PathBuf,
        version: String,
        missing: String,
    },
    #[error("process {0} does not exist (no /proc/{0}); check the PID with `ps`")]
    NoSuchPid(u32),
    #[error("process {pid}: cannot resolve its executable /proc/{pid}/exe: {source} (a kernel thread, or not allowed: run as root, or with CAP_SYS_PTRACE in a container)")]
    PidExe { pid: u32, source: std::io::Error },
    #[error("nothing to observe: give a Go executable path or --pid")]
    NoTarget,
    #[error("loading the observe probe into the kernel failed: {0} (needs BPF ring buffers, Linux 5.8+, and CAP_BPF + CAP_PERFMON or root)")]
    Load(libbpf_rs::Error),
    #[error(transparent)]
    Capabilities(#[from] ebpfctl_core::caps::MissingCapabilities),
    #[error("observe probe object: {0}")]
    Object(String),
    #[error("EBPFCTL_OBSERVE_SLOTS={0}: not a power of two from 1 to 4096 (the in-flight slots per side); unset it or give e.g. 1024")]
    BadSlots(String),
    #[error("attaching uprobe {prog} to {path} at file offset {offset:#x} failed: {source} (needs CONFIG_UPROBE_EVENTS and the uprobe perf PMU, /sys/bus/event_source/devices/uprobe)")]
    Attach {
        prog: String,
        path: PathBuf,
        offset: u64,
        source: libbpf_rs::Error,
    },
    #[error("{0}")]
    Mount(#[from] ebpfctl_core::mounts::MountError),
    #[error("{0}")]
    Consume(#[from] ebpfctl_core::consume::ConsumeError),
    #[error("{0}")]
    Metrics(#[from] ebpfctl_core::metrics::MetricsError),
    #[error("{0}")]
    Containers(String),
    #[error("OTLP exporter for {endpoint}: {what}")]
    Otlp { endpoint: String, what: String },
    #[error("writing output: {0}")]
    Output(std::io::Error),
}

/// A Go executable ready to be probed: its analysis and the struct offsets to use.
#[derive(Debug, Clone)]
pub struct Target {
    pub binary: GoBinary,
    pub offsets: Offsets,
    pub offset_source: OffsetSource,
    /// Identity of the file (dev, inode): one probe instance per distinct executable.
    pub file_id: (u64, u64),
}

/// Analyses the executable at `path` (a file or `/proc/PID/exe`).
pub fn analyse(path: &Path) -> Result<Target, ObserveError> {
    use std::os::unix::fs::MetadataExt;
    let data = std::fs::read(path).map_err(|source| ObserveError::Read {
        path: path.to_owned(),
        source,
    })?;
    let meta = std::fs::metadata(path).map_err(|source| ObserveError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (binary, offsets, offset_source) = analyse_data(path, &data)?;
    Ok(Target {
        binary,
        offsets,
        offset_source,
        file_id: (meta.dev(), meta.ino()),
    })
}

/// The analysis of an executable's bytes (`path` only names it in errors): its functions,
/// and the struct offsets from its DWARF or, without DWARF, from the table for its Go version.
pub fn analyse_data(
    path: &Path,
    data: &[u8],
) -> Result<(GoBinary, Offsets, OffsetSource), ObserveError> {
    let binary = GoBinary::parse(path, data)?;
    let file = object::File::parse(data).map_err(|e| ObserveError::Malformed {
        path: path.to_owned(),
        what: format!("cannot parse ELF ({e}); is the file truncated or corrupt?"),
    })?;
    let (offsets, offset_source) = match offsets::from_dwarf(&file) {
        Some(o) => (o, OffsetSource::Dwarf),
        None => match offsets::from_table(binary.version) {
            Some(o) => (o, OffsetSource::Table),
            None => {
                return Err(ObserveError::NoOffsets {
                    path: path.to_owned(),
                    version: binary.version_string.clone(),
                    missing: "all".into(),
                })
            }
        },
    };
    Ok((binary, offsets, offset_source))
}

/// The executable of a running process, checked to exist.
pub fn pid_exe(pid: u32) -> Result<PathBuf, ObserveError> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if !proc.exists() {
        return Err(ObserveError::NoSuchPid(pid));
    }
    let exe = proc.join("exe");
    std::fs::metadata(&exe).map_err(|source| ObserveError::PidExe { pid, source })?;
    Ok(exe)
}

/// What `observe --inspect` prints for one target: the analysis, no kernel involved.
pub fn inspect_json(t: &Target) -> serde_json::Value {
    let f = |g: Option<&goelf::GoFunc>| {
        g.map(|g| {
            serde_json::json!({
                "name": g.name,
                "address": format!("{:#x}", g.addr),
                "size": g.size,
                "entry_offset": format!("{:#x}", g.entry_offset),
                "entry_emulated": g.entry_emulated,
                "ret_offsets": g.ret_offsets.iter().map(|o| format!("{o:#x}")).collect::<Vec<_>>(),
            })
        })
    };
    serde_json::json!({
        "path": t.binary.path,
        "go_version": t.binary.version_string,
        "arch": t.binary.arch,
        "pie": t.binary.pie,
        "stripped": t.binary.stripped,
        "functions_from": t.binary.symbols,
        "pclntab": t.binary.pclntab.map(|a| format!("{a:#x}")),
        "moduledata": t.binary.moduledata.map(|a| format!("{a:#x}")),
        "error_types": t.binary.types.as_ref().map(|t| t.errors.len()),
        "offsets_from": t.offset_source,
        "offsets": t.offsets,
        "client": f(t.binary.round_trip.as_ref()),
        "client_exit": t.binary.client_exit.as_ref().map(|x| serde_json::json!({
            "closure": f(Some(&x.closure)),
            "returns": x.returns.iter().map(|r| serde_json::json!({
                "ret": format!("{:#x}", r.ret),
                "return_site": format!("{:#x}", r.return_site),
                "results": r.results,
            })).collect::<Vec<_>>(),
            "covered_rets": x.covered_rets.iter().map(|o| format!("{o:#x}")).collect::<Vec<_>>(),
        })),
        "client_success": t.binary.client_success.as_ref().map(|x| serde_json::json!({
            "probe_offset": format!("{:#x}", x.probe_offset),
            "covered_ret": format!("{:#x}", x.covered_ret),
        })),
        "server": f(t.binary.serve_http.as_ref()),
        "finish_request": f(t.binary.finish_request.as_ref()),
        "hijack": f(t.binary.hijack.as_ref()),
        "h2_handler_done": f(t.binary.h2_handler_done.as_ref()),
        "h2_new_request": f(t.binary.h2_new_request.as_ref()),
        "server_recover": f(t.binary.server_recover.as_ref()),
        "h2_recover": f(t.binary.h2_recover.as_ref()),
    })
}
