//! Legacy tc: a direct-action `bpf` filter on a clsact qdisc, used for `tc` sections where
//! the kernel has no tcx links (before Linux 6.6).
//!
//! Unlike a link, a filter is not tied to our file descriptors: if ebpfctl dies without
//! running its destructors (SIGKILL, OOM kill) the filter and its program stay attached. So
//! every filter we add is named with our mark, `ebpfctl[PID]:PROGRAM` (`ebpfctl[PID+clsact]:...`
//! when this process created the clsact qdisc), and `ebpfctl net detach` removes the marked
//! filters whose program no process holds any more, and nobody else's.
//!
//! We send priority 0 and handle 0 without `NLM_F_REPLACE`: the kernel picks a free pair and
//! echoes it back, so a filter of someone else's is never replaced.
use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Mutex;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL};
use netlink_packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcHeader, TcMessage, TcOption,
};
use netlink_packet_route::RouteNetlinkMessage;
use serde::Serialize;

use super::rtnl::{Answer, Rtnl};

/// Which clsact hook a filter sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    fn parent(self) -> TcHandle {
        TcHandle {
            major: TcHandle::CLSACT.major,
            minor: match self {
                Direction::Ingress => TcHandle::MIN_INGRESS,
                Direction::Egress => TcHandle::MIN_EGRESS,
            },
        }
    }
}

/// What our mark in a filter's name says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mark {
    /// The ebpfctl process that added the filter.
    pub pid: u32,
    /// That process also created the clsact qdisc (removed with the last of our filters).
    pub created_qdisc: bool,
    pub program: String,
}

const MARK_PREFIX: &str = "ebpfctl[";

impl Mark {
    /// The filter name carrying this mark.
    pub fn name(&self) -> String {
        format!(
            "{MARK_PREFIX}{}{}]:{}",
            self.pid,
            if self.created_qdisc { "+clsact" } else { "" },
            self.program
        )
    }

    /// Reads our mark back from a filter name; `None` for anyone else's filter.
    pub fn parse(name: &str) -> Option<Mark> {
        let rest = name.strip_prefix(MARK_PREFIX)?;
        let (inside, program) = rest.split_once("]:")?;
        let (pid, created_qdisc) = match inside.strip_suffix("+clsact") {
            Some(p) => (p, true),
            None => (inside, false),
        };
        Some(Mark {
            pid: pid.parse().ok()?,
            created_qdisc,
            program: program.to_string(),
        })
    }
}

/// One tc filter on a clsact hook, as the kernel reports it.
#[derive(Debug, Clone, Serialize)]
pub struct FilterInfo {
    pub ifindex: i32,
    pub direction: Direction,
    /// The filter's priority ("pref" in `tc`).
    pub pref: u16,
    pub handle: u32,
    /// The classifier: `bpf`, `u32`, `flower`...
    pub kind: String,
    /// A `bpf` filter's name (libbpf: `PROG:[ID]`, ours: see [`Mark`]).
    pub name: Option<String>,
    pub prog_id: Option<u32>,
    pub direct_action: bool,
    /// Our mark, when ebpfctl added this filter.
    pub mark: Option<Mark>,
}

fn filter_header(ifindex: i32, dir: Direction, pref: u16, handle: u32) -> TcHeader {
    TcHeader {
        index: ifindex,
        handle: handle.into(),
        parent: dir.parent(),
        // TC_H_MAKE(prio << 16, htons(ETH_P_ALL))
        info: (u32::from(pref) << 16) | u32::from((libc::ETH_P_ALL as u16).to_be()),
        ..Default::default()
    }
}

fn clsact_header(ifindex: i32) -> TcHeader {
    TcHeader {
        index: ifindex,
        handle: TcHandle {
            major: TcHandle::CLSACT.major,
            minor: 0,
        },
        parent: TcHandle::CLSACT,
        ..Default::default()
    }
}

