//! Loaded BPF programs: `prog list`, `prog show ID`, `prog dump ID`.
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::AsFd;

use serde::Serialize;

use super::disasm::{self, Insn};
use super::print::{self, Format, Table};
use super::select::{self, Selector};
use super::sys::{self, Holder, ObjKind};
use super::{InspectError, Result};
use crate::btf::{Btf, Data, Kind};

/// One loaded program, as `prog list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProgInfo {
    pub id: u32,
    #[serde(rename = "type")]
    pub kind: String,
    /// The full function name (from BTF when the kernel's 15-character name is cut).
    pub name: String,
    /// The name as the kernel stores it (at most 15 characters).
    pub kernel_name: String,
    pub tag: String,
    pub gpl_compatible: bool,
    pub loaded_at: String,
    pub uid: u32,
    pub bytes_xlated: u32,
    pub jited: bool,
    pub bytes_jited: u32,
    pub bytes_memlock: Option<u64>,
    pub map_ids: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub btf_id: Option<u32>,
    pub verified_insns: u32,
    pub pinned: Vec<String>,
    pub pids: Vec<Holder>,
    /// Whether BPF statistics are on (`kernel.bpf_stats_enabled`); the next three are
    /// only meaningful while they are (or were).
    pub stats_enabled: bool,
    pub run_time_ns: u64,
    pub run_cnt: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg_run_ns: Option<u64>,
    pub recursion_misses: u64,
}

/// Raw `bpf_prog_info` plus the arrays it points to.
pub(crate) struct RawProg {
    pub info: libbpf_sys::bpf_prog_info,
    pub map_ids: Vec<u32>,
    pub xlated: Vec<u8>,
    pub func_info: Vec<u8>,
    pub line_info: Vec<u8>,
}

/// Reads a program's info; `want_code` also fetches instructions, func and line info.
pub(crate) fn raw_info(id: u32, want_code: bool) -> Result<(RawProg, HashMap<String, String>)> {
    let fd = sys::fd_by_id(ObjKind::Prog, id)?;
    let what = format!("program {id}");
    // SAFETY: all-zero is a valid bpf_prog_info (no pointers requested).
    let mut first: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    sys::info_by_fd(fd.as_fd(), &mut first, &what)?;
    let mut map_ids = vec![0u32; first.nr_map_ids as usize];
    let (mut xlated, mut line_info) = (Vec::new(), Vec::new());
    // SAFETY: as above.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    info.nr_map_ids = map_ids.len() as u32;
    info.map_ids = map_ids.as_mut_ptr() as u64;
    // Func info is wanted in both cases: it carries the program's full name.
    let mut func_info = vec![0u8; first.nr_func_info as usize * first.func_info_rec_size as usize];
    info.nr_func_info = first.nr_func_info;
    info.func_info_rec_size = first.func_info_rec_size;
    info.func_info = func_info.as_mut_ptr() as u64;
    if want_code {
        xlated = vec![0u8; first.xlated_prog_len as usize];
        info.xlated_prog_len = first.xlated_prog_len;
        info.xlated_prog_insns = xlated.as_mut_ptr() as u64;
        line_info = vec![0u8; first.nr_line_info as usize * first.line_info_rec_size as usize];
        info.nr_line_info = first.nr_line_info;
        info.line_info_rec_size = first.line_info_rec_size;
        info.line_info = line_info.as_mut_ptr() as u64;
    }
    sys::info_by_fd(fd.as_fd(), &mut info, &what)?;
    // The program cannot change, but be defensive about counts the kernel reports back.
    map_ids.truncate(info.nr_map_ids.min(first.nr_map_ids) as usize);
    if want_code {
        xlated.truncate(info.xlated_prog_len.min(first.xlated_prog_len) as usize);
    }
    let fdinfo = sys::fdinfo(fd.as_fd());
    Ok((
        RawProg {
            info,
            map_ids,
            xlated,
            func_info,
            line_info,
        },
        fdinfo,
    ))
}

fn stats_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// `(insn_off, type_id)` records of func info.
fn func_records(raw: &RawProg) -> Vec<(u32, u32)> {
    let rs = raw.info.func_info_rec_size as usize;
    if rs < 8 {
        return Vec::new();
    }
    raw.func_info
        .chunks_exact(rs)
        .map(|c| {
            (
                u32::from_le_bytes(c[0..4].try_into().unwrap()),
                u32::from_le_bytes(c[4..8].try_into().unwrap()),
            )
        })
        .collect()
}

