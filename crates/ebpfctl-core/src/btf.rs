//! BTF: parsing, querying and re-encoding the type section of a BPF object, a kernel map or
//! `/sys/kernel/btf/vmlinux`. Pure Rust, no kernel: the same bytes give the same result on
//! every machine. Re-encoding lets the object normaliser rewrite map definitions.
//!
//! Format: Documentation/bpf/btf.rst in the kernel tree (header, type records, string table).

use std::collections::HashMap;

mod validate;
pub use validate::MAX_DEPTH;

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("BTF is truncated at byte {0}")]
    Truncated(usize),
    #[error("not BTF (magic {0:#06x}; big-endian BTF is not supported)")]
    BadMagic(u16),
    #[error("unknown BTF kind {kind} at type id {id}")]
    UnknownKind { kind: u32, id: u32 },
    #[error("BTF type id {0} does not exist")]
    NoType(u32),
    #[error("BTF string offset {0} is outside the string table")]
    BadString(u32),
    #[error("bad BTF header: {0}")]
    BadHeader(String),
    #[error("the BTF string table does not start and end with a NUL byte")]
    BadStringTable,
    #[error("BTF type id {id} ({kind}): {reason}")]
    Invalid {
        id: u32,
        kind: &'static str,
        reason: String,
    },
}

/// BTF kinds, numbered as in `include/uapi/linux/btf.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    Void = 0,
    Int = 1,
    Ptr = 2,
    Array = 3,
    Struct = 4,
    Union = 5,
    Enum = 6,
    Fwd = 7,
    Typedef = 8,
    Volatile = 9,
    Const = 10,
    Restrict = 11,
    Func = 12,
    FuncProto = 13,
    Var = 14,
    Datasec = 15,
    Float = 16,
    DeclTag = 17,
    TypeTag = 18,
    Enum64 = 19,
}

impl Kind {
    fn from_u32(k: u32) -> Option<Kind> {
        use Kind::*;
        Some(match k {
            1 => Int,
            2 => Ptr,
            3 => Array,
            4 => Struct,
            5 => Union,
            6 => Enum,
            7 => Fwd,
            8 => Typedef,
            9 => Volatile,
            10 => Const,
            11 => Restrict,
            12 => Func,
            13 => FuncProto,
            14 => Var,
            15 => Datasec,
            16 => Float,
            17 => DeclTag,
            18 => TypeTag,
            19 => Enum64,
            _ => return None,
        })
    }

    /// Lower-case name as bpftool prints it.
    pub fn name(self) -> &'static str {
        use Kind::*;
        match self {
            Void => "void",
            Int => "int",
            Ptr => "ptr",
            Array => "array",
            Struct => "struct",
            Union => "union",
            Enum => "enum",
            Fwd => "fwd",
            Typedef => "typedef",
            Volatile => "volatile",
            Const => "const",
            Restrict => "restrict",
            Func => "func",
            FuncProto => "func_proto",
            Var => "var",
            Datasec => "datasec",
            Float => "float",
            DeclTag => "decl_tag",
            TypeTag => "type_tag",
            Enum64 => "enum64",
        }
    }
}

/// A struct/union member. `bit_offset` from the start of the aggregate; `bitfield_size` 0
/// for a plain member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name_off: u32,
    pub type_id: u32,
    pub bit_offset: u32,
    pub bitfield_size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    pub name_off: u32,
    pub value: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name_off: u32,
    pub type_id: u32,
}

/// A variable placed in a data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarSecInfo {
    pub type_id: u32,
    pub offset: u32,
    pub size: u32,
}

/// Kind-specific data following the common record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    None,
    Int {
        encoding: u8,
        bit_offset: u8,
        bits: u8,
    },
    Array {
        elem: u32,
        index: u32,
        len: u32,
    },
    Members(Vec<Member>),
    Enum(Vec<EnumValue>),
    Params(Vec<Param>),
    Var {
        linkage: u32,
    },
    Datasec(Vec<VarSecInfo>),
    DeclTag {
        component_idx: i32,
    },
}

