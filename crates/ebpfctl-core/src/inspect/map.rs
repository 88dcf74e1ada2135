//! BPF maps: `map list`, `map show ID`, `map dump ID` (streamed, decoded through the map's BTF).
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};

use serde::Serialize;

use super::print::{self, Format};
use super::select::{self, Selector};
use super::sys::{self, Holder, ObjKind};
use super::{InspectError, Result};
use crate::btf::Btf;
use crate::decode::{Decoder, JsonSink, Sink, TextSink};
use crate::snapshot::{read_map, Layout, ReadError};

/// One map, as `map list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MapInfo {
    pub id: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub flags: u32,
    pub bytes_key: u32,
    pub bytes_value: u32,
    pub max_entries: u32,
    pub bytes_memlock: Option<u64>,
    pub frozen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub btf_id: Option<u32>,
    /// The key and value types spelled from BTF, e.g. `u32`, `struct event`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_type: Option<String>,
    pub pinned: Vec<String>,
    pub pids: Vec<Holder>,
}

pub(crate) fn raw_info(fd: BorrowedFd<'_>, id: u32) -> Result<libbpf_sys::bpf_map_info> {
    // SAFETY: all-zero is a valid bpf_map_info (it has no pointers).
    let mut info: libbpf_sys::bpf_map_info = unsafe { std::mem::zeroed() };
    sys::info_by_fd(fd, &mut info, &format!("map {id}"))?;
    Ok(info)
}

fn build(
    id: u32,
    i: &libbpf_sys::bpf_map_info,
    fdinfo: &HashMap<String, String>,
    btf: Option<&Btf>,
    holders: &HashMap<(ObjKind, u32), Vec<Holder>>,
    pins: &HashMap<(ObjKind, u32), Vec<String>>,
) -> MapInfo {
    let tn = |t: u32| btf.filter(|_| t != 0).map(|b| b.type_name(t));
    MapInfo {
        id,
        kind: sys::map_type_name(i.type_),
        name: sys::cname(&i.name),
        flags: i.map_flags,
        bytes_key: i.key_size,
        bytes_value: i.value_size,
        max_entries: i.max_entries,
        bytes_memlock: fdinfo.get("memlock").and_then(|v| v.parse().ok()),
        frozen: fdinfo.get("frozen").is_some_and(|v| v == "1"),
        btf_id: (i.btf_id != 0).then_some(i.btf_id),
        key_type: tn(i.btf_key_type_id),
        value_type: tn(i.btf_value_type_id),
        pinned: pins.get(&(ObjKind::Map, id)).cloned().unwrap_or_default(),
        pids: holders
            .get(&(ObjKind::Map, id))
            .cloned()
            .unwrap_or_default(),
    }
}

