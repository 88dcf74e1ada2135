//! Just enough raw ELF64 (little-endian, relocatable) to read and patch a BPF object in place:
//! section headers, names and symbols. Validation of what is read happens in `mod.rs`.

use super::ObjectError;

pub const EM_BPF: u16 = 247;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_REL: u32 = 9;
pub const SHF_EXECINSTR: u64 = 0x4;
pub const STT_OBJECT: u8 = 1;
pub const STT_FUNC: u8 = 2;
pub const STB_GLOBAL: u8 = 1;
const SHDR: usize = 64;
const SYM: usize = 24;

fn u16_at(b: &[u8], at: usize) -> Result<u16, ObjectError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(ObjectError::Truncated)
}
fn u32_at(b: &[u8], at: usize) -> Result<u32, ObjectError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
        .ok_or(ObjectError::Truncated)
}
fn u64_at(b: &[u8], at: usize) -> Result<u64, ObjectError> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
        .ok_or(ObjectError::Truncated)
}

#[derive(Debug, Clone)]
pub struct Section {
    pub index: usize,
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
    /// For relocation sections: the section the relocations apply to.
    pub info: u32,
    pub entsize: u64,
    /// Where this header sits in the file.
    pub header_at: usize,
}

#[derive(Debug, Clone)]
pub struct Symbol {
    pub index: usize,
    pub name: String,
    pub info: u8,
    pub shndx: u16,
    pub value: u64,
    pub size: u64,
    /// Where this entry sits in the file.
    pub entry_at: usize,
}

impl Symbol {
    pub fn kind(&self) -> u8 {
        self.info & 0xf
    }
    pub fn binding(&self) -> u8 {
        self.info >> 4
    }
}

/// A parsed view of the file's headers and symbols.
#[derive(Debug, Clone)]
pub struct Elf {
    pub sections: Vec<Section>,
    pub symbols: Vec<Symbol>,
    pub shstrndx: usize,
}

/// `size` bytes at `offset` of the file, when they are all in it.
fn range(b: &[u8], offset: u64, size: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    b.get(start..end)
}

/// The NUL-terminated name at `at` of a string table (offset 0 of an empty table is "").
fn cstr(b: &[u8], at: usize) -> Result<String, ObjectError> {
    if b.is_empty() && at == 0 {
        return Ok(String::new());
    }
    let s = b.get(at..).ok_or(ObjectError::Truncated)?;
    let end = s
        .iter()
        .position(|&c| c == 0)
        .ok_or(ObjectError::Truncated)?;
    Ok(String::from_utf8_lossy(&s[..end]).into_owned())
}

/// Machine names for the common `e_machine` values, for error messages.
pub fn machine_name(m: u16) -> String {
    match m {
        3 => "x86 (i386)".into(),
        40 => "ARM".into(),
        62 => "x86-64".into(),
        183 => "AArch64".into(),
        243 => "RISC-V".into(),
        EM_BPF => "BPF".into(),
        other => format!("machine {other}"),
    }
}

