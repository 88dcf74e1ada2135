//! Attaching programs by section name: one file per attach family.
//!
//! [`AttachPoint::from_section`] is pure (used by `inspect` and the object parser); the
//! attach functions need the kernel. Minimum kernels are noted per kind in docs/conventions.md.

mod cgroup;
mod net;
mod perf_event;
mod rtnl;
pub mod tc;
mod tracing;

use std::path::PathBuf;

use libbpf_rs::ProgramMut as Program;

/// What a program's section asks to attach to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttachPoint {
    Tracepoint {
        category: String,
        name: String,
    },
    RawTracepoint {
        name: String,
    },
    TpBtf {
        name: String,
    },
    Kprobe {
        target: String,
        ret: bool,
        syscall: bool,
    },
    Fentry {
        target: String,
    },
    Lsm {
        hook: String,
    },
    /// `lsm_cgroup/HOOK`: an LSM hook run for one cgroup (`--cgroup`).
    LsmCgroup {
        hook: String,
    },
    Uprobe {
        target: Option<String>,
        ret: bool,
    },
    Usdt {
        target: String,
    },
    PerfEvent,
    Xdp,
    Tc {
        ingress: bool,
    },
    Tcx {
        ingress: bool,
    },
    Cgroup {
        hook: String,
    },
    SocketFilter,
    Iter {
        target: String,
    },
    /// Loaded but not attached by the runner (struct_ops, sk_msg, ...).
    Other {
        section: String,
    },
}

impl AttachPoint {
    /// Classifies a section name the way libbpf does (the prefixes of its `section_defs`).
    pub fn from_section(sec: &str) -> AttachPoint {
        let (prefix, rest) = match sec.split_once('/') {
            Some((p, r)) => (p, r),
            None => (sec, ""),
        };
        let s = |x: &str| x.to_string();
        match prefix {
            "tracepoint" | "tp" => match rest.split_once('/') {
                Some((c, n)) => AttachPoint::Tracepoint {
                    category: s(c),
                    name: s(n),
                },
                None => AttachPoint::Other { section: s(sec) },
            },
            "raw_tracepoint" | "raw_tp" | "raw_tracepoint.w" | "raw_tp.w" => {
                AttachPoint::RawTracepoint { name: s(rest) }
            }
            "tp_btf" => AttachPoint::TpBtf { name: s(rest) },
            "kprobe" | "kprobe.multi" | "kprobe.session" => AttachPoint::Kprobe {
                target: s(rest),
                ret: false,
                syscall: false,
            },
            "kretprobe" | "kretprobe.multi" => AttachPoint::Kprobe {
                target: s(rest),
                ret: true,
                syscall: false,
            },
            "ksyscall" => AttachPoint::Kprobe {
                target: s(rest),
                ret: false,
                syscall: true,
            },
            "kretsyscall" => AttachPoint::Kprobe {
                target: s(rest),
                ret: true,
                syscall: true,
            },
            "fentry" | "fexit" | "fmod_ret" | "fentry.s" | "fexit.s" | "fmod_ret.s"
            | "freplace" => AttachPoint::Fentry { target: s(rest) },
            "lsm" | "lsm.s" => AttachPoint::Lsm { hook: s(rest) },
            "lsm_cgroup" => AttachPoint::LsmCgroup { hook: s(rest) },
            "uprobe" | "uprobe.s" | "uprobe.multi" | "uprobe.multi.s" => AttachPoint::Uprobe {
                target: (!rest.is_empty()).then(|| s(rest)),
                ret: false,
            },
            "uretprobe" | "uretprobe.s" | "uretprobe.multi" | "uretprobe.multi.s" => {
                AttachPoint::Uprobe {
                    target: (!rest.is_empty()).then(|| s(rest)),
                    ret: true,
                }
            }
            "usdt" => AttachPoint::Usdt { target: s(rest) },
            "perf_event" => AttachPoint::PerfEvent,
            "xdp" | "xdp.frags" => AttachPoint::Xdp,
            "tc" | "classifier" => AttachPoint::Tc {
                ingress: rest != "egress",
            },
            "tcx" => AttachPoint::Tcx {
                ingress: rest != "egress",
            },
            "cgroup_skb" | "cgroup" | "cgroup_sock" => AttachPoint::Cgroup { hook: s(sec) },
            "socket" => AttachPoint::SocketFilter,
            "iter" | "iter.s" => AttachPoint::Iter { target: s(rest) },
            _ => AttachPoint::Other { section: s(sec) },
        }
    }

