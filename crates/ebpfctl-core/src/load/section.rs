//! Program section names: whether libbpf knows one (it picks the program type from it), and
//! the known names closest to one it does not, for "did you mean". Pure: no kernel.

/// libbpf's section names (libbpf 1.7 `section_defs`). A trailing `+` takes `/anything`
/// after it (`tracepoint+` covers `tracepoint/CAT/NAME`); the others are exact.
const KNOWN: &[&str] = &[
    "socket",
    "sk_reuseport/migrate",
    "sk_reuseport",
    "kprobe+",
    "uprobe+",
    "uprobe.s+",
    "kretprobe+",
    "uretprobe+",
    "uretprobe.s+",
    "kprobe.multi+",
    "kretprobe.multi+",
    "kprobe.session+",
    "uprobe.multi+",
    "uretprobe.multi+",
    "uprobe.session+",
    "uprobe.multi.s+",
    "uretprobe.multi.s+",
    "uprobe.session.s+",
    "ksyscall+",
    "kretsyscall+",
    "usdt+",
    "usdt.s+",
    "tc/ingress",
    "tc/egress",
    "tcx/ingress",
    "tcx/egress",
    "tc",
    "classifier",
    "action",
    "netkit/primary",
    "netkit/peer",
    "tracepoint+",
    "tp+",
    "raw_tracepoint+",
    "raw_tp+",
    "raw_tracepoint.w+",
    "raw_tp.w+",
    "tp_btf+",
    "fentry+",
    "fmod_ret+",
    "fexit+",
    "fentry.s+",
    "fmod_ret.s+",
    "fexit.s+",
    "fsession+",
    "fsession.s+",
    "freplace+",
    "lsm+",
    "lsm.s+",
    "lsm_cgroup+",
    "iter+",
    "iter.s+",
    "syscall",
    "xdp.frags/devmap",
    "xdp/devmap",
    "xdp.frags/cpumap",
    "xdp/cpumap",
    "xdp.frags",
    "xdp",
    "perf_event",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "lwt_seg6local",
    "sockops",
    "sk_skb/stream_parser",
    "sk_skb/stream_verdict",
    "sk_skb/verdict",
    "sk_skb",
    "sk_msg",
    "lirc_mode2",
    "flow_dissector",
    "cgroup_skb/ingress",
    "cgroup_skb/egress",
    "cgroup/skb",
    "cgroup/sock_create",
    "cgroup/sock_release",
    "cgroup/sock",
    "cgroup/post_bind4",
    "cgroup/post_bind6",
    "cgroup/bind4",
    "cgroup/bind6",
    "cgroup/connect4",
    "cgroup/connect6",
    "cgroup/connect_unix",
    "cgroup/sendmsg4",
    "cgroup/sendmsg6",
    "cgroup/sendmsg_unix",
    "cgroup/recvmsg4",
    "cgroup/recvmsg6",
    "cgroup/recvmsg_unix",
    "cgroup/getpeername4",
    "cgroup/getpeername6",
    "cgroup/getpeername_unix",
    "cgroup/getsockname4",
    "cgroup/getsockname6",
    "cgroup/getsockname_unix",
    "cgroup/sysctl",
    "cgroup/getsockopt",
    "cgroup/setsockopt",
    "cgroup/dev",
    "struct_ops+",
    "struct_ops.s+",
    "sk_lookup",
    "netfilter",
];

/// Where the names are listed for users.
pub const DOCUMENTED_AT: &str = "docs/conventions.md, \"Attach by section\"";

/// The program type libbpf derives from a section name, if it knows the name. Asks libbpf
/// itself (its table is the authority; [`KNOWN`] only serves suggestions).
pub fn libbpf_prog_type(section: &str) -> Option<u32> {
    let c = std::ffi::CString::new(section).ok()?;
    let (mut t, mut a) = (0u32, 0u32);
    // SAFETY: `c` is NUL-terminated; `t` and `a` are valid out-pointers. Pure table lookup.
    let rc = unsafe { libbpf_sys::libbpf_prog_type_by_name(c.as_ptr(), &mut t, &mut a) };
    (rc == 0).then_some(t)
}

/// Up to three known section names close to `section` (a misspelt prefix keeps the rest:
/// `tracepiont/syscalls/x` → `tracepoint/syscalls/x`), best first.
pub fn close_names(section: &str) -> Vec<String> {
    let (head, rest) = match section.split_once('/') {
        Some((h, r)) => (h, Some(r)),
        None => (section, None),
    };
    // Close: one edit away (short names), or 70 % alike.
    let close = |a: &str, b: &str| {
        let score = strsim::normalized_damerau_levenshtein(a, b);
        (score >= 0.7 || strsim::damerau_levenshtein(a, b) <= 1).then_some(score)
    };
    let mut scored: Vec<(f64, String)> = KNOWN
        .iter()
        .filter_map(|k| {
            let (score, name) = match k.strip_suffix('+') {
                // A prefix name: compare the first component, keep what follows.
                Some(p) => (
                    close(head, p)?,
                    match rest {
                        Some(r) => format!("{p}/{r}"),
                        None => p.to_string(),
                    },
                ),
                None => (close(section, k)?, k.to_string()),
            };
            (name != section).then_some((score, name))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// "did you mean X or Y? " (with the trailing space), or nothing.
pub fn did_you_mean(section: &str) -> String {
    let close = close_names(section);
    if close.is_empty() {
        String::new()
    } else {
        format!("did you mean {}? ", close.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_what_libbpf_knows() {
        for k in KNOWN {
            let name = match k.strip_suffix('+') {
                Some(p) => format!("{p}/x"),
                None => k.to_string(),
            };
            assert!(libbpf_prog_type(&name).is_some(), "{name}");
        }
        assert!(libbpf_prog_type("tracepiont/syscalls/sys_enter_getpid").is_none());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            close_names("tracepiont/syscalls/sys_enter_getpid")[0],
            "tracepoint/syscalls/sys_enter_getpid"
        );
        assert_eq!(close_names("kprob/do_sys_open")[0], "kprobe/do_sys_open");
        assert_eq!(close_names("xpd")[0], "xdp");
        assert!(close_names("zzqqxx").is_empty());
        assert!(did_you_mean("zzqqxx").is_empty());
    }
}