/// `BTF_INT_SIGNED`, `BTF_INT_CHAR`, `BTF_INT_BOOL`.
pub const INT_SIGNED: u8 = 1;
pub const INT_CHAR: u8 = 2;
pub const INT_BOOL: u8 = 4;

/// One type record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    pub name_off: u32,
    pub kind: Kind,
    pub kind_flag: bool,
    /// `vlen` for kinds without members (FUNC keeps its linkage here).
    pub vlen_extra: u16,
    /// Size for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT; referenced type id for the others.
    pub size_or_type: u32,
    pub data: Data,
}

/// A parsed BTF blob: types (id 1..) and the string table.
#[derive(Debug, Clone)]
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
    /// Interned string offsets, built lazily by `add_string`.
    string_index: HashMap<String, u32>,
    /// Ids of named types, by name.
    by_name: HashMap<String, Vec<u32>>,
}

fn rd_u32(b: &[u8], at: usize) -> Result<u32, BtfError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
        .ok_or(BtfError::Truncated(at))
}

impl Btf {
    /// Parses and validates a raw BTF blob (the `.BTF` section, a kernel BTF object, or
    /// `/sys/kernel/btf/vmlinux`): see [`Btf::validate`]. What it returns is safe to walk, by
    /// us or by libbpf.
    pub fn parse(raw: &[u8]) -> Result<Btf, BtfError> {
        let btf = Self::parse_records(raw)?;
        btf.validate()?;
        Ok(btf)
    }

