//! Go's runtime tables in an executable, found by their content rather than by section
//! names (which differ between linkers and build modes: `.gopclntab`, or
//! `.data.rel.ro.gopclntab` in PIE binaries of Go 1.19 to 1.25, and a binary may have no
//! section headers at all):
//!
//! - the pclntab (`runtime.pcHeader`): its magic, two zero bytes, the instruction size
//!   quantum (1, 2 or 4) and the pointer size (8), at an aligned address of a loaded segment;
//! - the module data (`runtime.firstmoduledata`): the one place in a writable segment where
//!   a pointer to that header is followed by the slice of its function name table (the
//!   header's own `funcnameOffset` says where that is). The linker writes these pointers
//!   into the file even for PIE (it also emits relocations for them).
//!
//! From the module data come the text start, the type data (`types`..`etypes`, where every
//! type and its name live) and the itabs the linker emitted: through them the types that
//! implement `error`, with their names, even in stripped binaries.
use std::collections::HashMap;

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};

use super::goelf::GoVersion;

const MAGIC_116: u32 = 0xffff_fffa; // Go 1.16, 1.17
const MAGIC_118: u32 = 0xffff_fff0; // Go 1.18, 1.19
const MAGIC_120: u32 = 0xffff_fff1; // Go 1.20 and later

/// A loaded segment: virtual address range and where it is in the file.
#[derive(Debug, Clone, Copy)]
struct Seg {
    va: u64,
    off: u64,
    size: u64,
    writable: bool,
}

/// The file's bytes seen at their virtual addresses (PT_LOAD segments).
pub struct Image<'a> {
    data: &'a [u8],
    segs: Vec<Seg>,
}

impl<'a> Image<'a> {
    pub fn new(file: &object::File<'_>, data: &'a [u8]) -> Image<'a> {
        let segs = file
            .segments()
            .filter_map(|s| {
                let (off, size) = s.file_range();
                let writable = match s.flags() {
                    object::SegmentFlags::Elf { p_flags } => p_flags & object::elf::PF_W != 0,
                    _ => false,
                };
                (size > 0).then_some(Seg {
                    va: s.address(),
                    off,
                    size,
                    writable,
                })
            })
            .collect();
        Image { data, segs }
    }

    /// The bytes from `va` to the end of its segment.
    pub fn rest(&self, va: u64) -> Option<&'a [u8]> {
        let s = self
            .segs
            .iter()
            .find(|s| va >= s.va && va < s.va + s.size)?;
        let start = (s.off + (va - s.va)) as usize;
        self.data.get(start..(s.off + s.size) as usize)
    }

    fn bytes(&self, va: u64, len: usize) -> Option<&'a [u8]> {
        self.rest(va)?.get(..len)
    }

    pub fn u64_at(&self, va: u64) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(va, 8)?.try_into().ok()?))
    }

    fn contains(&self, va: u64) -> bool {
        self.segs.iter().any(|s| va >= s.va && va < s.va + s.size)
    }
}

/// Checks a `runtime.pcHeader` at `va`; returns its function name table's offset.
fn pcheader_at(img: &Image<'_>, va: u64) -> Option<u64> {
    let h = img.bytes(va, 8 + 8 * 8)?;
    let magic = u32::from_le_bytes(h[0..4].try_into().ok()?);
    if !matches!(magic, MAGIC_116 | MAGIC_118 | MAGIC_120)
        || h[4] != 0
        || h[5] != 0
        || !matches!(h[6], 1 | 2 | 4)
        || h[7] != 8
    {
        return None;
    }
    let word =
        |i: usize| u64::from_le_bytes(h[8 + 8 * i..16 + 8 * i].try_into().unwrap_or_default());
    let nfunc = word(0);
    // Go >= 1.18 has textStart as the third word; funcnameOffset follows it.
    let funcname = if magic == MAGIC_116 { word(2) } else { word(3) };
    let len = img.rest(va)?.len() as u64;
    (nfunc > 0 && nfunc < 1 << 24 && funcname > 0 && funcname < len).then_some(funcname)
}

/// Where the pclntab is: a section named for it when there is one, else the first valid
/// header found by its magic in a loaded segment.
pub fn find_pclntab(file: &object::File<'_>, img: &Image<'_>) -> Option<u64> {
    for s in file.sections() {
        if s.name().is_ok_and(|n| n.ends_with("gopclntab"))
            && s.size() > 0
            && pcheader_at(img, s.address()).is_some()
        {
            return Some(s.address());
        }
    }
    pclntab_candidates(img).into_iter().next()
}

