//! Tracing kinds libbpf attaches from the section name alone: tracepoints, raw and BTF
//! tracepoints, kprobes/ksyscalls, fentry/fexit, LSM, uprobes with a `PATH:SYMBOL` target, USDT.
use std::path::{Path, PathBuf};

use libbpf_rs::{ProgramMut as Program, UprobeOpts};

use super::{describe, AttachOptions, AttachPoint, Attachment};

/// True when this kernel can create kprobes at all.
pub fn kprobes_available() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// The binary `--target` or `--pid` names, for sections that name none.
fn target_binary(opts: &AttachOptions) -> Option<PathBuf> {
    opts.target
        .clone()
        .or_else(|| opts.pid.map(|p| PathBuf::from(format!("/proc/{p}/exe"))))
}

/// `--pid` for libbpf: -1 means every process.
fn pid_of(opts: &AttachOptions) -> i32 {
    opts.pid.unwrap_or(-1)
}

fn check_binary(path: &Path, what: &str) -> Result<(), String> {
    // A bare name is looked up by libbpf on $PATH (or the library path for .so files).
    if path.components().count() > 1 && !path.exists() {
        return Err(format!("{what} binary {} not found", path.display()));
    }
    Ok(())
}

fn parse_offset(s: &str) -> Option<usize> {
    match s.strip_prefix("0x") {
        Some(h) => usize::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn attach_uprobe(
    prog: &Program<'_>,
    t: &str,
    ret: bool,
    opts: &AttachOptions,
) -> Result<Attachment, String> {
    // `PATH:FUNCTION` (libbpf's spelling), or `FUNCTION` in the `--target` binary.
    let (path, func) = match t.split_once(':') {
        Some((p, f)) => (PathBuf::from(p), f.to_string()),
        None => match target_binary(opts) {
            Some(p) => (p, t.to_string()),
            None => {
                return Err(format!(
                    "section names the function {t} but no binary: pass --target PATH (or --pid PID) to say where it is, or write SEC(\"uprobe/PATH:{t}\")"
                ))
            }
        },
    };
    check_binary(&path, "uprobe target")?;
    // `PATH:0xOFFSET`: a file offset, e.g. an instruction inside a function (libbpf's
    // section parser only knows symbols).
    if let Some(offset) = func
        .strip_prefix("0x")
        .and_then(|h| usize::from_str_radix(h, 16).ok())
    {
        let size = std::fs::metadata(&path)
            .map(|m| m.len())
            .unwrap_or(u64::MAX);
        if offset as u64 >= size {
            return Err(format!(
                "uprobe offset {offset:#x} is past the end of {} ({size} bytes)",
                path.display()
            ));
        }
        return prog
            .attach_uprobe(ret, pid_of(opts), &path, offset)
            .map(Attachment::Link)
            .map_err(|e| format!("{}: cannot place uprobe at {t}", describe(&e)));
    }
    if t.contains(':') && opts.pid.is_none() {
        // libbpf's own parser (it knows `FUNC+OFFSET`, libraries by name).
        return prog.attach().map(Attachment::Link).map_err(|e| {
            format!(
                "{}: cannot place uprobe at {t} (a bare binary name is looked up on $PATH)",
                describe(&e)
            )
        });
    }
    let (func, offset) = match func.split_once('+') {
        Some((f, o)) => (
            f.to_string(),
            parse_offset(o).ok_or_else(|| format!("uprobe {t}: bad offset {o:?}"))?,
        ),
        None => (func, 0),
    };
    let uopts = UprobeOpts {
        retprobe: ret,
        func_name: Some(func.clone()),
        ..Default::default()
    };
    prog.attach_uprobe_with_opts(pid_of(opts), &path, offset, uopts)
        .map(Attachment::Link)
        .map_err(|e| {
            format!(
                "{}: cannot place uprobe at {func} in {} (a bare binary name is looked up on $PATH)",
                describe(&e),
                path.display()
            )
        })
}

fn attach_usdt(prog: &Program<'_>, t: &str, opts: &AttachOptions) -> Result<Attachment, String> {
    let parts: Vec<&str> = t.split(':').collect();
    let (path, provider, name) = match parts.as_slice() {
        [path, provider, name] => (PathBuf::from(path), *provider, *name),
        [provider, name] => match target_binary(opts) {
            Some(p) => (p, *provider, *name),
            None => {
                return Err(format!(
                    "section names the probe {provider}:{name} but no binary: pass --target PATH (or --pid PID) of the program that has it"
                ))
            }
        },
        _ => {
            return Err(
                "SEC(\"usdt\") names no probe: write SEC(\"usdt/PROVIDER:NAME\") and pass --target PATH (or --pid PID), or SEC(\"usdt/PATH:PROVIDER:NAME\")"
                    .into(),
            )
        }
    };
    check_binary(&path, "USDT target")?;
    prog.attach_usdt(pid_of(opts), &path, provider, name)
        .map(Attachment::Link)
        .map_err(|e| {
            format!(
                "{}: cannot attach to USDT probe {provider}:{name} in {} (does the binary have it? `readelf -n` lists its stapsdt notes)",
                describe(&e),
                path.display()
            )
        })
}

pub fn attach(
    prog: &Program<'_>,
    point: &AttachPoint,
    opts: &AttachOptions,
) -> Result<Attachment, String> {
    match point {
        AttachPoint::Kprobe { .. } if !kprobes_available() => {
            return Err(format!(
                "this kernel has no {} (no kprobe PMU in /sys/bus/event_source/devices); {}",
                point.needs(),
                point.instead()
            ));
        }
        AttachPoint::Uprobe { target: None, .. } => {
            return Err(
                "section names no function: write SEC(\"uprobe/FUNCTION\") and pass --target PATH (or --pid PID), or SEC(\"uprobe/PATH:FUNCTION\") (uretprobe/... alike)"
                    .into(),
            );
        }
        AttachPoint::Uprobe {
            target: Some(t),
            ret,
        } => return attach_uprobe(prog, t, *ret, opts),
        AttachPoint::Usdt { target } => return attach_usdt(prog, target, opts),
        _ => {}
    }
    prog.attach().map(Attachment::Link).map_err(|e| match point {
        AttachPoint::Fentry { .. } | AttachPoint::Lsm { .. } => format!("{}: this kernel lacks {}; {}", describe(&e), point.needs(), point.instead()),
        AttachPoint::Tracepoint { category, name } => {
            format!("{}: tracepoint {category}/{name} does not exist on this kernel or tracefs is unavailable", describe(&e))
        }
        _ => describe(&e),
    })
}
