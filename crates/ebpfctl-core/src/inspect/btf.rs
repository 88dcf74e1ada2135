//! BTF: `btf list`, `btf dump (vmlinux | file PATH | id N) --format c|raw`.
//!
//! `--format c` goes through libbpf's own `btf_dump` (via `ebpfctl_build::dump_c`), so the
//! header is the same `vmlinux.h` CO-RE probes are built against; BTF from a file is validated
//! first. `--format raw` lists every type record, parsed by [`crate::btf`], even of BTF that
//! fails validation.
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ebpfctl_build::{BtfSource, VMLINUX_BTF};
use serde::Serialize;
use serde_json::{json, Value};

use super::print::{self, Format, Table};
use super::sys::{self, ObjKind};
use super::{InspectError, Result};
use crate::btf::{Btf, Data, Kind, INT_BOOL, INT_CHAR, INT_SIGNED};

/// Where the BTF to dump comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtfTarget {
    /// The running kernel's, `/sys/kernel/btf/vmlinux`.
    Vmlinux,
    /// A raw BTF file or an ELF object with a `.BTF` section.
    File(PathBuf),
    /// A BTF object loaded in the kernel (module BTF is split on top of vmlinux).
    Id(u32),
}

impl std::fmt::Display for BtfTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BtfTarget::Vmlinux => write!(f, "{VMLINUX_BTF}"),
            BtfTarget::File(p) => write!(f, "{}", p.display()),
            BtfTarget::Id(id) => write!(f, "BTF object {id}"),
        }
    }
}

/// Writes a C header of every type (libbpf's dumper, CO-RE attributes on) to `w`.
///
/// libbpf's dumper trusts the BTF it is given and crashes on malformed types, so the BTF of
/// a file is read and validated here ([`Btf::parse`]) and handed over from memory; the
/// kernel's own (vmlinux, loaded objects) comes from the kernel, which validated it.
pub fn dump_c<W: Write>(target: &BtfTarget, w: &mut W) -> Result<()> {
    let vmlinux = Path::new(VMLINUX_BTF);
    if *target == BtfTarget::Vmlinux && !vmlinux.exists() {
        return Err(InspectError::sys(
            format!("reading {VMLINUX_BTF}"),
            io::Error::new(
                io::ErrorKind::NotFound,
                "the kernel was built without CONFIG_DEBUG_INFO_BTF",
            ),
        ));
    }
    let file_btf = match target {
        BtfTarget::File(p) => {
            let raw = file_bytes(p)?;
            Btf::parse(&raw).map_err(|source| InspectError::Btf {
                what: target.to_string(),
                source,
            })?;
            Some(raw)
        }
        _ => None,
    };
    let split = match target {
        BtfTarget::Id(id) => {
            let i = sys::btf_info(*id)?;
            i.kernel && i.name != "vmlinux"
        }
        _ => false,
    };
    let src = match (target, &file_btf) {
        (_, Some(raw)) => BtfSource::Raw(raw),
        (BtfTarget::Id(id), _) => BtfSource::KernelId {
            id: *id,
            base: split.then_some(vmlinux),
        },
        _ => BtfSource::File {
            path: vmlinux,
            base: None,
        },
    };
    match ebpfctl_build::dump_c(&src, w) {
        Err(ebpfctl_build::BuildError::Write(e)) => Err(InspectError::Output(e)),
        other => other.map_err(InspectError::from),
    }
}

/// The raw BTF of a file: the file itself, or the `.BTF` section of an ELF object.
fn file_bytes(p: &Path) -> Result<Vec<u8>> {
    let data =
        std::fs::read(p).map_err(|e| InspectError::sys(format!("reading {}", p.display()), e))?;
    if data.starts_with(b"\x7fELF") {
        elf_btf(&data).map_err(|why| {
            InspectError::sys(
                format!("reading {}", p.display()),
                io::Error::new(io::ErrorKind::InvalidData, why),
            )
        })
    } else if data.starts_with(&[0x9f, 0xeb]) {
        Ok(data)
    } else {
        Err(InspectError::sys(
            format!("reading {}", p.display()),
            io::Error::new(
                io::ErrorKind::InvalidData,
                "neither raw BTF (magic 0xeb9f) nor an ELF object with a .BTF section",
            ),
        ))
    }
}

fn target_bytes(target: &BtfTarget) -> Result<Vec<u8>> {
    Ok(match target {
        BtfTarget::Vmlinux => std::fs::read(VMLINUX_BTF).map_err(|e| {
            InspectError::sys(
                format!("reading {VMLINUX_BTF} (kernel built without CONFIG_DEBUG_INFO_BTF?)"),
                e,
            )
        })?,
        BtfTarget::File(p) => file_bytes(p)?,
        BtfTarget::Id(id) => {
            let (raw, split) = sys::kernel_btf_raw(*id)?;
            if split {
                return Err(InspectError::sys(
                    format!("BTF object {id}"),
                    io::Error::new(
                        io::ErrorKind::Unsupported,
                        "it is module BTF split on top of vmlinux; only --format c reads it",
                    ),
                ));
            }
            raw
        }
    })
}