fn full_name(raw: &RawProg, short: &str, btf: Option<&Btf>) -> String {
    if short.len() < 15 {
        return short.to_string();
    }
    let (Some(btf), Some(&(_, tid))) = (btf, func_records(raw).first()) else {
        return short.to_string();
    };
    let n = btf.name(tid);
    if n.is_empty() {
        short.to_string()
    } else {
        n.to_string()
    }
}

fn build(
    id: u32,
    raw: &RawProg,
    fdinfo: &HashMap<String, String>,
    btf: Option<&Btf>,
    holders: &HashMap<(ObjKind, u32), Vec<Holder>>,
    pins: &HashMap<(ObjKind, u32), Vec<String>>,
    stats: bool,
) -> ProgInfo {
    let i = &raw.info;
    let kernel_name = sys::cname(&i.name);
    let avg = (i.run_cnt > 0).then(|| i.run_time_ns / i.run_cnt);
    ProgInfo {
        id,
        kind: sys::prog_type_name(i.type_),
        name: full_name(raw, &kernel_name, btf),
        kernel_name,
        tag: i.tag.iter().map(|b| format!("{b:02x}")).collect(),
        gpl_compatible: i.gpl_compatible() != 0,
        loaded_at: sys::boottime_to_rfc3339(i.load_time),
        uid: i.created_by_uid,
        bytes_xlated: i.xlated_prog_len,
        jited: i.jited_prog_len > 0,
        bytes_jited: i.jited_prog_len,
        bytes_memlock: fdinfo.get("memlock").and_then(|v| v.parse().ok()),
        map_ids: raw.map_ids.clone(),
        btf_id: (i.btf_id != 0).then_some(i.btf_id),
        verified_insns: i.verified_insns,
        pinned: pins.get(&(ObjKind::Prog, id)).cloned().unwrap_or_default(),
        pids: holders
            .get(&(ObjKind::Prog, id))
            .cloned()
            .unwrap_or_default(),
        stats_enabled: stats,
        run_time_ns: i.run_time_ns,
        run_cnt: i.run_cnt,
        avg_run_ns: avg,
        recursion_misses: i.recursion_misses,
    }
}

