//! A BPF instruction disassembler (the instruction set of
//! Documentation/bpf/standardization/instruction-set.rst), printing C-like text:
//! `r1 += 8`, `w0 = *(u32 *)(r1 +4)`, `if r1 s> r2 goto pc+3`, `call bpf_map_lookup_elem#141024`.
use std::collections::HashMap;

/// One 8-byte instruction slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    /// Decodes a little-endian slot.
    pub fn from_bytes(b: &[u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Decodes a whole program (a trailing partial slot is ignored).
    pub fn parse_all(b: &[u8]) -> Vec<Insn> {
        b.chunks_exact(8)
            .map(|c| Insn::from_bytes(c.try_into().expect("chunks of 8")))
            .collect()
    }
}

// Classes.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const ST: u8 = 0x02;
const STX: u8 = 0x03;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const ALU64: u8 = 0x07;
// Modes.
const IMM: u8 = 0x00;
const ABS: u8 = 0x20;
const IND: u8 = 0x40;
const MEM: u8 = 0x60;
const MEMSX: u8 = 0x80;
const ATOMIC: u8 = 0xc0;
// Source.
const X: u8 = 0x08;

/// Names calls (helpers and kfuncs) for the disassembler.
pub trait Resolve {
    /// The name of the function a call instruction targets, if known.
    fn call_name(&self, insn: &Insn) -> Option<String>;
    /// The relative target of a bpf-to-bpf call. In an object file it is `imm`; in a
    /// JITed program's translated code the kernel moves it to `off` (`imm` is then the
    /// subprogram index).
    fn pseudo_call_offset(&self, insn: &Insn) -> i32 {
        insn.imm
    }
    /// The name of the subprogram starting at `pc`, if known.
    fn subprog_name(&self, _pc: i64) -> Option<String> {
        None
    }
}

/// Resolves nothing: calls print as `call #imm`.
pub struct NoNames;
impl Resolve for NoNames {
    fn call_name(&self, _: &Insn) -> Option<String> {
        None
    }
}

/// Resolves helper and kfunc calls of *translated* (kernel-fixed-up) programs, whose `imm`
/// is the target's address relative to `__bpf_call_base`, through `/proc/kallsyms`.
#[derive(Debug, Default)]
pub struct KallsymsResolver {
    names: HashMap<i32, String>,
    /// Set for JITed programs: bpf-to-bpf call offsets are in `off`.
    pub jited: bool,
    /// Subprogram names by first instruction.
    pub subprogs: HashMap<i64, String>,
}

impl KallsymsResolver {
    /// Reads `/proc/kallsyms` once, keeping only the targets these instructions call.
    pub fn for_insns(insns: &[Insn]) -> KallsymsResolver {
        let wanted: Vec<i32> = insns
            .iter()
            .filter(|i| i.code == (JMP | 0x80) && (i.src == 0 || i.src == 2))
            .map(|i| i.imm)
            .collect();
        let mut names = HashMap::new();
        if wanted.is_empty() {
            return KallsymsResolver {
                names,
                ..Default::default()
            };
        }
        let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        let mut syms: HashMap<u64, &str> = HashMap::new();
        let mut base = None;
        for l in text.lines() {
            let mut it = l.split_whitespace();
            let (Some(a), Some(_t), Some(n)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(a, 16) else {
                continue;
            };
            if n == "__bpf_call_base" {
                base = Some(addr);
            }
            if addr != 0 {
                syms.entry(addr).or_insert(n);
            }
        }
        if let Some(base) = base.filter(|&b| b != 0) {
            for imm in wanted {
                let addr = base.wrapping_add(imm as i64 as u64);
                if let Some(n) = syms.get(&addr) {
                    names.insert(imm, n.to_string());
                }
            }
        }
        KallsymsResolver {
            names,
            ..Default::default()
        }
    }
}

impl Resolve for KallsymsResolver {
    fn call_name(&self, insn: &Insn) -> Option<String> {
        self.names.get(&insn.imm).cloned()
    }
    fn pseudo_call_offset(&self, insn: &Insn) -> i32 {
        if self.jited {
            i32::from(insn.off)
        } else {
            insn.imm
        }
    }
    fn subprog_name(&self, pc: i64) -> Option<String> {
        self.subprogs.get(&pc).cloned()
    }
}

fn size_name(code: u8, signed: bool) -> &'static str {
    match (code & 0x18, signed) {
        (0x00, false) => "u32",
        (0x08, false) => "u16",
        (0x10, false) => "u8",
        (0x18, false) => "u64",
        (0x00, true) => "s32",
        (0x08, true) => "s16",
        (0x10, true) => "s8",
        _ => "s64",
    }
}

fn sgn(off: i16) -> String {
    if off < 0 {
        format!("-{}", -(off as i32))
    } else {
        format!("+{off}")
    }
}

fn reg(n: u8, wide: bool) -> String {
    format!("{}{n}", if wide { 'r' } else { 'w' })
}

/// Formats the instruction at `pc` and returns the text and how many slots it took.
pub fn format(insns: &[Insn], pc: usize, names: &dyn Resolve) -> (String, usize) {
    let i = insns[pc];
    let class = i.code & 0x07;
    match class {
        ALU | ALU64 => (alu(&i, class == ALU64), 1),
        JMP | JMP32 => (jmp(&i, class == JMP, names, pc), 1),
        LDX => {
            let mode = i.code & 0xe0;
            let signed = mode == MEMSX;
            if mode != MEM && !signed {
                return (unknown(&i), 1);
            }
            (
                format!(
                    "r{} = *({} *)(r{} {})",
                    i.dst,
                    size_name(i.code, signed),
                    i.src,
                    sgn(i.off)
                ),
                1,
            )
        }
        ST => {
            if i.code & 0xe0 != MEM {
                return (unknown(&i), 1);
            }
            (
                format!(
                    "*({} *)(r{} {}) = {}",
                    size_name(i.code, false),
                    i.dst,
                    sgn(i.off),
                    i.imm
                ),
                1,
            )
        }
        STX => match i.code & 0xe0 {
            MEM => (
                format!(
                    "*({} *)(r{} {}) = r{}",
                    size_name(i.code, false),
                    i.dst,
                    sgn(i.off),
                    i.src
                ),
                1,
            ),
            ATOMIC => (atomic(&i), 1),
            _ => (unknown(&i), 1),
        },
        LD => match i.code & 0xe0 {
            IMM if i.code & 0x18 == 0x18 => {
                let next = insns.get(pc + 1).copied().unwrap_or(Insn {
                    code: 0,
                    dst: 0,
                    src: 0,
                    off: 0,
                    imm: 0,
                });
                (ld_imm64(&i, &next), 2)
            }
            ABS => (
                format!("r0 = *({} *)skb[{}]", size_name(i.code, false), i.imm),
                1,
            ),
            IND => (
                format!(
                    "r0 = *({} *)skb[r{} + {}]",
                    size_name(i.code, false),
                    i.src,
                    i.imm
                ),
                1,
            ),
            _ => (unknown(&i), 1),
        },
        _ => (unknown(&i), 1),
    }
}

fn unknown(i: &Insn) -> String {
    format!("<unknown opcode {:#04x}>", i.code)
}

fn ld_imm64(i: &Insn, next: &Insn) -> String {
    let lo = i.imm as u32 as u64;
    let hi = next.imm as u32 as u64;
    match i.src {
        // BPF_PSEUDO_MAP_FD: the kernel reports the map id in imm.
        1 => format!("r{} = map[id:{}]", i.dst, i.imm),
        // BPF_PSEUDO_MAP_VALUE: map id, offset into the value in the next imm.
        2 => format!("r{} = map[id:{}][0]+{}", i.dst, i.imm, next.imm),
        3 => format!("r{} = btf_id[{}]", i.dst, i.imm),
        4 => format!("r{} = func pc{}", i.dst, sgn(i.imm as i16)),
        5 => format!("r{} = map[idx:{}]", i.dst, i.imm),
        6 => format!("r{} = map[idx:{}][0]+{}", i.dst, i.imm, next.imm),
        _ => format!("r{} = {:#x} ll", i.dst, (hi << 32) | lo),
    }
}

fn alu(i: &Insn, wide: bool) -> String {
    let op = i.code & 0xf0;
    let d = reg(i.dst, wide);
    let s = if i.code & X != 0 {
        reg(i.src, wide)
    } else {
        i.imm.to_string()
    };
    let sym = match op {
        0x00 => "+=",
        0x10 => "-=",
        0x20 => "*=",
        0x30 if i.off == 1 => "s/=",
        0x30 => "/=",
        0x40 => "|=",
        0x50 => "&=",
        0x60 => "<<=",
        0x70 => ">>=",
        0x90 if i.off == 1 => "s%=",
        0x90 => "%=",
        0xa0 => "^=",
        0xc0 => "s>>=",
        0x80 => return format!("{d} = -{d}"),
        0xb0 => {
            // MOVSX: off is the source width in bits; -1 is the kernel's per-CPU address
            // mov; 1 with X is an arena address-space cast.
            return match i.off {
                -1 if i.code & X != 0 => format!("{d} = &(void __percpu *)({})", reg(i.src, wide)),
                1 if i.code & X != 0 => format!(
                    "{d} = addr_space_cast({}, {}, {})",
                    reg(i.src, wide),
                    (i.imm as u32) >> 16,
                    i.imm & 0xffff
                ),
                8 | 16 | 32 if i.code & X != 0 => format!("{d} = (s{}){}", i.off, reg(i.src, wide)),
                _ => format!("{d} = {s}"),
            };
        }
        0xd0 => {
            let how = if wide {
                "bswap"
            } else if i.code & X != 0 {
                "be"
            } else {
                "le"
            };
            return format!("{} = {how}{} {}", reg(i.dst, true), i.imm, reg(i.dst, true));
        }
        _ => return unknown(i),
    };
    format!("{d} {sym} {s}")
}

fn jmp(i: &Insn, wide: bool, names: &dyn Resolve, pc: usize) -> String {
    let op = i.code & 0xf0;
    match op {
        0x00 if wide => return format!("goto pc{}", sgn(i.off)),
        0x00 => {
            let t = i.imm;
            return format!("gotol pc{}{t}", if t < 0 { "" } else { "+" });
        }
        0x80 => {
            return match i.src {
                1 => {
                    let rel = names.pseudo_call_offset(i);
                    let sign = if rel < 0 { "" } else { "+" };
                    match names.subprog_name(pc as i64 + i64::from(rel) + 1) {
                        Some(n) => format!("call pc{sign}{rel} # {n}"),
                        None => format!("call pc{sign}{rel}"),
                    }
                }
                2 => match names.call_name(i) {
                    Some(n) => format!("call kfunc {n}#{}", i.imm),
                    None => format!("call kfunc#{}", i.imm),
                },
                _ => match names.call_name(i) {
                    Some(n) => format!("call {n}#{}", i.imm),
                    None => format!("call #{}", i.imm),
                },
            }
        }
        0x90 => return "exit".into(),
        0xe0 => return format!("may_goto pc{}", sgn(i.off)),
        _ => {}
    }
    let sym = match op {
        0x10 => "==",
        0x20 => ">",
        0x30 => ">=",
        0x40 => "&",
        0x50 => "!=",
        0x60 => "s>",
        0x70 => "s>=",
        0xa0 => "<",
        0xb0 => "<=",
        0xc0 => "s<",
        0xd0 => "s<=",
        _ => return unknown(i),
    };
    let s = if i.code & X != 0 {
        reg(i.src, wide)
    } else {
        format!("{:#x}", i.imm)
    };
    format!("if {} {sym} {s} goto pc{}", reg(i.dst, wide), sgn(i.off))
}

fn atomic(i: &Insn) -> String {
    let wide = i.code & 0x18 == 0x18;
    let sz = size_name(i.code, false);
    let bits = if wide { "64" } else { "" };
    let mem = format!("({sz} *)(r{} {})", i.dst, sgn(i.off));
    let src = reg(i.src, wide);
    let op = match i.imm & !0x01 {
        0x00 => Some(("+=", "add")),
        0x40 => Some(("|=", "or")),
        0x50 => Some(("&=", "and")),
        0xa0 => Some(("^=", "xor")),
        _ => None,
    };
    match (i.imm, op) {
        (0xe1, _) => format!("{src} = atomic{bits}_xchg({mem}, {src})"),
        (0xf1, _) => format!(
            "{} = atomic{bits}_cmpxchg({mem}, {}, {src})",
            reg(0, wide),
            reg(0, wide)
        ),
        (0x100, _) => format!("{} = load_acquire({mem})", reg(i.dst, wide)),
        (0x110, _) => format!("store_release({mem}, {src})"),
        (imm, Some((_, name))) if imm & 1 == 1 => {
            format!("{src} = atomic{bits}_fetch_{name}({mem}, {src})")
        }
        (_, Some((sym, _))) => format!("lock *{mem} {sym} {src}"),
        _ => unknown(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> String {
        format(
            &[Insn {
                code,
                dst,
                src,
                off,
                imm,
            }],
            0,
            &NoNames,
        )
        .0
    }

    #[test]
    fn formats_common_instructions() {
        assert_eq!(one(0xbf, 6, 1, 0, 0), "r6 = r1");
        assert_eq!(one(0xb7, 1, 0, 0, 0), "r1 = 0");
        assert_eq!(one(0x07, 1, 0, 0, -8), "r1 += -8");
        assert_eq!(one(0x04, 1, 0, 0, 3), "w1 += 3");
        assert_eq!(one(0x63, 10, 0, -4, 0), "*(u32 *)(r10 -4) = r0");
        assert_eq!(one(0x61, 2, 1, 0, 0), "r2 = *(u32 *)(r1 +0)");
        assert_eq!(one(0x79, 1, 6, 16, 0), "r1 = *(u64 *)(r6 +16)");
        assert_eq!(one(0x7a, 10, 0, -8, 7), "*(u64 *)(r10 -8) = 7");
        assert_eq!(one(0x85, 0, 0, 0, 14), "call #14");
        assert_eq!(one(0x85, 0, 1, 0, 5), "call pc+5");
        assert_eq!(one(0x95, 0, 0, 0, 0), "exit");
        assert_eq!(one(0x15, 0, 0, 3, 0), "if r0 == 0x0 goto pc+3");
        assert_eq!(one(0x6d, 1, 2, -2, 0), "if r1 s> r2 goto pc-2");
        assert_eq!(one(0x56, 1, 0, 1, 5), "if w1 != 0x5 goto pc+1");
        assert_eq!(one(0x05, 0, 0, 4, 0), "goto pc+4");
        assert_eq!(
            one(0xdb, 1, 2, 0, 0x01),
            "r2 = atomic64_fetch_add((u64 *)(r1 +0), r2)"
        );
        assert_eq!(one(0xdb, 1, 2, 8, 0x00), "lock *(u64 *)(r1 +8) += r2");
        assert_eq!(one(0xbf, 1, 2, 8, 0), "r1 = (s8)r2");
        assert_eq!(one(0xdc, 1, 0, 0, 16), "r1 = be16 r1");
        assert_eq!(one(0x3f, 1, 2, 1, 0), "r1 s/= r2");
        let ld = [
            Insn {
                code: 0x18,
                dst: 1,
                src: 2,
                off: 0,
                imm: 11,
            },
            Insn {
                code: 0,
                dst: 0,
                src: 0,
                off: 0,
                imm: 4,
            },
        ];
        assert_eq!(
            format(&ld, 0, &NoNames),
            ("r1 = map[id:11][0]+4".to_string(), 2)
        );
        let ll = [
            Insn {
                code: 0x18,
                dst: 2,
                src: 0,
                off: 0,
                imm: -1,
            },
            Insn {
                code: 0,
                dst: 0,
                src: 0,
                off: 0,
                imm: 0,
            },
        ];
        assert_eq!(format(&ll, 0, &NoNames).0, "r2 = 0xffffffff ll");
    }
}
