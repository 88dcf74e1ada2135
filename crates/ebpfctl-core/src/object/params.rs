//! Parameters: `const volatile` globals in `.rodata*`, set from `--param NAME=VALUE` text
//! before load, typed through BTF.

use super::elf::Elf;
use super::{ObjectError, ParamSpec};
use crate::btf::{Btf, Data, Kind, INT_BOOL, INT_SIGNED};
use crate::decode::{Decoder, Special};

fn is_const_volatile(btf: &Btf, mut id: u32) -> bool {
    let (mut c, mut v) = (false, false);
    for _ in 0..16 {
        let Ok(t) = btf.get(id) else { break };
        match t.kind {
            Kind::Const => c = true,
            Kind::Volatile => v = true,
            Kind::Typedef | Kind::TypeTag | Kind::Restrict => {}
            // `const volatile char x[16]` qualifies the element type.
            Kind::Array => {
                if let Data::Array { elem, .. } = t.data {
                    id = elem;
                    continue;
                }
            }
            _ => break,
        }
        id = t.size_or_type;
    }
    c && v
}

/// Every `const volatile` global with its default value. A parameter that does not lie in
/// its section, or whose size is not its type's, makes the object corrupt.
pub fn collect(bytes: &[u8], elf: &Elf, btf: &Btf) -> Result<Vec<ParamSpec>, ObjectError> {
    let mut out = Vec::new();
    for (_, t) in btf.iter() {
        let (Kind::Datasec, Data::Datasec(vars)) = (t.kind, &t.data) else {
            continue;
        };
        let sec_name = btf.str(t.name_off);
        if !sec_name.starts_with(".rodata") {
            continue;
        }
        let data = elf
            .section(sec_name)
            .map(|s| elf.data(bytes, s))
            .unwrap_or(&[]);
        for v in vars {
            let Ok(var) = btf.get(v.type_id) else {
                continue;
            };
            if !is_const_volatile(btf, var.size_or_type) {
                continue;
            }
            let name = btf.str(var.name_off).to_string();
            let (off, size) = (v.offset as usize, v.size as usize);
            let type_size = btf.size_of(var.size_or_type)?;
            let default = data.get(off..off.saturating_add(size));
            if default.is_none() || type_size != size as u64 {
                return Err(ObjectError::Unsupported(format!(
                    "parameter {name}: {size} bytes at {off} of {sec_name} ({} bytes), type of {type_size} bytes: a corrupt object; rebuild it",
                    data.len()
                )));
            }
            out.push(ParamSpec {
                name,
                type_id: var.size_or_type,
                type_name: btf.type_name(btf.resolve(var.size_or_type).unwrap_or(0)),
                offset: off,
                size,
                section: sec_name.to_string(),
                default: default.map(<[u8]>::to_vec).unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// A parameter's value rendered as text (default or current bytes).
pub fn render(btf: &Btf, p: &ParamSpec, value: &[u8]) -> String {
    Decoder::new(btf, p.type_id)
        .map(|d| d.root.text(value, 0))
        .unwrap_or_default()
}

fn parse_int(text: &str) -> Option<i128> {
    let t = text.trim().replace('_', "");
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()?
    } else {
        t.parse::<i128>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Encodes `text` as the bytes of parameter `p`. The error says what was expected.
pub fn encode(btf: &Btf, p: &ParamSpec, text: &str) -> Result<Vec<u8>, String> {
    for name in btf.typedef_names(p.type_id) {
        match Special::from_typedef(name) {
            Some(Special::Ipv4) => {
                let a: std::net::Ipv4Addr = text
                    .parse()
                    .map_err(|_| format!("expected an IPv4 address like 10.0.0.1, got {text:?}"))?;
                return Ok(a.octets().to_vec());
            }
            Some(Special::Duration) => {
                let ns = crate::decode::time::parse_duration_ns(text).ok_or_else(|| {
                    format!("expected a duration like 1.5ms or 250us, got {text:?}")
                })?;
                return Ok((ns as u64).to_le_bytes()[..p.size.min(8)].to_vec());
            }
            _ => {}
        }
    }
    let id = btf.resolve(p.type_id).map_err(|e| e.to_string())?;
    let t = btf.get(id).map_err(|e| e.to_string())?;
    match (&t.kind, &t.data) {
        (Kind::Int, Data::Int { encoding, .. }) if encoding & INT_BOOL != 0 => match text {
            "true" | "1" | "yes" => Ok(vec![1; 1]),
            "false" | "0" | "no" => Ok(vec![0; 1]),
            _ => Err(format!("expected true or false, got {text:?}")),
        },
        (Kind::Int, Data::Int { encoding, .. }) => {
            let v = parse_int(text).ok_or_else(|| format!("expected an integer, got {text:?}"))?;
            let bits = (p.size * 8) as u32;
            let (lo, hi) = if encoding & INT_SIGNED != 0 {
                let m = 1i128
                    .checked_shl(bits.saturating_sub(1))
                    .unwrap_or(i128::MAX);
                (-m, m - 1)
            } else {
                (0, 1i128.checked_shl(bits).map_or(i128::MAX, |m| m - 1))
            };
            if p.size == 0 || p.size > 16 || v < lo || v > hi {
                return Err(format!("{v} does not fit a {} ({lo}..={hi})", p.type_name));
            }
            Ok((v as u128).to_le_bytes()[..p.size].to_vec())
        }
        (Kind::Enum | Kind::Enum64, Data::Enum(vals)) => {
            let v = match vals.iter().find(|e| btf.str(e.name_off) == text) {
                Some(e) => e.value as i128,
                None => parse_int(text).ok_or_else(|| {
                    let names: Vec<&str> = vals.iter().map(|e| btf.str(e.name_off)).collect();
                    format!(
                        "expected one of {} or a number, got {text:?}",
                        names.join(", ")
                    )
                })?,
            };
            let b = (v as u128).to_le_bytes();
            b.get(..p.size)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("an enum of {} bytes", p.size))
        }
        (Kind::Array, Data::Array { elem, len, .. })
            if btf.name(btf.resolve(*elem).unwrap_or(0)) == "char" =>
        {
            if text.len() >= *len as usize {
                return Err(format!("string longer than {} bytes", *len as usize - 1));
            }
            let mut b = text.as_bytes().to_vec();
            b.resize(*len as usize, 0);
            Ok(b)
        }
        _ => Err(format!(
            "parameters of type {} cannot be set from the command line",
            p.type_name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("1_000"), Some(1000));
        assert_eq!(parse_int("x"), None);
    }
}
