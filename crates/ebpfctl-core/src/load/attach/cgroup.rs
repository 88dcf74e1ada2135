//! cgroup programs (`cgroup_skb/*`, `cgroup/*`): attached to the cgroup given by `--cgroup`.
use std::os::fd::AsRawFd;

use libbpf_rs::ProgramMut as Program;

use super::{describe, AttachOptions, Attachment};

pub fn attach(prog: &Program<'_>, opts: &AttachOptions) -> Result<Attachment, String> {
    let Some(path) = &opts.cgroup else {
        return Err("cgroup programs need --cgroup PATH (e.g. /sys/fs/cgroup)".into());
    };
    let dir = std::fs::File::open(path)
        .map_err(|e| format!("cannot open cgroup {}: {e}", path.display()))?;
    prog.attach_cgroup(dir.as_raw_fd())
        .map(Attachment::Link)
        .map_err(|e| format!("{} (attaching to cgroup {})", describe(&e), path.display()))
}