/// Every loaded program. Programs unloaded while listing are skipped.
pub fn list() -> Result<Vec<ProgInfo>> {
    let ids = sys::all_ids(ObjKind::Prog)?;
    let holders = sys::holders();
    let pins = sys::pins();
    let stats = stats_enabled();
    let mut btfs: HashMap<u32, Option<Btf>> = HashMap::new();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let (raw, fdinfo) = match raw_info(id, false) {
            Ok(r) => r,
            Err(InspectError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let btf = if raw.info.btf_id != 0 && sys::cname(&raw.info.name).len() >= 15 {
            btfs.entry(raw.info.btf_id)
                .or_insert_with(|| sys::kernel_btf(raw.info.btf_id).ok())
                .as_ref()
        } else {
            None
        };
        out.push(build(id, &raw, &fdinfo, btf, &holders, &pins, stats));
    }
    Ok(out)
}

/// A program's type and full name, without the holder and pin scans of [`show`].
pub fn type_and_name(id: u32) -> Result<(String, String)> {
    let (raw, _) = raw_info(id, false)?;
    let short = sys::cname(&raw.info.name);
    let btf = if raw.info.btf_id != 0 && short.len() >= 15 {
        sys::kernel_btf(raw.info.btf_id).ok()
    } else {
        None
    };
    Ok((
        sys::prog_type_name(raw.info.type_),
        full_name(&raw, &short, btf.as_ref()),
    ))
}

/// One program by id.
pub fn show(id: u32) -> Result<ProgInfo> {
    let (raw, fdinfo) = raw_info(id, false)?;
    let btf = if raw.info.btf_id != 0 {
        sys::kernel_btf(raw.info.btf_id).ok()
    } else {
        None
    };
    Ok(build(
        id,
        &raw,
        &fdinfo,
        btf.as_ref(),
        &sys::holders(),
        &sys::pins(),
        stats_enabled(),
    ))
}

/// The programs a selector names (`prog show name X` can match several).
pub fn select(sel: &Selector) -> Result<Vec<ProgInfo>> {
    let matched: Vec<ProgInfo> = match sel {
        Selector::Id(id) => return Ok(vec![show(*id)?]),
        Selector::Pinned(p) => return Ok(vec![show(select::pinned_id(ObjKind::Prog, p)?)?]),
        Selector::Name(n) => list()?
            .into_iter()
            .filter(|p| &p.name == n || &p.kernel_name == n)
            .collect(),
        Selector::Tag(t) => list()?.into_iter().filter(|p| &p.tag == t).collect(),
    };
    if matched.is_empty() {
        return Err(InspectError::NoMatch(format!(
            "no BPF program with {sel} is loaded (see `ebpfctl prog list`)"
        )));
    }
    Ok(matched)
}

/// Prints programs as `prog list` does.
pub fn print_list<W: Write>(w: &mut W, progs: &[ProgInfo], format: Format) -> io::Result<()> {
    if format == Format::Json {
        return print::json(w, progs);
    }
    for p in progs {
        print_one(w, p)?;
    }
    Ok(())
}

/// The multi-line human view of one program.
pub fn print_one<W: Write>(w: &mut W, p: &ProgInfo) -> io::Result<()> {
    writeln!(
        w,
        "{}: {}  name {}  tag {}{}",
        p.id,
        p.kind,
        p.name,
        p.tag,
        if p.gpl_compatible { "  gpl" } else { "" }
    )?;
    writeln!(w, "\tloaded_at {}  uid {}", p.loaded_at, p.uid)?;
    let mut line = format!("\txlated {}B", p.bytes_xlated);
    if p.jited {
        line += &format!("  jited {}B", p.bytes_jited);
    } else {
        line += "  not jited";
    }
    if let Some(m) = p.bytes_memlock {
        line += &format!("  memlock {m}B");
    }
    if !p.map_ids.is_empty() {
        line += &format!("  map_ids {}", print::ids(&p.map_ids));
    }
    writeln!(w, "{line}")?;
    let mut line = String::new();
    if let Some(b) = p.btf_id {
        line += &format!("btf_id {b}  ");
    }
    line += &format!("verified_insns {}", p.verified_insns);
    writeln!(w, "\t{line}")?;
    if p.stats_enabled || p.run_cnt > 0 {
        writeln!(
            w,
            "\trun_time {}  run_cnt {}  avg {}  recursion_misses {}",
            print::nanos(p.run_time_ns as f64),
            p.run_cnt,
            p.avg_run_ns
                .map_or("-".to_string(), |n| print::nanos(n as f64)),
            p.recursion_misses
        )?;
    }
    for pin in &p.pinned {
        writeln!(w, "\tpinned {pin}")?;
    }
    if !p.pids.is_empty() {
        let s: Vec<String> = p
            .pids
            .iter()
            .map(|h| format!("{}({})", h.comm, h.pid))
            .collect();
        writeln!(w, "\tpids {}", s.join(", "))?;
    }
    Ok(())
}

/// A program's translated instructions with their function and source line annotations.
#[derive(Debug, Clone, Serialize)]
pub struct ProgDump {
    pub id: u32,
    pub name: String,
    pub insns: Vec<DumpedInsn>,
}

/// A source line from the program's line info.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SourceLine {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The text of the line as the compiler recorded it.
    pub text: String,
}

/// One instruction of `prog dump`.
#[derive(Debug, Clone, Serialize)]
pub struct DumpedInsn {
    /// Index in 8-byte slots.
    pub pc: usize,
    /// The opcode byte, hex.
    pub opcode: String,
    pub text: String,
    /// Raw bytes of the instruction (16 for a 64-bit immediate load).
    pub bytes: String,
    /// Set on a function's first instruction: its prototype.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub func: Option<String>,
    /// Set on the first instruction of a source line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceLine>,
}

