//! Reading a compiled BPF object into an [`ObjectSpec`]: programs, maps with their
//! conventions and types, parameters, license, BTF; and normalising it into bytes libbpf
//! accepts. Never touches the kernel: the same file gives the same spec on every machine.

pub mod btf_ext;
mod elf;
pub mod helpers;
pub mod lines;
mod normalise;
pub mod params;

use std::path::Path;

use crate::btf::{Btf, BtfError, Data, Kind};
use crate::convention::{self, Keyword, KeywordSource};
use crate::load::attach::AttachPoint;
pub use normalise::Normalised;

/// Default `max_entries` for maps that leave it at 0 (see docs/conventions.md).
pub const DEFAULT_MAX_ENTRIES: u32 = 10240;
/// Default ring buffer size in bytes for ring buffers that leave it at 0.
pub const DEFAULT_RINGBUF_BYTES: u32 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("not an ELF file; expected a BPF object compiled with `clang -target bpf -g -c` (or `ebpfctl build`)")]
    NotElf,
    #[error("truncated or corrupt ELF file; rebuild the object")]
    Truncated,
    #[error(
        "ELF object is for {0}, not BPF; compile with `clang -target bpf` (or `ebpfctl build`)"
    )]
    WrongMachine(String),
    #[error("unsupported object: {0}")]
    Unsupported(String),
    #[error("object has no BTF (.BTF section), which {0}; compile with -g (ebpfctl build does)")]
    NoBtf(String),
    #[error("map {map}: {msg}")]
    Map { map: String, msg: String },
    #[error("bad BTF in object: {0}; rebuild the object")]
    Btf(#[from] BtfError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// One program of the object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProgramSpec {
    /// The C function name.
    pub name: String,
    /// The ELF section, e.g. `tracepoint/syscalls/sys_enter_openat`.
    pub section: String,
    /// Size in instructions.
    pub insns: usize,
    /// What the section name asks to attach to.
    pub attach: AttachPoint,
}

/// One map of the object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MapSpec {
    pub name: String,
    pub section: String,
    pub map_type: u32,
    pub keyword: Option<Keyword>,
    pub keyword_source: Option<KeywordSource>,
    /// BTF type ids (in [`ObjectSpec::btf`]) of key and value; for ring buffers and perf
    /// arrays `value_type` is the declared event type, which never reaches the kernel.
    pub key_type: Option<u32>,
    pub value_type: Option<u32>,
    pub key_size: u32,
    pub value_size: u32,
    /// As declared (0 = unset; the loader applies defaults).
    pub max_entries: u32,
    /// Offset of `ebpfctl_lost_<name>` in `.bss`, when the probe counts reserve failures.
    pub lost_counter: Option<usize>,
    /// Pinned by name under /sys/fs/bpf (`__uint(pinning, LIBBPF_PIN_BY_NAME)`).
    pub pinned: bool,
    /// Unit, help text and bucket layout from `ebpfctl:` declaration tags (crate::unit).
    pub meta: crate::unit::MapMeta,
}

impl MapSpec {
    pub fn type_name(&self) -> String {
        convention::map_type_name(self.map_type)
    }
    /// Name for outputs: keyword prefix removed.
    pub fn display_name(&self) -> &str {
        convention::display_name(&self.name)
    }
}

/// A `const volatile` global: settable with `--param NAME=VALUE` before load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParamSpec {
    pub name: String,
    pub type_id: u32,
    pub type_name: String,
    /// Offset within `.rodata` (or the `.rodata.*` section named in `section`).
    pub offset: usize,
    pub size: usize,
    pub section: String,
    #[serde(skip)]
    pub default: Vec<u8>,
}

/// An ELF section, for `inspect`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SectionInfo {
    pub name: String,
    pub size: u64,
    pub executable: bool,
}

/// Everything the runner knows about an object before the kernel sees it.
#[derive(Debug, Clone)]
pub struct ObjectSpec {
    pub programs: Vec<ProgramSpec>,
    pub maps: Vec<MapSpec>,
    pub params: Vec<ParamSpec>,
    pub license: Option<String>,
    pub sections: Vec<SectionInfo>,
    /// The object's BTF after normalisation (type ids unchanged from the file).
    pub btf: Option<Btf>,
    /// The bytes to hand to libbpf.
    pub normalised: Vec<u8>,
    /// What normalisation changed, one line each.
    pub changes: Vec<String>,
    /// Calls to helpers and kfuncs that change the traced system (see [`helpers::UNSAFE`]).
    pub unsafe_calls: Vec<helpers::UnsafeCall>,
    /// Source lines of the programs' instructions as libbpf loads them (from `.BTF.ext`).
    pub lines: lines::SourceLines,
}

