//! Tracing kinds libbpf attaches from the section name alone: tracepoints, raw and BTF
//! tracepoints, kprobes/ksyscalls, fentry/fexit, LSM, uprobes with a `PATH:SYMBOL` target, USDT.
use std::path::Path;

use libbpf_rs::ProgramMut as Program;

use super::{describe, AttachPoint, Attachment};

/// True when this kernel can create kprobes at all.
pub fn kprobes_available() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

pub fn attach(prog: &Program<'_>, point: &AttachPoint) -> Result<Attachment, String> {
    match point {
        AttachPoint::Kprobe { .. } if !kprobes_available() => {
            return Err(format!(
                "this kernel has no {} (no kprobe PMU in /sys/bus/event_source/devices)",
                point.needs()
            ));
        }
        AttachPoint::Uprobe { target: None, .. } => {
            return Err(
                "section names no target; write SEC(\"uprobe/PATH:FUNCTION\") (or uretprobe/...)"
                    .into(),
            );
        }
        AttachPoint::Uprobe {
            target: Some(t), ..
        } => {
            let path = t.split(':').next().unwrap_or("");
            // A bare name is looked up by libbpf on $PATH (or the library path for .so files).
            if path.contains('/') && !Path::new(path).exists() {
                return Err(format!("uprobe target binary {path} not found"));
            }
        }
        _ => {}
    }
    prog.attach().map(Attachment::Link).map_err(|e| match point {
        AttachPoint::Fentry { .. } | AttachPoint::Lsm { .. } => format!("{}: this kernel lacks {}", describe(&e), point.needs()),
        AttachPoint::Tracepoint { category, name } => {
            format!("{}: tracepoint {category}/{name} does not exist on this kernel or tracefs is unavailable", describe(&e))
        }
        AttachPoint::Uprobe { target, .. } => {
            format!(
                "{}: cannot place uprobe at {} (a bare binary name is looked up on $PATH)",
                describe(&e),
                target.as_deref().unwrap_or("?")
            )
        }
        _ => describe(&e),
    })
}