/// Every map. Maps freed while listing are skipped.
pub fn list() -> Result<Vec<MapInfo>> {
    let ids = sys::all_ids(ObjKind::Map)?;
    let holders = sys::holders();
    let pins = sys::pins();
    let mut btfs: HashMap<u32, Option<Btf>> = HashMap::new();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let fd = match sys::fd_by_id(ObjKind::Map, id) {
            Ok(fd) => fd,
            Err(InspectError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let info = raw_info(fd.as_fd(), id)?;
        let btf = if info.btf_id != 0 && (info.btf_key_type_id != 0 || info.btf_value_type_id != 0)
        {
            btfs.entry(info.btf_id)
                .or_insert_with(|| sys::kernel_btf(info.btf_id).ok())
                .as_ref()
        } else {
            None
        };
        out.push(build(
            id,
            &info,
            &sys::fdinfo(fd.as_fd()),
            btf,
            &holders,
            &pins,
        ));
    }
    Ok(out)
}

/// The maps a selector names (`map show name X` can match several).
pub fn select(sel: &Selector) -> Result<Vec<MapInfo>> {
    let matched: Vec<MapInfo> = match sel {
        Selector::Id(id) => return Ok(vec![show(*id)?]),
        Selector::Pinned(p) => return Ok(vec![show(select::pinned_id(ObjKind::Map, p)?)?]),
        Selector::Name(n) => list()?.into_iter().filter(|m| &m.name == n).collect(),
        Selector::Tag(_) => Vec::new(),
    };
    if matched.is_empty() {
        return Err(InspectError::NoMatch(format!(
            "no BPF map with {sel} is loaded (see `ebpfctl map list`)"
        )));
    }
    Ok(matched)
}

/// One map by id.
pub fn show(id: u32) -> Result<MapInfo> {
    let fd = sys::fd_by_id(ObjKind::Map, id)?;
    let info = raw_info(fd.as_fd(), id)?;
    let btf = if info.btf_id != 0 {
        sys::kernel_btf(info.btf_id).ok()
    } else {
        None
    };
    Ok(build(
        id,
        &info,
        &sys::fdinfo(fd.as_fd()),
        btf.as_ref(),
        &sys::holders(),
        &sys::pins(),
    ))
}

pub fn print_list<W: Write>(w: &mut W, maps: &[MapInfo], format: Format) -> io::Result<()> {
    if format == Format::Json {
        return print::json(w, maps);
    }
    for m in maps {
        print_one(w, m)?;
    }
    Ok(())
}

pub fn print_one<W: Write>(w: &mut W, m: &MapInfo) -> io::Result<()> {
    writeln!(
        w,
        "{}: {}  name {}  flags {:#x}",
        m.id, m.kind, m.name, m.flags
    )?;
    let mut line = format!(
        "\tkey {}B  value {}B  max_entries {}",
        m.bytes_key, m.bytes_value, m.max_entries
    );
    if let Some(ml) = m.bytes_memlock {
        line += &format!("  memlock {ml}B");
    }
    writeln!(w, "{line}")?;
    let mut line = String::new();
    if let Some(b) = m.btf_id {
        line += &format!("btf_id {b}");
    }
    if let (Some(k), Some(v)) = (&m.key_type, &m.value_type) {
        line += &format!("  key_type {k}  value_type {v}");
    } else if let Some(v) = &m.value_type {
        line += &format!("  value_type {v}");
    }
    if m.frozen {
        line += "  frozen";
    }
    if !line.is_empty() {
        writeln!(w, "\t{}", line.trim_start())?;
    }
    for p in &m.pinned {
        writeln!(w, "\tpinned {p}")?;
    }
    if !m.pids.is_empty() {
        let s: Vec<String> = m
            .pids
            .iter()
            .map(|h| format!("{}({})", h.comm, h.pid))
            .collect();
        writeln!(w, "\tpids {}", s.join(", "))?;
    }
    Ok(())
}

// Map types (include/uapi/linux/bpf.h) that need special handling.
const PERF_EVENT_ARRAY: u32 = 4;
const PERCPU_HASH: u32 = 5;
const PERCPU_ARRAY: u32 = 6;
const LRU_PERCPU_HASH: u32 = 10;
const PERCPU_CGROUP_STORAGE: u32 = 21;
const QUEUE: u32 = 22;
const STACK: u32 = 23;
const STRUCT_OPS: u32 = 26;
const RINGBUF: u32 = 27;
const BLOOM_FILTER: u32 = 30;
const USER_RINGBUF: u32 = 31;
const ARENA: u32 = 33;

fn is_array(t: u32) -> bool {
    // array, prog_array, percpu_array, array_of_maps
    matches!(t, 2 | 3 | PERCPU_ARRAY | 12)
}

fn is_percpu(t: u32) -> bool {
    matches!(
        t,
        PERCPU_HASH | PERCPU_ARRAY | LRU_PERCPU_HASH | PERCPU_CGROUP_STORAGE
    )
}

/// How one side (key or value) of a map is shown.
enum Side {
    Btf(Decoder),
    /// A global-data section (`.data`, `.rodata`, `.bss`): an object of its variables.
    Section(Vec<(String, usize, Decoder)>),
    /// An array index without BTF: a little-endian u32.
    Index,
    Hex,
}

impl Side {
    fn json(&self, data: &[u8], out: &mut Vec<u8>) {
        match self {
            Side::Btf(d) => d.root.render(data, 0, &mut JsonSink::new(out, false)),
            Side::Section(vars) => {
                let mut sink = JsonSink::new(out, false);
                sink.begin_object();
                for (name, off, d) in vars {
                    sink.key(name);
                    d.root.render(data, *off, &mut sink);
                }
                sink.end_object();
            }
            Side::Index => out.extend_from_slice(
                itoa::Buffer::new()
                    .format(u32::from_le_bytes(
                        data[..4].try_into().expect("4-byte key"),
                    ))
                    .as_bytes(),
            ),
            Side::Hex => crate::decode::sink::write_json_str(out, &sys::hex_bytes(data)),
        }
    }
    fn text(&self, data: &[u8]) -> String {
        match self {
            Side::Btf(d) => {
                let mut t = TextSink::default();
                d.root.render(data, 0, &mut t);
                t.out
            }
            Side::Section(_) => {
                let mut out = Vec::new();
                self.json(data, &mut out);
                String::from_utf8_lossy(&out).into_owned()
            }
            Side::Index => {
                u32::from_le_bytes(data[..4].try_into().expect("4-byte key")).to_string()
            }
            Side::Hex => sys::hex_bytes(data),
        }
    }
}

/// Per-variable decoders of a DATASEC type, or `None` when `tid` is not one.
fn section_side(btf: &Btf, tid: u32) -> Option<Side> {
    let t = btf.get(btf.resolve(tid).ok()?).ok()?;
    let crate::btf::Data::Datasec(vars) = &t.data else {
        return None;
    };
    let mut out = Vec::new();
    for v in vars {
        let var = btf.get(v.type_id).ok()?;
        let d = Decoder::new(btf, var.size_or_type).ok()?;
        out.push((btf.str(var.name_off).to_string(), v.offset as usize, d));
    }
    Some(Side::Section(out))
}

/// What `dump` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpStats {
    pub entries: u64,
}

