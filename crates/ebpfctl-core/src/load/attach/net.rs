//! Network programs on `--iface`: XDP and tcx (BPF links, detached by the kernel when our fds
//! close, even after SIGKILL), tc (a tcx link too where the kernel has tcx; else a clsact
//! filter, see [`super::tc`]), socket filters (a packet socket bound to the interface).
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use libbpf_rs::ProgramMut as Program;

use super::tc::{self, Direction, TcFilter};
use super::{describe, AttachOptions, AttachPoint, Attachment};

/// The interface index of `name`.
pub fn ifindex(name: &str) -> Result<i32, String> {
    let c = CString::new(name).map_err(|_| format!("bad interface name {name:?}"))?;
    // SAFETY: c is NUL-terminated and lives across the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(format!("no network interface named {name} (see `ip link`)"));
    }
    Ok(idx as i32)
}

/// A BPF link held by its fd (tcx); the kernel detaches it when the fd closes.
pub struct RawLink(#[allow(dead_code)] OwnedFd);

/// A tc filter on a clsact qdisc (kernels without tcx); removed on drop. The notice says
/// what a SIGKILL would leave and how to remove it.
pub struct TcAttachment {
    pub filter: TcFilter,
    pub notice: String,
}

/// Creates a tcx link for `prog` on `ifindex`; the error keeps the kernel's errno.
fn tcx_link(prog: &Program<'_>, ifindex: i32, dir: Direction) -> std::io::Result<RawLink> {
    let attach_type = match dir {
        Direction::Ingress => libbpf_sys::BPF_TCX_INGRESS,
        Direction::Egress => libbpf_sys::BPF_TCX_EGRESS,
    };
    // The attach type is given here rather than taken from the section, so `SEC("tc")` and
    // `SEC("classifier")` (no direction: ingress) work too; the kernel only checks that the
    // program is a sched_cls one.
    // SAFETY: plain syscall wrapper: a valid program fd, an ifindex, null options.
    let rc = unsafe {
        libbpf_sys::bpf_link_create(
            prog.as_fd().as_raw_fd(),
            ifindex,
            attach_type,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::from_raw_os_error(-rc));
    }
    // SAFETY: a non-negative return is a fresh link fd that nothing else owns.
    Ok(RawLink(unsafe { OwnedFd::from_raw_fd(rc) }))
}

pub fn attach(
    prog: &Program<'_>,
    point: &AttachPoint,
    opts: &AttachOptions,
) -> Result<Attachment, String> {
    let Some(iface) = &opts.iface else {
        return Err(format!("{} programs need --iface NAME", point.kind()));
    };
    let idx = ifindex(iface)?;
    match point {
        // An XDP link: the kernel refuses it (EBUSY) when another program is attached, so
        // someone else's is never replaced.
        AttachPoint::Xdp => prog.attach_xdp(idx).map(Attachment::Link).map_err(|e| {
            let msg = describe(&e);
            if msg.contains(&format!("(os error {})", libc::EBUSY)) {
                format!(
                    "{msg}: another XDP program is attached to {iface} (see `ebpfctl net \
                     list`); ebpfctl never replaces it"
                )
            } else {
                msg
            }
        }),
        AttachPoint::Tc { ingress } => {
            let dir = if *ingress {
                Direction::Ingress
            } else {
                Direction::Egress
            };
            let why_legacy = if opts.force_legacy_tc {
                "--force-legacy-tc was given".to_string()
            } else {
                match tcx_link(prog, idx, dir) {
                    Ok(link) => return Ok(Attachment::Raw(link)),
                    // Kernels before 6.6 know no tcx attach type: BPF_LINK_CREATE says EINVAL.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        format!("this kernel has no tcx links (Linux 6.6+; tcx attach: {e})")
                    }
                    Err(e) => return Err(format!("tcx attach to {iface}: {e}")),
                }
            };
            let name = prog.name().to_string_lossy().into_owned();
            let filter = tc::attach(prog.as_fd(), &name, idx, iface, dir)?;
            let notice = format!(
                "program {name}: {why_legacy}, so it is a tc filter on {iface} {} (pref {}, \
                 handle {:#x}, named {}); if ebpfctl is killed with SIGKILL the filter stays \
                 attached: remove it with `ebpfctl net detach`",
                dir.name(),
                filter.pref,
                filter.handle,
                filter.name
            );
            Ok(Attachment::Tc(TcAttachment { filter, notice }))
        }
        AttachPoint::Tcx { ingress } => {
            let dir = if *ingress {
                Direction::Ingress
            } else {
                Direction::Egress
            };
            tcx_link(prog, idx, dir).map(Attachment::Raw).map_err(|e| {
                if e.raw_os_error() == Some(libc::EINVAL) {
                    format!("tcx attach failed: {e} (tcx needs Linux 6.6+)")
                } else {
                    format!("tcx attach to {iface}: {e}")
                }
            })
        }
        AttachPoint::SocketFilter => {
            // SAFETY: socket() has no pointer arguments.
            let fd = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    (libc::ETH_P_ALL as u16).to_be() as i32,
                )
            };
            if fd < 0 {
                return Err(format!(
                    "packet socket: {}",
                    std::io::Error::last_os_error()
                ));
            }
            // SAFETY: fd is a fresh socket we own.
            let sock = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: sockaddr_ll is plain data; zeroed then filled.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            sll.sll_ifindex = idx;
            // SAFETY: sll is a valid sockaddr_ll of the size passed.
            let rc = unsafe {
                libc::bind(
                    sock.as_raw_fd(),
                    &sll as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if rc < 0 {
                return Err(format!(
                    "bind packet socket to {iface}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            let pfd = prog.as_fd().as_raw_fd();
            // SAFETY: SO_ATTACH_BPF takes a pointer to an int program fd.
            let rc = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_ATTACH_BPF,
                    &pfd as *const i32 as *const _,
                    4,
                )
            };
            if rc < 0 {
                return Err(format!(
                    "SO_ATTACH_BPF: {}",
                    std::io::Error::last_os_error()
                ));
            }
            Ok(Attachment::Socket(sock))
        }
        _ => unreachable!("net::attach called for {point:?}"),
    }
}
