//! Loading a normalised object with libbpf and attaching its programs.
//!
//! Parameters are written into `.rodata` before load; maps left at `max_entries` 0 get the
//! documented defaults; a program of a kind this kernel refuses (fentry here) is left out
//! with one line and the rest load; a verifier rejection is explained. Everything is
//! detached and unloaded when the [`Loaded`] is dropped.

pub mod attach;
pub mod cleanup;
pub mod section;
pub mod verifier;

use std::sync::Mutex;

use libbpf_rs::{Map, MapCore, Object, ObjectBuilder, PrintLevel};

use crate::convention::{self, BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_RINGBUF};
use crate::mounts::{self, MountError};
use crate::object::helpers::UnsafeCall;
use crate::object::{params, ObjectSpec, DEFAULT_MAX_ENTRIES, DEFAULT_RINGBUF_BYTES};
use attach::{AttachError, AttachOptions, AttachPoint, Attachment};
pub use verifier::VerifierReport;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("unknown parameter {name}; the object's parameters: {known} (see --list-params)")]
    UnknownParam { name: String, known: String },
    #[error("parameter {name}: {msg}")]
    BadParam { name: String, msg: String },
    #[error("libbpf cannot open the object: {0}")]
    Open(String),
    #[error("{0}")]
    Verifier(Box<VerifierReport>),
    #[error("loading the object failed: {0}")]
    Load(String),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("program {} ({}) cannot run here (--strict): {}", .0.program, .0.section, .0.reason)]
    Refused(Skipped),
    #[error("no program could be attached, so nothing would run: {}", skipped_list(.0))]
    NothingAttached(Vec<Skipped>),
    #[error("the object has no programs, so nothing would run: a program is a global function in a SEC(\"...\") section, e.g. SEC(\"tracepoint/syscalls/sys_enter_openat\") (see {})", section::DOCUMENTED_AT)]
    NoPrograms,
    #[error("program {program}: section \"{section}\" is not a section name libbpf knows, so it cannot tell the program type; {hint}rename it in SEC(\"...\") and rebuild (the names: {})", section::DOCUMENTED_AT)]
    UnknownSection {
        program: String,
        section: String,
        /// "did you mean ...? " or empty.
        hint: String,
    },
    #[error(transparent)]
    Capabilities(#[from] crate::caps::MissingCapabilities),
    #[error("{}: refused, as it changes the system being traced; run with --allow-unsafe-helpers only if you trust this probe", crate::object::helpers::describe(.0))]
    UnsafeHelpers(Vec<UnsafeCall>),
}

fn skipped_list(s: &[Skipped]) -> String {
    if s.is_empty() {
        return "no program was loaded".into();
    }
    s.iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Refuses, before anything reaches the kernel, an object that would run nothing or whose
/// programs libbpf cannot type from their section names (it would fail later with a
/// misleading "missing BPF prog type" from the verifier step).
fn check_programs(spec: &ObjectSpec, opts: &LoadOptions) -> Result<(), LoadError> {
    if spec.programs.is_empty() && !opts.no_attach {
        return Err(LoadError::NoPrograms);
    }
    for p in &spec.programs {
        // `SEC("?...")`: not loaded by default (libbpf's convention), so its name is moot.
        if p.section.starts_with('?') || section::libbpf_prog_type(&p.section).is_some() {
            continue;
        }
        return Err(LoadError::UnknownSection {
            program: p.name.clone(),
            section: p.section.clone(),
            hint: section::did_you_mean(&p.section),
        });
    }
    Ok(())
}

/// How to load and attach.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--param NAME=VALUE` pairs.
    pub params: Vec<(String, String)>,
    pub attach: AttachOptions,
    /// Make any program that cannot load or attach fatal.
    pub strict: bool,
    /// Ring buffer size for ring buffers declared with `max_entries` 0.
    pub ringbuf_bytes: Option<u32>,
    /// Echo libbpf's own messages to stderr.
    pub verbose: bool,
    /// Load but do not attach (for introspection tests and `--dry-run`).
    pub no_attach: bool,
    /// Load objects that call helpers which change the traced system
    /// ([`crate::object::helpers::UNSAFE`]); refused otherwise.
    pub allow_unsafe_helpers: bool,
}

/// A program that is not running, and why (one line for the user).
#[derive(Debug, Clone)]
pub struct Skipped {
    pub program: String,
    pub section: String,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "program {} ({}) skipped: {}",
            self.program, self.section, self.reason
        )
    }
}

