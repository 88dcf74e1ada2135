//! Thin safe wrappers over the `bpf(2)` id/fd/info calls, `/proc` fdinfo, the processes that
//! hold BPF objects and the bpffs pins that name them.
use std::collections::HashMap;
use std::ffi::{c_void, CStr, CString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{InspectError, Result};
use crate::btf::Btf;

/// The four kinds of kernel BPF objects that have ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjKind {
    Prog,
    Map,
    Link,
    Btf,
}

impl fmt::Display for ObjKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjKind::Prog => "BPF program",
            ObjKind::Map => "BPF map",
            ObjKind::Link => "BPF link",
            ObjKind::Btf => "BTF object",
        })
    }
}

/// libbpf returns `-errno`; turn that into an `io::Error`.
pub(crate) fn errno_of(rc: i32) -> io::Error {
    if rc < 0 {
        io::Error::from_raw_os_error(-rc)
    } else {
        io::Error::last_os_error()
    }
}

/// The id after `start` of this kind, or `None` at the end.
pub(crate) fn next_id(kind: ObjKind, start: u32) -> Result<Option<u32>> {
    let mut next = 0u32;
    // SAFETY: `next` is a valid u32 the call writes into; no other memory is touched.
    let rc = unsafe {
        match kind {
            ObjKind::Prog => libbpf_sys::bpf_prog_get_next_id(start, &mut next),
            ObjKind::Map => libbpf_sys::bpf_map_get_next_id(start, &mut next),
            ObjKind::Link => libbpf_sys::bpf_link_get_next_id(start, &mut next),
            ObjKind::Btf => libbpf_sys::bpf_btf_get_next_id(start, &mut next),
        }
    };
    if rc == 0 {
        return Ok(Some(next));
    }
    let e = errno_of(rc);
    match e.raw_os_error() {
        Some(libc::ENOENT) => Ok(None),
        Some(libc::EPERM) | Some(libc::EACCES) => Err(InspectError::sys(
            format!("listing {kind}s (needs root / CAP_SYS_ADMIN)"),
            e,
        )),
        _ => Err(InspectError::sys(format!("listing {kind}s"), e)),
    }
}

/// Every id of this kind, ascending.
pub(crate) fn all_ids(kind: ObjKind) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    let mut cur = 0;
    while let Some(id) = next_id(kind, cur)? {
        ids.push(id);
        cur = id;
    }
    Ok(ids)
}

/// An fd for the object with this id.
pub(crate) fn fd_by_id(kind: ObjKind, id: u32) -> Result<OwnedFd> {
    // SAFETY: plain syscall wrappers taking an integer id and returning an fd or -errno.
    let rc = unsafe {
        match kind {
            ObjKind::Prog => libbpf_sys::bpf_prog_get_fd_by_id(id),
            ObjKind::Map => libbpf_sys::bpf_map_get_fd_by_id(id),
            ObjKind::Link => libbpf_sys::bpf_link_get_fd_by_id(id),
            ObjKind::Btf => libbpf_sys::bpf_btf_get_fd_by_id(id),
        }
    };
    if rc >= 0 {
        // SAFETY: a non-negative return is a fresh fd that nothing else owns.
        return Ok(unsafe { OwnedFd::from_raw_fd(rc) });
    }
    let e = errno_of(rc);
    Err(match e.raw_os_error() {
        Some(libc::ENOENT) => InspectError::NotFound { kind, id },
        Some(libc::EPERM) | Some(libc::EACCES) => InspectError::Permission { kind, id },
        _ => InspectError::sys(format!("opening {kind} {id}"), e),
    })
}