    /// A short kind name: "tracepoint", "uprobe", "xdp"...
    pub fn kind(&self) -> &'static str {
        match self {
            AttachPoint::Tracepoint { .. } => "tracepoint",
            AttachPoint::RawTracepoint { .. } => "raw_tracepoint",
            AttachPoint::TpBtf { .. } => "tp_btf",
            AttachPoint::Kprobe { .. } => "kprobe",
            AttachPoint::Fentry { .. } => "fentry",
            AttachPoint::Lsm { .. } => "lsm",
            AttachPoint::LsmCgroup { .. } => "lsm_cgroup",
            AttachPoint::Uprobe { .. } => "uprobe",
            AttachPoint::Usdt { .. } => "usdt",
            AttachPoint::PerfEvent => "perf_event",
            AttachPoint::Xdp => "xdp",
            AttachPoint::Tc { .. } => "tc",
            AttachPoint::Tcx { .. } => "tcx",
            AttachPoint::Cgroup { .. } => "cgroup",
            AttachPoint::SocketFilter => "socket_filter",
            AttachPoint::Iter { .. } => "iter",
            AttachPoint::Other { .. } => "other",
        }
    }

    /// What to do instead when this kernel lacks the kind (appended to skip reasons).
    pub fn instead(&self) -> &'static str {
        match self {
            AttachPoint::Kprobe { .. } => "it runs on kernels with kprobes (`ebpfctl feature` shows what this one has)",
            AttachPoint::Fentry { .. } => "it runs on kernels with BPF trampolines (`ebpfctl feature` shows what this one has)",
            AttachPoint::Lsm { .. } => "boot with lsm=...,bpf to run it",
            _ => "",
        }
    }

    /// What the kernel must provide for this kind, for messages.
    pub fn needs(&self) -> &'static str {
        match self {
            AttachPoint::Kprobe { .. } => "kprobes (CONFIG_KPROBES)",
            AttachPoint::Fentry { .. } => "BPF trampolines (fentry/fexit: CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS, ftrace not locked)",
            AttachPoint::Lsm { .. } => "BPF LSM (CONFIG_BPF_LSM and `bpf` in the lsm= boot list)",
            AttachPoint::LsmCgroup { .. } => "BPF LSM cgroup hooks (Linux 6.0, CONFIG_BPF_LSM and `bpf` in the lsm= boot list)",
            AttachPoint::Uprobe { .. } | AttachPoint::Usdt { .. } => "uprobes (CONFIG_UPROBE_EVENTS)",
            AttachPoint::Tracepoint { .. } => "tracepoints (tracefs)",
            AttachPoint::TpBtf { .. } => "BTF-enabled raw tracepoints (kernel BTF)",
            AttachPoint::PerfEvent => "perf events (CONFIG_PERF_EVENTS)",
            _ => "support for this program type",
        }
    }
}

/// What a program hooks, for telling alternatives of one hook apart: a `tracepoint`,
/// `raw_tp` and `tp_btf` program of one tracepoint share `("tracepoint", NAME)`; `fentry` and
/// `kprobe` of one function `("entry of", F)`; `fexit` and `kretprobe` `("return of", F)`.
/// None for everything else (and for sections that name no target). Pure.
pub fn hook(section: &str) -> Option<(&'static str, String)> {
    let (prefix, rest) = section.split_once('/')?;
    let func = || {
        // `kprobe/F+0x10` hooks an offset, not F's entry.
        (!rest.is_empty() && !rest.contains('+') && !rest.contains(':')).then(|| rest.to_string())
    };
    match prefix {
        "tracepoint" | "tp" => rest
            .split_once('/')
            .map(|(_, n)| ("tracepoint", n.to_string())),
        "raw_tracepoint" | "raw_tp" | "tp_btf" if !rest.is_empty() => {
            Some(("tracepoint", rest.to_string()))
        }
        "fentry" | "kprobe" => Some(("entry of", func()?)),
        "fexit" | "kretprobe" => Some(("return of", func()?)),
        _ => None,
    }
}