impl Elf {
    pub fn parse(b: &[u8]) -> Result<Elf, ObjectError> {
        if b.len() < 4 || &b[..4] != b"\x7fELF" {
            return Err(ObjectError::NotElf);
        }
        if b.len() < 64 {
            return Err(ObjectError::Truncated);
        }
        if b[4] != 2 {
            return Err(ObjectError::Unsupported(
                "32-bit ELF; BPF objects are ELF64".into(),
            ));
        }
        if b[5] != 1 {
            return Err(ObjectError::Unsupported("big-endian ELF; rebuild with `-target bpfel` (or `-target bpf` on a little-endian host)".into()));
        }
        let machine = u16_at(b, 18)?;
        if machine != EM_BPF {
            return Err(ObjectError::WrongMachine(machine_name(machine)));
        }
        let e_type = u16_at(b, 16)?;
        if e_type != 1 {
            return Err(ObjectError::Unsupported(format!(
                "ELF type {e_type}; expected a relocatable object (clang -c)"
            )));
        }
        let shoff = u64_at(b, 0x28)? as usize;
        let shentsize = u16_at(b, 0x3a)? as usize;
        let shnum = u16_at(b, 0x3c)? as usize;
        let shstrndx = u16_at(b, 0x3e)? as usize;
        if shentsize != SHDR
            || shoff
                .checked_add(shnum * SHDR)
                .is_none_or(|end| end > b.len())
        {
            return Err(ObjectError::Truncated);
        }
        let mut sections = Vec::with_capacity(shnum);
        for i in 0..shnum {
            let h = shoff + i * SHDR;
            sections.push(Section {
                index: i,
                name: String::new(),
                sh_type: u32_at(b, h + 4)?,
                flags: u64_at(b, h + 8)?,
                offset: u64_at(b, h + 24)?,
                size: u64_at(b, h + 32)?,
                link: u32_at(b, h + 40)?,
                info: u32_at(b, h + 44)?,
                entsize: u64_at(b, h + 56)?,
                header_at: h,
            });
        }
        let strtab = sections.get(shstrndx).ok_or(ObjectError::Truncated)?;
        let names = range(b, strtab.offset, strtab.size).ok_or(ObjectError::Truncated)?;
        for s in &mut sections {
            s.name = cstr(names, u32_at(b, s.header_at)? as usize)?;
            if s.sh_type != 8 /* NOBITS */ && range(b, s.offset, s.size).is_none() {
                return Err(ObjectError::Truncated);
            }
        }
        let mut symbols = Vec::new();
        if let Some(st) = sections.iter().find(|s| s.sh_type == SHT_SYMTAB) {
            let strs = sections
                .get(st.link as usize)
                .ok_or(ObjectError::Truncated)?;
            let strs = range(b, strs.offset, strs.size).ok_or(ObjectError::Truncated)?;
            let n = st.size as usize / SYM;
            for i in 0..n {
                let e = st.offset as usize + i * SYM;
                symbols.push(Symbol {
                    index: i,
                    name: cstr(strs, u32_at(b, e)? as usize)?,
                    info: *b.get(e + 4).ok_or(ObjectError::Truncated)?,
                    shndx: u16_at(b, e + 6)?,
                    value: u64_at(b, e + 8)?,
                    size: u64_at(b, e + 16)?,
                    entry_at: e,
                });
            }
        }
        Ok(Elf {
            sections,
            symbols,
            shstrndx,
        })
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub fn data<'a>(&self, b: &'a [u8], s: &Section) -> &'a [u8] {
        if s.sh_type == 8 {
            return &[];
        }
        range(b, s.offset, s.size).unwrap_or(&[])
    }

    /// Whether section `i` holds code (executable, with contents).
    pub fn is_code(&self, i: usize) -> bool {
        self.sections
            .get(i)
            .is_some_and(|s| s.flags & SHF_EXECINSTR != 0 && s.sh_type != 8)
    }

    /// The relocations of every code section: (section, byte offset of the instruction) →
    /// symbol index, from its `.rel<section>`.
    pub fn code_relocs(&self, b: &[u8]) -> std::collections::HashMap<(usize, u64), usize> {
        const REL: usize = 16;
        let mut relocs = std::collections::HashMap::new();
        for rs in self.sections.iter().filter(|s| s.sh_type == SHT_REL) {
            let target = rs.info as usize;
            if !self.is_code(target) {
                continue;
            }
            for e in self.data(b, rs).chunks_exact(REL) {
                let offset = u64::from_le_bytes(e[..8].try_into().expect("8 bytes"));
                let info = u64::from_le_bytes(e[8..].try_into().expect("8 bytes"));
                relocs.insert((target, offset), (info >> 32) as usize);
            }
        }
        relocs
    }
}

/// Patch helpers over the file bytes.
pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Appends `data` at an 8-aligned offset and returns that offset.
pub fn append(b: &mut Vec<u8>, data: &[u8]) -> u64 {
    while !b.len().is_multiple_of(8) {
        b.push(0);
    }
    let at = b.len() as u64;
    b.extend_from_slice(data);
    at
}

/// Points section header `s` at new contents.
pub fn set_section(b: &mut [u8], s: &Section, name_off: Option<u32>, offset: u64, size: u64) {
    if let Some(n) = name_off {
        put_u32(b, s.header_at, n);
    }
    put_u64(b, s.header_at + 24, offset);
    put_u64(b, s.header_at + 32, size);
}

/// Moves symbol `sym` to section `shndx` at `value`.
pub fn set_symbol(b: &mut [u8], sym: &Symbol, shndx: u16, value: u64) {
    put_u16(b, sym.entry_at + 6, shndx);
    put_u64(b, sym.entry_at + 8, value);
}