/// Streams every entry of map `id` to `w`: one JSON array of `{"key":..,"value":..}`
/// (per-CPU maps: `"values":[{"cpu":N,"value":..}]`), or `key: .. value: ..` lines.
/// Read in batches ([`crate::snapshot`]): memory use is one batch, bounded, not the map.
pub fn dump<W: Write>(id: u32, w: &mut W, format: Format) -> Result<DumpStats> {
    let fd = sys::fd_by_id(ObjKind::Map, id)?;
    let info = raw_info(fd.as_fd(), id)?;
    let kind = sys::map_type_name(info.type_);
    let why = match info.type_ {
        RINGBUF | USER_RINGBUF => Some("it is a stream of records; read it with `ebpfctl run`"),
        PERF_EVENT_ARRAY => Some("its values are perf event fds; read it with `ebpfctl run`"),
        QUEUE | STACK => Some("reading would pop its elements"),
        BLOOM_FILTER => Some("it can only be queried for membership"),
        STRUCT_OPS => Some("its value is a kernel struct of function pointers"),
        ARENA => Some("it is memory mapped, not keyed"),
        _ => None,
    };
    if let Some(why) = why {
        return Err(InspectError::NotDumpable { id, kind, why });
    }
    let btf = if info.btf_id != 0 {
        Some(sys::kernel_btf(info.btf_id)?)
    } else {
        None
    };
    let side = |tid: u32, size: u32, what: &str| -> Result<Side> {
        match &btf {
            Some(b) if tid != 0 => {
                if let Some(sec) = section_side(b, tid) {
                    return Ok(sec);
                }
                let d = Decoder::new(b, tid).map_err(|source| InspectError::Decode {
                    what: format!("{what} of map {id}"),
                    source,
                })?;
                // A BTF type that disagrees with the kernel's size would misdecode: use hex.
                if d.size == size as usize {
                    Ok(Side::Btf(d))
                } else {
                    Ok(Side::Hex)
                }
            }
            _ if what == "key" && size == 4 && is_array(info.type_) => Ok(Side::Index),
            _ => Ok(Side::Hex),
        }
    };
    let key_side = side(info.btf_key_type_id, info.key_size, "key")?;
    let val_side = side(info.btf_value_type_id, info.value_size, "value")?;
    let percpu = is_percpu(info.type_);
    let ncpu = if percpu { sys::possible_cpus()? } else { 1 };
    let layout = Layout {
        key_size: info.key_size as usize,
        value_size: info.value_size as usize,
        percpu,
        ncpu,
        max_entries: info.max_entries,
    };
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let out_err = InspectError::Output;
    let json = format == Format::Json;
    if json {
        w.write_all(b"[").map_err(out_err)?;
    }
    let mut entries = 0u64;
    let read = read_map(fd.as_fd(), &layout, &id.to_string(), |k, value| {
        line.clear();
        if json {
            if entries > 0 {
                line.push(b',');
            }
            line.extend_from_slice(b"\n{\"key\":");
            key_side.json(k, &mut line);
            if percpu {
                line.extend_from_slice(b",\"values\":[");
                for (cpu, v) in layout.per_cpu(value).enumerate() {
                    if cpu > 0 {
                        line.push(b',');
                    }
                    line.extend_from_slice(b"{\"cpu\":");
                    line.extend_from_slice(itoa::Buffer::new().format(cpu).as_bytes());
                    line.extend_from_slice(b",\"value\":");
                    val_side.json(v, &mut line);
                    line.push(b'}');
                }
                line.extend_from_slice(b"]}");
            } else {
                line.extend_from_slice(b",\"value\":");
                val_side.json(value, &mut line);
                line.push(b'}');
            }
        } else {
            line.extend_from_slice(b"key: ");
            line.extend_from_slice(key_side.text(k).as_bytes());
            if percpu {
                line.push(b'\n');
                for (cpu, v) in layout.per_cpu(value).enumerate() {
                    line.extend_from_slice(
                        format!("\tcpu{cpu}: {}\n", val_side.text(v)).as_bytes(),
                    );
                }
            } else {
                line.extend_from_slice(b"  value: ");
                line.extend_from_slice(val_side.text(value).as_bytes());
                line.push(b'\n');
            }
        }
        w.write_all(&line)?;
        entries += 1;
        Ok(())
    });
    match read {
        Ok(_) => {}
        Err(ReadError::Visit(e)) => return Err(out_err(e)),
        Err(ReadError::Kernel { op, source }) => {
            return Err(InspectError::sys(
                format!("reading map {id} ({op})"),
                source,
            ))
        }
    }
    if json {
        w.write_all(if entries > 0 { b"\n]\n" } else { b"]\n" })
            .map_err(out_err)?;
    } else {
        writeln!(w, "{entries} entries").map_err(out_err)?;
    }
    w.flush().map_err(out_err)?;
    Ok(DumpStats { entries })
}