/// Fills `info` (one of the `bpf_*_info` structs) for `fd`; returns the length the kernel wrote.
pub(crate) fn info_by_fd<T>(fd: BorrowedFd<'_>, info: &mut T, what: &str) -> Result<u32> {
    let mut len = std::mem::size_of::<T>() as u32;
    // SAFETY: `info` is a valid, writable `T` of `len` bytes; the pointers it contains were
    // set by the caller to buffers that outlive this call and match the counts it set.
    let rc = unsafe {
        libbpf_sys::bpf_obj_get_info_by_fd(
            fd.as_raw_fd(),
            (info as *mut T).cast::<c_void>(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(InspectError::sys(
            format!("reading info of {what}"),
            errno_of(rc),
        ));
    }
    Ok(len)
}

/// `key: value` lines of `/proc/self/fdinfo/FD`.
pub(crate) fn fdinfo(fd: BorrowedFd<'_>) -> HashMap<String, String> {
    parse_fdinfo(
        &std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
            .unwrap_or_default(),
    )
}

fn parse_fdinfo(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// A C name buffer (NUL-padded) as a string.
pub(crate) fn cname(buf: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A libbpf `*_str` result as a string, or `unknown(N)`.
pub(crate) fn lib_str(p: *const std::ffi::c_char, n: u32) -> String {
    if p.is_null() {
        return format!("unknown({n})");
    }
    // SAFETY: libbpf returns pointers to static NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

pub(crate) fn prog_type_name(t: u32) -> String {
    // SAFETY: pure lookup in a static table; out-of-range values return NULL.
    lib_str(unsafe { libbpf_sys::libbpf_bpf_prog_type_str(t) }, t)
}
pub(crate) fn map_type_name(t: u32) -> String {
    // SAFETY: as above.
    lib_str(unsafe { libbpf_sys::libbpf_bpf_map_type_str(t) }, t)
}
pub(crate) fn link_type_name(t: u32) -> String {
    // SAFETY: as above.
    lib_str(unsafe { libbpf_sys::libbpf_bpf_link_type_str(t) }, t)
}
pub(crate) fn attach_type_name(t: u32) -> String {
    // SAFETY: as above.
    lib_str(unsafe { libbpf_sys::libbpf_bpf_attach_type_str(t) }, t)
}

/// A process holding an fd to a BPF object.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub comm: String,
}

/// Which processes hold which BPF objects, from `/proc/*/fd` and their fdinfo.
pub(crate) fn holders() -> HashMap<(ObjKind, u32), Vec<Holder>> {
    let mut out: HashMap<(ObjKind, u32), Vec<Holder>> = HashMap::new();
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let mut comm: Option<String> = None;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let (kind, key) = match target.as_os_str().as_bytes() {
                b"anon_inode:bpf-prog" => (ObjKind::Prog, "prog_id"),
                b"anon_inode:bpf-map" => (ObjKind::Map, "map_id"),
                b"anon_inode:bpf_link" => (ObjKind::Link, "link_id"),
                _ => continue,
            };
            let info = std::fs::read_to_string(p.path().join("fdinfo").join(fd.file_name()))
                .unwrap_or_default();
            let Some(id) = parse_fdinfo(&info)
                .get(key)
                .and_then(|v| v.parse::<u32>().ok())
            else {
                continue;
            };
            let comm = comm
                .get_or_insert_with(|| {
                    std::fs::read_to_string(p.path().join("comm"))
                        .unwrap_or_default()
                        .trim_end()
                        .to_string()
                })
                .clone();
            let list = out.entry((kind, id)).or_default();
            if !list.iter().any(|h| h.pid == pid) {
                list.push(Holder { pid, comm });
            }
        }
    }
    out
}

/// Mount points of every bpffs, from `/proc/self/mountinfo`.
pub(crate) fn bpffs_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            let target = pre.split_whitespace().nth(4)?;
            (fstype == "bpf").then(|| PathBuf::from(unescape_mount(target)))
        })
        .collect()
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Pinned paths of every BPF object under every bpffs mount.
pub(crate) fn pins() -> HashMap<(ObjKind, u32), Vec<String>> {
    let mut out: HashMap<(ObjKind, u32), Vec<String>> = HashMap::new();
    for root in bpffs_mounts() {
        walk_pins(&root, 0, &mut out);
    }
    out
}

fn walk_pins(dir: &Path, depth: usize, out: &mut HashMap<(ObjKind, u32), Vec<String>>) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk_pins(&path, depth + 1, out);
            continue;
        }
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: `c` is a NUL-terminated path; the call returns a new fd or -errno.
        let rc = unsafe { libbpf_sys::bpf_obj_get(c.as_ptr()) };
        if rc < 0 {
            continue;
        }
        // SAFETY: a fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(rc) };
        let info = fdinfo(std::os::fd::AsFd::as_fd(&fd));
        for (key, kind) in [
            ("link_id", ObjKind::Link),
            ("prog_id", ObjKind::Prog),
            ("map_id", ObjKind::Map),
        ] {
            if let Some(id) = info.get(key).and_then(|v| v.parse::<u32>().ok()) {
                out.entry((kind, id))
                    .or_default()
                    .push(path.display().to_string());
                break;
            }
        }
    }
}

