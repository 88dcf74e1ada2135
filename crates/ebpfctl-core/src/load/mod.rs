//! Loading a normalised object with libbpf and attaching its programs.
//!
//! Parameters are written into `.rodata` before load; maps left at `max_entries` 0 get the
//! documented defaults; a program of a kind this kernel refuses (fentry here) is left out
//! with one line and the rest load; a verifier rejection is explained. Everything is
//! detached and unloaded when the [`Loaded`] is dropped.

pub mod attach;
pub mod cleanup;
pub mod libbpf_log;
pub mod section;
pub mod select;
pub mod verifier;

use libbpf_rs::{Map, MapCore, Object, ObjectBuilder};

use crate::convention::{
    self, BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_RINGBUF, BPF_MAP_TYPE_STACK_TRACE,
    BPF_MAP_TYPE_STRUCT_OPS,
};
use crate::mounts::{self, MountError};
use crate::object::helpers::UnsafeCall;
use crate::object::{params, ObjectSpec, DEFAULT_MAX_ENTRIES, DEFAULT_RINGBUF_BYTES};
use attach::{AttachError, AttachOptions, AttachPoint, Attachment};
use select::{SelectError, Selection};
pub use verifier::VerifierReport;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("unknown parameter {name}; the object's parameters: {known} (see --list-params)")]
    UnknownParam { name: String, known: String },
    #[error("parameter {name}: {msg}")]
    BadParam { name: String, msg: String },
    /// Filling the object's maps before attaching failed (the message says what).
    #[error("{0}")]
    BeforeAttach(String),
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
    #[error("{}", nothing_attached(.0))]
    NothingAttached(Vec<Skipped>),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("struct_ops map {map} could not be registered: {reason}")]
    StructOps { map: String, reason: String },
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

/// One skipped program: its reason on the error line. More: the reasons are printed one
/// line each before it ([`LoadError::skipped`]), the error line counts them.
fn nothing_attached(s: &[Skipped]) -> String {
    match s {
        [] => "no program could be attached, so nothing would run: no program was loaded".into(),
        [one] => format!("no program could be attached, so nothing would run: {one}"),
        many => format!(
            "no program could be attached ({} skipped, each said above); nothing to run",
            many.len()
        ),
    }
}