/// Every filter on both clsact hooks of `ifindex` (none when it has no clsact qdisc).
pub fn filters(ifindex: i32) -> io::Result<Vec<FilterInfo>> {
    let mut nl = Rtnl::open()?;
    let mut out = Vec::new();
    for dir in [Direction::Ingress, Direction::Egress] {
        let req = TcMessage::from_parts(filter_header(ifindex, dir, 0, 0), Vec::new());
        let answers = match nl.request(RouteNetlinkMessage::GetTrafficFilter(req), 0, Answer::Dump)
        {
            Ok(a) => a,
            // No clsact qdisc, or no such interface any more.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENODEV)) => continue,
            Err(e) => return Err(e),
        };
        for m in answers {
            let RouteNetlinkMessage::NewTrafficFilter(m) = m else {
                continue;
            };
            if m.header.index != ifindex || m.header.parent != dir.parent() {
                continue;
            }
            let handle = u32::from(m.header.handle);
            // The kernel sends a handle-less line per priority before its filters.
            if handle == 0 {
                continue;
            }
            let mut f = FilterInfo {
                ifindex,
                direction: dir,
                pref: (m.header.info >> 16) as u16,
                handle,
                kind: String::new(),
                name: None,
                prog_id: None,
                direct_action: false,
                mark: None,
            };
            for a in &m.attributes {
                match a {
                    TcAttribute::Kind(k) => f.kind = k.clone(),
                    TcAttribute::Options(opts) => {
                        for o in opts {
                            match o {
                                TcOption::Bpf(TcFilterBpfOption::ProgName(n)) => {
                                    f.name = Some(n.clone())
                                }
                                TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => {
                                    f.prog_id = Some(*id)
                                }
                                TcOption::Bpf(TcFilterBpfOption::Flags(fl)) => {
                                    f.direct_action = fl.contains(TcBpfFlags::DirectAction)
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            if f.kind == "bpf" {
                f.mark = f.name.as_deref().and_then(Mark::parse);
            }
            out.push(f);
        }
    }
    Ok(out)
}

/// Deletes the `bpf` filter at `pref`/`handle` on one clsact hook.
pub fn delete(ifindex: i32, dir: Direction, pref: u16, handle: u32) -> io::Result<()> {
    let msg = TcMessage::from_parts(
        filter_header(ifindex, dir, pref, handle),
        vec![TcAttribute::Kind("bpf".into())],
    );
    Rtnl::open()?
        .request(RouteNetlinkMessage::DelTrafficFilter(msg), 0, Answer::Ack)
        .map(drop)
}

/// Creates the clsact qdisc on `ifindex`: `Ok(false)` when one already exists.
fn create_clsact(ifindex: i32) -> io::Result<bool> {
    let msg = TcMessage::from_parts(
        clsact_header(ifindex),
        vec![TcAttribute::Kind("clsact".into())],
    );
    match Rtnl::open()?.request(
        RouteNetlinkMessage::NewQueueDiscipline(msg),
        NLM_F_CREATE | NLM_F_EXCL,
        Answer::Ack,
    ) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `ifindex` has a clsact qdisc.
fn has_clsact(ifindex: i32) -> io::Result<bool> {
    let req = TcMessage::with_index(ifindex);
    let answers = Rtnl::open()?.request(
        RouteNetlinkMessage::GetQueueDiscipline(req),
        0,
        Answer::Dump,
    )?;
    Ok(answers.iter().any(|m| match m {
        RouteNetlinkMessage::NewQueueDiscipline(q) => {
            q.header.index == ifindex
                && q.attributes
                    .iter()
                    .any(|a| matches!(a, TcAttribute::Kind(k) if k == "clsact"))
        }
        _ => false,
    }))
}

/// Deletes the clsact qdisc of `ifindex` if it has one and no filter is left on it; returns
/// whether it did. (A filter added between the check and the delete would go with it: the
/// window is one netlink round trip.)
pub fn remove_clsact_if_empty(ifindex: i32) -> io::Result<bool> {
    if !has_clsact(ifindex)? || !filters(ifindex)?.is_empty() {
        return Ok(false);
    }
    let msg = TcMessage::from_parts(
        clsact_header(ifindex),
        vec![TcAttribute::Kind("clsact".into())],
    );
    match Rtnl::open()?.request(RouteNetlinkMessage::DelQueueDiscipline(msg), 0, Answer::Ack) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINVAL)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Interfaces on which this process created the clsact qdisc (and so removes it with the last
/// of its filters there).
static CREATED_CLSACT: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

fn created_here(ifindex: i32) -> bool {
    CREATED_CLSACT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_some_and(|s| s.contains(&ifindex))
}

fn set_created_here(ifindex: i32, created: bool) {
    let mut g = CREATED_CLSACT.lock().unwrap_or_else(|p| p.into_inner());
    let set = g.get_or_insert_with(HashSet::new);
    if created {
        set.insert(ifindex);
    } else {
        set.remove(&ifindex);
    }
}

/// A filter we added; deleted on drop (with the clsact qdisc when we created it and it is
/// empty then).
#[derive(Debug)]
pub struct TcFilter {
    pub ifindex: i32,
    pub iface: String,
    pub direction: Direction,
    pub pref: u16,
    pub handle: u32,
    pub name: String,
}

impl Drop for TcFilter {
    fn drop(&mut self) {
        let _ = delete(self.ifindex, self.direction, self.pref, self.handle);
        if created_here(self.ifindex) && remove_clsact_if_empty(self.ifindex).unwrap_or(false) {
            set_created_here(self.ifindex, false);
        }
    }
}

/// Attaches `prog_fd` as a direct-action filter on `iface`'s clsact hook, creating the qdisc
/// if there is none, at a priority and handle the kernel picks.
pub fn attach(
    prog_fd: BorrowedFd<'_>,
    program: &str,
    ifindex: i32,
    iface: &str,
    dir: Direction,
) -> Result<TcFilter, String> {
    let created =
        create_clsact(ifindex).map_err(|e| format!("creating a clsact qdisc on {iface}: {e}"))?;
    if created {
        set_created_here(ifindex, true);
    }
    let mark = Mark {
        pid: std::process::id(),
        created_qdisc: created_here(ifindex),
        program: program.to_string(),
    };
    let name = mark.name();
    let msg = TcMessage::from_parts(
        filter_header(ifindex, dir, 0, 0),
        vec![
            TcAttribute::Kind("bpf".into()),
            TcAttribute::Options(vec![
                TcOption::Bpf(TcFilterBpfOption::ProgFd(prog_fd.as_raw_fd() as u32)),
                TcOption::Bpf(TcFilterBpfOption::ProgName(name.clone())),
                TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
            ]),
        ],
    );
    let answer = Rtnl::open().and_then(|mut nl| {
        nl.request(
            RouteNetlinkMessage::NewTrafficFilter(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
            Answer::Ack,
        )
    });
    let echoed = answer.as_ref().ok().and_then(|a| {
        a.iter().find_map(|m| match m {
            RouteNetlinkMessage::NewTrafficFilter(f) if u32::from(f.header.handle) != 0 => {
                Some(((f.header.info >> 16) as u16, u32::from(f.header.handle)))
            }
            _ => None,
        })
    });
    match (answer, echoed) {
        (Ok(_), Some((pref, handle))) => Ok(TcFilter {
            ifindex,
            iface: iface.to_string(),
            direction: dir,
            pref,
            handle,
            name,
        }),
        (res, _) => {
            if created && remove_clsact_if_empty(ifindex).unwrap_or(false) {
                set_created_here(ifindex, false);
            }
            Err(match res {
                Err(e) => format!("adding a tc filter on {iface} {}: {e}", dir.name()),
                Ok(_) => format!(
                    "adding a tc filter on {iface} {}: the kernel did not echo the filter back",
                    dir.name()
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_foreign_names_are_not_ours() {
        for created_qdisc in [false, true] {
            let m = Mark {
                pid: 4321,
                created_qdisc,
                program: "kinds_tc".into(),
            };
            assert_eq!(Mark::parse(&m.name()), Some(m));
        }
        assert_eq!(
            Mark {
                pid: 7,
                created_qdisc: true,
                program: "p".into()
            }
            .name(),
            "ebpfctl[7+clsact]:p"
        );
        for foreign in [
            "kinds_tc:[42]",
            "prog.o:[tc]",
            "ebpfctl[x]:p",
            "ebpfctl[12",
            "ebpfctl:12:p",
        ] {
            assert_eq!(Mark::parse(foreign), None, "{foreign}");
        }
    }
}
