//! `ebpfctl inspect OBJECT.o`: one view of a BPF object — sections, programs (and whether
//! this kernel can attach them), maps with their convention keywords and types, parameters,
//! license, BTF, and the problems the runner would hit. Built on [`crate::object::ObjectSpec`].
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::feature;
use super::print::{self, Format, Table};
use super::Result;
use crate::btf::{Btf, Kind};
use crate::load::attach::AttachPoint;
use crate::object::helpers::UnsafeCall;
use crate::object::{params, ObjectSpec, SectionInfo};

/// One program of the object.
#[derive(Debug, Clone, Serialize)]
pub struct ProgView {
    pub name: String,
    pub section: String,
    /// Attach kind from the section name: tracepoint, uprobe, xdp, ...
    pub kind: String,
    /// The BPF program type libbpf gives the section (`kprobe` for uprobes, `tracing` for
    /// fentry...), or null when libbpf does not know the section.
    pub prog_type: Option<String>,
    pub attach: AttachPoint,
    pub insns: usize,
    pub bytes: usize,
    /// Whether this kernel can attach it (probed), and why not.
    pub attachable: bool,
    pub attach_note: String,
}

/// One map of the object.
#[derive(Debug, Clone, Serialize)]
pub struct MapView {
    pub name: String,
    pub section: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub keyword: Option<String>,
    pub keyword_source: Option<String>,
    pub key_type: Option<String>,
    pub value_type: Option<String>,
    pub key_size: u32,
    pub value_size: u32,
    /// As declared; 0 means the runner's default.
    pub max_entries: u32,
    /// What `ebpfctl run` does with it (and would with `--all-maps`).
    pub plan: String,
}

/// A `const volatile` parameter.
#[derive(Debug, Clone, Serialize)]
pub struct ParamView {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub section: String,
    pub offset: usize,
    pub size: usize,
    pub default: String,
}

/// BTF summary.
#[derive(Debug, Clone, Serialize)]
pub struct BtfSummary {
    pub types: usize,
    pub functions: usize,
    pub structs: usize,
    pub has_line_info: bool,
}

/// The whole view.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectView {
    pub path: String,
    pub license: Option<String>,
    pub sections: Vec<SectionInfo>,
    pub programs: Vec<ProgView>,
    pub maps: Vec<MapView>,
    pub params: Vec<ParamView>,
    pub btf: Option<BtfSummary>,
    /// What the runner's normaliser rewrites before libbpf sees the object.
    pub normalisation: Vec<String>,
    /// Calls to helpers and kfuncs that change the traced system (`run` refuses them
    /// without `--allow-unsafe-helpers`).
    pub unsafe_calls: Vec<UnsafeCall>,
    /// What would go wrong loading or attaching this object here, one line each.
    pub problems: Vec<String>,
}

/// Probed once per inspect: which attach families this kernel has.
struct Kernel {
    vmlinux: Option<Btf>,
    kprobe: bool,
    uprobe: bool,
    tracefs: Option<&'static str>,
    fentry: Option<std::result::Result<(), String>>,
}

impl Kernel {
    fn probe() -> Kernel {
        Kernel {
            vmlinux: feature::vmlinux_btf(),
            kprobe: feature::pmu_type("kprobe").is_some(),
            uprobe: feature::pmu_type("uprobe").is_some(),
            tracefs: ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
                .into_iter()
                .find(|d| Path::new(d).join("events").is_dir()),
            fentry: None,
        }
    }

    fn func(&self, name: &str) -> Option<u32> {
        self.vmlinux.as_ref()?.find(name, Kind::Func).next()
    }

    /// Loads a no-op program of `prog_type` bound to BTF function `func` (nothing attached).
    fn try_btf_load(
        &self,
        prog_type: u32,
        attach_type: u32,
        func: &str,
    ) -> std::result::Result<(), String> {
        let Some(id) = self.func(func) else {
            return Err(format!("{func} is not in this kernel's BTF"));
        };
        feature::load_noop(prog_type, attach_type, id)
            .map(drop)
            .map_err(|e| {
                format!(
                    "the kernel refuses to load it ({})",
                    feature::errno_text(&e)
                )
            })
    }

