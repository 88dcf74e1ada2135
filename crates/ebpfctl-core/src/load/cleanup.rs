//! `net detach`: removing what an ebpfctl that died without cleaning up (SIGKILL) left on the
//! network interfaces. Links go with their process; only tc filters (kernels without tcx)
//! can stay. A filter is removed only when it carries our mark and no process holds its
//! program any more, so a running ebpfctl's filters and anyone else's are never touched.
use crate::inspect::net::{self, NetEntry};
use crate::inspect::InspectError;
use crate::load::attach::tc::{self, Direction};

/// What [`detach_stale`] did.
#[derive(Debug, Default)]
pub struct Cleanup {
    /// Our filters that were left behind, now removed (or that would be, with `dry_run`).
    pub removed: Vec<NetEntry>,
    /// Interfaces whose clsact qdisc (made by the dead ebpfctl, empty now) was removed.
    pub qdiscs_removed: Vec<String>,
    /// Our filters still in use by a running ebpfctl: left alone (it removes them on exit).
    pub in_use: Vec<NetEntry>,
}

/// Removes ebpfctl's left-behind tc filters on every interface of this network namespace,
/// or on `iface` only.
pub fn detach_stale(iface: Option<&str>, dry_run: bool) -> Result<Cleanup, InspectError> {
    let mut done = Cleanup::default();
    let mut qdisc_ifaces: Vec<(i32, String)> = Vec::new();
    for e in net::list(iface)? {
        let (Some(mark), Some(t)) = (&e.ebpfctl, &e.tc) else {
            continue;
        };
        if !e.stale {
            done.in_use.push(e);
            continue;
        }
        if !dry_run {
            let dir = if e.hook == Direction::Egress.name() {
                Direction::Egress
            } else {
                Direction::Ingress
            };
            match tc::delete(e.ifindex, dir, t.pref, t.handle) {
                Ok(()) => {}
                // Gone meanwhile (its ebpfctl or another cleanup got there first).
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(err) => {
                    return Err(InspectError::sys(
                        format!(
                            "removing tc filter {} on {} {}",
                            t.name.as_deref().unwrap_or("?"),
                            e.iface,
                            e.hook
                        ),
                        err,
                    ))
                }
            }
        }
        if mark.created_qdisc && !qdisc_ifaces.iter().any(|(i, _)| *i == e.ifindex) {
            qdisc_ifaces.push((e.ifindex, e.iface.clone()));
        }
        done.removed.push(e);
    }
    if !dry_run {
        for (ifindex, name) in qdisc_ifaces {
            let removed = tc::remove_clsact_if_empty(ifindex).map_err(|err| {
                InspectError::sys(format!("removing the clsact qdisc of {name}"), err)
            })?;
            if removed {
                done.qdiscs_removed.push(name);
            }
        }
    }
    Ok(done)
}