/// Every 8-byte aligned address holding a valid `pcHeader`.
fn pclntab_candidates(img: &Image<'_>) -> Vec<u64> {
    let mut out = Vec::new();
    for s in &img.segs {
        let Some(bytes) = img.rest(s.va) else {
            continue;
        };
        let skip = (8 - s.va % 8) % 8;
        let mut at = skip as usize;
        while at + 8 <= bytes.len() {
            if bytes[at + 1..at + 4] == [0xff, 0xff, 0xff]
                && matches!(bytes[at], 0xf0 | 0xf1 | 0xfa)
                && pcheader_at(img, s.va + at as u64).is_some()
            {
                out.push(s.va + at as u64);
            }
            at += 8;
        }
    }
    out
}

/// The itabs the linker emitted for this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Itabs {
    /// `itablinks []*itab` (up to Go 1.26).
    Links { addr: u64, len: u64 },
    /// Since Go 1.27 the itabs themselves, one after the other, at `types + itaboffset`.
    Region { start: u64, size: u64 },
}

/// What observe reads from `runtime.moduledata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleData {
    /// Address of the module data itself.
    pub addr: u64,
    pub pclntab: u64,
    pub text: u64,
    pub types: u64,
    pub etypes: u64,
    pub itabs: Itabs,
}

/// Word indexes of the fields read, by Go version (see runtime/symtab.go of each release:
/// 1.20 added covctrs/ecovctrs, 1.26 epclntab, 1.27 replaced typelinks and itablinks with
/// typedesclen, itaboffset and itabsize). 1.17 had neither rodata nor gofunc.
struct Layout {
    types: usize,
    etypes: usize,
    /// itablinks' slice header, or (1.27+) itaboffset (itabsize follows).
    itabs: usize,
    region: bool,
}

fn layout(v: GoVersion) -> Layout {
    let at_least = |minor| v.major > 1 || v.minor >= minor;
    if at_least(27) {
        Layout {
            types: 37,
            etypes: 39,
            itabs: 40,
            region: true,
        }
    } else if at_least(26) {
        Layout {
            types: 37,
            etypes: 38,
            itabs: 48,
            region: false,
        }
    } else if at_least(20) {
        Layout {
            types: 37,
            etypes: 38,
            itabs: 47,
            region: false,
        }
    } else if at_least(18) {
        Layout {
            types: 35,
            etypes: 36,
            itabs: 45,
            region: false,
        }
    } else {
        Layout {
            types: 35,
            etypes: 36,
            itabs: 43,
            region: false,
        }
    }
}

/// Byte offsets in `runtime.moduledata` of the fields read for Go `v`, by field name (the
/// integration tests compare them with each toolchain's DWARF).
pub fn layout_offsets(v: GoVersion) -> Vec<(&'static str, u64)> {
    let l = layout(v);
    let mut out = vec![
        ("pcHeader", 0),
        ("funcnametab", 8),
        ("text", 22 * 8),
        ("types", l.types as u64 * 8),
        ("etypes", l.etypes as u64 * 8),
    ];
    if l.region {
        out.push(("itaboffset", l.itabs as u64 * 8));
        out.push(("itabsize", l.itabs as u64 * 8 + 8));
    } else {
        out.push(("itablinks", l.itabs as u64 * 8));
    }
    out
}

/// The module data that points at `pclntab`: `runtime.firstmoduledata` from the symbol
/// table when there is one, else found by content in the writable segments.
pub fn find_moduledata(
    file: &object::File<'_>,
    img: &Image<'_>,
    version: GoVersion,
    pclntab: u64,
) -> Option<ModuleData> {
    let funcname = pcheader_at(img, pclntab)?;
    let by_symbol = file
        .symbols()
        .find(|s| s.name() == Ok("runtime.firstmoduledata"))
        .map(|s| s.address());
    let addr = match by_symbol {
        Some(a) => a,
        None => scan_moduledata(img, pclntab, pclntab + funcname)?,
    };
    let words: Vec<u64> = (0..52)
        .map(|i| img.u64_at(addr + 8 * i).unwrap_or(0))
        .collect();
    if words[0] != pclntab || words[1] != pclntab + funcname {
        return None;
    }
    let l = layout(version);
    let (types, etypes) = (words[l.types], words[l.etypes]);
    if types == 0 || types >= etypes || !img.contains(types) || !img.contains(etypes - 1) {
        return None;
    }
    let itabs = if l.region {
        let (off, size) = (words[l.itabs], words[l.itabs + 1]);
        if size > 0 && !img.contains(types + off) {
            return None;
        }
        Itabs::Region {
            start: types + off,
            size,
        }
    } else {
        let (ptr, len, cap) = (words[l.itabs], words[l.itabs + 1], words[l.itabs + 2]);
        if len != cap || len > 1 << 20 || (len > 0 && !img.contains(ptr)) {
            return None;
        }
        Itabs::Links { addr: ptr, len }
    };
    Some(ModuleData {
        addr,
        pclntab,
        text: words[22],
        types,
        etypes,
        itabs,
    })
}