/// Refuses, before anything reaches the kernel, an object that would run nothing or whose
/// programs libbpf cannot type from their section names (it would fail later with a
/// misleading "missing BPF prog type" from the verifier step).
fn check_programs(spec: &ObjectSpec, opts: &LoadOptions, sel: &Selection) -> Result<(), LoadError> {
    if spec.programs.is_empty() && !opts.no_attach {
        return Err(LoadError::NoPrograms);
    }
    for p in spec.programs.iter().filter(|p| sel.wants(p)) {
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
    /// `--program GLOB`: load only the programs these match (name or section).
    pub programs: Vec<String>,
    /// `--skip GLOB`: do not load the programs these match.
    pub skip: Vec<String>,
}

/// A program that is not running, and why (one line for the user).
#[derive(Debug, Clone)]
pub struct Skipped {
    pub program: String,
    pub section: String,
    pub reason: String,
}

impl LoadError {
    /// The skipped programs a [`LoadError::NothingAttached`] holds when its line does not
    /// spell them out (more than one): the caller prints one line each first.
    pub fn skipped(&self) -> &[Skipped] {
        match self {
            LoadError::NothingAttached(s) if s.len() > 1 => s,
            _ => &[],
        }
    }
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
    /// struct_ops maps registered with the kernel (their links unregister on drop).
    pub struct_ops: Vec<(String, libbpf_rs::Link)>,
    pub skipped: Vec<Skipped>,
    /// Lines the user must see about what is attached (e.g. a tc filter a SIGKILL would leave).
    pub notices: Vec<String>,
    pub object: Object,
}

/// Routes libbpf's messages into a buffer (shown on failure, or live with `verbose`).
pub fn capture_libbpf_output(verbose: bool) {
    libbpf_log::capture(verbose);
}

fn take_log() -> Vec<String> {
    libbpf_log::take()
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

/// Why the kernel refused to load a program of a kind it may lack, and what to do.
fn kernel_refusal(ps: &crate::object::ProgramSpec, errno: &str) -> String {
    // ESRCH from a BTF-typed program: its target function is not in the kernel's BTF
    // (libbpf-tools' placeholders such as `dummy_file_read` are retargeted from user space).
    if errno.contains("os error 3)") {
        if let AttachPoint::Fentry { target } = &ps.attach {
            return format!(
                "{target} is not a function in this kernel's BTF, so nothing can hook it; {}",
                closest_functions(target)
            );
        }
    }
    let instead = ps.attach.instead();
    format!(
        "the kernel refused to load it ({errno}); it lacks {}{}{instead}",
        ps.attach.needs(),
        if instead.is_empty() { "" } else { "; " }
    )
}

/// The kernel functions closest to `name` ("the closest are a, b, c"), or what to check.
/// A libbpf-tools placeholder (`dummy_file_read`) gets the functions that contain the rest
/// of its name (`ext4_file_read_iter`, ...).
fn closest_functions(name: &str) -> String {
    // Parsed once per process: an object may have many such programs.
    static FUNCS: std::sync::OnceLock<Option<Vec<String>>> = std::sync::OnceLock::new();
    let Some(funcs) = FUNCS.get_or_init(|| {
        let btf = crate::inspect::feature::vmlinux_btf()?;
        Some(
            btf.iter()
                .filter(|(_, t)| t.kind == crate::btf::Kind::Func)
                .map(|(_, t)| btf.str(t.name_off).to_string())
                .collect(),
        )
    }) else {
        return "this kernel has no BTF (/sys/kernel/btf/vmlinux) to look it up".into();
    };
    let placeholder = name.strip_prefix("dummy_").filter(|r| r.len() >= 4);
    let mut scored: Vec<(f64, &str)> = match placeholder {
        Some(rest) => funcs
            .iter()
            .filter(|f| f.contains(rest))
            .map(|f| (-(f.len() as f64), f.as_str()))
            .collect(),
        None => funcs
            .iter()
            .map(|f| (strsim::jaro_winkler(name, f), f.as_str()))
            .filter(|(s, _)| *s > 0.85)
            .collect(),
    };
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    let names: Vec<&str> = scored.iter().take(3).map(|(_, n)| *n).collect();
    match (placeholder, names.is_empty()) {
        (Some(_), true) => "it is a placeholder its own loader retargets from user space, and no kernel function looks like its target".into(),
        (Some(_), false) => format!(
            "it is a placeholder its own loader retargets from user space (to one of {}, ...)",
            names.join(", ")
        ),
        (None, true) => "no function of a similar name either".into(),
        (None, false) => format!("the closest are {}", names.join(", ")),
    }
}

impl Loaded {
    /// Loads and attaches `spec` (see the module docs).
    pub fn load(spec: &ObjectSpec, opts: &LoadOptions) -> Result<Loaded, LoadError> {
        Self::load_then(spec, opts, &mut |_| Ok(()))
    }

    /// Loads `spec`, calls `before_attach` with the loaded object (to fill its maps before
    /// any program runs), then attaches. An error of `before_attach` unloads everything.
    pub fn load_then(
        spec: &ObjectSpec,
        opts: &LoadOptions,
        before_attach: &mut dyn FnMut(&Loaded) -> Result<(), String>,
    ) -> Result<Loaded, LoadError> {
        let sel = Selection::new(&opts.programs, &opts.skip, &spec.programs)?;
        check_programs(spec, opts, &sel)?;
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
        let wanted: Vec<&crate::object::ProgramSpec> =
            spec.programs.iter().filter(|p| sel.wants(p)).collect();
        let tracing = wanted.iter().any(|p| {
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
        // Programs not to load: deselected, or refused by the kernel in an earlier round.
        let off = |name: &str, skipped: &[Skipped]| {
            !wanted.iter().any(|p| p.name == name) || skipped.iter().any(|s| s.program == name)
        };
        // Said once however often the object is opened again below.
        let mut notices: Vec<String> = Vec::new();
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
                let bad = |e: libbpf_rs::Error| LoadError::Open(format!("map {name}: {e}"));
                // Parameters live in the internal `<obj>.rodata` map.
                for (p, bytes) in &param_bytes {
                    if name.ends_with(&p.section) {
                        if let Some(data) = m.initial_value_mut() {
                            let Some(dst) = data.get_mut(p.offset..p.offset + bytes.len()) else {
                                return Err(LoadError::BadParam {
                                    name: p.name.clone(),
                                    msg: format!("it lies outside map {name}; rebuild the object"),
                                });
                            };
                            dst.copy_from_slice(bytes);
                        }
                    }
                }
                let map_type = m.map_type() as u32;
                // SEC(".struct_ops.link") asks for a link-backed map (BPF_F_LINK, 6.4). Older
                // kernels refuse the flag; without it libbpf registers the map by an update
                // and unregisters it on close, which is the same while we run.
                if map_type == BPF_MAP_TYPE_STRUCT_OPS
                    && m.map_flags() & libbpf_sys::BPF_F_LINK != 0
                    && !crate::inspect::feature::struct_ops_links()
                {
                    m.set_map_flags(m.map_flags() & !libbpf_sys::BPF_F_LINK)
                        .map_err(bad)?;
                    if !notices.iter().any(|n: &String| n.contains(&name)) {
                        notices.push(format!(
                            "struct_ops map {name}: this kernel has no struct_ops links (6.4), so it is registered without one and unregistered when ebpfctl stops"
                        ));
                    }
                }
                // A perf array whose event type was stripped by normalisation: the kernel wants 4/4.
                if map_type == BPF_MAP_TYPE_PERF_EVENT_ARRAY && m.value_size() == 0 {
                    m.set_key_size(4)
                        .and_then(|_| m.set_value_size(4))
                        .map_err(bad)?;
                }
                // A stack-trace map whose value size user space was to set (libbpf-tools):
                // as deep as the kernel's default maximum, 8 bytes per frame.
                if map_type == BPF_MAP_TYPE_STACK_TRACE && m.value_size() == 0 {
                    m.set_value_size(convention::DEFAULT_STACK_DEPTH * 8)
                        .map_err(bad)?;
                    if m.key_size() == 0 {
                        m.set_key_size(4).map_err(bad)?;
                    }
                }
                if m.max_entries() == 0 && !convention::sized_by_kernel(map_type) {
                    let n = match map_type {
                        BPF_MAP_TYPE_RINGBUF => opts.ringbuf_bytes.unwrap_or(DEFAULT_RINGBUF_BYTES),
                        BPF_MAP_TYPE_PERF_EVENT_ARRAY => continue, // libbpf sizes it to the CPU count
                        _ => DEFAULT_MAX_ENTRIES,
                    };
                    m.set_max_entries(n).map_err(bad)?;
                }
            }
            for mut p in open.progs_mut() {
                if off(&p.name().to_string_lossy(), &skipped) {
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
                    // The last program standing: its own error says it all.
                    let last = skipped.len() + 1 >= wanted.len();
                    let refused = match ps {
                        Some(ps)
                            if kernel_may_lack(&ps.attach)
                                && !errno.contains("Permission denied (os error 13)") =>
                        {
                            Skipped {
                                program: prog.clone(),
                                section: ps.section.clone(),
                                reason: kernel_refusal(ps, &errno),
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
                            let mut report = verifier::explain(&prog, &short, &log);
                            verifier::locate(&mut report, &spec.lines);
                            match ps {
                                // Outside --strict the others still run: the object is
                                // loaded again without this one.
                                Some(ps) if !opts.strict && !last => Skipped {
                                    program: prog.clone(),
                                    section: ps.section.clone(),
                                    reason: format!("{report}\n  the other programs run without it (--strict makes this fatal)"),
                                },
                                _ => return Err(LoadError::Verifier(Box::new(report))),
                            }
                        }
                    };
                    if opts.strict {
                        return Err(LoadError::Refused(refused));
                    }
                    skipped.push(refused);
                    if last {
                        return Err(LoadError::NothingAttached(skipped));
                    }
                }
            }
        };

        let mut loaded = Loaded {
            attachments: Vec::new(),
            struct_ops: Vec::new(),
            skipped,
            notices,
            object,
        };
        if opts.no_attach {
            return Ok(loaded);
        }
        before_attach(&loaded).map_err(LoadError::BeforeAttach)?;
        // The first program attached on each hook, by hook.
        let mut hooked: Vec<((&'static str, String), &crate::object::ProgramSpec)> = Vec::new();
        for ps in &wanted {
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
            let hook = attach::hook(&ps.section);
            if let Some(h) = &hook {
                if let Some((_, first)) = hooked.iter().find(|(k, _)| k == h) {
                    if !(sel.named(ps) && sel.named(first)) {
                        loaded.skipped.push(Skipped {
                            program: ps.name.clone(),
                            section: ps.section.clone(),
                            reason: select::alternative_reason(ps, first, h),
                        });
                        continue;
                    }
                }
            }
            match attach::attach(&prog, &ps.attach, &opts.attach) {
                Ok(a) => {
                    loaded.notices.extend(a.notice().map(str::to_string));
                    loaded.attachments.push((ps.name.clone(), a));
                    if let Some(h) = hook {
                        hooked.push((h, ps));
                    }
                }
                Err(e) if opts.strict => return Err(e.into()),
                Err(e) => loaded.skipped.push(Skipped {
                    program: e.program,
                    section: e.section,
                    reason: e.reason,
                }),
            }
        }
        // struct_ops maps (a TCP congestion control, a scheduler...) are registered as a
        // whole; their programs run through them.
        for mut m in loaded.object.maps_mut() {
            if m.map_type() as u32 != BPF_MAP_TYPE_STRUCT_OPS {
                continue;
            }
            let name = m.name().to_string_lossy().into_owned();
            match m.attach_struct_ops() {
                Ok(link) => loaded.struct_ops.push((name, link)),
                Err(e) => {
                    let log = take_log();
                    let reason = log
                        .iter()
                        .rev()
                        .find(|l| l.contains("struct_ops") || l.contains("failed"))
                        .map(|l| format!("{}: {}", attach::describe(&e), l.trim()))
                        .unwrap_or_else(|| attach::describe(&e));
                    return Err(LoadError::StructOps { map: name, reason });
                }
            }
        }
        if loaded.attachments.is_empty()
            && loaded.struct_ops.is_empty()
            && !spec.programs.is_empty()
        {
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

    /// The iterators: program name and the link to create readers from.
    pub fn iterators(&self) -> impl Iterator<Item = (&str, &libbpf_rs::Link)> {
        self.attachments.iter().filter_map(|(n, a)| match a {
            Attachment::Iter(l) => Some((n.as_str(), l)),
            _ => None,
        })
    }

    /// The object's `.bss` map (lost-event counters live there).
    pub fn bss(&self) -> Option<Map<'_>> {
        self.object
            .maps()
            .find(|m| m.name().to_string_lossy().ends_with(".bss"))
    }
}
