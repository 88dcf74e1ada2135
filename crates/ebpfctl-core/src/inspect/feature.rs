//! `ebpfctl feature`: what this kernel supports for BPF, each with its consequence.
//!
//! Everything is probed by trying (libbpf's type probes, loading and attaching a no-op
//! program for a moment, opening a perf event), never guessed from the kernel version.
use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

use serde::Serialize;

use super::print::{self, Format};
use super::sys;
use crate::btf::{Btf, Kind};
use crate::mounts::{self, PseudoFs};

/// Support for one program or map type.
#[derive(Debug, Clone, Serialize)]
pub struct TypeSupport {
    pub name: String,
    pub supported: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One probed capability.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub available: bool,
    /// What was found (an errno, a mode, a path).
    pub detail: String,
    /// What it means for ebpfctl users, in one line.
    pub consequence: String,
}

/// Everything `ebpfctl feature` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Features {
    pub kernel: String,
    /// Caveats about the report itself (e.g. not running as root).
    pub warnings: Vec<String>,
    pub program_types: Vec<TypeSupport>,
    pub map_types: Vec<TypeSupport>,
    pub attach: Vec<Check>,
    pub btf: Vec<Check>,
    pub filesystems: Vec<Check>,
    pub lockdown: Check,
    pub helpers: Vec<Check>,
    pub settings: Vec<Check>,
}

fn check(name: &str, available: bool, detail: impl Into<String>, yes: &str, no: &str) -> Check {
    Check {
        name: name.to_string(),
        available,
        detail: detail.into(),
        consequence: if available { yes } else { no }.to_string(),
    }
}

pub(crate) fn errno_text(e: &io::Error) -> String {
    let n = e.raw_os_error().unwrap_or(0);
    let name = crate::decode::sys::errno_name(i64::from(n)).unwrap_or_else(|| format!("errno {n}"));
    format!("{name} ({e})").replace(&format!(" (os error {n})"), "")
}

fn probe_types(max: u32, name: fn(u32) -> String, probe: &dyn Fn(u32) -> i32) -> Vec<TypeSupport> {
    (1..max)
        .map(|t| {
            let rc = probe(t);
            TypeSupport {
                name: name(t),
                supported: rc == 1,
                error: (rc < 0).then(|| errno_text(&sys::errno_of(rc))),
            }
        })
        .collect()
}

/// The number of program (map) types libbpf knows: the first id without a name.
fn type_count(name: fn(u32) -> String) -> u32 {
    (1..256)
        .find(|&t| name(t).starts_with("unknown("))
        .unwrap_or(256)
}

/// `r0 = 0; exit`.
const NOOP: [u64; 2] = [0xb7, 0x95];
/// `r0 = 1; exit` (an lsm_cgroup program's "allow").
const RETURN_1: [u64; 2] = [0x0000_0001_0000_00b7, 0x95];

/// Loads a no-op program; returns its fd or the kernel's refusal.
pub(crate) fn load_noop(
    prog_type: u32,
    attach_type: u32,
    attach_btf_id: u32,
) -> io::Result<OwnedFd> {
    load_insns(prog_type, attach_type, attach_btf_id, &NOOP)
}

/// Loads a two-instruction program; returns its fd or the kernel's refusal.
fn load_insns(
    prog_type: u32,
    attach_type: u32,
    attach_btf_id: u32,
    insns: &[u64; 2],
) -> io::Result<OwnedFd> {
    // SAFETY: all-zero is a valid bpf_prog_load_opts; `sz` is set as libbpf requires.
    let mut opts: libbpf_sys::bpf_prog_load_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _;
    opts.expected_attach_type = attach_type;
    opts.attach_btf_id = attach_btf_id;
    let name = CString::new("ebpfctl_probe").expect("no NUL");
    let license = CString::new("GPL").expect("no NUL");
    // SAFETY: `insns` are two valid 8-byte instructions (bpf_insn is 8 bytes, align <= 8);
    // name, license and opts outlive the call.
    let rc = unsafe {
        libbpf_sys::bpf_prog_load(
            prog_type,
            name.as_ptr(),
            license.as_ptr(),
            insns.as_ptr().cast::<libbpf_sys::bpf_insn>(),
            insns.len() as _,
            &mut opts,
        )
    };
    if rc < 0 {
        return Err(sys::errno_of(rc));
    }
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

/// Attaches a BTF-based program (fentry, LSM) with a link, then detaches it at once.
fn attach_btf_prog(fd: &OwnedFd, attach_type: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `fd` is a loaded program; null opts are allowed; the returned fd is owned below.
    let rc =
        unsafe { libbpf_sys::bpf_link_create(fd.as_raw_fd(), 0, attach_type, std::ptr::null()) };
    if rc < 0 {
        return Err(sys::errno_of(rc));
    }
    // SAFETY: fresh link fd; dropping it detaches the program.
    drop(unsafe { OwnedFd::from_raw_fd(rc) });
    Ok(())
}

/// Whether the kernel has uprobe-multi links (`BPF_TRACE_UPROBE_MULTI`, Linux 6.6+): a
/// no-op program of that expected attach type loads, and a link to a directory is refused
/// with EBADF (the kernel got as far as checking the path). Nothing is attached.
pub fn uprobe_multi() -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = load_noop(
        libbpf_sys::BPF_PROG_TYPE_KPROBE,
        libbpf_sys::BPF_TRACE_UPROBE_MULTI,
        0,
    )?;
    let path = CString::new("/").expect("no NUL");
    let offset: std::os::raw::c_ulong = 0;
    // SAFETY: all-zero is a valid bpf_link_create_opts; `sz` is set as libbpf requires.
    let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _;
    opts.__bindgen_anon_1.uprobe_multi =
        libbpf_sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_3 {
            path: path.as_ptr(),
            offsets: &offset,
            cnt: 1,
            ..Default::default()
        };
    // SAFETY: `fd` is a loaded program; path, offset and opts outlive the call.
    let rc = unsafe {
        libbpf_sys::bpf_link_create(fd.as_raw_fd(), 0, libbpf_sys::BPF_TRACE_UPROBE_MULTI, &opts)
    };
    if rc >= 0 {
        // SAFETY: a fresh link fd owned by nobody else; closing it detaches.
        drop(unsafe { OwnedFd::from_raw_fd(rc) });
        return Ok(());
    }
    match sys::errno_of(rc) {
        e if e.raw_os_error() == Some(libc::EBADF) => Ok(()),
        e => Err(e),
    }
}

