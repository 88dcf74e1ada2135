//! `net list`: BPF programs on the network interfaces of this network namespace: XDP (link
//! or legacy netlink attachment), tcx links and tc filters, with who holds each program and
//! whether a filter is one ebpfctl left behind (see [`crate::load::attach::tc`]).
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::AsFd;

use libbpf_rs::query::{LinkInfo as RsLinkInfo, LinkTypeInfo};
use serde::Serialize;

use super::print::{self, Format, Table};
use super::sys::{self, Holder, ObjKind};
use super::{InspectError, Result};
use crate::load::attach::tc::{self, Direction, Mark};

/// A tc filter's place and classifier.
#[derive(Debug, Clone, Serialize)]
pub struct TcDetails {
    pub pref: u16,
    pub handle: u32,
    /// `bpf`, `u32`, `flower`...
    pub classifier: String,
    pub name: Option<String>,
    pub direct_action: bool,
}

/// One program (or tc filter) on an interface.
#[derive(Debug, Clone, Serialize)]
pub struct NetEntry {
    pub ifindex: i32,
    pub iface: String,
    /// `xdp`, `tcx` or `tc`.
    pub kind: &'static str,
    /// XDP: the mode (`generic`, `driver`, `offload`); tcx and tc: `ingress` or `egress`.
    pub hook: String,
    /// None for a tc filter that runs no BPF program.
    pub prog_id: Option<u32>,
    /// Set when attached through a BPF link: then it goes when the link's last holder does.
    /// Without one (legacy XDP, tc filters) it stays until someone removes it.
    pub link_id: Option<u32>,
    pub tc: Option<TcDetails>,
    /// ebpfctl's mark, on tc filters it added.
    pub ebpfctl: Option<Mark>,
    /// Processes holding the program (or the link).
    pub held_by: Vec<Holder>,
    /// One of ours whose program no process holds any more (its ebpfctl was killed):
    /// `ebpfctl net detach` removes it.
    pub stale: bool,
}

/// Every interface of this network namespace: (ifindex, name).
pub fn interfaces() -> Result<Vec<(i32, String)>> {
    // SAFETY: if_nameindex has no arguments; the array it returns is read up to its
    // zero-index terminator and freed once below.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Err(InspectError::sys(
            "listing network interfaces".to_string(),
            io::Error::last_os_error(),
        ));
    }
    let mut out = Vec::new();
    let mut p = list;
    // SAFETY: p walks the array if_nameindex returned until its terminating entry; each
    // name is a NUL-terminated string owned by that array.
    unsafe {
        while (*p).if_index != 0 {
            let name = std::ffi::CStr::from_ptr((*p).if_name)
                .to_string_lossy()
                .into_owned();
            out.push(((*p).if_index as i32, name));
            p = p.add(1);
        }
        libc::if_freenameindex(list);
    }
    out.sort();
    Ok(out)
}

/// XDP programs on `ifindex`: (mode, prog id).
fn xdp_progs(ifindex: i32) -> Vec<(&'static str, u32)> {
    // SAFETY: all-zero is a valid bpf_xdp_query_opts; sz is set before the call.
    let mut q: libbpf_sys::bpf_xdp_query_opts = unsafe { std::mem::zeroed() };
    q.sz = std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _;
    // SAFETY: q is a valid, writable options struct of the size it declares.
    if unsafe { libbpf_sys::bpf_xdp_query(ifindex, 0, &mut q) } != 0 {
        return Vec::new();
    }
    [
        ("generic", q.skb_prog_id),
        ("driver", q.drv_prog_id),
        ("offload", q.hw_prog_id),
    ]
    .into_iter()
    .filter(|(_, id)| *id != 0)
    .collect()
}

/// tcx programs on one hook of `ifindex`: (prog id, link id); empty before Linux 6.6.
fn tcx_progs(ifindex: i32, dir: Direction) -> Vec<(u32, Option<u32>)> {
    const MAX: usize = 64;
    let mut progs = [0u32; MAX];
    let mut links = [0u32; MAX];
    // SAFETY: all-zero is a valid bpf_prog_query_opts; the pointers set below outlive the call
    // and hold `count` entries each.
    let mut q: libbpf_sys::bpf_prog_query_opts = unsafe { std::mem::zeroed() };
    q.sz = std::mem::size_of::<libbpf_sys::bpf_prog_query_opts>() as _;
    q.prog_ids = progs.as_mut_ptr();
    q.link_ids = links.as_mut_ptr();
    q.__bindgen_anon_1.count = MAX as u32;
    let attach_type = match dir {
        Direction::Ingress => libbpf_sys::BPF_TCX_INGRESS,
        Direction::Egress => libbpf_sys::BPF_TCX_EGRESS,
    };
    // SAFETY: q is valid as set up above.
    if unsafe { libbpf_sys::bpf_prog_query_opts(ifindex, attach_type, &mut q) } != 0 {
        return Vec::new();
    }
    // SAFETY: the kernel wrote `count` into the union's count member.
    let n = (unsafe { q.__bindgen_anon_1.count } as usize).min(MAX);
    (0..n)
        .map(|i| (progs[i], (links[i] != 0).then_some(links[i])))
        .collect()
}

