//! cgroup programs (`cgroup_skb/*`, `cgroup/*`): attached to the cgroup given by `--cgroup`.
use std::os::fd::AsRawFd;

use libbpf_rs::ProgramMut as Program;

use super::{describe, AttachOptions, Attachment};

pub fn attach(prog: &Program<'_>, opts: &AttachOptions) -> Result<Attachment, String> {
    let Some(path) = &opts.cgroup else {
        return Err(format!(
            "cgroup programs need --cgroup PATH (the cgroup v2 root here: {})",
            cgroup2_root()
        ));
    };
    let dir = std::fs::File::open(path)
        .map_err(|e| format!("cannot open cgroup {}: {e}", path.display()))?;
    prog.attach_cgroup(dir.as_raw_fd())
        .map(Attachment::Link)
        .map_err(|e| format!("{} (attaching to cgroup {})", describe(&e), path.display()))
}

/// Where cgroup v2 is mounted, from /proc/mounts.
fn cgroup2_root() -> String {
    std::fs::read_to_string("/proc/mounts")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.split_whitespace().nth(2) == Some("cgroup2"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_else(|| "not mounted; run: mount -t cgroup2 none /sys/fs/cgroup".to_string())
}
