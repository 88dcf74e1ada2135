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
            target: Some(t),
            ret,
        } => {
            let (path, func) = t.split_once(':').unwrap_or((t, ""));
            // A bare name is looked up by libbpf on $PATH (or the library path for .so files).
            if path.contains('/') && !Path::new(path).exists() {
                return Err(format!("uprobe target binary {path} not found"));
            }
            // `PATH:0xOFFSET`: a file offset, e.g. an instruction inside a function (libbpf's
            // section parser only knows symbols).
            if let Some(offset) = func
                .strip_prefix("0x")
                .and_then(|h| usize::from_str_radix(h, 16).ok())
            {
                let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
                if offset as u64 >= size {
                    return Err(format!(
                        "uprobe offset {offset:#x} is past the end of {path} ({size} bytes)"
                    ));
                }
                return prog
                    .attach_uprobe(*ret, -1, path, offset)
                    .map(Attachment::Link)
                    .map_err(|e| format!("{}: cannot place uprobe at {t}", describe(&e)));
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