/// Opens (disabled) and closes a perf event: `kind` is the PMU type, config as given.
fn perf_open(pmu: u32, config: u64, config1: u64, config2: u64) -> io::Result<()> {
    // struct perf_event_attr, PERF_ATTR_SIZE_VER5 (112 bytes) laid out by hand.
    let mut attr = [0u8; 112];
    attr[0..4].copy_from_slice(&pmu.to_le_bytes());
    attr[4..8].copy_from_slice(&112u32.to_le_bytes());
    attr[8..16].copy_from_slice(&config.to_le_bytes());
    attr[40..48].copy_from_slice(&1u64.to_le_bytes()); // disabled
    attr[56..64].copy_from_slice(&config1.to_le_bytes());
    attr[64..72].copy_from_slice(&config2.to_le_bytes());
    // SAFETY: `attr` is a valid perf_event_attr of the size it declares; pointers in
    // config1 (if any) point to NUL-terminated strings the caller keeps alive.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1i32,
            0i32,
            -1i32,
            8u64, /* PERF_FLAG_FD_CLOEXEC */
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd owned by nobody else; closing it removes the event.
    drop(unsafe { OwnedFd::from_raw_fd(rc as i32) });
    Ok(())
}

pub(crate) fn pmu_type(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/bus/event_source/devices/{name}/type"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub(crate) fn vmlinux_btf() -> Option<Btf> {
    Btf::parse(&std::fs::read(ebpfctl_build::VMLINUX_BTF).ok()?).ok()
}

fn func_id(btf: Option<&Btf>, name: &str) -> Option<u32> {
    btf?.find(name, Kind::Func).next()
}

