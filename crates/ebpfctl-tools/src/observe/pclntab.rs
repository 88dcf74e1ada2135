//! Function table of stripped Go binaries (`-ldflags='-s -w'`) from `.gopclntab`.
//!
//! Header (`runtime.pcHeader`): magic u32, 2 pad bytes, minLC u8, ptrSize u8, then
//! pointer-sized words: nfunc, nfiles, [textStart (1.18+)], funcnameOffset, cuOffset,
//! filetabOffset, pctabOffset, pclnOffset. The function table at pclnOffset holds
//! nfunc+1 pairs (entry, funcoff): u32 entry offsets from textStart (1.18+) or full
//! addresses (1.16/1.17); the last entry is the end of the text. Each `_func` begins with
//! its entry, then `nameOff int32` into the function name table.

const MAGIC_116: u32 = 0xffff_fffa; // Go 1.16, 1.17
const MAGIC_118: u32 = 0xffff_fff0; // Go 1.18, 1.19
const MAGIC_120: u32 = 0xffff_fff1; // Go 1.20 and later

/// Looks up `wanted` names; returns (address, size) for each one found. `text_addr` is the
/// `.text` section address, used when the header's textStart is 0 (left to a relocation).
pub fn find_functions(
    tab: &[u8],
    text_addr: u64,
    wanted: &[&str],
) -> Result<Vec<Option<(u64, u64)>>, String> {
    if tab.len() < 16 {
        return Err("too short".into());
    }
    let magic = u32::from_le_bytes(tab[0..4].try_into().unwrap_or_default());
    let ptr = tab[7] as usize;
    if ptr != 8 {
        return Err(format!("pointer size {ptr} not supported"));
    }
    let word = |i: usize| -> Result<u64, String> {
        let at = 8 + i * ptr;
        tab.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
            .ok_or_else(|| "truncated header".to_string())
    };
    let new_layout = match magic {
        MAGIC_118 | MAGIC_120 => true,
        MAGIC_116 => false,
        m => {
            return Err(format!(
                "unknown magic {m:#x} (Go too old or not a Go binary)"
            ))
        }
    };
    let nfunc = word(0)? as usize;
    let (text_start, funcname_off, pcln_off) = if new_layout {
        let ts = word(2)?;
        (
            if ts == 0 { text_addr } else { ts },
            word(3)? as usize,
            word(7)? as usize,
        )
    } else {
        (0, word(2)? as usize, word(6)? as usize)
    };
    let functab = tab
        .get(pcln_off..)
        .ok_or("function table offset out of range")?;
    let entry_size = if new_layout { 8 } else { 16 };
    let field = |b: &[u8], at: usize, wide: bool| -> Option<u64> {
        if wide {
            b.get(at..at + 8)
                .map(|x| u64::from_le_bytes(x.try_into().unwrap_or_default()))
        } else {
            b.get(at..at + 4)
                .map(|x| u32::from_le_bytes(x.try_into().unwrap_or_default()) as u64)
        }
    };
    let wide = !new_layout;
    let half = entry_size / 2;
    let entry_at = |i: usize| -> Option<(u64, u64)> {
        let e = field(functab, i * entry_size, wide)?;
        let f = field(functab, i * entry_size + half, wide)?;
        Some((if new_layout { text_start + e } else { e }, f))
    };
    let mut out = vec![None; wanted.len()];
    let mut left = wanted.len();
    for i in 0..nfunc {
        let (entry, funcoff) = entry_at(i).ok_or("function table truncated")?;
        let func = functab
            .get(funcoff as usize..)
            .ok_or("function entry out of range")?;
        let name_field = if new_layout { 4 } else { 8 };
        let name_off = field(func, name_field, false).ok_or("function entry truncated")? as usize;
        let name_start = funcname_off + name_off;
        let name_bytes = tab.get(name_start..).ok_or("name out of range")?;
        let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(0);
        let name = &name_bytes[..end];
        if let Some(w) = wanted.iter().position(|w| w.as_bytes() == name) {
            if out[w].is_none() {
                let (next, _) = entry_at(i + 1).ok_or("function table truncated")?;
                out[w] = Some((entry, next.saturating_sub(entry)));
                left -= 1;
                if left == 0 {
                    break;
                }
            }
        }
    }
    Ok(out)
}
