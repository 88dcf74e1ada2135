//! Rewrites an object so libbpf accepts it, remembering what the rewrite hides:
//!
//! - map sections with a keyword (`.maps.print`, `.maps.counter`, ...) are merged into one
//!   `.maps` section: data concatenated, symbols moved, the BTF DATASECs merged;
//! - ring buffers (and perf arrays) declared with `__type(key/value, T)` lose those members
//!   in BTF (the kernel refuses a value size on them) while the spec keeps `T` for decoding.
//!
//! The file is patched in place: new contents are appended and section headers re-pointed,
//! so symbol indices, relocations and `.BTF.ext` (which names sections) stay valid.

use std::collections::HashMap;

use super::elf::{self, Elf};
use super::{read_map_def, MapSpec, ObjectError};
use crate::btf::{Btf, Data, Kind, VarSecInfo};
use crate::convention::{
    self, Keyword, KeywordSource, BPF_MAP_TYPE_PERF_EVENT_ARRAY, BPF_MAP_TYPE_RINGBUF,
};
use crate::unit;

/// The result of normalising: bytes for libbpf and the map specs.
#[derive(Debug)]
pub struct Normalised {
    pub bytes: Vec<u8>,
    pub btf: Option<Btf>,
    pub maps: Vec<MapSpec>,
    pub changes: Vec<String>,
}

fn datasec_id(btf: &Btf, name: &str) -> Option<u32> {
    btf.find(name, Kind::Datasec).next()
}

/// The BTF VAR of map `name` in section `section`.
fn map_var(btf: &Btf, section: &str, name: &str) -> Option<u32> {
    let Data::Datasec(vars) = &btf.get(datasec_id(btf, section)?).ok()?.data else {
        return None;
    };
    Some(vars.iter().find(|v| btf.name(v.type_id) == name)?.type_id)
}

/// The map definition struct of map `name` in section `section`: DATASEC → VAR → struct.
fn map_def_struct(btf: &Btf, section: &str, name: &str) -> Option<u32> {
    btf.resolve(btf.get(map_var(btf, section, name)?).ok()?.size_or_type)
        .ok()
}

