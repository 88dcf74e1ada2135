//! `.BTF.ext`: clang's per-section function and line records (func_info, line_info) that
//! tie each instruction of the object to its function's BTF type and to its C source line.
//! Pure Rust, no kernel. Strings (section, file and source text) live in the `.BTF` string
//! table and are resolved here.
//!
//! Format (Documentation/bpf/btf.rst, "BTF.ext section"): a header (magic 0xeb9f, version,
//! flags, hdr_len, then offset/length pairs relative to the end of the header: func_info,
//! line_info, CO-RE relocations); each info block is a `u32` record size followed by
//! `{ sec_name_off, num_info, records[num_info] }` per section. Instruction offsets in the
//! object are in bytes from the start of the section (libbpf turns them into instruction
//! indices of the program it loads).

use crate::btf::{Btf, BtfError};

const MAGIC: u16 = 0xeb9f;
/// magic, version, flags, hdr_len, func_info off/len, line_info off/len.
const MIN_HEADER: usize = 24;
const FUNC_INFO_MIN: usize = 8;
const LINE_INFO_MIN: usize = 16;

/// One function of a section: where it starts and its `BTF_KIND_FUNC` type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncInfo {
    /// Instruction index in the section.
    pub insn: u32,
    pub type_id: u32,
}

/// The source line of the instructions starting at `insn`, up to the next record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInfo {
    /// Instruction index in the section.
    pub insn: u32,
    /// As clang recorded it (often an absolute path).
    pub file: String,
    /// The line's C text, leading whitespace removed (as the verifier prints it).
    pub text: String,
    pub line: u32,
    pub col: u32,
}

/// Records of one section, in instruction order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SectionInfo {
    pub section: String,
    pub funcs: Vec<FuncInfo>,
    pub lines: Vec<LineInfo>,
}

/// The parsed `.BTF.ext` of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BtfExt {
    pub sections: Vec<SectionInfo>,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BtfError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
        .ok_or(BtfError::Truncated(at))
}

/// Walks one info block: `f(section name offset, record bytes)` for every record.
fn each_record(
    block: &[u8],
    min_rec: usize,
    mut f: impl FnMut(u32, &[u8]) -> Result<(), BtfError>,
) -> Result<(), BtfError> {
    if block.is_empty() {
        return Ok(());
    }
    let rec_size = u32_at(block, 0)? as usize;
    if rec_size < min_rec {
        // A record smaller than the fields we read: not something clang writes.
        return Err(BtfError::Truncated(0));
    }
    let mut p = 4;
    while p < block.len() {
        let sec_name_off = u32_at(block, p)?;
        let n = u32_at(block, p + 4)? as usize;
        p += 8;
        let len = n.checked_mul(rec_size).ok_or(BtfError::Truncated(p))?;
        let recs = block.get(p..p + len).ok_or(BtfError::Truncated(p + len))?;
        for r in recs.chunks_exact(rec_size) {
            f(sec_name_off, r)?;
        }
        p += len;
    }
    Ok(())
}

impl BtfExt {
    /// Parses a `.BTF.ext` section; `btf` is the object's `.BTF` (its string table).
    pub fn parse(raw: &[u8], btf: &Btf) -> Result<BtfExt, BtfError> {
        if raw.len() < MIN_HEADER {
            return Err(BtfError::Truncated(raw.len()));
        }
        let magic = u16::from_le_bytes([raw[0], raw[1]]);
        if magic != MAGIC {
            return Err(BtfError::BadMagic(magic));
        }
        let hdr_len = u32_at(raw, 4)? as usize;
        if hdr_len < MIN_HEADER {
            return Err(BtfError::Truncated(hdr_len));
        }
        let block = |off_at: usize| -> Result<&[u8], BtfError> {
            let off = u32_at(raw, off_at)? as usize;
            let len = u32_at(raw, off_at + 4)? as usize;
            let start = hdr_len.checked_add(off).ok_or(BtfError::Truncated(off))?;
            raw.get(start..start.saturating_add(len))
                .ok_or(BtfError::Truncated(start.saturating_add(len)))
        };
        let mut ext = BtfExt::default();
        let section = |ext: &mut BtfExt, name_off: u32| -> usize {
            let name = btf.str(name_off);
            match ext.sections.iter().position(|s| s.section == name) {
                Some(i) => i,
                None => {
                    ext.sections.push(SectionInfo {
                        section: name.to_string(),
                        ..Default::default()
                    });
                    ext.sections.len() - 1
                }
            }
        };
        each_record(block(8)?, FUNC_INFO_MIN, |sec, r| {
            let i = section(&mut ext, sec);
            ext.sections[i].funcs.push(FuncInfo {
                insn: u32_at(r, 0)? / 8,
                type_id: u32_at(r, 4)?,
            });
            Ok(())
        })?;
        each_record(block(16)?, LINE_INFO_MIN, |sec, r| {
            let i = section(&mut ext, sec);
            let line_col = u32_at(r, 12)?;
            ext.sections[i].lines.push(LineInfo {
                insn: u32_at(r, 0)? / 8,
                file: btf.str(u32_at(r, 4)?).to_string(),
                text: btf.str(u32_at(r, 8)?).trim_start().to_string(),
                line: line_col >> 10,
                col: line_col & 0x3ff,
            });
            Ok(())
        })?;
        for s in &mut ext.sections {
            // clang writes them in order; the lookups rely on it.
            s.funcs.sort_by_key(|f| f.insn);
            s.lines.sort_by_key(|l| l.insn);
        }
        Ok(ext)
    }