/// `ret name(type arg, ...)` for a FUNC type.
fn prototype(btf: &Btf, func: u32) -> String {
    let Ok(f) = btf.get(func) else {
        return format!("func#{func}");
    };
    let name = btf.str(f.name_off).to_string();
    let Ok(proto) = btf.get(f.size_or_type) else {
        return name;
    };
    if proto.kind != Kind::FuncProto {
        return name;
    }
    let args: Vec<String> = match &proto.data {
        Data::Params(ps) => ps
            .iter()
            .map(|p| {
                let pn = btf.str(p.name_off);
                if p.type_id == 0 {
                    "...".to_string()
                } else if pn.is_empty() {
                    btf.type_name(p.type_id)
                } else {
                    format!("{} {pn}", btf.type_name(p.type_id))
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    format!(
        "{} {name}({})",
        btf.type_name(proto.size_or_type),
        args.join(", ")
    )
}

/// Disassembles a loaded program with its BTF line and function info.
pub fn dump(id: u32) -> Result<ProgDump> {
    let (raw, _) = raw_info(id, true)?;
    if raw.xlated.is_empty() {
        return Err(InspectError::sys(
            format!("reading instructions of program {id}"),
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the kernel returned none (reading translated code needs CAP_SYS_ADMIN or CAP_PERFMON; device-offloaded programs have none)",
            ),
        ));
    }
    let btf = if raw.info.btf_id != 0 {
        sys::kernel_btf(raw.info.btf_id).ok()
    } else {
        None
    };
    let kernel_name = sys::cname(&raw.info.name);
    let name = full_name(&raw, &kernel_name, btf.as_ref());
    let insns = Insn::parse_all(&raw.xlated);
    let funcs: HashMap<u32, String> = match &btf {
        Some(b) => func_records(&raw)
            .into_iter()
            .map(|(off, tid)| (off, prototype(b, tid)))
            .collect(),
        None => HashMap::new(),
    };
    let mut lines: HashMap<u32, SourceLine> = HashMap::new();
    let rs = raw.info.line_info_rec_size as usize;
    if let (Some(b), true) = (&btf, rs >= 16) {
        for c in raw.line_info.chunks_exact(rs) {
            let u = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap());
            let (off, file, text, lc) = (u(0), u(4), u(8), u(12));
            lines.entry(off).or_insert_with(|| SourceLine {
                file: b.str(file).to_string(),
                line: lc >> 10,
                column: lc & 0x3ff,
                text: b.str(text).trim().to_string(),
            });
        }
    }
    let mut resolver = disasm::KallsymsResolver::for_insns(&insns);
    resolver.jited = raw.info.jited_prog_len > 0;
    if let Some(b) = &btf {
        resolver.subprogs = func_records(&raw)
            .into_iter()
            .map(|(off, tid)| (i64::from(off), b.name(tid).to_string()))
            .collect();
    }
    let mut out = Vec::with_capacity(insns.len());
    let mut pc = 0usize;
    while pc < insns.len() {
        let (text, width) = disasm::format(&insns, pc, &resolver);
        let bytes_end = ((pc + width) * 8).min(raw.xlated.len());
        out.push(DumpedInsn {
            pc,
            opcode: format!("{:02x}", insns[pc].code),
            text,
            bytes: sys::hex_bytes(&raw.xlated[pc * 8..bytes_end]),
            func: funcs.get(&(pc as u32)).cloned(),
            source: lines.get(&(pc as u32)).cloned(),
        });
        pc += width;
    }
    Ok(ProgDump {
        id,
        name,
        insns: out,
    })
}

/// Prints a dump: a function header, `; source` above each line group (with
/// `[file:line:col]` when `linum`), then `pc: (op) text` and optionally the raw bytes.
pub fn print_dump<W: Write>(
    w: &mut W,
    d: &ProgDump,
    format: Format,
    linum: bool,
    opcodes: bool,
) -> io::Result<()> {
    if format == Format::Json {
        return print::json(w, d);
    }
    let width = d.insns.last().map_or(1, |i| i.pc.to_string().len());
    if d.insns.first().is_some_and(|i| i.func.is_none()) {
        writeln!(w, "{}:", d.name)?;
    }
    for i in &d.insns {
        if let Some(f) = &i.func {
            writeln!(w, "{f}:")?;
        }
        if let Some(s) = &i.source {
            if linum {
                writeln!(w, "; {} [{}:{}:{}]", s.text, s.file, s.line, s.column)?;
            } else {
                writeln!(w, "; {}", s.text)?;
            }
        }
        writeln!(w, "{:>width$}: ({}) {}", i.pc, i.opcode, i.text)?;
        if opcodes {
            writeln!(w, "{:>width$}  {}", "", i.bytes)?;
        }
    }
    Ok(())
}

/// A compact one-line-per-program table (used by `top`'s first frame and by tests).
pub fn table(progs: &[ProgInfo]) -> Table {
    let mut t = Table::new(&["ID", "TYPE", "NAME", "TAG", ">XLATED", "MAPS"]);
    for p in progs {
        t.row(vec![
            p.id.to_string(),
            p.kind.clone(),
            p.name.clone(),
            p.tag.clone(),
            p.bytes_xlated.to_string(),
            print::ids(&p.map_ids),
        ]);
    }
    t
}