/// Parses and validates the BTF of a target (not split module BTF).
pub fn load(target: &BtfTarget) -> Result<Btf> {
    Btf::parse(&target_bytes(target)?).map_err(|source| InspectError::Btf {
        what: target.to_string(),
        source,
    })
}

/// Reads the type records of a target as they are, for `--format raw`, with what validation
/// found wrong, if anything: malformed BTF can be looked at, only not walked.
pub fn load_records(target: &BtfTarget) -> Result<(Btf, Option<InspectError>)> {
    let btf = Btf::parse_records(&target_bytes(target)?).map_err(|source| InspectError::Btf {
        what: target.to_string(),
        source,
    })?;
    let problem = btf.validate().err().map(|source| InspectError::Btf {
        what: target.to_string(),
        source,
    });
    Ok((btf, problem))
}

/// The `.BTF` section of an ELF file, or why there is none: a file that does not parse, or
/// whose section lies past its end, is truncated or corrupt (not a build without -g).
fn elf_btf(data: &[u8]) -> std::result::Result<Vec<u8>, &'static str> {
    use object::{Object, ObjectSection};
    const CORRUPT: &str = "truncated or corrupt ELF file; rebuild it or copy it again";
    let f = object::File::parse(data).map_err(|_| CORRUPT)?;
    let s = f
        .section_by_name(".BTF")
        .ok_or("this ELF file has no .BTF section (compile with -g)")?;
    Ok(s.data().map_err(|_| CORRUPT)?.to_vec())
}

fn int_encoding(e: u8) -> &'static str {
    if e & INT_BOOL != 0 {
        "BOOL"
    } else if e & INT_CHAR != 0 {
        "CHAR"
    } else if e & INT_SIGNED != 0 {
        "SIGNED"
    } else {
        "(none)"
    }
}

/// One type record as JSON: `{"id","kind","name",...}` with kind-specific fields.
pub fn type_json(btf: &Btf, id: u32) -> Value {
    let Ok(t) = btf.get(id) else {
        return Value::Null;
    };
    let mut v = json!({"id": id, "kind": t.kind.name(), "name": btf.str(t.name_off)});
    let o = v.as_object_mut().expect("object");
    match (&t.kind, &t.data) {
        (
            Kind::Int,
            Data::Int {
                encoding,
                bit_offset,
                bits,
            },
        ) => {
            o.insert("size".into(), json!(t.size_or_type));
            o.insert("bits_offset".into(), json!(bit_offset));
            o.insert("nr_bits".into(), json!(bits));
            o.insert("encoding".into(), json!(int_encoding(*encoding)));
        }
        (Kind::Array, Data::Array { elem, index, len }) => {
            o.insert("type_id".into(), json!(elem));
            o.insert("index_type_id".into(), json!(index));
            o.insert("nr_elems".into(), json!(len));
        }
        (Kind::Struct | Kind::Union, Data::Members(ms)) => {
            o.insert("size".into(), json!(t.size_or_type));
            let members: Vec<Value> = ms
                .iter()
                .map(|m| {
                    let mut mv = json!({"name": btf.str(m.name_off), "type_id": m.type_id, "bits_offset": m.bit_offset});
                    if m.bitfield_size != 0 {
                        mv["bitfield_size"] = json!(m.bitfield_size);
                    }
                    mv
                })
                .collect();
            o.insert("members".into(), Value::Array(members));
        }
        (Kind::Enum | Kind::Enum64, Data::Enum(vs)) => {
            o.insert("size".into(), json!(t.size_or_type));
            o.insert("signed".into(), json!(t.kind_flag));
            let values: Vec<Value> = vs
                .iter()
                .map(|e| json!({"name": btf.str(e.name_off), "val": e.value}))
                .collect();
            o.insert("values".into(), Value::Array(values));
        }
        (Kind::FuncProto, Data::Params(ps)) => {
            o.insert("ret_type_id".into(), json!(t.size_or_type));
            let params: Vec<Value> = ps
                .iter()
                .map(|p| json!({"name": btf.str(p.name_off), "type_id": p.type_id}))
                .collect();
            o.insert("params".into(), Value::Array(params));
        }
        (Kind::Func, _) => {
            o.insert("type_id".into(), json!(t.size_or_type));
            o.insert(
                "linkage".into(),
                json!(match t.vlen_extra {
                    0 => "static",
                    1 => "global",
                    _ => "extern",
                }),
            );
        }
        (Kind::Var, Data::Var { linkage }) => {
            o.insert("type_id".into(), json!(t.size_or_type));
            o.insert(
                "linkage".into(),
                json!(match linkage {
                    0 => "static",
                    1 => "global-alloc",
                    _ => "extern",
                }),
            );
        }
        (Kind::Datasec, Data::Datasec(vs)) => {
            o.insert("size".into(), json!(t.size_or_type));
            let vars: Vec<Value> = vs
                .iter()
                .map(|s| json!({"type_id": s.type_id, "offset": s.offset, "size": s.size}))
                .collect();
            o.insert("vars".into(), Value::Array(vars));
        }
        (Kind::Float, _) => {
            o.insert("size".into(), json!(t.size_or_type));
        }
        (Kind::Fwd, _) => {
            o.insert(
                "fwd_kind".into(),
                json!(if t.kind_flag { "union" } else { "struct" }),
            );
        }
        (Kind::DeclTag, Data::DeclTag { component_idx }) => {
            o.insert("type_id".into(), json!(t.size_or_type));
            o.insert("component_idx".into(), json!(component_idx));
        }
        _ => {
            o.insert("type_id".into(), json!(t.size_or_type));
        }
    }
    v
}