    pub fn section(&self, name: &str) -> Option<&SectionInfo> {
        self.sections.iter().find(|s| s.section == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.BTF` with only a string table, and a `.BTF.ext` built by hand against it.
    fn btf_with(strings: &[&str]) -> (Btf, Vec<u32>) {
        let mut table = vec![0u8];
        let mut offs = Vec::new();
        for s in strings {
            offs.push(table.len() as u32);
            table.extend_from_slice(s.as_bytes());
            table.push(0);
        }
        let mut raw = Vec::new();
        raw.extend_from_slice(&0xeb9fu16.to_le_bytes());
        raw.extend_from_slice(&[1, 0]);
        for v in [24u32, 0, 0, 0, table.len() as u32] {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        raw.extend_from_slice(&table);
        (Btf::parse(&raw).unwrap(), offs)
    }

    fn words(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn func_and_line_records_per_section() {
        let (btf, o) = btf_with(&["tp/x", "/src/p.bpf.c", "\tint a = 1;", "return a;", ".text"]);
        let func = words(&[8, o[0], 1, 0, 7, o[4], 1, 16, 9]);
        let line = words(&[
            16,
            o[0],
            2,
            0,
            o[1],
            o[2],
            (3 << 10) | 2,
            24,
            o[1],
            o[3],
            4 << 10,
            o[4],
            1,
            16,
            o[1],
            o[3],
            9 << 10,
        ]);
        let mut raw = Vec::new();
        raw.extend_from_slice(&0xeb9fu16.to_le_bytes());
        raw.extend_from_slice(&[1, 0]);
        let hdr = [
            32u32,
            0,
            func.len() as u32,
            func.len() as u32,
            line.len() as u32,
            0,
            0,
        ];
        raw.extend_from_slice(&words(&hdr));
        raw.extend_from_slice(&func);
        raw.extend_from_slice(&line);
        let ext = BtfExt::parse(&raw, &btf).unwrap();
        let tp = ext.section("tp/x").unwrap();
        assert_eq!(
            tp.funcs,
            vec![FuncInfo {
                insn: 0,
                type_id: 7
            }]
        );
        assert_eq!(tp.lines.len(), 2);
        assert_eq!(tp.lines[0].text, "int a = 1;");
        assert_eq!((tp.lines[0].line, tp.lines[0].col), (3, 2));
        assert_eq!((tp.lines[1].insn, tp.lines[1].line), (3, 4));
        let text = ext.section(".text").unwrap();
        assert_eq!(text.funcs[0].insn, 2);
        assert_eq!((text.lines[0].insn, text.lines[0].line), (2, 9));
        assert_eq!(text.lines[0].file, "/src/p.bpf.c");
    }

    #[test]
    fn truncated_blocks_are_errors_not_panics() {
        let (btf, o) = btf_with(&["tp/x"]);
        let line = words(&[16, o[0], 1000]);
        let mut raw = Vec::new();
        raw.extend_from_slice(&0xeb9fu16.to_le_bytes());
        raw.extend_from_slice(&[1, 0]);
        raw.extend_from_slice(&words(&[24, 0, 0, 0, line.len() as u32]));
        raw.extend_from_slice(&line);
        assert!(BtfExt::parse(&raw, &btf).is_err());
        assert!(BtfExt::parse(&raw[..10], &btf).is_err());
    }
}