fn attach_checks(btf: Option<&Btf>) -> Vec<Check> {
    let mut out = Vec::new();
    // Tracepoints: a perf event on a syscall tracepoint through tracefs.
    let tp_id = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .find_map(|d| {
            std::fs::read_to_string(format!("{d}/events/syscalls/sys_enter_getppid/id")).ok()
        })
        .and_then(|s| s.trim().parse::<u64>().ok());
    out.push(match tp_id {
        None => check(
            "tracepoint",
            false,
            "no tracefs with events/syscalls (tracefs not mounted or syscall tracepoints not built)",
            "",
            "SEC(\"tracepoint/...\") probes cannot attach until tracefs is mounted (ebpfctl run mounts it)",
        ),
        Some(id) => match perf_open(2, id, 0, 0) {
            Ok(()) => check("tracepoint", true, format!("perf event on syscalls/sys_enter_getppid (id {id}) opened"), "SEC(\"tracepoint/...\") probes attach", ""),
            Err(e) => check("tracepoint", false, errno_text(&e), "", "SEC(\"tracepoint/...\") probes cannot attach"),
        },
    });
    // Raw tracepoints: load and attach a no-op to sys_enter for an instant.
    let raw = load_noop(libbpf_sys::BPF_PROG_TYPE_RAW_TRACEPOINT, 0, 0).and_then(|fd| {
        use std::os::fd::AsRawFd;
        let name = CString::new("sys_enter").expect("no NUL");
        // SAFETY: `fd` is a loaded raw_tracepoint program, `name` a NUL-terminated string.
        let rc = unsafe { libbpf_sys::bpf_raw_tracepoint_open(name.as_ptr(), fd.as_raw_fd()) };
        if rc < 0 {
            return Err(sys::errno_of(rc));
        }
        // SAFETY: fresh fd; closing detaches.
        drop(unsafe { OwnedFd::from_raw_fd(rc) });
        Ok(())
    });
    out.push(match raw {
        Ok(()) => check(
            "raw_tracepoint",
            true,
            "attached a no-op to sys_enter",
            "SEC(\"raw_tp/...\") probes attach",
            "",
        ),
        Err(e) => check(
            "raw_tracepoint",
            false,
            errno_text(&e),
            "",
            "SEC(\"raw_tp/...\") probes cannot attach",
        ),
    });
    // Kprobes: the kprobe PMU exists only with CONFIG_KPROBE_EVENTS.
    out.push(match pmu_type("kprobe") {
        None => check(
            "kprobe",
            false,
            "no kprobe PMU (/sys/bus/event_source/devices/kprobe): kernel built without CONFIG_KPROBES/CONFIG_KPROBE_EVENTS",
            "",
            "SEC(\"kprobe/...\")/kretprobe probes cannot attach; use tracepoints or raw_tp instead",
        ),
        Some(t) => {
            let f = CString::new("vfs_read").expect("no NUL");
            match perf_open(t, 0, f.as_ptr() as u64, 0) {
                Ok(()) => check("kprobe", true, "kprobe on vfs_read opened", "SEC(\"kprobe/...\") probes attach", ""),
                Err(e) => check("kprobe", false, errno_text(&e), "", "SEC(\"kprobe/...\") probes cannot attach"),
            }
        }
    });
    out.extend(kprobe_family_checks());
    out.push(struct_ops_link_check());
    // Uprobes: a perf uprobe on a scratch file nobody maps.
    out.push(match pmu_type("uprobe") {
        None => check(
            "uprobe",
            false,
            "no uprobe PMU: kernel built without CONFIG_UPROBE_EVENTS",
            "",
            "SEC(\"uprobe/...\") probes (and ebpfctl observe) cannot attach",
        ),
        Some(t) => {
            // A fresh private file (random name, O_EXCL, 0600), removed on drop: a predictable
            // name in the temp directory would let another user aim root's write elsewhere.
            let res = tempfile::Builder::new()
                .prefix("ebpfctl-uprobe-")
                .tempfile()
                .and_then(|mut f| {
                    f.write_all(&[0u8; 64])?;
                    let c = CString::new(f.path().as_os_str().as_encoded_bytes())
                        .map_err(io::Error::other)?;
                    perf_open(t, 0, c.as_ptr() as u64, 0)
                });
            match res {
                Ok(()) => check(
                    "uprobe",
                    true,
                    "uprobe on a scratch file opened",
                    "SEC(\"uprobe/...\") probes attach",
                    "",
                ),
                Err(e) => check(
                    "uprobe",
                    false,
                    errno_text(&e),
                    "",
                    "SEC(\"uprobe/...\") probes cannot attach",
                ),
            }
        }
    });
    // fentry, fexit, fmod_ret: load a no-op on a traceable function and attach it for an
    // instant (fmod_ret only on functions it may modify: security_* hooks or ones allowing
    // error injection; a no-op returning 0 lets the function run unchanged).
    for (name, attach_type, func) in [
        ("fentry", libbpf_sys::BPF_TRACE_FENTRY, "vfs_read"),
        ("fexit", libbpf_sys::BPF_TRACE_FEXIT, "vfs_read"),
        (
            "fmod_ret",
            libbpf_sys::BPF_MODIFY_RETURN,
            "security_file_open",
        ),
    ] {
        out.push(trampoline_check(btf, name, attach_type, func));
    }
    // LSM: needs "bpf" among the active LSMs; probe load (not attach: it would gate the system).
    let lsms = read_securityfs("lsm").unwrap_or_default();
    let bpf_lsm = lsms.split(',').any(|l| l.trim() == "bpf");
    out.push(match func_id(btf, "bpf_lsm_file_open") {
        None => check(
            "lsm",
            false,
            "no bpf_lsm_* hooks in kernel BTF: kernel built without CONFIG_BPF_LSM",
            "",
            "SEC(\"lsm/...\") probes cannot load",
        ),
        Some(id) => match load_noop(libbpf_sys::BPF_PROG_TYPE_LSM, libbpf_sys::BPF_LSM_MAC, id) {
            Err(e) => check(
                "lsm",
                false,
                format!("load refused: {}", errno_text(&e)),
                "",
                "SEC(\"lsm/...\") probes cannot load",
            ),
            Ok(_) if !bpf_lsm => check(
                "lsm",
                false,
                format!(
                    "programs load but \"bpf\" is not an active LSM (lsm={})",
                    if lsms.is_empty() {
                        "unknown"
                    } else {
                        lsms.trim()
                    }
                ),
                "",
                "SEC(\"lsm/...\") probes load but never run; boot with lsm=...,bpf",
            ),
            Ok(_) => check(
                "lsm",
                true,
                format!("program loads; active LSMs: {}", lsms.trim()),
                "SEC(\"lsm/...\") probes load and run",
                "",
            ),
        },
    });
    // lsm_cgroup (6.0): the same hooks, run only for tasks (or sockets) of one cgroup;
    // probed by loading (attaching needs a cgroup; the runner takes it from --cgroup).
    out.push(match func_id(btf, "bpf_lsm_file_open") {
        None => check(
            "lsm_cgroup",
            false,
            "no bpf_lsm_* hooks in kernel BTF: kernel built without CONFIG_BPF_LSM",
            "",
            "SEC(\"lsm_cgroup/...\") probes cannot load",
        ),
        Some(id) => match load_insns(
            libbpf_sys::BPF_PROG_TYPE_LSM,
            libbpf_sys::BPF_LSM_CGROUP,
            id,
            &RETURN_1,
        ) {
            Err(e) => check(
                "lsm_cgroup",
                false,
                format!(
                    "load refused: {}{}",
                    errno_text(&e),
                    if e.raw_os_error() == Some(libc::EINVAL) {
                        " (BPF_LSM_CGROUP needs Linux 6.0)"
                    } else {
                        ""
                    }
                ),
                "",
                "SEC(\"lsm_cgroup/...\") probes cannot load",
            ),
            Ok(_) if !bpf_lsm => check(
                "lsm_cgroup",
                false,
                "programs load but \"bpf\" is not an active LSM",
                "",
                "SEC(\"lsm_cgroup/...\") probes load but never run; boot with lsm=...,bpf",
            ),
            Ok(_) => check(
                "lsm_cgroup",
                true,
                "program loads; bpf is an active LSM",
                "SEC(\"lsm_cgroup/...\") probes run for the cgroup given with --cgroup",
                "",
            ),
        },
    });
    out
}