/// Wall-clock RFC 3339 time of a `CLOCK_BOOTTIME` nanosecond stamp (as in `load_time`).
/// The boot time is measured once per process and rounded to the millisecond, so the same
/// object shows the same `loaded_at` in every call and every `ebpfctl` run (reading the two
/// clocks one after the other moved it by tens of nanoseconds each time).
pub(crate) fn boottime_to_rfc3339(ns: u64) -> String {
    static BOOT_WALL_NS: std::sync::OnceLock<i128> = std::sync::OnceLock::new();
    let boot = *BOOT_WALL_NS.get_or_init(|| {
        let now = |clk| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `ts` is a valid timespec we own.
            unsafe { libc::clock_gettime(clk, &mut ts) };
            ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
        };
        // The boot clock read between two wall-clock reads: the midpoint's error is half
        // their gap. Of a few tries, the one with the smallest gap: tens of ns on real
        // hardware; under emulation (a QEMU TCG guest) a timer tick or a preemption between
        // two reads made a gap of a millisecond, and `loaded_at` moved by one between calls.
        let mut best: Option<(i128, i128)> = None;
        for _ in 0..32 {
            let (w1, b, w2) = (
                now(libc::CLOCK_REALTIME),
                now(libc::CLOCK_BOOTTIME),
                now(libc::CLOCK_REALTIME),
            );
            let gap = w2 - w1;
            if best.is_none_or(|(g, _)| gap < g) {
                best = Some((gap, (w1 + w2) / 2 - b));
            }
            if gap < 1_000 {
                break;
            }
        }
        let offset = best.map_or(0, |(_, o)| o);
        (offset + 500_000).div_euclid(1_000_000) * 1_000_000
    });
    crate::decode::time::rfc3339_ns(boot + ns as i128)
}

/// Information about one kernel BTF object.
#[derive(Debug, Clone)]
pub(crate) struct KernelBtfInfo {
    pub name: String,
    pub size: u32,
    pub kernel: bool,
}

pub(crate) fn btf_info(id: u32) -> Result<KernelBtfInfo> {
    let fd = fd_by_id(ObjKind::Btf, id)?;
    let mut name = [0u8; 128];
    // SAFETY: all-zero is a valid bpf_btf_info.
    let mut info: libbpf_sys::bpf_btf_info = unsafe { std::mem::zeroed() };
    info.name = name.as_mut_ptr() as u64;
    info.name_len = name.len() as u32;
    info_by_fd(
        std::os::fd::AsFd::as_fd(&fd),
        &mut info,
        &format!("BTF object {id}"),
    )?;
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(KernelBtfInfo {
        name: String::from_utf8_lossy(&name[..end]).into_owned(),
        size: info.btf_size,
        kernel: info.kernel_btf != 0,
    })
}

/// The raw bytes of kernel BTF object `id` (for module BTF: the split part only) and
/// whether it is split BTF on top of vmlinux.
pub(crate) fn kernel_btf_raw(id: u32) -> Result<(Vec<u8>, bool)> {
    let info = btf_info(id)?;
    let split = info.kernel && info.name != "vmlinux";
    let fd = fd_by_id(ObjKind::Btf, id)?;
    let mut buf = vec![0u8; info.size as usize];
    // SAFETY: all-zero is a valid bpf_btf_info.
    let mut bi: libbpf_sys::bpf_btf_info = unsafe { std::mem::zeroed() };
    bi.btf = buf.as_mut_ptr() as u64;
    bi.btf_size = buf.len() as u32;
    info_by_fd(
        std::os::fd::AsFd::as_fd(&fd),
        &mut bi,
        &format!("BTF object {id}"),
    )?;
    buf.truncate(bi.btf_size as usize);
    Ok((buf, split))
}

/// Parses kernel BTF object `id` (not split BTF: programs' and maps' own BTF).
pub(crate) fn kernel_btf(id: u32) -> Result<Btf> {
    let (raw, _) = kernel_btf_raw(id)?;
    Btf::parse(&raw).map_err(|source| InspectError::Btf {
        what: format!("BTF object {id}"),
        source,
    })
}

/// Number of possible CPUs (the per-CPU value count).
pub(crate) fn possible_cpus() -> Result<usize> {
    // SAFETY: reads /sys/devices/system/cpu/possible; no pointers.
    let n = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
    if n <= 0 {
        return Err(InspectError::sys("counting possible CPUs", errno_of(n)));
    }
    Ok(n as usize)
}

/// Hex bytes, space separated: `0a 00 00 00`.
pub(crate) fn hex_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}