/// One type record as text: `[12] STRUCT 'event' size=24 vlen=3` then indented members.
pub fn type_text(btf: &Btf, id: u32) -> String {
    let v = type_json(btf, id);
    let mut s = format!(
        "[{id}] {} '{}'",
        v["kind"].as_str().unwrap_or("?").to_uppercase(),
        v["name"].as_str().unwrap_or("")
    );
    let scalar = |s: &mut String, k: &str| match &v[k] {
        Value::Null => {}
        Value::String(x) => *s += &format!(" {k}={x}"),
        other => *s += &format!(" {k}={other}"),
    };
    for k in [
        "size",
        "type_id",
        "ret_type_id",
        "index_type_id",
        "nr_elems",
        "bits_offset",
        "nr_bits",
        "encoding",
        "linkage",
        "signed",
        "fwd_kind",
        "component_idx",
    ] {
        scalar(&mut s, k);
    }
    for list in ["members", "values", "params", "vars"] {
        let Some(items) = v[list].as_array() else {
            continue;
        };
        s += &format!(" vlen={}", items.len());
        for it in items {
            s.push_str("\n\t");
            if let Some(n) = it.get("name").and_then(Value::as_str) {
                s += &format!("'{n}'");
            }
            for k in [
                "type_id",
                "bits_offset",
                "bitfield_size",
                "val",
                "offset",
                "size",
            ] {
                match it.get(k) {
                    Some(Value::String(x)) => s += &format!(" {k}={x}"),
                    Some(x) => s += &format!(" {k}={x}"),
                    None => {}
                }
            }
        }
    }
    s
}

/// Streams every type of `btf` to `w`: a JSON array (one record per line) or text lines.
pub fn dump_raw<W: Write>(btf: &Btf, w: &mut W, format: Format) -> Result<()> {
    let e = InspectError::Output;
    if format == Format::Json {
        w.write_all(b"[").map_err(e)?;
        for (id, _) in btf.iter() {
            if id > 1 {
                w.write_all(b",").map_err(e)?;
            }
            w.write_all(b"\n").map_err(e)?;
            serde_json::to_writer(&mut *w, &type_json(btf, id))
                .map_err(|x| e(io::Error::other(x)))?;
        }
        w.write_all(b"\n]\n").map_err(e)?;
    } else {
        for (id, _) in btf.iter() {
            writeln!(w, "{}", type_text(btf, id)).map_err(e)?;
        }
    }
    w.flush().map_err(e)
}

/// One BTF object loaded in the kernel.
#[derive(Debug, Clone, Serialize)]
pub struct BtfObject {
    pub id: u32,
    /// `vmlinux`, a module name, or empty for a program's own BTF.
    pub name: String,
    pub size: u32,
    /// True for the kernel's and modules' BTF.
    pub kernel: bool,
}

/// Every BTF object loaded in the kernel.
pub fn list() -> Result<Vec<BtfObject>> {
    let mut out = Vec::new();
    for id in sys::all_ids(ObjKind::Btf)? {
        match sys::btf_info(id) {
            Ok(i) => out.push(BtfObject {
                id,
                name: i.name,
                size: i.size,
                kernel: i.kernel,
            }),
            Err(InspectError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

pub fn print_list<W: Write>(w: &mut W, objs: &[BtfObject], format: Format) -> io::Result<()> {
    if format == Format::Json {
        return print::json(w, objs);
    }
    let mut t = Table::new(&["ID", "NAME", ">SIZE", "KIND"]);
    for o in objs {
        t.row(vec![
            o.id.to_string(),
            if o.name.is_empty() {
                "-".into()
            } else {
                o.name.clone()
            },
            print::bytes(u64::from(o.size)),
            if o.kernel { "kernel" } else { "program" }.into(),
        ]);
    }
    t.write(w)
}