/// A BPF trampoline kind (fentry, fexit, fmod_ret) on `func`: load a no-op, attach, detach.
fn trampoline_check(btf: Option<&Btf>, name: &str, attach_type: u32, func: &str) -> Check {
    let yes = format!("SEC(\"{name}/...\") probes attach");
    let Some(id) = func_id(btf, func) else {
        return check(
            name,
            false,
            format!("no kernel BTF or no {func} in it"),
            "",
            &format!("SEC(\"{name}/...\") probes cannot load: they need kernel BTF"),
        );
    };
    match load_noop(libbpf_sys::BPF_PROG_TYPE_TRACING, attach_type, id)
        .map_err(|e| ("load", e))
        .and_then(|fd| attach_btf_prog(&fd, attach_type).map_err(|e| ("attach", e)))
    {
        Ok(()) => check(
            name,
            true,
            format!("loaded and attached a no-op on {func}"),
            &yes,
            "",
        ),
        Err((stage, e)) => check(
            name,
            false,
            format!("{stage} refused: {}", errno_text(&e)),
            "",
            &format!(
                "SEC(\"{name}/...\") probes are refused here; use tracepoints or raw_tp instead"
            ),
        ),
    }
}

/// The syscall wrapper the kernel names for `getppid` on this architecture (what
/// `SEC("ksyscall/getppid")` resolves to).
fn syscall_wrapper(name: &str) -> String {
    let prefix = if cfg!(target_arch = "x86_64") {
        "__x64_sys_"
    } else if cfg!(target_arch = "aarch64") {
        "__arm64_sys_"
    } else if cfg!(target_arch = "s390x") {
        "__s390x_sys_"
    } else if cfg!(target_arch = "riscv64") {
        "__riscv_sys_"
    } else {
        "sys_"
    };
    format!("{prefix}{name}")
}

