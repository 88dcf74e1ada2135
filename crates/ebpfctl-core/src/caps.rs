//! The capabilities loading needs, checked against this process's effective set before
//! anything touches the kernel, so a container without them fails with one line naming what
//! is missing (root in a container with dropped capabilities is still uid 0).
//!
//! What needs what (measured in crates/ebpfctl/tests/ship.rs and docs/deploy.md):
//! every BPF program and map needs CAP_BPF; tracing programs (tracepoints, raw tracepoints,
//! perf events, kprobes, fentry, LSM) CAP_PERFMON; network programs (XDP, tc, cgroup, socket
//! filters) CAP_NET_ADMIN; uprobes CAP_SYS_ADMIN (the kernel requires it for uprobe perf
//! events since the 2025 fix "perf: Require CAP_SYS_ADMIN for uprobes"). CAP_SYS_ADMIN
//! stands in for CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN.

use crate::load::attach::AttachPoint;

/// A capability ebpfctl may need (numbers from linux/capability.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    NetAdmin = 12,
    SysPtrace = 19,
    SysAdmin = 21,
    Perfmon = 38,
    Bpf = 39,
}

impl Cap {
    pub fn name(self) -> &'static str {
        match self {
            Cap::NetAdmin => "CAP_NET_ADMIN",
            Cap::SysPtrace => "CAP_SYS_PTRACE",
            Cap::SysAdmin => "CAP_SYS_ADMIN",
            Cap::Perfmon => "CAP_PERFMON",
            Cap::Bpf => "CAP_BPF",
        }
    }

    /// Whether CAP_SYS_ADMIN grants what this one does (the kernel's bpf_capable(),
    /// perfmon_capable() and bpf_net_capable() accept it).
    fn covered_by_sys_admin(self) -> bool {
        matches!(self, Cap::Bpf | Cap::Perfmon | Cap::NetAdmin)
    }
}

/// A capability and what it is needed for (shown to the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub cap: Cap,
    pub why: &'static str,
}

/// A set of capabilities (bit N = capability N).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    /// This process's effective set, from `CapEff` in /proc/self/status. Without a readable
    /// /proc, root is taken to have every capability and anyone else none.
    pub fn effective() -> CapSet {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| CapSet::parse_status(&s))
            .unwrap_or_else(|| {
                // SAFETY: geteuid has no arguments and cannot fail.
                let root = unsafe { libc::geteuid() } == 0;
                CapSet(if root { u64::MAX } else { 0 })
            })
    }

    /// The `CapEff:` line of a /proc/PID/status text.
    pub fn parse_status(status: &str) -> Option<CapSet> {
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .map(CapSet)
    }

    pub fn has(self, cap: Cap) -> bool {
        self.0 & (1u64 << cap as u32) != 0
    }

    /// Whether this set grants `cap`, directly or through CAP_SYS_ADMIN.
    pub fn grants(self, cap: Cap) -> bool {
        self.has(cap) || (cap.covered_by_sys_admin() && self.has(Cap::SysAdmin))
    }

    /// The needs this set does not grant, each capability once.
    pub fn missing(self, needs: &[Need]) -> Vec<Need> {
        let mut out: Vec<Need> = Vec::new();
        for n in needs {
            if !self.grants(n.cap) && !out.iter().any(|o| o.cap == n.cap) {
                out.push(*n);
            }
        }
        out
    }
}

/// Capabilities this process lacks for what it was asked to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} needs {}, which this process lacks: run as root with all capabilities, or grant {} (podman/docker --cap-add, Kubernetes securityContext.capabilities.add; see docs/deploy.md)", describe(.missing), names(.missing))]
pub struct MissingCapabilities {
    pub what: String,
    pub missing: Vec<Need>,
}

fn describe(missing: &[Need]) -> String {
    missing
        .iter()
        .map(|n| format!("{} ({})", n.cap.name(), n.why))
        .collect::<Vec<_>>()
        .join(" and ")
}

fn names(missing: &[Need]) -> String {
    missing
        .iter()
        .map(|n| n.cap.name())
        .collect::<Vec<_>>()
        .join(" and ")
}

pub const BPF: Need = Need {
    cap: Cap::Bpf,
    why: "BPF programs and maps",
};
pub const TRACING: Need = Need {
    cap: Cap::Perfmon,
    why: "tracing programs",
};
pub const NETWORK: Need = Need {
    cap: Cap::NetAdmin,
    why: "network programs",
};
pub const UPROBES: Need = Need {
    cap: Cap::SysAdmin,
    why: "uprobes: the kernel allows uprobe perf events to CAP_SYS_ADMIN only",
};
/// kernel.perf_event_paranoid above 2 (Debian's and Ubuntu's kernels patch it in and
/// default to 3 or 4): perf_event_open is for CAP_SYS_ADMIN only, CAP_PERFMON is not enough
/// (measured on Debian 6.12: execsnoop with CAP_BPF + CAP_PERFMON attaches nothing at 3,
/// everything at 2).
pub const PERF_EVENTS_PARANOID: Need = Need {
    cap: Cap::SysAdmin,
    why: "perf events (tracepoints, kprobes): kernel.perf_event_paranoid is above 2, which allows them to CAP_SYS_ADMIN only; with 2 CAP_PERFMON is enough",
};