    /// Reads the type records without checking what they refer to, for showing broken BTF as
    /// it is (`btf dump --format raw`). Only [`Btf::get`], [`Btf::iter`] and [`Btf::str`] are
    /// safe on the result: sizes, names and decoders may not terminate.
    pub fn parse_records(raw: &[u8]) -> Result<Btf, BtfError> {
        if raw.len() < HEADER_LEN {
            return Err(BtfError::Truncated(raw.len()));
        }
        let magic = u16::from_le_bytes([raw[0], raw[1]]);
        if magic != MAGIC {
            return Err(BtfError::BadMagic(magic));
        }
        if raw[2] != 1 {
            return Err(BtfError::BadHeader(format!(
                "version {} (only version 1 exists)",
                raw[2]
            )));
        }
        let hdr_len = rd_u32(raw, 4)? as usize;
        if hdr_len < HEADER_LEN {
            return Err(BtfError::BadHeader(format!(
                "header length {hdr_len} (at least {HEADER_LEN})"
            )));
        }
        let type_off = rd_u32(raw, 8)? as usize;
        let type_len = rd_u32(raw, 12)? as usize;
        let str_off = rd_u32(raw, 16)? as usize;
        let str_len = rd_u32(raw, 20)? as usize;
        if !type_off.is_multiple_of(4) || !type_len.is_multiple_of(4) {
            return Err(BtfError::BadHeader(format!(
                "type section at {type_off}, {type_len} bytes: not 4-byte aligned"
            )));
        }
        let ts = hdr_len + type_off;
        let ss = hdr_len + str_off;
        let tbytes = raw
            .get(ts..ts + type_len)
            .ok_or(BtfError::Truncated(ts + type_len))?;
        let strings = raw
            .get(ss..ss + str_len)
            .ok_or(BtfError::Truncated(ss + str_len))?
            .to_vec();

        let mut types = Vec::new();
        let mut p = 0usize;
        while p < tbytes.len() {
            let id = types.len() as u32 + 1;
            let name_off = rd_u32(tbytes, p)?;
            let info = rd_u32(tbytes, p + 4)?;
            let size_or_type = rd_u32(tbytes, p + 8)?;
            p += 12;
            let vlen = (info & 0xffff) as usize;
            let kind_raw = (info >> 24) & 0x1f;
            let kind =
                Kind::from_u32(kind_raw).ok_or(BtfError::UnknownKind { kind: kind_raw, id })?;
            let kind_flag = info >> 31 == 1;
            let mut vlen_extra = 0u16;
            let data = match kind {
                Kind::Int => {
                    let v = rd_u32(tbytes, p)?;
                    p += 4;
                    Data::Int {
                        encoding: ((v >> 24) & 0xf) as u8,
                        bit_offset: ((v >> 16) & 0xff) as u8,
                        bits: (v & 0xff) as u8,
                    }
                }
                Kind::Array => {
                    let d = Data::Array {
                        elem: rd_u32(tbytes, p)?,
                        index: rd_u32(tbytes, p + 4)?,
                        len: rd_u32(tbytes, p + 8)?,
                    };
                    p += 12;
                    d
                }
                Kind::Struct | Kind::Union => {
                    let mut m = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let off = rd_u32(tbytes, p + 8)?;
                        let (bit_offset, bitfield_size) = if kind_flag {
                            (off & 0xff_ffff, off >> 24)
                        } else {
                            (off, 0)
                        };
                        m.push(Member {
                            name_off: rd_u32(tbytes, p)?,
                            type_id: rd_u32(tbytes, p + 4)?,
                            bit_offset,
                            bitfield_size,
                        });
                        p += 12;
                    }
                    Data::Members(m)
                }
                Kind::Enum => {
                    let mut v = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let raw = rd_u32(tbytes, p + 4)?;
                        let value = if kind_flag {
                            i64::from(raw as i32)
                        } else {
                            i64::from(raw)
                        };
                        v.push(EnumValue {
                            name_off: rd_u32(tbytes, p)?,
                            value,
                        });
                        p += 8;
                    }
                    Data::Enum(v)
                }
                Kind::Enum64 => {
                    let mut v = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        let lo = u64::from(rd_u32(tbytes, p + 4)?);
                        let hi = u64::from(rd_u32(tbytes, p + 8)?);
                        v.push(EnumValue {
                            name_off: rd_u32(tbytes, p)?,
                            value: ((hi << 32) | lo) as i64,
                        });
                        p += 12;
                    }
                    Data::Enum(v)
                }
                Kind::FuncProto => {
                    let mut v = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        v.push(Param {
                            name_off: rd_u32(tbytes, p)?,
                            type_id: rd_u32(tbytes, p + 4)?,
                        });
                        p += 8;
                    }
                    Data::Params(v)
                }
                Kind::Var => {
                    let d = Data::Var {
                        linkage: rd_u32(tbytes, p)?,
                    };
                    p += 4;
                    d
                }
                Kind::Datasec => {
                    let mut v = Vec::with_capacity(vlen);
                    for _ in 0..vlen {
                        v.push(VarSecInfo {
                            type_id: rd_u32(tbytes, p)?,
                            offset: rd_u32(tbytes, p + 4)?,
                            size: rd_u32(tbytes, p + 8)?,
                        });
                        p += 12;
                    }
                    Data::Datasec(v)
                }
                Kind::DeclTag => {
                    let d = Data::DeclTag {
                        component_idx: rd_u32(tbytes, p)? as i32,
                    };
                    p += 4;
                    d
                }
                _ => {
                    vlen_extra = vlen as u16;
                    Data::None
                }
            };
            types.push(Type {
                name_off,
                kind,
                kind_flag,
                vlen_extra,
                size_or_type,
                data,
            });
        }
        let mut btf = Btf {
            types,
            strings,
            string_index: HashMap::new(),
            by_name: HashMap::new(),
        };
        btf.index_names();
        Ok(btf)
    }

    fn index_names(&mut self) {
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, t) in self.types.iter().enumerate() {
            if t.name_off != 0 {
                if let Some(n) = self.str_at(t.name_off) {
                    by_name.entry(n.to_string()).or_default().push(i as u32 + 1);
                }
            }
        }
        self.by_name = by_name;
    }

    /// Number of types, not counting void (id 0).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The type with `id` (1-based; 0 is void and has no record).
    pub fn get(&self, id: u32) -> Result<&Type, BtfError> {
        id.checked_sub(1)
            .and_then(|i| self.types.get(i as usize))
            .ok_or(BtfError::NoType(id))
    }

    pub fn get_mut(&mut self, id: u32) -> Result<&mut Type, BtfError> {
        id.checked_sub(1)
            .and_then(|i| self.types.get_mut(i as usize))
            .ok_or(BtfError::NoType(id))
    }

    /// Iterates `(id, type)`.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Type)> {
        self.types
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32 + 1, t))
    }

    fn str_at(&self, off: u32) -> Option<&str> {
        let s = self.strings.get(off as usize..)?;
        let end = s.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&s[..end]).ok()
    }

    /// The string at `off` ("" when out of range).
    pub fn str(&self, off: u32) -> &str {
        self.str_at(off).unwrap_or("")
    }

    /// The name of type `id` ("" for anonymous types and void).
    pub fn name(&self, id: u32) -> &str {
        self.get(id).map(|t| self.str(t.name_off)).unwrap_or("")
    }

    /// Ids of types with this name and kind.
    pub fn find(&self, name: &str, kind: Kind) -> impl Iterator<Item = u32> + '_ {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&id| self.get(id).is_ok_and(|t| t.kind == kind))
    }

    /// Follows typedefs and qualifiers (const, volatile, restrict, type tags) to the real type.
    pub fn resolve(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..64 {
            if id == 0 {
                return Ok(0);
            }
            let t = self.get(id)?;
            match t.kind {
                Kind::Typedef | Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => {
                    id = t.size_or_type
                }
                _ => return Ok(id),
            }
        }
        Ok(id)
    }

    /// Size in bytes of type `id`.
    pub fn size_of(&self, id: u32) -> Result<u64, BtfError> {
        let id = self.resolve(id)?;
        if id == 0 {
            return Ok(0);
        }
        let t = self.get(id)?;
        Ok(match (&t.kind, &t.data) {
            (Kind::Ptr, _) => 8,
            (Kind::Array, Data::Array { elem, len, .. }) => self.size_of(*elem)? * u64::from(*len),
            (
                Kind::Int
                | Kind::Struct
                | Kind::Union
                | Kind::Enum
                | Kind::Enum64
                | Kind::Float
                | Kind::Datasec,
                _,
            ) => u64::from(t.size_or_type),
            _ => 0,
        })
    }

    /// Human spelling of a type, e.g. `struct event`, `u32`, `char[16]`, `struct x *`.
    pub fn type_name(&self, id: u32) -> String {
        let Ok(t) = self.get(id) else {
            return "void".into();
        };
        let n = self.str(t.name_off);
        match (&t.kind, &t.data) {
            (Kind::Struct | Kind::Union | Kind::Enum | Kind::Enum64 | Kind::Fwd, _) => {
                let kw = match t.kind {
                    Kind::Union => "union",
                    Kind::Enum | Kind::Enum64 => "enum",
                    Kind::Fwd if t.kind_flag => "union",
                    _ => "struct",
                };
                if n.is_empty() {
                    format!("{kw} <anon>")
                } else {
                    format!("{kw} {n}")
                }
            }
            (Kind::Ptr, _) => format!("{} *", self.type_name(t.size_or_type)),
            (Kind::Array, Data::Array { elem, len, .. }) => {
                format!("{}[{len}]", self.type_name(*elem))
            }
            (Kind::Const, _) => format!("const {}", self.type_name(t.size_or_type)),
            (Kind::Volatile, _) => format!("volatile {}", self.type_name(t.size_or_type)),
            _ if !n.is_empty() => n.to_string(),
            _ => t.kind.name().to_string(),
        }
    }

    /// Interns `s` in the string table and returns its offset.
    pub fn add_string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if self.string_index.is_empty() {
            let mut off = 0usize;
            for part in self.strings.split(|&b| b == 0) {
                if let Ok(p) = std::str::from_utf8(part) {
                    self.string_index.entry(p.to_string()).or_insert(off as u32);
                }
                off += part.len() + 1;
            }
        }
        if let Some(&off) = self.string_index.get(s) {
            return off;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        self.string_index.insert(s.to_string(), off);
        off
    }

    /// Encodes back into a raw blob (little-endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut t = Vec::new();
        let put = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
        for ty in &self.types {
            let vlen = match &ty.data {
                Data::Members(m) => m.len(),
                Data::Enum(v) => v.len(),
                Data::Params(v) => v.len(),
                Data::Datasec(v) => v.len(),
                _ => ty.vlen_extra as usize,
            } as u32;
            let info = (vlen & 0xffff) | ((ty.kind as u32) << 24) | (u32::from(ty.kind_flag) << 31);
            put(&mut t, ty.name_off);
            put(&mut t, info);
            put(&mut t, ty.size_or_type);
            match &ty.data {
                Data::None => {}
                Data::Int {
                    encoding,
                    bit_offset,
                    bits,
                } => put(
                    &mut t,
                    (u32::from(*encoding) << 24)
                        | (u32::from(*bit_offset) << 16)
                        | u32::from(*bits),
                ),
                Data::Array { elem, index, len } => {
                    put(&mut t, *elem);
                    put(&mut t, *index);
                    put(&mut t, *len);
                }
                Data::Members(ms) => {
                    for m in ms {
                        put(&mut t, m.name_off);
                        put(&mut t, m.type_id);
                        put(
                            &mut t,
                            if ty.kind_flag {
                                (m.bitfield_size << 24) | m.bit_offset
                            } else {
                                m.bit_offset
                            },
                        );
                    }
                }
                Data::Enum(vs) => {
                    for v in vs {
                        put(&mut t, v.name_off);
                        put(&mut t, v.value as u32);
                        if ty.kind == Kind::Enum64 {
                            put(&mut t, (v.value as u64 >> 32) as u32);
                        }
                    }
                }
                Data::Params(ps) => {
                    for p in ps {
                        put(&mut t, p.name_off);
                        put(&mut t, p.type_id);
                    }
                }
                Data::Var { linkage } => put(&mut t, *linkage),
                Data::Datasec(vs) => {
                    for v in vs {
                        put(&mut t, v.type_id);
                        put(&mut t, v.offset);
                        put(&mut t, v.size);
                    }
                }
                Data::DeclTag { component_idx } => put(&mut t, *component_idx as u32),
            }
        }
        let mut out = Vec::with_capacity(HEADER_LEN + t.len() + self.strings.len());
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(1); // version
        out.push(0); // flags
        put(&mut out, HEADER_LEN as u32);
        put(&mut out, 0);
        put(&mut out, t.len() as u32);
        put(&mut out, t.len() as u32);
        put(&mut out, self.strings.len() as u32);
        out.extend_from_slice(&t);
        out.extend_from_slice(&self.strings);
        out
    }

    /// The members of a struct or union (after resolving typedefs), or an empty slice.
    pub fn members(&self, id: u32) -> &[Member] {
        match self.resolve(id).and_then(|id| self.get(id)) {
            Ok(Type {
                data: Data::Members(m),
                ..
            }) => m,
            _ => &[],
        }
    }

    /// The chain of typedef names from `id` down to the real type, outermost first.
    pub fn typedef_names(&self, mut id: u32) -> Vec<&str> {
        let mut names = Vec::new();
        for _ in 0..64 {
            let Ok(t) = self.get(id) else { break };
            match t.kind {
                Kind::Typedef => names.push(self.str(t.name_off)),
                Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => {}
                _ => break,
            }
            id = t.size_or_type;
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_kernel_btf() {
        let raw = std::fs::read("/sys/kernel/btf/vmlinux")
            .expect("kernel BTF at /sys/kernel/btf/vmlinux");
        let btf = Btf::parse(&raw).unwrap();
        assert!(btf.len() > 10_000);
        let ts = btf
            .find("task_struct", Kind::Struct)
            .next()
            .expect("task_struct");
        assert!(btf.size_of(ts).unwrap() > 1000);
        assert!(btf
            .members(ts)
            .iter()
            .any(|m| btf.str(m.name_off) == "tgid"));
        let again = Btf::parse(&btf.encode()).unwrap();
        assert_eq!(again.len(), btf.len());
        assert_eq!(again.get(ts).unwrap(), btf.get(ts).unwrap());
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            Btf::parse(b"hello world, this is not btf"),
            Err(BtfError::BadMagic(_))
        ));
        assert!(matches!(
            Btf::parse(&[0x9f, 0xeb]),
            Err(BtfError::Truncated(_))
        ));
    }
}