fn scan_moduledata(img: &Image<'_>, pclntab: u64, funcnametab: u64) -> Option<u64> {
    let want = [pclntab.to_le_bytes(), funcnametab.to_le_bytes()].concat();
    for s in img.segs.iter().filter(|s| s.writable) {
        let bytes = img.rest(s.va)?;
        let skip = ((8 - s.va % 8) % 8) as usize;
        let mut at = skip;
        while at + 16 <= bytes.len() {
            if bytes[at..at + 16] == want[..] {
                return Some(s.va + at as u64);
            }
            at += 8;
        }
    }
    None
}

/// Reads bytes of the executable at virtual addresses: the analysed file in memory, or the
/// file itself later (type names of events).
pub trait Memory {
    fn read(&self, va: u64, len: usize) -> Option<Vec<u8>>;
}

impl Memory for Image<'_> {
    fn read(&self, va: u64, len: usize) -> Option<Vec<u8>> {
        self.bytes(va, len).map(<[u8]>::to_vec)
    }
}

/// The name of the type at `addr` (`abi.Type`: tflag at 20, `str` name offset at 40,
/// relative to `types`), as `%T` prints it.
pub fn type_name(mem: &dyn Memory, types: u64, etypes: u64, addr: u64) -> Option<String> {
    if addr < types || addr >= etypes {
        return None;
    }
    let t = mem.read(addr, 48)?;
    let tflag = t[20];
    let str_off = i32::from_le_bytes(t[40..44].try_into().ok()?);
    let name_at = types.checked_add_signed(str_off as i64)?;
    if name_at >= etypes {
        return None;
    }
    // abi.Name: a flags byte, a varint length, the bytes.
    let head = mem.read(name_at, 11)?;
    let (mut len, mut shift, mut i) = (0usize, 0, 1);
    loop {
        let b = *head.get(i)?;
        len |= ((b & 0x7f) as usize) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
    if len == 0 || len > 4096 {
        return None;
    }
    let bytes = mem.read(name_at + i as u64, len)?;
    let name = String::from_utf8(bytes).ok()?;
    // TFlagExtraStar: the name is stored with a '*' for the pointer type's benefit.
    Some(if tflag & 2 != 0 {
        name.strip_prefix('*').unwrap_or(&name).to_string()
    } else {
        name
    })
}

/// The types with an itab for `error` in the module: (type address, name).
pub fn error_types(img: &Image<'_>, md: &ModuleData) -> Vec<(u64, String)> {
    let name = |a: u64| type_name(img, md.types, md.etypes, a);
    let mut inter_names: HashMap<u64, bool> = HashMap::new();
    let mut is_error = |inter: u64| {
        *inter_names
            .entry(inter)
            .or_insert_with(|| name(inter).as_deref() == Some("error"))
    };
    let mut out = Vec::new();
    let mut add = |itab: u64, out: &mut Vec<(u64, String)>| {
        let (Some(inter), Some(typ)) = (img.u64_at(itab), img.u64_at(itab + 8)) else {
            return;
        };
        if is_error(inter) {
            if let Some(n) = name(typ) {
                out.push((typ, n));
            }
        }
    };
    match md.itabs {
        Itabs::Links { addr, len } => {
            for i in 0..len {
                if let Some(itab) = img.u64_at(addr + 8 * i) {
                    add(itab, &mut out);
                }
            }
        }
        Itabs::Region { start, size } => {
            // abi.ITab: Inter, Type, Hash (+pad), Fun[1]; Fun has one word per method of the
            // interface (abi.InterfaceType.Methods' length at 64), none when Fun[0] is 0.
            let mut p = start;
            while p + 32 <= start + size {
                add(p, &mut out);
                let methods = img
                    .u64_at(p)
                    .and_then(|inter| img.u64_at(inter + 64))
                    .unwrap_or(1);
                let fun0 = img.u64_at(p + 24).unwrap_or(0);
                let extra = if fun0 == 0 || methods == 0 {
                    0
                } else {
                    methods - 1
                };
                if extra > 4096 {
                    break;
                }
                p += 32 + 8 * extra;
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The lowest virtual address of an executable PT_LOAD segment: what the kernel's
/// `mm->start_code` is, plus the load bias (0 unless PIE).
pub fn exec_vaddr(file: &object::File<'_>) -> u64 {
    file.segments()
        .filter(|s| match s.flags() {
            object::SegmentFlags::Elf { p_flags } => p_flags & object::elf::PF_X != 0,
            _ => false,
        })
        .map(|s| s.address())
        .min()
        .unwrap_or(0)
}