/// /proc/sys/kernel/perf_event_paranoid (2, the upstream default, when unreadable).
pub fn perf_event_paranoid() -> i32 {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(2)
}

pub const OTHER_PROCESSES: Need = Need {
    cap: Cap::SysPtrace,
    why: "reading /proc/PID/exe and /proc/PID/root of other processes",
};

/// What loading and attaching programs with these attach points needs.
pub fn needs_for<'a>(points: impl IntoIterator<Item = &'a AttachPoint>) -> Vec<Need> {
    needs_with_paranoia(points, perf_event_paranoid())
}

/// [`needs_for`] under a given kernel.perf_event_paranoid.
pub fn needs_with_paranoia<'a>(
    points: impl IntoIterator<Item = &'a AttachPoint>,
    paranoid: i32,
) -> Vec<Need> {
    let mut needs = vec![BPF];
    for p in points {
        // Attached through perf_event_open. kprobe.multi sections share the Kprobe kind,
        // so for them this asks for more than their fprobe link needs.
        if paranoid > 2
            && matches!(
                p,
                AttachPoint::Tracepoint { .. }
                    | AttachPoint::Kprobe { .. }
                    | AttachPoint::PerfEvent
            )
            && !needs.contains(&PERF_EVENTS_PARANOID)
        {
            needs.push(PERF_EVENTS_PARANOID);
        }
        let n = match p {
            AttachPoint::Uprobe { .. } | AttachPoint::Usdt { .. } => {
                needs.push(TRACING);
                UPROBES
            }
            AttachPoint::Tracepoint { .. }
            | AttachPoint::RawTracepoint { .. }
            | AttachPoint::TpBtf { .. }
            | AttachPoint::Kprobe { .. }
            | AttachPoint::Fentry { .. }
            | AttachPoint::Lsm { .. }
            | AttachPoint::LsmCgroup { .. }
            | AttachPoint::PerfEvent
            | AttachPoint::Iter { .. } => TRACING,
            AttachPoint::Xdp
            | AttachPoint::Tc { .. }
            | AttachPoint::Tcx { .. }
            | AttachPoint::Cgroup { .. }
            | AttachPoint::SocketFilter => NETWORK,
            AttachPoint::Other { .. } => continue,
        };
        if !needs.contains(&n) {
            needs.push(n);
        }
    }
    needs
}

/// Fails with the capabilities this process lacks for `needs`.
pub fn require(what: &str, needs: &[Need]) -> Result<(), MissingCapabilities> {
    let missing = CapSet::effective().missing(needs);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingCapabilities {
            what: what.to_string(),
            missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let s = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000000c000000000\n";
        let c = CapSet::parse_status(s).unwrap();
        assert!(c.has(Cap::Bpf) && c.has(Cap::Perfmon) && !c.has(Cap::SysAdmin));
    }

    #[test]
    fn sys_admin_stands_in_except_for_itself() {
        let admin = CapSet(1 << 21);
        assert!(admin.grants(Cap::Bpf) && admin.grants(Cap::Perfmon));
        assert!(admin.grants(Cap::NetAdmin) && !admin.grants(Cap::SysPtrace));
        let bpf_perfmon = CapSet((1 << 38) | (1 << 39));
        let tp = AttachPoint::Tracepoint {
            category: "sched".into(),
            name: "sched_process_exec".into(),
        };
        assert!(bpf_perfmon
            .missing(&needs_with_paranoia([&tp], 2))
            .is_empty());
        let up = AttachPoint::Uprobe {
            target: None,
            ret: false,
        };
        let missing = bpf_perfmon.missing(&needs_with_paranoia([&tp, &up], 2));
        assert_eq!(missing, vec![UPROBES]);
    }

    #[test]
    fn perf_events_need_sys_admin_above_paranoid_2() {
        let bpf_perfmon = CapSet((1 << 38) | (1 << 39));
        let tp = AttachPoint::Tracepoint {
            category: "sched".into(),
            name: "sched_process_exec".into(),
        };
        let raw = AttachPoint::RawTracepoint {
            name: "sched_switch".into(),
        };
        assert_eq!(
            bpf_perfmon.missing(&needs_with_paranoia([&tp], 3)),
            vec![PERF_EVENTS_PARANOID]
        );
        // A raw tracepoint is no perf event.
        assert!(bpf_perfmon
            .missing(&needs_with_paranoia([&raw], 3))
            .is_empty());
        assert!(CapSet(1 << 21)
            .missing(&needs_with_paranoia([&tp], 4))
            .is_empty());
    }

    #[test]
    fn message_names_each_missing_capability_once() {
        let e = MissingCapabilities {
            what: "loading x.bpf.o".into(),
            missing: CapSet(0).missing(&[BPF, TRACING, TRACING]),
        };
        let m = e.to_string();
        assert!(m.starts_with("loading x.bpf.o needs CAP_BPF (BPF programs and maps) and CAP_PERFMON (tracing programs), which this process lacks"), "{m}");
        assert_eq!(m.matches("CAP_PERFMON").count(), 2, "{m}");
        assert!(!m.contains('\n'));
    }
}