/// Where network and cgroup programs go, from the command line.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub iface: Option<String>,
    pub cgroup: Option<PathBuf>,
    /// Sampling frequency for `perf_event` programs (Hz, per CPU).
    pub perf_freq: u64,
    /// Attach `tc` sections as clsact filters even where the kernel has tcx (tests of the
    /// path older kernels take).
    pub force_legacy_tc: bool,
    /// The binary for `uprobe/FUNCTION` and `usdt/PROVIDER:NAME` sections (`--target`).
    pub target: Option<PathBuf>,
    /// Only this process for uprobes and USDT probes (`--pid`); its executable is the
    /// target when none is given.
    pub pid: Option<i32>,
}

/// Why one program did not attach.
#[derive(Debug, thiserror::Error)]
#[error("program {program} ({section}) not attached: {reason}")]
pub struct AttachError {
    pub program: String,
    pub section: String,
    pub reason: String,
}

/// A live attachment; dropping it detaches.
pub enum Attachment {
    Link(libbpf_rs::Link),
    Links(Vec<libbpf_rs::Link>),
    Tc(net::TcAttachment),
    Raw(net::RawLink),
    Socket(std::os::fd::OwnedFd),
    /// An iterator's link: each read of a new iterator from it runs the program (`iter/...`).
    Iter(libbpf_rs::Link),
    /// Loaded, intentionally not attached (e.g. `Other` kinds, tail-call targets).
    None,
}

impl Attachment {
    /// What the user must know about this attachment (what a SIGKILL would leave behind).
    pub fn notice(&self) -> Option<&str> {
        match self {
            Attachment::Tc(t) => Some(&t.notice),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Attachment::Link(_) | Attachment::Links(_) => "link",
            Attachment::Iter(_) => "iterator",
            Attachment::Tc(_) => "tc",
            Attachment::Raw(_) => "raw link",
            Attachment::Socket(_) => "socket",
            Attachment::None => "none",
        })
    }
}

/// Attaches one loaded program according to its section.
pub fn attach(
    prog: &Program<'_>,
    point: &AttachPoint,
    opts: &AttachOptions,
) -> Result<Attachment, AttachError> {
    let fail = |reason: String| AttachError {
        program: prog.name().to_string_lossy().into_owned(),
        section: prog.section().to_string_lossy().into_owned(),
        reason,
    };
    match point {
        AttachPoint::Xdp
        | AttachPoint::Tc { .. }
        | AttachPoint::Tcx { .. }
        | AttachPoint::SocketFilter => net::attach(prog, point, opts).map_err(fail),
        AttachPoint::Cgroup { .. } | AttachPoint::LsmCgroup { .. } => {
            cgroup::attach(prog, opts).map_err(fail)
        }
        AttachPoint::PerfEvent => perf_event::attach(prog, opts.perf_freq).map_err(fail),
        AttachPoint::Other { .. } => Ok(Attachment::None),
        AttachPoint::Iter { target } => prog.attach().map(Attachment::Iter).map_err(|e| {
            fail(format!(
                "{}: cannot create a {target} iterator (this kernel may lack it: bpf_iter_{target})",
                describe(&e)
            ))
        }),
        _ => tracing::attach(prog, point, opts).map_err(fail),
    }
}

/// Renders a libbpf error with its errno name.
pub(crate) fn describe(e: &libbpf_rs::Error) -> String {
    format!("{e:#}")
}