    fn can_attach(&mut self, a: &AttachPoint) -> (bool, String) {
        match a {
            AttachPoint::Tracepoint { category, name } => match self.tracefs {
                None => (true, "tracefs is not mounted; ebpfctl run mounts it".into()),
                Some(d) => {
                    if Path::new(d)
                        .join("events")
                        .join(category)
                        .join(name)
                        .is_dir()
                    {
                        (true, format!("tracepoint {category}/{name} exists"))
                    } else {
                        (
                            false,
                            format!("no tracepoint {category}/{name} in this kernel ({d}/events)"),
                        )
                    }
                }
            },
            AttachPoint::RawTracepoint { name } | AttachPoint::TpBtf { name } => {
                let found = self.vmlinux.as_ref().is_some_and(|b| {
                    b.find(&format!("btf_trace_{name}"), Kind::Typedef)
                        .next()
                        .is_some()
                });
                match (found, a) {
                    (false, _) => (
                        false,
                        format!("no raw tracepoint {name} in this kernel's BTF"),
                    ),
                    (true, AttachPoint::TpBtf { .. }) => (
                        true,
                        format!("raw tracepoint {name} exists (tp_btf loads as a tracing program)"),
                    ),
                    (true, _) => (true, format!("raw tracepoint {name} exists")),
                }
            }
            AttachPoint::Kprobe {
                target, syscall, ..
            } => {
                if !self.kprobe {
                    (false, format!("this kernel has no {}", a.needs()))
                } else if let Some(f) = missing_kernel_function(target, *syscall) {
                    (
                        false,
                        format!("kprobes available, but {f} is not a kernel function here (not in /proc/kallsyms)"),
                    )
                } else {
                    (true, "kprobes available".into())
                }
            }
            AttachPoint::Uprobe { target, .. } => match (self.uprobe, target) {
                (false, _) => (false, format!("this kernel has no {}", a.needs())),
                (true, None) => (
                    false,
                    "section names no function: write SEC(\"uprobe/FUNCTION\") and run with --target PATH, or SEC(\"uprobe/PATH:FUNCTION\")".into(),
                ),
                (true, Some(t)) if !t.contains(':') => (
                    true,
                    format!("uprobes available; names {t} but no binary: run needs --target PATH (or --pid PID)"),
                ),
                (true, Some(_)) => (true, "uprobes available".into()),
            },
            AttachPoint::Usdt { target } => {
                if !self.uprobe {
                    return (false, format!("this kernel has no {}", a.needs()));
                }
                match target.split(':').count() {
                    3 => (true, "uprobes available (libbpf's USDT support)".into()),
                    2 => (
                        true,
                        format!("uprobes available; names probe {target} but no binary: run needs --target PATH (or --pid PID)"),
                    ),
                    _ => (
                        false,
                        "SEC(\"usdt\") names no probe: write SEC(\"usdt/PROVIDER:NAME\") and run with --target PATH, or SEC(\"usdt/PATH:PROVIDER:NAME\")".into(),
                    ),
                }
            }
            AttachPoint::Fentry { target } => {
                let target = target.clone();
                let r = match &self.fentry {
                    Some(r) => r.clone(),
                    None => {
                        let r = self.try_btf_load(
                            libbpf_sys::BPF_PROG_TYPE_TRACING,
                            libbpf_sys::BPF_TRACE_FENTRY,
                            "vfs_read",
                        );
                        self.fentry = Some(r.clone());
                        r
                    }
                };
                match r {
                    Err(e) => (
                        false,
                        format!("fentry/fexit: {e}; use a tracepoint or raw_tp"),
                    ),
                    Ok(()) if self.func(&target).is_none() => (
                        false,
                        format!("{target} is not a function in this kernel's BTF"),
                    ),
                    Ok(()) => (true, format!("{target} is traceable")),
                }
            }
            AttachPoint::Lsm { hook } => {
                match self.try_btf_load(
                    libbpf_sys::BPF_PROG_TYPE_LSM,
                    libbpf_sys::BPF_LSM_MAC,
                    &format!("bpf_lsm_{hook}"),
                ) {
                    Ok(()) => (
                        true,
                        format!("LSM hook {hook} loads (it runs only if `bpf` is an active LSM)"),
                    ),
                    Err(e) => (false, format!("LSM hook {hook}: {e}")),
                }
            }
            AttachPoint::LsmCgroup { hook } => {
                match self.try_btf_load(
                    libbpf_sys::BPF_PROG_TYPE_LSM,
                    libbpf_sys::BPF_LSM_CGROUP,
                    &format!("bpf_lsm_{hook}"),
                ) {
                    Ok(()) => (
                        true,
                        format!("LSM hook {hook} loads for a cgroup; attaches with --cgroup PATH"),
                    ),
                    Err(e) => (false, format!("LSM cgroup hook {hook}: {e}")),
                }
            }
            AttachPoint::Xdp | AttachPoint::Tc { .. } | AttachPoint::Tcx { .. } => {
                (true, "attaches with --iface IFACE".into())
            }
            AttachPoint::Cgroup { .. } => (true, "attaches with --cgroup PATH".into()),
            AttachPoint::SocketFilter => (true, "attaches to a socket the runner opens".into()),
            AttachPoint::PerfEvent => (true, "attaches to CPU clock events".into()),
            AttachPoint::Iter { target } => {
                if self.func(&format!("bpf_iter_{target}")).is_some() {
                    (
                        true,
                        format!("iterator {target} exists; run reads it every --interval and prints its text"),
                    )
                } else {
                    (false, format!("no iterator {target} in this kernel"))
                }
            }
            AttachPoint::Other { section } if section.starts_with("struct_ops") => (
                true,
                "runs through the object's struct_ops map, which run registers".into(),
            ),
            AttachPoint::Other { section } => (
                false,
                format!("the runner loads but does not attach section {section}"),
            ),
        }
    }
}