/// XDP links by (ifindex, prog id).
fn xdp_links() -> HashMap<(u32, u32), u32> {
    let mut out = HashMap::new();
    for id in sys::all_ids(ObjKind::Link).unwrap_or_default() {
        let Ok(fd) = sys::fd_by_id(ObjKind::Link, id) else {
            continue;
        };
        if let Ok(li) = RsLinkInfo::from_fd(fd.as_fd()) {
            if let LinkTypeInfo::Xdp(x) = li.info {
                out.insert((x.ifindex, li.prog_id), id);
            }
        }
    }
    out
}

/// What is attached to the interfaces of this network namespace (all, or the one named).
pub fn list(iface: Option<&str>) -> Result<Vec<NetEntry>> {
    let mut ifaces = interfaces()?;
    if let Some(name) = iface {
        ifaces.retain(|(_, n)| n == name);
        if ifaces.is_empty() {
            return Err(InspectError::NoInterface(name.to_string()));
        }
    }
    let holders = sys::holders();
    let held = |kind: ObjKind, id: Option<u32>| -> Vec<Holder> {
        id.and_then(|id| holders.get(&(kind, id)).cloned())
            .unwrap_or_default()
    };
    let xdp_links = xdp_links();
    let mut out = Vec::new();
    for (ifindex, name) in ifaces {
        let entry = |kind, hook: &str, prog_id: Option<u32>, link_id: Option<u32>| NetEntry {
            ifindex,
            iface: name.clone(),
            kind,
            hook: hook.to_string(),
            prog_id,
            link_id,
            tc: None,
            ebpfctl: None,
            held_by: Vec::new(),
            stale: false,
        };
        for (mode, prog) in xdp_progs(ifindex) {
            let link = xdp_links.get(&(ifindex as u32, prog)).copied();
            let mut e = entry("xdp", mode, Some(prog), link);
            e.held_by = match link {
                Some(l) => held(ObjKind::Link, Some(l)),
                None => held(ObjKind::Prog, Some(prog)),
            };
            out.push(e);
        }
        for dir in [Direction::Ingress, Direction::Egress] {
            for (prog, link) in tcx_progs(ifindex, dir) {
                let mut e = entry("tcx", dir.name(), Some(prog), link);
                e.held_by = match link {
                    Some(_) => held(ObjKind::Link, link),
                    None => held(ObjKind::Prog, Some(prog)),
                };
                out.push(e);
            }
        }
        let filters = tc::filters(ifindex)
            .map_err(|e| InspectError::sys(format!("listing tc filters on {name}"), e))?;
        for f in filters {
            let mut e = entry("tc", f.direction.name(), f.prog_id, None);
            e.held_by = held(ObjKind::Prog, f.prog_id);
            e.stale = f.mark.is_some() && e.held_by.is_empty();
            e.ebpfctl = f.mark;
            e.tc = Some(TcDetails {
                pref: f.pref,
                handle: f.handle,
                classifier: f.kind,
                name: f.name,
                direct_action: f.direct_action,
            });
            out.push(e);
        }
    }
    Ok(out)
}

pub fn print_list<W: Write>(w: &mut W, entries: &[NetEntry], format: Format) -> io::Result<()> {
    if format == Format::Json {
        return print::json(w, entries);
    }
    if entries.is_empty() {
        return writeln!(w, "no BPF programs or tc filters on these interfaces");
    }
    let mut t = Table::new(&[
        "IFACE", "KIND", "HOOK", ">PROG", ">LINK", "DETAIL", "HELD BY",
    ]);
    for e in entries {
        let detail = match &e.tc {
            Some(tc) => {
                let mut d = format!("pref {} handle {:#x} {}", tc.pref, tc.handle, tc.classifier);
                if let Some(n) = &tc.name {
                    d.push(' ');
                    d.push_str(n);
                }
                if e.stale {
                    d.push_str(" (left behind: `ebpfctl net detach` removes it)");
                }
                d
            }
            None if e.link_id.is_none() => "no link: stays until removed".to_string(),
            None => "-".to_string(),
        };
        let held: Vec<String> = e
            .held_by
            .iter()
            .map(|h| format!("{}({})", h.comm, h.pid))
            .collect();
        t.row(vec![
            e.iface.clone(),
            e.kind.to_string(),
            e.hook.clone(),
            e.prog_id.map_or("-".into(), |p| p.to_string()),
            e.link_id.map_or("-".into(), |l| l.to_string()),
            detail,
            if held.is_empty() {
                "-".into()
            } else {
                held.join(", ")
            },
        ]);
    }
    t.write(w)
}