/// kretprobe and ksyscall (perf kprobes on a return / a syscall wrapper) and kprobe.multi
/// (a no-op kprobe program linked to vfs_read through fprobe for an instant).
fn kprobe_family_checks() -> Vec<Check> {
    let mut out = Vec::new();
    let pmu = pmu_type("kprobe");
    let no_pmu = "no kprobe PMU (/sys/bus/event_source/devices/kprobe): kernel built without CONFIG_KPROBES/CONFIG_KPROBE_EVENTS";
    // The retprobe flag's bit, from the PMU's format ("config:0").
    let ret_bit = std::fs::read_to_string("/sys/bus/event_source/devices/kprobe/format/retprobe")
        .ok()
        .and_then(|s| s.trim().strip_prefix("config:")?.parse::<u32>().ok())
        .unwrap_or(0);
    let wrapper = syscall_wrapper("getppid");
    for (name, func, config) in [
        ("kretprobe", "vfs_read".to_string(), 1u64 << ret_bit),
        ("ksyscall", wrapper, 0),
    ] {
        let no = format!("SEC(\"{name}/...\") probes cannot attach");
        out.push(match pmu {
            None => check(name, false, no_pmu, "", &no),
            Some(t) => {
                let f = CString::new(func.as_str()).expect("no NUL");
                match perf_open(t, config, f.as_ptr() as u64, 0) {
                    Ok(()) => check(
                        name,
                        true,
                        format!(
                            "{} on {func} opened",
                            if config != 0 { "kretprobe" } else { "kprobe" }
                        ),
                        &format!("SEC(\"{name}/...\") probes attach"),
                        "",
                    ),
                    Err(e) => check(name, false, format!("{func}: {}", errno_text(&e)), "", &no),
                }
            }
        });
    }
    let multi = load_noop(
        libbpf_sys::BPF_PROG_TYPE_KPROBE,
        libbpf_sys::BPF_TRACE_KPROBE_MULTI,
        0,
    )
    .map_err(|e| ("load", e))
    .and_then(|fd| kprobe_multi_link(&fd, "vfs_read").map_err(|e| ("attach", e)));
    out.push(match multi {
        Ok(()) => check(
            "kprobe.multi",
            true,
            "linked a no-op to vfs_read through fprobe",
            "SEC(\"kprobe.multi/PATTERN\") probes attach",
            "",
        ),
        Err((stage, e)) => check(
            "kprobe.multi",
            false,
            format!(
                "{stage} refused: {} (kprobe.multi needs Linux 5.18 built with CONFIG_FPROBE)",
                errno_text(&e)
            ),
            "",
            "SEC(\"kprobe.multi/...\") probes cannot attach; use one kprobe/ per function",
        ),
    });
    out
}

/// Links a loaded kprobe.multi program to one kernel symbol, then detaches it at once.
fn kprobe_multi_link(fd: &OwnedFd, sym: &str) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let c = CString::new(sym).expect("no NUL");
    let mut syms = [c.as_ptr()];
    // SAFETY: all-zero is a valid bpf_link_create_opts; `sz` is set as libbpf requires.
    let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _;
    opts.__bindgen_anon_1.kprobe_multi =
        libbpf_sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_2 {
            flags: 0,
            cnt: 1,
            syms: syms.as_mut_ptr(),
            addrs: std::ptr::null(),
            cookies: std::ptr::null(),
        };
    // SAFETY: `fd` is a loaded kprobe program; opts, its symbol array and the symbol
    // string outlive the call; the returned fd is owned below.
    let rc = unsafe {
        libbpf_sys::bpf_link_create(fd.as_raw_fd(), 0, libbpf_sys::BPF_TRACE_KPROBE_MULTI, &opts)
    };
    if rc < 0 {
        return Err(sys::errno_of(rc));
    }
    // SAFETY: fresh link fd; dropping it detaches the program.
    drop(unsafe { OwnedFd::from_raw_fd(rc) });
    Ok(())
}