/// Whether this kernel supports a program or map type (libbpf's probes; cached).
fn supported(cache: &mut std::collections::HashMap<(bool, u32), bool>, map: bool, t: u32) -> bool {
    *cache.entry((map, t)).or_insert_with(|| {
        // SAFETY: no pointers besides the null options.
        let rc = unsafe {
            if map {
                libbpf_sys::libbpf_probe_bpf_map_type(t, std::ptr::null())
            } else {
                libbpf_sys::libbpf_probe_bpf_prog_type(t, std::ptr::null())
            }
        };
        rc == 1
    })
}

/// Inspects an object file.
/// The function a kprobe section names (`FUNC` or `FUNC+OFFSET`), when /proc/kallsyms is
/// readable and lacks it: `run` could not attach there. Globs (kprobe.multi), syscalls
/// (resolved to the architecture's wrapper) and empty targets are not checked.
fn missing_kernel_function(target: &str, syscall: bool) -> Option<String> {
    static SYMS: std::sync::OnceLock<Option<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let name = target.split('+').next().unwrap_or("");
    if syscall || name.is_empty() || name.contains(['*', '?', '[']) {
        return None;
    }
    let syms = SYMS
        .get_or_init(|| {
            let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
            Some(
                text.lines()
                    .filter_map(|l| l.split_whitespace().nth(2))
                    .map(str::to_string)
                    .collect(),
            )
        })
        .as_ref()?;
    (!syms.contains(name)).then(|| name.to_string())
}