impl ObjectSpec {
    pub fn from_path(path: &Path) -> Result<ObjectSpec, ObjectError> {
        let bytes = std::fs::read(path).map_err(|source| ObjectError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&bytes)
    }

    /// Parses and normalises an object.
    pub fn parse(bytes: &[u8]) -> Result<ObjectSpec, ObjectError> {
        let elf = elf::Elf::parse(bytes)?;
        let unsafe_calls = helpers::scan(bytes, &elf);
        let btf = match elf.section(".BTF") {
            Some(s) => {
                let mut btf = Btf::parse(elf.data(bytes, s))?;
                fixup_datasecs(&mut btf, &elf);
                Some(btf)
            }
            None => None,
        };
        // A `.BTF.ext` libbpf cannot use either is ignored (libbpf loads without it too).
        let ext = match (&btf, elf.section(".BTF.ext")) {
            (Some(btf), Some(s)) => btf_ext::BtfExt::parse(elf.data(bytes, s), btf).ok(),
            _ => None,
        };
        let lines = lines::SourceLines::new(bytes, &elf, ext.unwrap_or_default());

        let sections = elf
            .sections
            .iter()
            .filter(|s| !s.name.is_empty())
            .map(|s| SectionInfo {
                name: s.name.clone(),
                size: s.size,
                executable: s.flags & elf::SHF_EXECINSTR != 0,
            })
            .collect();

        // Programs: global functions in executable sections other than .text.
        let mut programs = Vec::new();
        for sym in &elf.symbols {
            if sym.kind() != elf::STT_FUNC || sym.binding() != elf::STB_GLOBAL {
                continue;
            }
            let Some(sec) = elf.sections.get(sym.shndx as usize) else {
                continue;
            };
            if sec.flags & elf::SHF_EXECINSTR == 0 || sec.name == ".text" {
                continue;
            }
            programs.push(ProgramSpec {
                name: sym.name.clone(),
                section: sec.name.clone(),
                insns: (sym.size / 8) as usize,
                attach: AttachPoint::from_section(&sec.name),
            });
        }

        let license = elf.section("license").map(|s| {
            let d = elf.data(bytes, s);
            String::from_utf8_lossy(&d[..d.iter().position(|&b| b == 0).unwrap_or(d.len())])
                .into_owned()
        });

        let norm = normalise::normalise(bytes, &elf, btf)?;
        let btf = norm.btf;
        let maps = norm.maps;
        let params = match &btf {
            Some(b) => params::collect(bytes, &elf, b)?,
            None => Vec::new(),
        };

        // Keyword maps need BTF for their value types.
        for m in &maps {
            if let Some(kw) = m.keyword {
                if btf.is_none() {
                    return Err(ObjectError::NoBtf(format!(
                        "map {} (keyword {kw}) needs to decode its values",
                        m.name
                    )));
                }
                convention::check(kw, m.map_type).map_err(|msg| ObjectError::Map {
                    map: m.name.clone(),
                    msg,
                })?;
                let needs_value = m.value_type.is_none();
                if needs_value {
                    return Err(ObjectError::Map {
                        map: m.name.clone(),
                        msg: format!(
                            "keyword `{kw}` needs a value type: declare it with __type(value, T)"
                        ),
                    });
                }
            }
        }

        // What the `ebpfctl:` tags ask must fit the map.
        for m in &maps {
            check_meta(m).map_err(|msg| ObjectError::Map {
                map: m.name.clone(),
                msg,
            })?;
        }

        Ok(ObjectSpec {
            programs,
            maps,
            params,
            license,
            sections,
            btf,
            normalised: norm.bytes,
            changes: norm.changes,
            unsafe_calls,
            lines,
        })
    }

    pub fn map(&self, name: &str) -> Option<&MapSpec> {
        self.maps.iter().find(|m| m.name == name)
    }
}

