//! The C source line of an instruction of a loaded program, from the object alone: what a
//! verifier rejection names when the kernel's log does not (kernels before 6.4 print the
//! line's text but not `@ file:line`).
//!
//! The verifier numbers instructions of the program libbpf loaded, not of the object: libbpf
//! takes the entry function's instructions from its section, then appends every subprogram
//! (a function in `.text`) it calls, each the first time a call or a function-address load
//! (`ld_imm64`, a callback) reaches it, depth first: the subprogram is appended and its own
//! calls followed before the caller's next instruction (`bpf_object__reloc_code` in libbpf's
//! libbpf.c). Its line records are moved along with it. This module redoes that layout from
//! the ELF and the object's `.BTF.ext`, so instruction N of the log maps back to a section,
//! an offset in it and the line record covering it. Relocations change instructions in
//! place, never their number, so the layout is the whole mapping. (An exception callback,
//! appended last when no call reached it, is not modelled: its lines are not found.)
use std::collections::{HashMap, HashSet};

use super::btf_ext::{BtfExt, LineInfo};
use super::elf::{self, Elf};

const INSN: u64 = 8;
const CALL: u8 = 0x85;
const LD_IMM64: u8 = 0x18;
const BPF_PSEUDO_CALL: u8 = 1;
const SHN_UNDEF: u16 = 0;
/// Bounds the layout on hostile input (as `helpers::scan` does).
const MAX_SEGMENTS: usize = 4096;

/// A run of instructions of the loaded program, copied from one function of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The function of the object it is (the entry function or a subprogram).
    pub function: String,
    /// The object's section (`.text` for subprograms).
    pub section: String,
    /// First instruction in that section.
    pub start: u64,
    pub len: u64,
    /// Where the run starts in the loaded program.
    pub at: u64,
}

/// Programs laid out as libbpf loads them, and the object's line records.
#[derive(Debug, Clone, Default)]
pub struct SourceLines {
    /// Entry function name → its segments, in load order.
    layouts: HashMap<String, Vec<Segment>>,
    ext: BtfExt,
}

/// What [`SourceLines::line`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine<'a> {
    pub info: &'a LineInfo,
    /// The function of the object the instruction comes from (the entry or a subprogram).
    pub function: &'a str,
}

impl SourceLine<'_> {
    /// `text @ file:line` with the file's last component, as kernels from 6.4 print it.
    pub fn verifier_style(&self) -> String {
        let file = self.info.file.rsplit('/').next().unwrap_or(&self.info.file);
        format!("{} @ {}:{}", self.info.text, file, self.info.line)
    }
}

/// One function of the object: a `STT_FUNC` symbol of an executable section.
struct Func<'a> {
    sec: usize,
    start: u64,
    len: u64,
    name: &'a str,
}

struct Layout<'a> {
    bytes: &'a [u8],
    elf: &'a Elf,
    text: Option<usize>,
    /// (section, byte offset of the instruction) → symbol index.
    relocs: &'a HashMap<(usize, u64), usize>,
    subprogs: &'a [Func<'a>],
    /// Subprograms already appended, by their start in `.text`.
    appended: HashSet<u64>,
    segments: Vec<Segment>,
    end: u64,
}

impl Layout<'_> {
    fn append(&mut self, function: &str, sec: usize, start: u64, len: u64) {
        self.segments.push(Segment {
            function: function.to_string(),
            section: self.elf.sections[sec].name.clone(),
            start,
            len,
            at: self.end,
        });
        self.end += len;
    }

    /// libbpf's `bpf_object__reloc_code` for one function: follow its calls in order,
    /// appending (and at once following) each subprogram not yet in the program.
    fn follow(&mut self, sec: usize, start: u64, len: u64) {
        let code = self.elf.data(self.bytes, &self.elf.sections[sec]);
        for i in start..start.saturating_add(len) {
            if self.segments.len() >= MAX_SEGMENTS {
                return;
            }
            let at = i * INSN;
            let Some(insn) = code.get(at as usize..(at + INSN) as usize) else {
                return;
            };
            let src = insn[1] >> 4;
            let imm = i64::from(i32::from_le_bytes(insn[4..8].try_into().expect("4 bytes")));
            let reloc = self
                .relocs
                .get(&(sec, at))
                .and_then(|&s| self.elf.symbols.get(s));
            let target = match (insn[0], reloc) {
                // A kfunc (an undefined symbol): no code of the object.
                (CALL, Some(sym)) if sym.shndx == SHN_UNDEF => continue,
                (CALL, Some(sym)) if src == BPF_PSEUDO_CALL => (sym.value / INSN) as i64 + imm + 1,
                // Same-section static call: no relocation, `imm` relative to the call.
                (CALL, None) if src == BPF_PSEUDO_CALL => i as i64 + imm + 1,
                // A function's address (callback): libbpf marks these BPF_PSEUDO_FUNC.
                (LD_IMM64, Some(sym))
                    if Some(sym.shndx as usize) == self.text && sym.shndx != SHN_UNDEF =>
                {
                    (sym.value as i64 + imm) / INSN as i64
                }
                _ => continue,
            };
            // Subprograms live in .text (libbpf enforces it).
            let Ok(target) = u64::try_from(target) else {
                continue;
            };
            let Some(f) = self
                .subprogs
                .iter()
                .find(|f| target >= f.start && target < f.start + f.len)
            else {
                continue;
            };
            if self.appended.insert(f.start) {
                let (fs, fst, fl) = (f.sec, f.start, f.len);
                self.append(f.name, fs, fst, fl);
                self.follow(fs, fst, fl);
            }
        }
    }
}