/// Reads a file of securityfs, mounting it privately for the moment if it is not mounted.
fn read_securityfs(name: &str) -> Option<String> {
    let main = Path::new("/sys/kernel/security").join(name);
    if let Ok(s) = std::fs::read_to_string(&main) {
        return Some(s);
    }
    // A fresh private directory (random name, 0700) to mount on, never a predictable path.
    let dir = tempfile::Builder::new()
        .prefix("ebpfctl-securityfs-")
        .tempdir()
        .ok()?;
    let c = |s: &str| CString::new(s).expect("no NUL");
    let target = CString::new(dir.path().as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: NUL-terminated strings; securityfs takes no data.
    let rc = unsafe {
        libc::mount(
            c("securityfs").as_ptr(),
            target.as_ptr(),
            c("securityfs").as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return None;
    }
    let s = std::fs::read_to_string(dir.path().join(name)).ok();
    // SAFETY: unmounting what we just mounted at a path we own.
    let unmounted = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } == 0;
    if unmounted {
        // Empty again: remove it (TempDir's own cleanup would recurse into a mount).
        let _ = std::fs::remove_dir(dir.keep());
    } else {
        // Leave it rather than recurse into securityfs.
        let _ = dir.keep();
    }
    s
}

const SECURITYFS: PseudoFs = PseudoFs {
    fstype: "securityfs",
    target: "/sys/kernel/security",
    magic: 0x7363_6673,
    used_for: "reading lockdown mode and active LSMs",
    options: "",
};

fn fs_checks() -> Vec<Check> {
    [
        (
            mounts::TRACEFS,
            "tracepoint and uprobe attachment can find event ids",
            "ebpfctl run mounts it when a probe needs it; other tools fail to attach tracepoints",
        ),
        (
            mounts::BPFFS,
            "maps and programs can be pinned",
            "nothing can be pinned until it is mounted (ebpfctl run mounts it when asked to pin)",
        ),
        (
            mounts::DEBUGFS,
            "legacy tools that read /sys/kernel/debug/tracing work",
            "only legacy tools that use /sys/kernel/debug/tracing are affected",
        ),
        (
            SECURITYFS,
            "lockdown mode and LSM list are readable",
            "lockdown and the LSM list are read through a private mount",
        ),
    ]
    .into_iter()
    .map(|(fs, yes, no)| {
        let m = mounts::is_mounted(&fs);
        check(
            fs.fstype,
            m,
            if m {
                format!("mounted at {}", fs.target)
            } else {
                format!("not mounted at {} (needed for {})", fs.target, fs.used_for)
            },
            yes,
            no,
        )
    })
    .collect()
}

fn lockdown() -> Check {
    let Some(text) = read_securityfs("lockdown") else {
        return check(
            "lockdown",
            false,
            "unknown: securityfs unavailable or kernel built without CONFIG_SECURITY_LOCKDOWN_LSM",
            "",
            "lockdown restrictions cannot be determined",
        );
    };
    let mode = text
        .split_whitespace()
        .find(|w| w.starts_with('['))
        .map(|w| w.trim_matches(|c| c == '[' || c == ']').to_string())
        .unwrap_or_else(|| text.trim().to_string());
    let consequence = match mode.as_str() {
        "none" => "no lockdown restrictions on BPF",
        "integrity" => "bpf_probe_write_user is refused; reading kernel memory still works",
        "confidentiality" => "reading kernel memory (bpf_probe_read_kernel, kprobe args) is refused: most tracing tools fail",
        _ => "unknown lockdown mode",
    };
    Check {
        name: "lockdown".into(),
        available: mode == "none",
        detail: format!("mode {mode}"),
        consequence: consequence.into(),
    }
}

fn btf_checks(btf: Option<&Btf>) -> Vec<Check> {
    let mut out = vec![match btf {
        Some(b) => check(
            "vmlinux BTF",
            true,
            format!("{} with {} types", ebpfctl_build::VMLINUX_BTF, b.len()),
            "CO-RE probes build against this kernel's vmlinux.h and map values decode by type",
            "",
        ),
        None => check(
            "vmlinux BTF",
            false,
            format!("{} missing: kernel built without CONFIG_DEBUG_INFO_BTF", ebpfctl_build::VMLINUX_BTF),
            "",
            "no vmlinux.h, no CO-RE relocation, no fentry/LSM/tp_btf: probes must ship their own BTF",
        ),
    }];
    let modules = std::fs::read_dir("/sys/kernel/btf")
        .map(|d| d.flatten().filter(|e| e.file_name() != "vmlinux").count())
        .unwrap_or(0);
    out.push(check(
        "module BTF",
        modules > 0,
        format!("{modules} modules with BTF in /sys/kernel/btf"),
        "types from loaded modules are available to CO-RE and `btf dump id N`",
        "probes cannot use types defined in modules (none loaded, or CONFIG_DEBUG_INFO_BTF_MODULES off)",
    ));
    out
}

fn helper_checks() -> Vec<Check> {
    let probe = |func: u32| {
        // SAFETY: no pointers besides the null options.
        unsafe {
            libbpf_sys::libbpf_probe_bpf_helper(
                libbpf_sys::BPF_PROG_TYPE_TRACEPOINT,
                func,
                std::ptr::null(),
            )
        }
    };
    [
        (
            "bpf_probe_read_kernel",
            libbpf_sys::BPF_FUNC_probe_read_kernel,
            "tracing probes can read kernel memory",
            "tracing probes cannot read kernel memory (lockdown=confidentiality?)",
        ),
        (
            "bpf_probe_write_user",
            libbpf_sys::BPF_FUNC_probe_write_user,
            "probes may write user memory",
            "probes cannot write user memory (refused by lockdown or the kernel)",
        ),
    ]
    .into_iter()
    .map(|(name, id, yes, no)| {
        let rc = probe(id);
        check(
            name,
            rc == 1,
            if rc == 1 {
                "available to tracepoint programs".to_string()
            } else if rc == 0 {
                "refused by the verifier for tracepoint programs".to_string()
            } else {
                errno_text(&sys::errno_of(rc))
            },
            yes,
            no,
        )
    })
    .collect()
}

fn sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn settings() -> Vec<Check> {
    let mut out = Vec::new();
    let jit = sysctl("/proc/sys/net/core/bpf_jit_enable");
    out.push(check(
        "JIT",
        jit.as_deref().is_some_and(|v| v != "0"),
        format!(
            "net.core.bpf_jit_enable = {}",
            jit.as_deref().unwrap_or("absent")
        ),
        "programs run as native code",
        "programs run in the interpreter (slower; some features need the JIT)",
    ));
    let unpriv = sysctl("/proc/sys/kernel/unprivileged_bpf_disabled");
    out.push(check(
        "unprivileged BPF",
        unpriv.as_deref() == Some("0"),
        format!(
            "kernel.unprivileged_bpf_disabled = {}",
            unpriv.as_deref().unwrap_or("absent")
        ),
        "unprivileged users may load socket filters",
        "only root (CAP_BPF/CAP_SYS_ADMIN) can use ebpfctl",
    ));
    let stats = sysctl("/proc/sys/kernel/bpf_stats_enabled");
    // SAFETY: plain syscall wrapper; a non-negative result is an fd we own and close.
    let rc = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    let can = rc >= 0;
    if can {
        // SAFETY: fresh fd; closing it drops our hold on statistics.
        drop(unsafe { OwnedFd::from_raw_fd(rc) });
    }
    out.push(check(
        "BPF statistics",
        can,
        format!(
            "kernel.bpf_stats_enabled = {}; BPF_ENABLE_STATS {}",
            stats.as_deref().unwrap_or("absent"),
            if can {
                "works".to_string()
            } else {
                errno_text(&sys::errno_of(rc))
            }
        ),
        "ebpfctl top can measure run time per program",
        "run time per program cannot be measured (ebpfctl top shows nothing)",
    ));
    out
}

/// `BPF_MAP_TYPE_STRUCT_OPS`.
const STRUCT_OPS_MAP: u32 = 26;
/// How many of vmlinux's struct_ops value types to try before giving up.
const STRUCT_OPS_TRIES: usize = 8;

/// A BTF object with one `int`: the kernel wants some BTF fd beside a struct_ops map's
/// vmlinux value type (a loader passes its object's).
fn load_int_btf() -> io::Result<OwnedFd> {
    let mut raw = Vec::with_capacity(45);
    raw.extend_from_slice(&0xeb9fu16.to_le_bytes());
    raw.extend_from_slice(&[1, 0]); // version, flags
                                    // hdr_len, type_off, type_len, str_off, str_len; then `int` (INT, 4 bytes, 32 bits).
    for w in [24u32, 0, 16, 16, 5, 1, 1 << 24, 4, 32] {
        raw.extend_from_slice(&w.to_le_bytes());
    }
    raw.extend_from_slice(b"\0int\0");
    // SAFETY: `raw` is a complete BTF blob of the length given; null opts are allowed.
    let rc = unsafe {
        libbpf_sys::bpf_btf_load(raw.as_ptr().cast(), raw.len() as _, std::ptr::null_mut())
    };
    if rc < 0 {
        return Err(sys::errno_of(rc));
    }
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

/// Whether a real struct_ops map can be created: one of vmlinux BTF's value types
/// (`struct bpf_struct_ops_NAME { <common>; struct NAME data; }`, `tcp_congestion_ops`
/// first) with its own size. libbpf 1.7's probe sets `value_type_btf_obj_fd` (a 6.9
/// field) to -1, which kernels before 6.9 refuse as a non-zero unknown attribute (EINVAL)
/// instead of the ENOTSUPP the probe expects, so it reports struct_ops maps missing on
/// kernels that have had them since 5.6. This asks the question a loader would. With
/// `flags` `BPF_F_LINK`: whether the map can back a struct_ops link (`SEC(".struct_ops.link")`,
/// 6.4; older kernels refuse the flag with EINVAL).
fn struct_ops_map_creates(btf: Option<&Btf>, flags: u32) -> bool {
    use std::os::fd::AsRawFd;
    let Some(btf) = btf else {
        return false;
    };
    let Ok(btf_fd) = load_int_btf() else {
        return false;
    };
    let preferred = "bpf_struct_ops_tcp_congestion_ops";
    let mut candidates: Vec<(u32, &str)> = btf
        .iter()
        .filter(|(_, t)| t.kind == Kind::Struct)
        .map(|(id, t)| (id, btf.str(t.name_off)))
        .filter(|(id, n)| {
            n.starts_with("bpf_struct_ops_")
                && btf
                    .members(*id)
                    .iter()
                    .any(|m| btf.str(m.name_off) == "data")
        })
        .collect();
    candidates.sort_by_key(|&(_, n)| n != preferred);
    candidates
        .into_iter()
        .take(STRUCT_OPS_TRIES)
        .any(|(id, _)| {
            let Ok(size) = u32::try_from(btf.size_of(id).unwrap_or(0)) else {
                return false;
            };
            // SAFETY: all-zero is a valid bpf_map_create_opts; `sz` is set as libbpf requires.
            let mut opts: libbpf_sys::bpf_map_create_opts = unsafe { std::mem::zeroed() };
            opts.sz = std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _;
            opts.btf_fd = btf_fd.as_raw_fd() as u32;
            opts.btf_vmlinux_value_type_id = id;
            opts.map_flags = flags;
            // SAFETY: a null name is allowed; opts outlives the call.
            let rc = unsafe {
                libbpf_sys::bpf_map_create(STRUCT_OPS_MAP, std::ptr::null(), 4, size, 1, &opts)
            };
            if rc < 0 {
                return false;
            }
            // SAFETY: a fresh map fd owned by nobody else; closing it frees the map.
            drop(unsafe { OwnedFd::from_raw_fd(rc) });
            true
        })
}

/// Whether this kernel takes struct_ops maps made for links (`BPF_F_LINK`, 6.4): asked once
/// per process (it parses vmlinux BTF).
pub(crate) fn struct_ops_links() -> bool {
    static LINKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LINKS.get_or_init(|| struct_ops_map_creates(vmlinux_btf().as_ref(), libbpf_sys::BPF_F_LINK))
}

fn struct_ops_link_check() -> Check {
    let yes = struct_ops_links();
    check(
        "struct_ops_link",
        yes,
        if yes {
            "a struct_ops map with BPF_F_LINK created"
        } else {
            "struct_ops maps with BPF_F_LINK refused (kernels before 6.4)"
        },
        "SEC(\".struct_ops.link\") maps are registered through a BPF link",
        "SEC(\".struct_ops.link\") maps are registered without a link (run clears BPF_F_LINK and says so): the same while ebpfctl runs",
    )
}

/// Probes everything.
pub fn probe() -> Features {
    let btf = vmlinux_btf();
    let kernel = {
        // SAFETY: utsname is plain data that uname fills.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid utsname we own.
        unsafe { libc::uname(&mut u) };
        format!("{} {}", sys::cname(&u.sysname), sys::cname(&u.release))
    };
    let progs = probe_types(type_count(sys::prog_type_name), sys::prog_type_name, &|t| {
        // SAFETY: no pointers besides the null options.
        unsafe { libbpf_sys::libbpf_probe_bpf_prog_type(t, std::ptr::null()) }
    });
    let mut maps = probe_types(type_count(sys::map_type_name), sys::map_type_name, &|t| {
        // SAFETY: as above.
        unsafe { libbpf_sys::libbpf_probe_bpf_map_type(t, std::ptr::null()) }
    });
    if let Some(m) = maps
        .iter_mut()
        .find(|m| m.name == sys::map_type_name(STRUCT_OPS_MAP))
    {
        if !m.supported && struct_ops_map_creates(btf.as_ref(), 0) {
            m.supported = true;
            m.error = None;
        }
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let warnings = if root {
        Vec::new()
    } else {
        vec!["not running as root: most probes need CAP_BPF/CAP_SYS_ADMIN, so this report understates what the kernel supports; run as root".to_string()]
    };
    Features {
        kernel,
        warnings,
        program_types: progs,
        map_types: maps,
        attach: attach_checks(btf.as_ref()),
        btf: btf_checks(btf.as_ref()),
        filesystems: fs_checks(),
        lockdown: lockdown(),
        helpers: helper_checks(),
        settings: settings(),
    }
}

fn types_line<W: Write>(w: &mut W, title: &str, ts: &[TypeSupport]) -> io::Result<()> {
    let yes: Vec<&str> = ts
        .iter()
        .filter(|t| t.supported)
        .map(|t| t.name.as_str())
        .collect();
    let no: Vec<&str> = ts
        .iter()
        .filter(|t| !t.supported)
        .map(|t| t.name.as_str())
        .collect();
    writeln!(w, "{title} ({} of {} supported)", yes.len(), ts.len())?;
    writeln!(w, "  yes: {}", yes.join(" "))?;
    if !no.is_empty() {
        writeln!(
            w,
            "  no:  {}  -> probes of these types fail to load",
            no.join(" ")
        )?;
    }
    Ok(())
}

fn checks<W: Write>(w: &mut W, title: &str, cs: &[Check]) -> io::Result<()> {
    writeln!(w, "{title}")?;
    for c in cs {
        writeln!(
            w,
            "  [{}] {:<22} {}",
            if c.available { "yes" } else { " no" },
            c.name,
            c.detail
        )?;
        writeln!(w, "        {:<22} -> {}", "", c.consequence)?;
    }
    Ok(())
}

pub fn print_features<W: Write>(w: &mut W, f: &Features, format: Format) -> io::Result<()> {
    if format == Format::Json {
        return print::json(w, f);
    }
    writeln!(w, "kernel {}", f.kernel)?;
    for warning in &f.warnings {
        writeln!(w, "warning: {warning}")?;
    }
    writeln!(w)?;
    types_line(w, "program types", &f.program_types)?;
    types_line(w, "map types", &f.map_types)?;
    writeln!(w)?;
    checks(w, "attach kinds", &f.attach)?;
    checks(w, "BTF", &f.btf)?;
    checks(w, "filesystems", &f.filesystems)?;
    checks(w, "lockdown", std::slice::from_ref(&f.lockdown))?;
    checks(w, "helpers", &f.helpers)?;
    checks(w, "settings", &f.settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Root on a kernel with BTF and TCP (every kernel the suite runs on): the real-map
    /// probe must work where libbpf's answer can be wrong (before 6.9).
    #[test]
    fn a_real_struct_ops_map_can_be_created() {
        let btf = vmlinux_btf().expect("kernel BTF (/sys/kernel/btf/vmlinux) is needed");
        assert!(
            btf.find("bpf_struct_ops_tcp_congestion_ops", Kind::Struct)
                .next()
                .is_some(),
            "this kernel's BTF has no struct_ops value type for tcp_congestion_ops"
        );
        assert!(struct_ops_map_creates(Some(&btf), 0));
        assert!(!struct_ops_map_creates(None, 0));
    }
}