/// A loaded, attached object. Dropping it detaches and unloads everything.
pub struct Loaded {
    // Field order matters: attachments drop (detach) before the object (unload).
    pub attachments: Vec<(String, Attachment)>,
    pub skipped: Vec<Skipped>,
    /// Lines the user must see about what is attached (e.g. a tc filter a SIGKILL would leave).
    pub notices: Vec<String>,
    pub object: Object,
}

static LIBBPF_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn capture(level: PrintLevel, msg: String) {
    if VERBOSE.load(std::sync::atomic::Ordering::Relaxed) {
        eprint!("libbpf: {msg}");
    }
    if level != PrintLevel::Debug {
        LIBBPF_LOG
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(msg);
    }
}

/// Routes libbpf's messages into a buffer (shown on failure, or live with `verbose`).
pub fn capture_libbpf_output(verbose: bool) {
    VERBOSE.store(verbose, std::sync::atomic::Ordering::Relaxed);
    libbpf_rs::set_print(Some((
        if verbose {
            PrintLevel::Debug
        } else {
            PrintLevel::Info
        },
        capture,
    )));
}

fn take_log() -> Vec<String> {
    std::mem::take(&mut *LIBBPF_LOG.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The program libbpf names in its failure message ("prog 'NAME': ... failed").
fn failed_program(log: &[String]) -> Option<String> {
    let re = regex::Regex::new(r"prog '([^']+)': (BPF program load failed|failed to load)")
        .expect("static regex");
    log.iter()
        .rev()
        .find_map(|l| re.captures(l).map(|c| c[1].to_string()))
}

/// Kinds a kernel may refuse as a whole (config, lockdown): skipped, not fatal, unless strict.
fn kernel_may_lack(p: &AttachPoint) -> bool {
    matches!(
        p,
        AttachPoint::Fentry { .. }
            | AttachPoint::Lsm { .. }
            | AttachPoint::LsmCgroup { .. }
            | AttachPoint::Kprobe { .. }
            | AttachPoint::Iter { .. }
    )
}

impl Loaded {
    /// Loads and attaches `spec` (see the module docs).
    pub fn load(spec: &ObjectSpec, opts: &LoadOptions) -> Result<Loaded, LoadError> {
        check_programs(spec, opts)?;
        // Read from the object's instructions: refused before anything reaches the kernel.
        if !spec.unsafe_calls.is_empty() && !opts.allow_unsafe_helpers {
            return Err(LoadError::UnsafeHelpers(spec.unsafe_calls.clone()));
        }
        // Root in a container may lack them: name what is missing before touching the kernel.
        crate::caps::require(
            "this object",
            &crate::caps::needs_for(spec.programs.iter().map(|p| &p.attach)),
        )?;
        // Parameters first: bad input must fail before anything touches the kernel.
        let mut param_bytes = Vec::new();
        for (name, value) in &opts.params {
            let Some(p) = spec.params.iter().find(|p| &p.name == name) else {
                let known: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
                return Err(LoadError::UnknownParam {
                    name: name.clone(),
                    known: if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    },
                });
            };
            let btf = spec.btf.as_ref().expect("parameters come from BTF");
            let bytes = params::encode(btf, p, value).map_err(|msg| LoadError::BadParam {
                name: name.clone(),
                msg,
            })?;
            param_bytes.push((p, bytes));
        }
        let tracing = spec.programs.iter().any(|p| {
            matches!(
                p.attach,
                AttachPoint::Tracepoint { .. }
                    | AttachPoint::Uprobe { .. }
                    | AttachPoint::Kprobe { .. }
                    | AttachPoint::Usdt { .. }
            )
        });
        if tracing && !opts.no_attach {
            mounts::ensure_tracing()?;
        }
        if spec.maps.iter().any(|m| m.pinned) {
            mounts::ensure(&mounts::BPFFS)?;
        }
        capture_libbpf_output(opts.verbose);

        let mut skipped: Vec<Skipped> = Vec::new();
        let object = loop {
            take_log();
            let mut open = ObjectBuilder::default()
                .open_memory(&spec.normalised)
                .map_err(|e| {
                    let log = take_log();
                    LoadError::Open(
                        log.last()
                            .map(|l| l.trim().to_string())
                            .unwrap_or_else(|| e.to_string()),
                    )
                })?;
            for mut m in open.maps_mut() {
                let name = m.name().to_string_lossy().into_owned();
                // Parameters live in the internal `<obj>.rodata` map.
                for (p, bytes) in &param_bytes {
                    if name.ends_with(&p.section) {
                        if let Some(data) = m.initial_value_mut() {
                            data[p.offset..p.offset + bytes.len()].copy_from_slice(bytes);
                        }
                    }
                }
                // A perf array whose event type was stripped by normalisation: the kernel wants 4/4.
                if m.map_type() as u32 == BPF_MAP_TYPE_PERF_EVENT_ARRAY && m.value_size() == 0 {
                    m.set_key_size(4)
                        .and_then(|_| m.set_value_size(4))
                        .map_err(|e| LoadError::Open(format!("map {name}: {e}")))?;
                }
                if m.max_entries() == 0 && !convention::sized_by_kernel(m.map_type() as u32) {
                    let n = match m.map_type() as u32 {
                        BPF_MAP_TYPE_RINGBUF => opts.ringbuf_bytes.unwrap_or(DEFAULT_RINGBUF_BYTES),
                        BPF_MAP_TYPE_PERF_EVENT_ARRAY => continue, // libbpf sizes it to the CPU count
                        _ => DEFAULT_MAX_ENTRIES,
                    };
                    m.set_max_entries(n)
                        .map_err(|e| LoadError::Open(format!("map {name}: {e}")))?;
                }
            }
            for mut p in open.progs_mut() {
                if skipped
                    .iter()
                    .any(|s| s.program == p.name().to_string_lossy())
                {
                    p.set_autoload(false);
                }
            }
            match open.load() {
                Ok(obj) => break obj,
                Err(e) => {
                    let log = take_log();
                    let Some(prog) = failed_program(&log) else {
                        let detail = log
                            .iter()
                            .rev()
                            .find(|l| l.contains("failed") || l.contains("Error"))
                            .cloned();
                        return Err(LoadError::Load(
                            detail
                                .map(|d| d.trim().to_string())
                                .unwrap_or_else(|| e.to_string()),
                        ));
                    };
                    let ps = spec.programs.iter().find(|p| p.name == prog);
                    let errno = format!("{e}");
                    match ps {
                        Some(ps)
                            if kernel_may_lack(&ps.attach)
                                && !errno.contains("Permission denied (os error 13)") =>
                        {
                            let refused = Skipped {
                                program: prog.clone(),
                                section: ps.section.clone(),
                                reason: format!(
                                    "the kernel refused to load it ({errno}); it lacks {}",
                                    ps.attach.needs()
                                ),
                            };
                            if opts.strict {
                                return Err(LoadError::Refused(refused));
                            }
                            skipped.push(refused);
                            if skipped.len() >= spec.programs.len() {
                                return Err(LoadError::NothingAttached(skipped));
                            }
                        }
                        _ => {
                            let short = log
                                .iter()
                                .find_map(|l| {
                                    l.split("BPF program load failed: ")
                                        .nth(1)
                                        .map(|s| s.trim().to_string())
                                })
                                .unwrap_or(errno);
                            return Err(LoadError::Verifier(Box::new(verifier::explain(
                                &prog, &short, &log,
                            ))));
                        }
                    }
                }
            }
        };

        let mut loaded = Loaded {
            attachments: Vec::new(),
            skipped,
            notices: Vec::new(),
            object,
        };
        if opts.no_attach {
            return Ok(loaded);
        }
        for ps in &spec.programs {
            let Some(prog) = loaded
                .object
                .progs_mut()
                .find(|p| p.name().to_string_lossy() == ps.name)
            else {
                continue;
            };
            if loaded.skipped.iter().any(|s| s.program == ps.name) {
                continue;
            }
            match attach::attach(&prog, &ps.attach, &opts.attach) {
                Ok(a) => {
                    loaded.notices.extend(a.notice().map(str::to_string));
                    loaded.attachments.push((ps.name.clone(), a));
                }
                Err(e) if opts.strict => return Err(e.into()),
                Err(e) => loaded.skipped.push(Skipped {
                    program: e.program,
                    section: e.section,
                    reason: e.reason,
                }),
            }
        }
        if loaded.attachments.is_empty() && !spec.programs.is_empty() {
            return Err(LoadError::NothingAttached(std::mem::take(
                &mut loaded.skipped,
            )));
        }
        Ok(loaded)
    }

    /// A loaded map by its name in the object.
    pub fn map(&self, name: &str) -> Option<Map<'_>> {
        self.object
            .maps()
            .find(|m| m.name().to_string_lossy() == name)
    }

    /// The object's `.bss` map (lost-event counters live there).
    pub fn bss(&self) -> Option<Map<'_>> {
        self.object
            .maps()
            .find(|m| m.name().to_string_lossy().ends_with(".bss"))
    }
}