pub fn normalise(bytes: &[u8], elf: &Elf, mut btf: Option<Btf>) -> Result<Normalised, ObjectError> {
    let mut out = bytes.to_vec();
    let mut changes = Vec::new();

    let map_secs: Vec<&elf::Section> = elf
        .sections
        .iter()
        .filter(|s| s.name == ".maps" || s.name.starts_with(".maps."))
        .collect();
    let mut sec_kw: HashMap<usize, Option<Keyword>> = HashMap::new();
    for s in &map_secs {
        let kw = convention::from_section(&s.name).map_err(|bad| {
            ObjectError::Unsupported(format!(
                "map section {}: unknown keyword `{bad}` (known: print, counter, gauge, hist)",
                s.name
            ))
        })?;
        sec_kw.insert(s.index, kw);
    }

    // Map symbols, in file order.
    let map_syms: Vec<&elf::Symbol> = elf
        .symbols
        .iter()
        .filter(|y| y.kind() == elf::STT_OBJECT && sec_kw.contains_key(&(y.shndx as usize)))
        .collect();

    let mut maps = Vec::new();
    for sym in &map_syms {
        let sec = &elf.sections[sym.shndx as usize];
        let (section_kw, prefix_kw) = (sec_kw[&sec.index], convention::from_name(&sym.name));
        let (keyword, keyword_source) = match (section_kw, prefix_kw) {
            (Some(k), _) => (Some(k), Some(KeywordSource::Section)),
            (None, Some(k)) => (Some(k), Some(KeywordSource::Prefix)),
            (None, None) => (None, None),
        };
        let def = btf
            .as_ref()
            .and_then(|b| Some(read_map_def(b, map_def_struct(b, &sec.name, &sym.name)?)));
        let def = def.unwrap_or_default();
        // `ebpfctl:` declaration tags on the map variable (unit, help, buckets).
        let meta = match btf
            .as_ref()
            .and_then(|b| Some((b, map_var(b, &sec.name, &sym.name)?)))
        {
            Some((b, var)) => unit::from_btf(b, var).map_err(|msg| ObjectError::Map {
                map: sym.name.clone(),
                msg,
            })?,
            None => Default::default(),
        };
        maps.push(MapSpec {
            name: sym.name.clone(),
            section: sec.name.clone(),
            map_type: def.map_type,
            keyword,
            keyword_source,
            key_type: def.key_type,
            value_type: def.value_type,
            key_size: def.key_size,
            value_size: def.value_size,
            max_entries: def.max_entries,
            lost_counter: None,
            pinned: def.pinning != 0,
            meta,
        });
    }

    // struct_ops maps: variables of `.struct_ops` / `.struct_ops.link` (libbpf makes each a
    // map the runner registers). Listed for inspect and the loader; nothing to rewrite.
    for sym in elf.symbols.iter().filter(|y| y.kind() == elf::STT_OBJECT) {
        let Some(sec) = elf.sections.get(sym.shndx as usize) else {
            continue;
        };
        if sec.name != ".struct_ops" && sec.name != ".struct_ops.link" {
            continue;
        }
        let value_type = btf.as_ref().and_then(|b| {
            let Data::Datasec(vars) = &b.get(datasec_id(b, &sec.name)?).ok()?.data else {
                return None;
            };
            let var = vars.iter().find(|v| b.name(v.type_id) == sym.name)?;
            Some(b.get(var.type_id).ok()?.size_or_type)
        });
        maps.push(MapSpec {
            name: sym.name.clone(),
            section: sec.name.clone(),
            map_type: convention::BPF_MAP_TYPE_STRUCT_OPS,
            keyword: None,
            keyword_source: None,
            key_type: None,
            value_type,
            key_size: 4,
            value_size: sym.size as u32,
            max_entries: 1,
            lost_counter: None,
            pinned: false,
            meta: Default::default(),
        });
    }

    let Some(b) = btf.as_mut() else {
        return Ok(Normalised {
            bytes: out,
            btf: None,
            maps,
            changes,
        });
    };
    let mut btf_changed = false;

    // Ring buffers and perf arrays: drop key/value types from the definition libbpf sees.
    for m in &mut maps {
        let strip: &[&str] = match m.map_type {
            BPF_MAP_TYPE_RINGBUF => &["key", "value"],
            BPF_MAP_TYPE_PERF_EVENT_ARRAY if m.value_size != 4 || m.key_size != 4 => {
                &["key", "value"]
            }
            _ => continue,
        };
        let Some(struct_id) = map_def_struct(b, &m.section, &m.name) else {
            continue;
        };
        let names: Vec<u32> = strip.iter().map(|n| b.add_string(n)).collect();
        if let Ok(t) = b.get_mut(struct_id) {
            if let Data::Members(ms) = &mut t.data {
                let before = ms.len();
                ms.retain(|mem| !names.contains(&mem.name_off));
                if ms.len() != before {
                    btf_changed = true;
                    changes.push(format!(
                        "map {}: {} declared with a key/value type; the kernel gets none, the decoder keeps it",
                        m.name,
                        convention::map_type_name(m.map_type)
                    ));
                }
            }
        }
        if m.map_type == BPF_MAP_TYPE_PERF_EVENT_ARRAY {
            m.key_size = 4;
            m.value_size = 4;
        } else {
            m.key_size = 0;
            m.value_size = 0;
        }
    }

    // Merge keyword sections into one `.maps`.
    let needs_merge = map_secs.iter().any(|s| s.name != ".maps");
    if needs_merge {
        for s in &map_secs {
            if let Some(rel) = elf.section(&format!(".rel{}", s.name)) {
                if rel.size > 0 {
                    return Err(ObjectError::Unsupported(format!(
                        "{} has relocations (map-in-map initialisers); use plain SEC(\".maps\") with a name prefix for such maps",
                        s.name
                    )));
                }
            }
        }
        let target = map_secs
            .iter()
            .find(|s| s.name == ".maps")
            .unwrap_or(&map_secs[0]);
        let mut merged = Vec::new();
        let mut base: HashMap<usize, u64> = HashMap::new();
        for s in &map_secs {
            while merged.len() % 8 != 0 {
                merged.push(0);
            }
            base.insert(s.index, merged.len() as u64);
            merged.extend_from_slice(elf.data(bytes, s));
        }
        // Symbols into the target section.
        for sym in elf
            .symbols
            .iter()
            .filter(|y| base.contains_key(&(y.shndx as usize)))
        {
            elf::set_symbol(
                &mut out,
                sym,
                target.index as u16,
                base[&(sym.shndx as usize)] + sym.value,
            );
        }
        // Section headers: target holds everything under the name `.maps`; others go empty.
        let shstr = &elf.sections[elf.shstrndx];
        let mut names = elf.data(bytes, shstr).to_vec();
        let name_off = names.len() as u32;
        names.extend_from_slice(b".maps\0");
        let names_at = elf::append(&mut out, &names);
        elf::set_section(&mut out, shstr, None, names_at, names.len() as u64);
        let data_at = elf::append(&mut out, &merged);
        elf::set_section(
            &mut out,
            target,
            Some(name_off),
            data_at,
            merged.len() as u64,
        );
        for s in map_secs.iter().filter(|s| s.index != target.index) {
            elf::set_section(&mut out, s, None, s.offset, 0);
        }

        // BTF: one DATASEC `.maps` with every map variable at its new offset.
        let maps_name = b.add_string(".maps");
        let mut vars = Vec::new();
        let mut secs_ds = Vec::new();
        for s in &map_secs {
            let Some(ds) = datasec_id(b, &s.name) else {
                continue;
            };
            secs_ds.push((s.index, ds));
            if let Ok(crate::btf::Type {
                data: Data::Datasec(vs),
                ..
            }) = b.get(ds)
            {
                for v in vs {
                    let name = b.name(v.type_id);
                    let at = elf
                        .symbols
                        .iter()
                        .find(|y| y.name == name && y.shndx as usize == s.index)
                        .map_or(u64::from(v.offset), |y| y.value);
                    vars.push(VarSecInfo {
                        type_id: v.type_id,
                        offset: (base[&s.index] + at) as u32,
                        size: v.size,
                    });
                }
            }
        }
        let keep = secs_ds
            .iter()
            .find(|(i, _)| *i == target.index)
            .or(secs_ds.first())
            .map(|(_, ds)| *ds);
        for &(_, ds) in secs_ds.iter().filter(|(_, ds)| Some(*ds) != keep) {
            retire(b, ds);
        }
        if let Some(ds) = keep {
            vars.sort_by_key(|v| v.offset);
            let t = b.get_mut(ds)?;
            t.name_off = maps_name;
            t.size_or_type = merged.len() as u32;
            t.data = Data::Datasec(vars);
        }
        btf_changed = true;
        let kws: Vec<&str> = map_secs.iter().map(|s| s.name.as_str()).collect();
        changes.push(format!("merged map sections {} into .maps", kws.join(", ")));
    }

    if btf_changed {
        let raw = b.encode();
        let btf_sec = elf
            .section(".BTF")
            .expect("BTF was parsed from this section");
        let at = elf::append(&mut out, &raw);
        elf::set_section(&mut out, btf_sec, None, at, raw.len() as u64);
    }

    // Lost-event counters declared with EBPFCTL_LOST_COUNTER(map).
    if let Some(ds) = datasec_id(b, ".bss") {
        if let Ok(crate::btf::Type {
            data: Data::Datasec(vs),
            ..
        }) = b.get(ds)
        {
            for v in vs {
                if let Some(map) = b.name(v.type_id).strip_prefix("ebpfctl_lost_") {
                    if let Some(m) = maps.iter_mut().find(|m| m.name == map) {
                        m.lost_counter = Some(v.offset as usize);
                    }
                }
            }
        }
    }

    Ok(Normalised {
        bytes: out,
        btf,
        maps,
        changes,
    })
}

/// Turns a DATASEC that no longer describes a section into an unreferenced `void *`
/// (type ids must stay stable; the kernel rejects an empty DATASEC).
fn retire(b: &mut Btf, id: u32) {
    if let Ok(t) = b.get_mut(id) {
        t.name_off = 0;
        t.kind = Kind::Ptr;
        t.kind_flag = false;
        t.vlen_extra = 0;
        t.size_or_type = 0;
        t.data = Data::None;
    }
}