pub fn inspect(path: &Path) -> Result<ObjectView> {
    let spec = ObjectSpec::from_path(path)?;
    let mut kernel = Kernel::probe();
    let mut problems = Vec::new();
    let mut probes = std::collections::HashMap::new();
    for m in &spec.maps {
        if !supported(&mut probes, true, m.map_type) {
            problems.push(format!(
                "map {}: this kernel does not support {} maps",
                m.name,
                m.type_name()
            ));
        }
    }
    let btf = spec.btf.as_ref();
    let tn = |id: Option<u32>| -> Option<String> { Some(btf?.type_name(id?)) };
    let programs: Vec<ProgView> = spec
        .programs
        .iter()
        .map(|p| {
            let ptype = crate::load::section::libbpf_prog_type(&p.section);
            let (ok, note) = match ptype {
                // `ebpfctl run` refuses the object (the problem line below says why).
                None if !p.section.starts_with('?') => {
                    (false, "unknown section name: ebpfctl run refuses it".to_string())
                }
                _ => kernel.can_attach(&p.attach),
            };
            if !ok && ptype.is_some() {
                problems.push(format!("program {} ({}): {note}", p.name, p.section));
            } else if let Some(t) = ptype.filter(|&t| {
                // Tracing and LSM programs were load-probed against their real target above;
                // libbpf's generic probe of those types gives false negatives.
                !matches!(
                    p.attach,
                    AttachPoint::Iter { .. }
                        | AttachPoint::Fentry { .. }
                        | AttachPoint::Lsm { .. }
                        | AttachPoint::LsmCgroup { .. }
                        | AttachPoint::TpBtf { .. }
                ) && !supported(&mut probes, false, t)
            }) {
                problems.push(format!(
                    "program {} ({}): this kernel does not load {} programs",
                    p.name,
                    p.section,
                    super::sys::prog_type_name(t)
                ));
            }
            if ptype.is_none() && !p.section.starts_with('?') {
                problems.push(format!(
                    "program {} ({}): libbpf does not know this section name, so it cannot guess the program type; {}rename it (the names: {})",
                    p.name,
                    p.section,
                    crate::load::section::did_you_mean(&p.section),
                    crate::load::section::DOCUMENTED_AT
                ));
            }
            ProgView {
                name: p.name.clone(),
                section: p.section.clone(),
                kind: p.attach.kind().to_string(),
                prog_type: ptype.map(super::sys::prog_type_name),
                attach: p.attach.clone(),
                insns: p.insns,
                bytes: p.insns * 8,
                attachable: ok,
                attach_note: note,
            }
        })
        .collect();
    let plan = crate::plan::describe(&spec, &crate::plan::PlanOptions::default());
    let maps = spec
        .maps
        .iter()
        .zip(plan)
        .map(|(m, (_, plan))| MapView {
            name: m.name.clone(),
            section: m.section.clone(),
            kind: m.type_name(),
            keyword: m.keyword.map(|k| k.to_string()),
            keyword_source: m.keyword_source.map(|s| format!("{s:?}").to_lowercase()),
            key_type: tn(m.key_type),
            value_type: tn(m.value_type),
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            plan,
        })
        .collect();
    // Alternatives of one hook: run attaches the first that works and skips the others.
    for (i, p) in spec.programs.iter().enumerate() {
        let Some(h) = crate::load::attach::hook(&p.section) else {
            continue;
        };
        if let Some(first) = spec.programs[..i]
            .iter()
            .find(|q| crate::load::attach::hook(&q.section).as_ref() == Some(&h))
        {
            problems.push(format!(
                "program {} ({}): {}; run skips it when {} attaches",
                p.name,
                p.section,
                crate::load::select::alternative_reason(p, first, &h),
                first.name
            ));
        }
    }
    if !spec.maps.is_empty() && !spec.maps.iter().any(|m| m.keyword.is_some()) {
        problems.push(
            "no map carries a keyword (print_, counter_, gauge_, hist_ or SEC(\".maps.KEYWORD\")): run prints nothing unless given --all-maps".into(),
        );
    }
    let params = spec
        .params
        .iter()
        .map(|p| ParamView {
            name: p.name.clone(),
            type_name: p.type_name.clone(),
            section: p.section.clone(),
            offset: p.offset,
            size: p.size,
            default: btf
                .map(|b| params::render(b, p, &p.default))
                .unwrap_or_default(),
        })
        .collect();
    let btf_summary = btf.map(|b| BtfSummary {
        types: b.len(),
        functions: b.iter().filter(|(_, t)| t.kind == Kind::Func).count(),
        structs: b.iter().filter(|(_, t)| t.kind == Kind::Struct).count(),
        has_line_info: spec.sections.iter().any(|s| s.name == ".BTF.ext"),
    });
    match &spec.license {
        None => problems.push("no license section: GPL-only helpers (bpf_probe_read_kernel, bpf_trace_printk, ...) are refused; add char LICENSE[] SEC(\"license\") = \"GPL\";".into()),
        Some(l) if !matches!(l.as_str(), "GPL" | "GPL v2" | "GPL and additional rights" | "Dual BSD/GPL" | "Dual MIT/GPL" | "Dual MPL/GPL") => {
            problems.push(format!("license {l:?} is not GPL-compatible: GPL-only helpers are refused"))
        }
        _ => {}
    }
    if btf.is_none() {
        problems.push(
            "no .BTF section: map values cannot be decoded and CO-RE is off; compile with -g"
                .into(),
        );
    }
    for c in &spec.unsafe_calls {
        problems.push(format!(
            "{c}: `run` refuses it without --allow-unsafe-helpers"
        ));
    }
    if spec.programs.is_empty() {
        problems.push(
            "no programs: nothing to load (programs need SEC(\"...\") on a global function)".into(),
        );
    }
    Ok(ObjectView {
        path: path.display().to_string(),
        license: spec.license.clone(),
        sections: spec.sections.clone(),
        programs,
        maps,
        params,
        btf: btf_summary,
        normalisation: spec.changes.clone(),
        unsafe_calls: spec.unsafe_calls.clone(),
        problems,
    })
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

pub fn print_view<W: Write>(w: &mut W, v: &ObjectView, format: Format) -> io::Result<()> {
    if format == Format::Json {
        return print::json(w, v);
    }
    writeln!(w, "{}", v.path)?;
    writeln!(w, "license: {}", opt(&v.license))?;
    match &v.btf {
        Some(b) => writeln!(
            w,
            "BTF: {} types, {} functions, {} structs, line info {}",
            b.types,
            b.functions,
            b.structs,
            if b.has_line_info { "yes" } else { "no" }
        )?,
        None => writeln!(w, "BTF: none")?,
    }
    writeln!(w, "\nprograms ({})", v.programs.len())?;
    let mut t = Table::new(&["NAME", "SECTION", "KIND", ">INSNS", "ATTACH HERE"]);
    for p in &v.programs {
        t.row(vec![
            p.name.clone(),
            p.section.clone(),
            p.kind.clone(),
            p.insns.to_string(),
            format!(
                "{}: {}",
                if p.attachable { "yes" } else { "no" },
                p.attach_note
            ),
        ]);
    }
    t.write(w)?;
    writeln!(w, "\nmaps ({})", v.maps.len())?;
    let mut t = Table::new(&[
        "NAME",
        "TYPE",
        "KEYWORD",
        "KEY",
        "VALUE",
        ">MAX_ENTRIES",
        "RUN DOES",
    ]);
    for m in &v.maps {
        // Ring buffers and perf arrays have no kernel-side key/value: show the event type.
        let side = |ty: &Option<String>, size: u32| match (ty, size) {
            (Some(t), 0) => format!("{t} (event)"),
            (Some(t), _) => format!("{t} ({size}B)"),
            (None, 0) => "-".to_string(),
            (None, _) => format!("{size}B"),
        };
        t.row(vec![
            m.name.clone(),
            m.kind.clone(),
            match (&m.keyword, &m.keyword_source) {
                (Some(k), Some(s)) => format!("{k} ({s})"),
                (Some(k), None) => k.clone(),
                _ => "-".into(),
            },
            side(&m.key_type, m.key_size),
            side(&m.value_type, m.value_size),
            if m.max_entries == 0 {
                "default".into()
            } else {
                m.max_entries.to_string()
            },
            m.plan.clone(),
        ]);
    }
    t.write(w)?;
    writeln!(w, "\nparameters ({})", v.params.len())?;
    if !v.params.is_empty() {
        let mut t = Table::new(&["NAME", "TYPE", "DEFAULT", "SECTION"]);
        for p in &v.params {
            t.row(vec![
                p.name.clone(),
                p.type_name.clone(),
                if p.default.is_empty() {
                    "\"\"".to_string()
                } else {
                    p.default.clone()
                },
                p.section.clone(),
            ]);
        }
        t.write(w)?;
    }
    writeln!(w, "\nsections ({})", v.sections.len())?;
    let mut t = Table::new(&["NAME", ">SIZE", "EXEC"]);
    for s in &v.sections {
        t.row(vec![
            s.name.clone(),
            s.size.to_string(),
            if s.executable { "x" } else { "" }.into(),
        ]);
    }
    t.write(w)?;
    if !v.normalisation.is_empty() {
        writeln!(w, "\nnormalisation")?;
        for c in &v.normalisation {
            writeln!(w, "  {c}")?;
        }
    }
    writeln!(w, "\nproblems ({})", v.problems.len())?;
    for p in &v.problems {
        writeln!(w, "  {p}")?;
    }
    Ok(())
}
