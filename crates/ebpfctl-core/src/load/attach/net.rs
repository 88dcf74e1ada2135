//! Network programs on `--iface`: XDP and tcx (BPF links), tc (clsact filter, removed on
//! drop), socket filters (a packet socket bound to the interface).
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use libbpf_rs::{ProgramMut as Program, TcHook, TcHookBuilder, TC_EGRESS, TC_INGRESS};

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

/// A link libbpf-rs has no wrapper for (tcx); destroyed on drop.
pub struct RawLink(NonNull<libbpf_sys::bpf_link>);

impl Drop for RawLink {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful libbpf attach and is destroyed once.
        unsafe { libbpf_sys::bpf_link__destroy(self.0.as_ptr()) };
    }
}

/// A tc filter on a clsact qdisc; detached on drop, and the qdisc removed if we created it.
pub struct TcAttachment {
    hook: TcHook,
    created_qdisc: bool,
}

impl Drop for TcAttachment {
    fn drop(&mut self) {
        let _ = self.hook.detach();
        if self.created_qdisc {
            let _ = self.hook.destroy();
        }
    }
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
        AttachPoint::Xdp => prog
            .attach_xdp(idx)
            .map(Attachment::Link)
            .map_err(|e| describe(&e)),
        AttachPoint::Tc { ingress } => {
            let mut builder = TcHookBuilder::new(prog.as_fd());
            builder.ifindex(idx).replace(true).handle(1).priority(1);
            let mut hook = builder.hook(if *ingress { TC_INGRESS } else { TC_EGRESS });
            // Creating the clsact qdisc fails with EEXIST when someone else made it: keep theirs.
            let created_qdisc = hook.create().is_ok();
            match hook.attach() {
                Ok(h) => Ok(Attachment::Tc(TcAttachment {
                    hook: h,
                    created_qdisc,
                })),
                Err(e) => {
                    if created_qdisc {
                        let _ = hook.destroy();
                    }
                    Err(describe(&e))
                }
            }
        }
        AttachPoint::Tcx { .. } => {
            // SAFETY: the program pointer is valid for the program's lifetime; opts may be null.
            let raw = unsafe {
                libbpf_sys::bpf_program__attach_tcx(
                    libbpf_rs::AsRawLibbpf::as_libbpf_object(prog).as_ptr(),
                    idx,
                    std::ptr::null(),
                )
            };
            match NonNull::new(raw) {
                // SAFETY: libbpf_get_error on a non-null pointer only inspects its value.
                Some(p) if unsafe { libbpf_sys::libbpf_get_error(p.as_ptr() as *const _) } == 0 => {
                    Ok(Attachment::Raw(RawLink(p)))
                }
                _ => Err(format!(
                    "tcx attach failed: {} (tcx needs Linux 6.6+)",
                    std::io::Error::last_os_error()
                )),
            }
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
