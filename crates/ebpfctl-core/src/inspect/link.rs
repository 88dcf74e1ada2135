//! BPF links: `link list`, `link show ID` — what each program is attached to.
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::AsFd;

use libbpf_rs::query::{IterType, LinkInfo as RsLinkInfo, LinkTypeInfo, PerfEventType};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::print::{self, Format, Table};
use super::select::{self, Selector};
use super::sys::{self, Holder, ObjKind};
use super::{InspectError, Result};

/// One link.
#[derive(Debug, Clone, Serialize)]
pub struct LinkInfo {
    pub id: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub prog_id: u32,
    /// What the link attaches to, for people: `tracepoint syscalls/sys_enter_openat`,
    /// `xdp eth0`, `cgroup 1234 (cgroup_inet_ingress)`.
    pub target: String,
    /// Type-specific fields (tracepoint name, ifindex, cgroup id, attach type, ...).
    pub details: Map<String, Value>,
    pub pinned: Vec<String>,
    pub pids: Vec<Holder>,
}

fn ifname(ifindex: u32) -> String {
    let mut buf = [0 as std::ffi::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        format!("ifindex {ifindex}")
    } else {
        sys::cname(&buf)
    }
}

fn os(s: &Option<std::ffi::OsString>) -> String {
    s.as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Describes the type-specific part of a link.
fn describe(info: &LinkTypeInfo) -> (String, Map<String, Value>) {
    let at = |t: &libbpf_rs::ProgramAttachType| sys::attach_type_name(t.clone() as u32);
    let (target, v) = match info {
        LinkTypeInfo::RawTracepoint(r) => (
            format!("raw_tracepoint {}", r.name),
            json!({"tp_name": r.name}),
        ),
        LinkTypeInfo::Tracing(t) => (
            format!(
                "{} btf_id {} (btf obj {})",
                at(&t.attach_type),
                t.target_btf_id,
                t.target_obj_id
            ),
            json!({"attach_type": at(&t.attach_type), "target_obj_id": t.target_obj_id, "target_btf_id": t.target_btf_id}),
        ),
        LinkTypeInfo::Cgroup(c) => (
            format!("cgroup {} ({})", c.cgroup_id, at(&c.attach_type)),
            json!({"cgroup_id": c.cgroup_id, "attach_type": at(&c.attach_type)}),
        ),
        LinkTypeInfo::Iter(i) => {
            let name = i.target_name.to_string_lossy().into_owned();
            let mut v = json!({"target_name": name});
            match &i.iter_type {
                IterType::Map { map_id } => v["map_id"] = json!(map_id),
                IterType::Task { tid, pid } => {
                    v["tid"] = json!(tid);
                    v["pid"] = json!(pid);
                }
                IterType::Cgroup { cgroup_id, .. } => v["cgroup_id"] = json!(cgroup_id),
                _ => {}
            }
            (format!("iter {name}"), v)
        }
        LinkTypeInfo::NetNs(n) => (
            format!("netns ino {} ({})", n.ino, at(&n.attach_type)),
            json!({"netns_ino": n.ino, "attach_type": at(&n.attach_type)}),
        ),
        LinkTypeInfo::Xdp(x) => (
            format!("xdp {}", ifname(x.ifindex)),
            json!({"ifindex": x.ifindex, "devname": ifname(x.ifindex)}),
        ),
        LinkTypeInfo::StructOps(s) => (
            format!("struct_ops map {}", s.map_id),
            json!({"map_id": s.map_id}),
        ),
        LinkTypeInfo::Netfilter(n) => (
            format!(
                "netfilter pf {} hook {} prio {}",
                n.protocol_family, n.hooknum, n.priority
            ),
            json!({"pf": n.protocol_family, "hook": n.hooknum, "prio": n.priority, "flags": n.flags}),
        ),
        LinkTypeInfo::KprobeMulti(k) => (
            format!("kprobe_multi {} functions", k.count),
            json!({"func_cnt": k.count, "flags": k.flags, "missed": k.missed}),
        ),
        LinkTypeInfo::UprobeMulti(u) => {
            let p = u
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            (
                format!("uprobe_multi {p} ({} offsets)", u.count),
                json!({"path": p, "func_cnt": u.count, "flags": u.flags, "pid": u.pid, "offsets": u.offsets}),
            )
        }
        LinkTypeInfo::Tcx(t) => (
            format!("tcx {} ({})", ifname(t.ifindex), at(&t.attach_type)),
            json!({"ifindex": t.ifindex, "devname": ifname(t.ifindex), "attach_type": at(&t.attach_type)}),
        ),
        LinkTypeInfo::Netkit(t) => (
            format!("netkit {} ({})", ifname(t.ifindex), at(&t.attach_type)),
            json!({"ifindex": t.ifindex, "devname": ifname(t.ifindex), "attach_type": at(&t.attach_type)}),
        ),
        LinkTypeInfo::SockMap(s) => (
            format!("sockmap map {} ({})", s.map_id, at(&s.attach_type)),
            json!({"map_id": s.map_id, "attach_type": at(&s.attach_type)}),
        ),
        LinkTypeInfo::PerfEvent(p) => match &p.event_type {
            PerfEventType::Tracepoint { name, cookie } => (
                format!("tracepoint {}", os(name)),
                json!({"event_type": "tracepoint", "tp_name": os(name), "cookie": cookie}),
            ),
            PerfEventType::Kprobe {
                func_name,
                is_retprobe,
                addr,
                offset,
                missed,
                cookie,
            } => (
                format!(
                    "{} {}+{offset}",
                    if *is_retprobe { "kretprobe" } else { "kprobe" },
                    os(func_name)
                ),
                json!({"event_type": if *is_retprobe { "kretprobe" } else { "kprobe" }, "func": os(func_name),
                       "offset": offset, "addr": format!("{addr:#x}"), "missed": missed, "cookie": cookie}),
            ),
            PerfEventType::Uprobe {
                file_name,
                is_retprobe,
                offset,
                cookie,
                ref_ctr_offset,
            } => (
                format!(
                    "{} {}+{offset:#x}",
                    if *is_retprobe { "uretprobe" } else { "uprobe" },
                    os(file_name)
                ),
                json!({"event_type": if *is_retprobe { "uretprobe" } else { "uprobe" }, "file": os(file_name),
                       "offset": offset, "cookie": cookie, "ref_ctr_offset": ref_ctr_offset}),
            ),
            PerfEventType::Event {
                config,
                event_type,
                cookie,
            } => (
                format!("perf event type {event_type} config {config:#x}"),
                json!({"event_type": "event", "type": event_type, "config": config, "cookie": cookie}),
            ),
            _ => ("perf event".to_string(), json!({"event_type": "unknown"})),
        },
        _ => ("-".to_string(), json!({})),
    };
    (target, v.as_object().cloned().unwrap_or_default())
}

fn one(
    id: u32,
    holders: &HashMap<(ObjKind, u32), Vec<Holder>>,
    pins: &HashMap<(ObjKind, u32), Vec<String>>,
) -> Result<LinkInfo> {
    let fd = sys::fd_by_id(ObjKind::Link, id)?;
    // SAFETY: all-zero is a valid bpf_link_info; no pointers are set, so the kernel only
    // fills the fixed part (type, id, prog_id) and scalar union members.
    let mut raw: libbpf_sys::bpf_link_info = unsafe { std::mem::zeroed() };
    sys::info_by_fd(fd.as_fd(), &mut raw, &format!("link {id}"))?;
    let (target, details) = match RsLinkInfo::from_fd(fd.as_fd()) {
        Ok(li) => describe(&li.info),
        Err(_) => ("-".to_string(), Map::new()),
    };
    Ok(LinkInfo {
        id,
        kind: sys::link_type_name(raw.type_),
        prog_id: raw.prog_id,
        target,
        details,
        pinned: pins.get(&(ObjKind::Link, id)).cloned().unwrap_or_default(),
        pids: holders
            .get(&(ObjKind::Link, id))
            .cloned()
            .unwrap_or_default(),
    })
}

/// Every link. Links destroyed while listing are skipped.
pub fn list() -> Result<Vec<LinkInfo>> {
    let holders = sys::holders();
    let pins = sys::pins();
    let mut out = Vec::new();
    for id in sys::all_ids(ObjKind::Link)? {
        match one(id, &holders, &pins) {
            Ok(l) => out.push(l),
            Err(InspectError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The link a selector names (by id or pin).
pub fn select(sel: &Selector) -> Result<Vec<LinkInfo>> {
    match sel {
        Selector::Id(id) => Ok(vec![show(*id)?]),
        Selector::Pinned(p) => Ok(vec![show(select::pinned_id(ObjKind::Link, p)?)?]),
        _ => Err(InspectError::NoMatch(format!(
            "a BPF link is selected by id or pinned path, not {sel}"
        ))),
    }
}

/// One link by id.
pub fn show(id: u32) -> Result<LinkInfo> {
    one(id, &sys::holders(), &sys::pins())
}

pub fn print_list<W: Write>(w: &mut W, links: &[LinkInfo], format: Format) -> io::Result<()> {
    if format == Format::Json {
        return print::json(w, links);
    }
    let mut t = Table::new(&["ID", "TYPE", ">PROG", "TARGET", "HELD BY"]);
    for l in links {
        let mut held: Vec<String> = l
            .pids
            .iter()
            .map(|h| format!("{}({})", h.comm, h.pid))
            .collect();
        held.extend(l.pinned.iter().cloned());
        t.row(vec![
            l.id.to_string(),
            l.kind.clone(),
            l.prog_id.to_string(),
            l.target.clone(),
            if held.is_empty() {
                "-".into()
            } else {
                held.join(", ")
            },
        ]);
    }
    t.write(w)
}