impl SourceLines {
    /// Lays out every entry function of the object (see the module docs).
    pub(crate) fn new(bytes: &[u8], elf: &Elf, ext: BtfExt) -> SourceLines {
        let exec = |i: usize| elf.is_code(i);
        let text = elf.sections.iter().position(|s| s.name == ".text");
        let relocs = elf.code_relocs(bytes);
        let funcs: Vec<Func> = elf
            .symbols
            .iter()
            .filter(|s| s.kind() == elf::STT_FUNC && exec(s.shndx as usize) && s.size > 0)
            .map(|s| Func {
                sec: s.shndx as usize,
                start: s.value / INSN,
                len: s.size / INSN,
                name: &s.name,
            })
            .collect();
        let (subprogs, entries): (Vec<Func>, Vec<Func>) =
            funcs.into_iter().partition(|f| Some(f.sec) == text);
        let mut layouts = HashMap::new();
        for e in &entries {
            let mut l = Layout {
                bytes,
                elf,
                text,
                relocs: &relocs,
                subprogs: &subprogs,
                appended: HashSet::new(),
                segments: Vec::new(),
                end: 0,
            };
            l.append(e.name, e.sec, e.start, e.len);
            l.follow(e.sec, e.start, e.len);
            layouts.insert(e.name.to_string(), l.segments);
        }
        SourceLines { layouts, ext }
    }

    /// The segments of `program` in load order (`None`: no such entry function).
    pub fn layout(&self, program: &str) -> Option<&[Segment]> {
        self.layouts.get(program).map(Vec::as_slice)
    }

    /// The source line of instruction `insn` of `program` as libbpf loads it: the last line
    /// record at or before it in load order, as the kernel finds it (`find_linfo`).
    pub fn line(&self, program: &str, insn: u64) -> Option<SourceLine<'_>> {
        let segments = self.layouts.get(program)?;
        let mut found: Option<(&Segment, &LineInfo)> = None;
        for seg in segments.iter().filter(|s| s.at <= insn) {
            let Some(sec) = self.ext.section(&seg.section) else {
                continue;
            };
            let last = sec
                .lines
                .iter()
                .filter(|l| {
                    u64::from(l.insn) >= seg.start && u64::from(l.insn) < seg.start + seg.len
                })
                .take_while(|l| seg.at + (u64::from(l.insn) - seg.start) <= insn)
                .last();
            if let Some(l) = last {
                let at = seg.at + (u64::from(l.insn) - seg.start);
                if found.is_none_or(|(fs, fl)| fs.at + (u64::from(fl.insn) - fs.start) <= at) {
                    found = Some((seg, l));
                }
            }
        }
        let (seg, info) = found?;
        Some(SourceLine {
            info,
            function: &seg.function,
        })
    }

    /// The one source line of `program` (its entry and the subprograms it loads with) whose
    /// text is `text`, as `text @ file:line`; `None` when no line or several have it.
    pub fn unique_line_with_text(&self, program: &str, text: &str) -> Option<String> {
        let segments = self.layouts.get(program)?;
        let mut hit: Option<SourceLine<'_>> = None;
        for seg in segments {
            let Some(sec) = self.ext.section(&seg.section) else {
                continue;
            };
            for l in sec.lines.iter().filter(|l| {
                u64::from(l.insn) >= seg.start
                    && u64::from(l.insn) < seg.start + seg.len
                    && l.text.trim() == text
            }) {
                match &hit {
                    Some(h) if (&h.info.file, h.info.line) != (&l.file, l.line) => return None,
                    Some(_) => {}
                    None => {
                        hit = Some(SourceLine {
                            info: l,
                            function: &seg.function,
                        })
                    }
                }
            }
        }
        hit.map(|h| h.verifier_style())
    }
}