/// A bucket layout fits the map kind (bounds for ring-buffer `hist`, slots for key/value maps);
/// a unit is not given to a ring buffer that only counts events.
fn check_meta(m: &MapSpec) -> Result<(), String> {
    use crate::unit::Layout;
    let stream = matches!(
        convention::family(m.map_type),
        convention::MapFamily::RingBuf | convention::MapFamily::PerfArray
    );
    match (&m.meta.buckets, stream) {
        (Some(Layout::Bounds(_)), false) => {
            return Err("`ebpfctl:buckets=` bounds are for ring-buffer hist maps; a key/value map takes `log2` or `linear:WIDTH` (the layout of its slots)".into())
        }
        (Some(Layout::Log2 | Layout::Linear(_)), true) => {
            return Err("`ebpfctl:buckets=log2|linear:` describe the slots of a key/value map; a ring-buffer hist takes bucket bounds (`ebpfctl:buckets=1,5,10`)".into())
        }
        _ => {}
    }
    if stream
        && m.keyword == Some(Keyword::Counter)
        && m.meta.unit.is_some_and(|u| u.base().is_some())
    {
        return Err(format!(
            "`ebpfctl:unit={}` on a counter ring buffer, which counts events (a number, no unit): remove the tag, or make the map a `hist` of the member",
            m.meta.unit.map(|u| u.as_str()).unwrap_or("")
        ));
    }
    Ok(())
}

/// clang leaves data-section sizes and variable offsets at 0 in BTF (the linker or libbpf fills
/// them in): take them from the ELF section headers and symbols, as libbpf does, so parameters
/// and counters are found where they really are.
fn fixup_datasecs(btf: &mut Btf, elf: &elf::Elf) {
    let ids: Vec<u32> = btf
        .iter()
        .filter(|(_, t)| t.kind == Kind::Datasec)
        .map(|(id, _)| id)
        .collect();
    for id in ids {
        let (name, vars) = match btf.get(id) {
            Ok(t) => match &t.data {
                Data::Datasec(v) => (btf.str(t.name_off).to_string(), v.clone()),
                _ => continue,
            },
            Err(_) => continue,
        };
        // Extern sections (.kconfig, .ksyms) have no ELF section: libbpf lays them out.
        let Some(sec) = elf.section(&name) else {
            continue;
        };
        let fixed: Vec<_> = vars
            .iter()
            .map(|v| {
                let var_name = btf.name(v.type_id);
                let sym = elf
                    .symbols
                    .iter()
                    .find(|y| y.name == var_name && y.shndx as usize == sec.index);
                crate::btf::VarSecInfo {
                    offset: sym.map_or(v.offset, |y| y.value as u32),
                    ..v.clone()
                }
            })
            .collect();
        if let Ok(t) = btf.get_mut(id) {
            if t.size_or_type == 0 {
                t.size_or_type = sec.size as u32;
            }
            t.data = Data::Datasec(fixed);
        }
    }
}

/// The fields of a BTF map definition (`struct { __uint(type, ...); ... } name SEC(".maps")`).
#[derive(Debug, Default, Clone)]
pub(crate) struct MapDef {
    pub map_type: u32,
    pub max_entries: u32,
    pub key_type: Option<u32>,
    pub value_type: Option<u32>,
    pub key_size: u32,
    pub value_size: u32,
    pub pinning: u32,
}

/// Reads a BTF map definition struct.
pub(crate) fn read_map_def(btf: &Btf, struct_id: u32) -> MapDef {
    let mut def = MapDef::default();
    // `__uint(name, N)` is `int (*name)[N]`; `__type(name, T)` is `T *name`.
    let uint = |id: u32| -> u32 {
        let Ok(p) = btf.get(id) else { return 0 };
        if p.kind != Kind::Ptr {
            return 0;
        }
        match btf.get(p.size_or_type) {
            Ok(t) => match t.data {
                Data::Array { len, .. } => len,
                _ => 0,
            },
            Err(_) => 0,
        }
    };
    let pointee = |id: u32| -> Option<u32> {
        btf.get(id)
            .ok()
            .filter(|t| t.kind == Kind::Ptr)
            .map(|t| t.size_or_type)
    };
    for m in btf.members(struct_id) {
        match btf.str(m.name_off) {
            "type" => def.map_type = uint(m.type_id),
            "max_entries" => def.max_entries = uint(m.type_id),
            "key_size" => def.key_size = uint(m.type_id),
            "value_size" => def.value_size = uint(m.type_id),
            "pinning" => def.pinning = uint(m.type_id),
            "key" => def.key_type = pointee(m.type_id),
            "value" => def.value_type = pointee(m.type_id),
            _ => {}
        }
    }
    if let Some(k) = def.key_type {
        def.key_size = btf.size_of(k).unwrap_or(0) as u32;
    }
    if let Some(v) = def.value_type {
        def.value_size = btf.size_of(v).unwrap_or(0) as u32;
    }
    def
}
