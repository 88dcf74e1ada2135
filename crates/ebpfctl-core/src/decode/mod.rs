//! Decoding raw map keys, values and events through BTF.
//!
//! A [`Decoder`] is compiled once per type into a small tree of [`Node`]s (offsets resolved,
//! typedef meanings looked up), then applied to every record without touching BTF again.
//! Honours member offsets (no packed structs needed), bitfields, every integer width and
//! sign, bool, enums by name, char arrays as strings, other arrays as arrays, nested structs
//! and unions as objects, floats, pointers as hex; u64 stays exact. Typedef names with a
//! meaning (see `include/ebpfctl.h` and docs/conventions.md) decode specially.

mod names;
pub mod net;
pub mod sink;
pub mod stack;
pub mod sys;
pub mod time;

use std::sync::{Arc, OnceLock};

use crate::btf::{Btf, BtfError, Data, Kind, INT_BOOL, INT_SIGNED};
pub use sink::{JsonSink, Sink, TextSink};

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error("type nesting deeper than {0} levels")]
    TooDeep(usize),
    #[error("the type holds more than {MAX_ITEMS} values, too many to decode")]
    TooLarge,
    #[error("a member lies beyond 4 GiB")]
    Offset,
}

/// A typedef with a meaning to the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Ipv4,
    Ipv6,
    Duration,
    Timestamp,
    Errno,
    Signal,
    Syscall,
    L4Endpoint,
    /// A cgroup v2 id: the number, and with container names installed
    /// ([`set_container_names`]) a `container` member after it.
    CgroupId,
}

/// Who knows the container of a cgroup id (`ebpfctl run --containers`).
pub trait ContainerNames: Send + Sync {
    /// Calls `found(json, name)` with the container object (`{"runtime":…,"id":…}`) and its
    /// display name when cgroup `id` is a container's; never waits for a runtime.
    fn lookup(&self, id: u64, found: &mut dyn FnMut(&[u8], &str));
}

static CONTAINER_NAMES: OnceLock<Box<dyn ContainerNames>> = OnceLock::new();

/// Installs the container lookup for every decoder of this process (once).
pub fn set_container_names(names: Box<dyn ContainerNames>) -> bool {
    CONTAINER_NAMES.set(names).is_ok()
}

fn container_names() -> Option<&'static dyn ContainerNames> {
    CONTAINER_NAMES.get().map(|b| b.as_ref())
}

/// After a `cgroup_id` member: its `container` member (`<name>_container` for members not
/// called `cgroup_id`/`cgroup`), when names are installed and the cgroup is a container's.
fn container_member<S: Sink>(name: &str, node: &Node, data: &[u8], base: usize, sink: &mut S) {
    let Node::Special {
        off,
        size,
        kind: Special::CgroupId,
    } = node
    else {
        return;
    };
    let Some(names) = container_names() else {
        return;
    };
    let id = read_uint(data, base + *off as usize, *size as usize);
    names.lookup(id, &mut |json, _| {
        if name == "cgroup_id" || name == "cgroup" {
            sink.key("container");
        } else {
            sink.key(&format!("{name}_container"));
        }
        sink.raw_json(json);
    });
}

impl Special {
    /// Recognises a typedef name: ours (`ebpfctl_x`), the short one, or bumblebee's.
    pub fn from_typedef(name: &str) -> Option<Special> {
        let n = name.strip_prefix("ebpfctl_").unwrap_or(name);
        Some(match n {
            "ipv4_addr" => Special::Ipv4,
            "ipv6_addr" => Special::Ipv6,
            "duration" | "duration_ns" => Special::Duration,
            "timestamp" | "ktime" => Special::Timestamp,
            "errno" | "errno_t" => Special::Errno,
            "signal" | "signal_t" => Special::Signal,
            "syscall" | "syscall_t" | "syscall_nr" => Special::Syscall,
            "l4_endpoint" => Special::L4Endpoint,
            "cgroup_id" => Special::CgroupId,
            _ => return None,
        })
    }
}

/// One compiled element of a type. Offsets are relative to the enclosing record's base.
#[derive(Debug, Clone)]
pub enum Node {
    Uint {
        off: u32,
        size: u8,
    },
    Int {
        off: u32,
        size: u8,
    },
    Bool {
        off: u32,
        size: u8,
    },
    Bitfield {
        bit_off: u32,
        bits: u8,
        signed: bool,
    },
    Float {
        off: u32,
        size: u8,
    },
    Enum {
        off: u32,
        size: u8,
        signed: bool,
        names: Arc<[(i64, String)]>,
    },
    Ptr {
        off: u32,
    },
    Str {
        off: u32,
        len: u32,
    },
    Array {
        off: u32,
        stride: u32,
        count: u32,
        elem: Box<Node>,
    },
    Struct {
        off: u32,
        fields: Vec<(String, Node)>,
    },
    Special {
        off: u32,
        size: u32,
        kind: Special,
    },
    /// A lone `char`: printed as the character (`"R"`).
    Char {
        off: u32,
    },
    /// A stack id (`kernel_stack` / `user_stack` typedefs): symbolised frames once the
    /// runner gave the decoder the object's stack map ([`Decoder::set_stacks`]), else the id.
    Stack {
        off: u32,
        size: u8,
        user: bool,
        /// A sibling `tgid` (else `pid`) member: whose address space a user stack is in.
        pid: Option<(u32, u8)>,
        stacks: Option<Arc<dyn stack::StackResolve>>,
    },
    /// Void, functions and other things with no value.
    Empty,
}

/// Whether a typedef name marks a stack id, and which kind (true: user).
fn stack_typedef(name: &str) -> Option<bool> {
    match name.strip_prefix("ebpfctl_").unwrap_or(name) {
        "kernel_stack" => Some(false),
        "user_stack" => Some(true),
        _ => None,
    }
}

const MAX_DEPTH: usize = 32;
/// Most scalars one value may decode into: bounds the work and output per record (an array
/// of a billion empty structs is valid BTF).
pub const MAX_ITEMS: u64 = 1 << 20;

/// How many values `n` renders.
fn items(n: &Node) -> u64 {
    match n {
        Node::Array { count, elem, .. } => u64::from(*count).saturating_mul(items(elem).max(1)),
        Node::Struct { fields, .. } => fields
            .iter()
            .fold(0u64, |a, (_, f)| a.saturating_add(items(f)))
            .max(1),
        _ => 1,
    }
}

#[inline]
fn read_uint(data: &[u8], off: usize, size: usize) -> u64 {
    // Fixed-size reads for the common widths: a variable-length copy costs a libc call per value.
    fn fixed<const N: usize>(data: &[u8], off: usize) -> Option<[u8; N]> {
        data.get(off..off + N)
            .map(|s| s.try_into().expect("slice of length N"))
    }
    let v = match size {
        1 => data.get(off).map(|b| u64::from(*b)),
        2 => fixed::<2>(data, off).map(|b| u64::from(u16::from_le_bytes(b))),
        4 => fixed::<4>(data, off).map(|b| u64::from(u32::from_le_bytes(b))),
        8 => fixed::<8>(data, off).map(u64::from_le_bytes),
        _ => None,
    };
    if let Some(v) = v {
        return v;
    }
    // Odd sizes, and reads running past the end (bitfields near the end of a record).
    let mut b = [0u8; 8];
    let end = (off + size.min(8)).min(data.len());
    if let Some(s) = data.get(off..end) {
        b[..s.len()].copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits == 0 || bits >= 64 {
        return v as i64;
    }
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// Compiles `type_id` of `btf` into a node tree.
pub fn compile(btf: &Btf, type_id: u32) -> Result<Node, DecodeError> {
    compile_at(btf, type_id, 0, 0)
}

fn compile_at(btf: &Btf, type_id: u32, off: u32, depth: usize) -> Result<Node, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep(MAX_DEPTH));
    }
    for name in btf.typedef_names(type_id) {
        if let Some(user) = stack_typedef(name) {
            return Ok(Node::Stack {
                off,
                size: btf.size_of(type_id)?.min(8) as u8,
                user,
                pid: None,
                stacks: None,
            });
        }
        if let Some(kind) = Special::from_typedef(name) {
            let size = btf.size_of(type_id)? as u32;
            return Ok(Node::Special { off, size, kind });
        }
    }
    let id = btf.resolve(type_id)?;
    if id == 0 {
        return Ok(Node::Empty);
    }
    let t = btf.get(id)?;
    Ok(match (&t.kind, &t.data) {
        (
            Kind::Int,
            Data::Int {
                encoding,
                bit_offset,
                bits,
            },
        ) => {
            let size = t.size_or_type.min(16) as u8;
            let signed = encoding & INT_SIGNED != 0;
            if u32::from(*bits) < u32::from(size) * 8 || *bit_offset != 0 {
                Node::Bitfield {
                    bit_off: off
                        .checked_mul(8)
                        .and_then(|b| b.checked_add(u32::from(*bit_offset)))
                        .ok_or(DecodeError::Offset)?,
                    bits: *bits,
                    signed,
                }
            } else if encoding & INT_BOOL != 0 {
                Node::Bool { off, size }
            } else if size == 1 && btf.str(t.name_off) == "char" {
                Node::Char { off }
            } else if signed {
                Node::Int { off, size }
            } else {
                Node::Uint { off, size }
            }
        }
        (Kind::Float, _) => Node::Float {
            off,
            size: t.size_or_type as u8,
        },
        (Kind::Ptr, _) => Node::Ptr { off },
        (Kind::Enum | Kind::Enum64, Data::Enum(vals)) => Node::Enum {
            off,
            size: t.size_or_type as u8,
            signed: t.kind_flag,
            names: vals
                .iter()
                .map(|v| (v.value, btf.str(v.name_off).to_string()))
                .collect(),
        },
        (Kind::Array, Data::Array { elem, len, .. }) => {
            let eid = btf.resolve(*elem)?;
            let is_char = btf
                .get(eid)
                .is_ok_and(|e| e.kind == Kind::Int && btf.str(e.name_off) == "char");
            if is_char {
                Node::Str { off, len: *len }
            } else {
                let stride = btf.size_of(*elem)? as u32;
                let elem = compile_at(btf, *elem, 0, depth + 1)?;
                if u64::from(*len).saturating_mul(items(&elem).max(1)) > MAX_ITEMS {
                    return Err(DecodeError::TooLarge);
                }
                Node::Array {
                    off,
                    stride,
                    count: *len,
                    elem: Box::new(elem),
                }
            }
        }
        (Kind::Struct | Kind::Union, Data::Members(members)) => {
            let mut fields = Vec::with_capacity(members.len());
            for (i, m) in members.iter().enumerate() {
                let name = match btf.str(m.name_off) {
                    "" => format!("_{i}"),
                    n => n.to_string(),
                };
                let node = if m.bitfield_size > 0 {
                    let mt = btf.resolve(m.type_id)?;
                    let signed = btf.get(mt).is_ok_and(|t| matches!(t.data, Data::Int { encoding, .. } if encoding & INT_SIGNED != 0));
                    Node::Bitfield {
                        bit_off: m.bit_offset,
                        bits: m.bitfield_size as u8,
                        signed,
                    }
                } else {
                    compile_at(btf, m.type_id, m.bit_offset / 8, depth + 1)?
                };
                // Anonymous struct/union members are flattened into their parent, as in C.
                match node {
                    Node::Struct {
                        off: inner,
                        fields: sub,
                    } if btf.str(m.name_off).is_empty() => {
                        fields.extend(sub.into_iter().map(|(n, f)| (n, shift(f, inner))));
                    }
                    n => fields.push((name, n)),
                }
            }
            link_stack_pids(&mut fields);
            let node = Node::Struct { off, fields };
            if items(&node) > MAX_ITEMS {
                return Err(DecodeError::TooLarge);
            }
            node
        }
        _ => Node::Empty,
    })
}

/// Gives each user-stack member of a struct the struct's `tgid` (else `pid`) member.
fn link_stack_pids(fields: &mut [(String, Node)]) {
    let pid = ["tgid", "pid"].iter().find_map(|want| {
        fields.iter().find_map(|(n, f)| match f {
            Node::Uint { off, size } | Node::Int { off, size } if n == want && *size <= 8 => {
                Some((*off, *size))
            }
            _ => None,
        })
    });
    for (_, f) in fields.iter_mut() {
        if let Node::Stack {
            user: true, pid: p, ..
        } = f
        {
            *p = pid;
        }
    }
}

/// Moves a node compiled at offset 0 of an anonymous member to that member's offset.
fn shift(node: Node, by: u32) -> Node {
    match node {
        Node::Uint { off, size } => Node::Uint {
            off: off.saturating_add(by),
            size,
        },
        Node::Int { off, size } => Node::Int {
            off: off.saturating_add(by),
            size,
        },
        Node::Bool { off, size } => Node::Bool {
            off: off.saturating_add(by),
            size,
        },
        Node::Bitfield {
            bit_off,
            bits,
            signed,
        } => Node::Bitfield {
            bit_off: bit_off.saturating_add(by.saturating_mul(8)),
            bits,
            signed,
        },
        Node::Float { off, size } => Node::Float {
            off: off.saturating_add(by),
            size,
        },
        Node::Enum {
            off,
            size,
            signed,
            names,
        } => Node::Enum {
            off: off.saturating_add(by),
            size,
            signed,
            names,
        },
        Node::Ptr { off } => Node::Ptr {
            off: off.saturating_add(by),
        },
        Node::Str { off, len } => Node::Str {
            off: off.saturating_add(by),
            len,
        },
        Node::Array {
            off,
            stride,
            count,
            elem,
        } => Node::Array {
            off: off.saturating_add(by),
            stride,
            count,
            elem,
        },
        Node::Struct { off, fields } => Node::Struct {
            off: off.saturating_add(by),
            fields,
        },
        Node::Special { off, size, kind } => Node::Special {
            off: off.saturating_add(by),
            size,
            kind,
        },
        Node::Char { off } => Node::Char { off: off + by },
        Node::Stack {
            off,
            size,
            user,
            pid,
            stacks,
        } => Node::Stack {
            off: off + by,
            size,
            user,
            pid: pid.map(|(o, s)| (o + by, s)),
            stacks,
        },
        Node::Empty => Node::Empty,
    }
}

impl Node {
    /// Writes the value at `base` in `data` to `sink`.
    pub fn render<S: Sink>(&self, data: &[u8], base: usize, sink: &mut S) {
        match self {
            Node::Uint { off, size } => {
                let at = base + *off as usize;
                if *size == 16 {
                    // u128: exact as a decimal string.
                    let lo = read_uint(data, at, 8) as u128;
                    let hi = read_uint(data, at + 8, 8) as u128;
                    sink.str(&((hi << 64) | lo).to_string());
                } else {
                    sink.u64(read_uint(data, at, *size as usize));
                }
            }
            Node::Int { off, size } => {
                let v = read_uint(data, base + *off as usize, *size as usize);
                sink.i64(sign_extend(v, u32::from(*size) * 8));
            }
            Node::Bool { off, size } => {
                sink.bool(read_uint(data, base + *off as usize, *size as usize) != 0)
            }
            Node::Bitfield {
                bit_off,
                bits,
                signed,
            } => {
                let byte = base + (*bit_off / 8) as usize;
                let shift = bit_off % 8;
                let raw = read_uint(data, byte, 8) >> shift;
                let v = if *bits >= 64 {
                    raw
                } else {
                    raw & ((1u64 << bits) - 1)
                };
                if *signed {
                    sink.i64(sign_extend(v, u32::from(*bits)));
                } else {
                    sink.u64(v);
                }
            }
            Node::Float { off, size } => {
                let at = base + *off as usize;
                let v = match size {
                    4 => f64::from(f32::from_bits(read_uint(data, at, 4) as u32)),
                    _ => f64::from_bits(read_uint(data, at, 8)),
                };
                sink.f64(v);
            }
            Node::Enum {
                off,
                size,
                signed,
                names,
            } => {
                let raw = read_uint(data, base + *off as usize, *size as usize);
                let v = if *signed {
                    sign_extend(raw, u32::from(*size) * 8)
                } else {
                    raw as i64
                };
                match names.iter().find(|(val, _)| *val == v) {
                    Some((_, n)) => sink.str(n),
                    None => sink.i64(v),
                }
            }
            Node::Ptr { off } => {
                sink.str(&format!("{:#x}", read_uint(data, base + *off as usize, 8)))
            }
            Node::Str { off, len } => {
                let at = base + *off as usize;
                let s = data
                    .get(at..(at + *len as usize).min(data.len()))
                    .unwrap_or(&[]);
                let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
                sink.str(&String::from_utf8_lossy(&s[..end]));
            }
            Node::Array {
                off,
                stride,
                count,
                elem,
            } => {
                sink.begin_array();
                for i in 0..*count as usize {
                    elem.render(data, base + *off as usize + i * *stride as usize, sink);
                }
                sink.end_array();
            }
            Node::Struct { off, fields } => {
                sink.begin_object();
                for (name, f) in fields {
                    sink.key(name);
                    f.render(data, base + *off as usize, sink);
                    container_member(name, f, data, base + *off as usize, sink);
                }
                sink.end_object();
            }
            Node::Special { off, size, kind } => {
                render_special(*kind, data, base + *off as usize, *size as usize, sink)
            }
            Node::Char { off } => {
                let b = read_uint(data, base + *off as usize, 1) as u8;
                if b == 0 {
                    sink.str("");
                } else {
                    let mut tmp = [0u8; 4];
                    sink.str(char::from(b).encode_utf8(&mut tmp));
                }
            }
            Node::Stack {
                off, size, stacks, ..
            } => match stacks {
                None => {
                    let v = read_uint(data, base + *off as usize, *size as usize);
                    sink.i64(sign_extend(v, u32::from(*size) * 8));
                }
                Some(_) => {
                    sink.begin_array();
                    for f in self.frames(data, base).unwrap_or_default() {
                        sink.begin_object();
                        sink.key("addr");
                        sink.str(&format!("{:#x}", f.addr));
                        sink.key("sym");
                        match &f.sym {
                            Some(s) => sink.str(s),
                            None => sink.null(),
                        }
                        sink.key("offset");
                        sink.u64(f.offset);
                        sink.key("module");
                        match &f.module {
                            Some(m) => sink.str(m),
                            None => sink.null(),
                        }
                        sink.end_object();
                    }
                    sink.end_array();
                }
            },
            Node::Empty => sink.str(""),
        }
    }

    /// The frames of a stack member (innermost first), when this is one and the runner gave
    /// the decoder a stack map.
    pub fn frames(&self, data: &[u8], base: usize) -> Option<Vec<stack::Frame>> {
        let Node::Stack {
            off,
            size,
            user,
            pid,
            stacks: Some(stacks),
        } = self
        else {
            return None;
        };
        let id = sign_extend(
            read_uint(data, base + *off as usize, *size as usize),
            u32::from(*size) * 8,
        );
        let pid = pid.map(|(o, s)| read_uint(data, base + o as usize, s as usize) as u32);
        Some(stacks.frames(id, *user, pid))
    }

    /// True for a stack member.
    pub fn is_stack(&self) -> bool {
        matches!(self, Node::Stack { .. })
    }

    /// Hands `stacks` to every stack member below this node.
    fn set_stacks(&mut self, to: &Arc<dyn stack::StackResolve>) {
        match self {
            Node::Stack { stacks, .. } => *stacks = Some(Arc::clone(to)),
            Node::Struct { fields, .. } => fields.iter_mut().for_each(|(_, f)| f.set_stacks(to)),
            Node::Array { elem, .. } => elem.set_stacks(to),
            _ => {}
        }
    }

    fn has_stack(&self) -> bool {
        match self {
            Node::Stack { .. } => true,
            Node::Struct { fields, .. } => fields.iter().any(|(_, f)| f.has_stack()),
            Node::Array { elem, .. } => elem.has_stack(),
            _ => false,
        }
    }

    /// The value as a number, when it is one (for counters, gauges and histograms).
    pub fn number(&self, data: &[u8], base: usize) -> Option<f64> {
        Some(match self {
            Node::Uint { off, size } => {
                read_uint(data, base + *off as usize, (*size).min(8) as usize) as f64
            }
            Node::Int { off, size } => sign_extend(
                read_uint(data, base + *off as usize, *size as usize),
                u32::from(*size) * 8,
            ) as f64,
            Node::Bool { off, size } => f64::from(u8::from(
                read_uint(data, base + *off as usize, *size as usize) != 0,
            )),
            Node::Float { off, size } => match size {
                4 => f64::from(f32::from_bits(
                    read_uint(data, base + *off as usize, 4) as u32
                )),
                _ => f64::from_bits(read_uint(data, base + *off as usize, 8)),
            },
            Node::Bitfield { .. } | Node::Enum { .. } => {
                let mut t = TextSink::default();
                self.render(data, base, &mut t);
                t.out.parse().ok()?
            }
            Node::Special {
                off,
                size,
                kind: Special::Duration | Special::Timestamp,
            } => read_uint(data, base + *off as usize, *size as usize) as f64,
            _ => return None,
        })
    }

    /// True for a `duration` typedef (observed in seconds by histograms).
    pub fn is_duration(&self) -> bool {
        matches!(
            self,
            Node::Special {
                kind: Special::Duration,
                ..
            }
        )
    }

    /// The value as text: scalars plain, composites as JSON.
    pub fn text(&self, data: &[u8], base: usize) -> String {
        let mut t = TextSink::default();
        self.render(data, base, &mut t);
        t.out
    }
}

fn render_special<S: Sink>(kind: Special, data: &[u8], at: usize, size: usize, sink: &mut S) {
    let bytes = data.get(at..(at + size).min(data.len())).unwrap_or(&[]);
    let int = |signed: bool| {
        let v = read_uint(data, at, size);
        if signed {
            sign_extend(v, (size * 8) as u32)
        } else {
            v as i64
        }
    };
    match kind {
        Special::Ipv4 => sink.str(&net::ipv4(bytes)),
        Special::Ipv6 => sink.str(&net::ipv6(bytes)),
        Special::L4Endpoint => sink.str(&net::l4_endpoint(bytes)),
        Special::Duration => sink.u64(read_uint(data, at, size)),
        Special::Timestamp => sink.timestamp(time::ktime_to_unix_ns(read_uint(data, at, size))),
        Special::Errno => {
            let v = int(true);
            match sys::errno_name(v) {
                Some(n) => sink.str(&n),
                None => sink.i64(v),
            }
        }
        Special::Signal => {
            let v = int(true);
            match sys::signal_name(v) {
                Some(n) => sink.str(n),
                None => sink.i64(v),
            }
        }
        Special::Syscall => {
            let v = int(true);
            match sys::syscall_name(v) {
                Some(n) => sink.str(n),
                None => sink.i64(v),
            }
        }
        Special::CgroupId => sink.cgroup_id(read_uint(data, at, size)),
    }
}

/// A compiled decoder for one record type (a map key, value or event).
#[derive(Debug, Clone)]
pub struct Decoder {
    pub root: Node,
    /// Size of the type in bytes.
    pub size: usize,
    /// The BTF type spelled for humans, e.g. `struct event`.
    pub type_name: String,
}

impl Decoder {
    pub fn new(btf: &Btf, type_id: u32) -> Result<Decoder, DecodeError> {
        Ok(Decoder {
            root: compile(btf, type_id)?,
            size: btf.size_of(type_id)? as usize,
            type_name: btf.type_name(type_id),
        })
    }

    /// Lets stack members (`kernel_stack`, `user_stack`) print frames read from `stacks`.
    pub fn set_stacks(&mut self, stacks: &Arc<dyn stack::StackResolve>) {
        self.root.set_stacks(stacks);
    }

    /// Whether the type holds a stack member.
    pub fn has_stack(&self) -> bool {
        self.root.has_stack()
    }

    /// A decoder that shows raw bytes as hex (no BTF).
    pub fn raw(size: usize) -> Decoder {
        Decoder {
            root: Node::Array {
                off: 0,
                stride: 1,
                count: size as u32,
                elem: Box::new(Node::Uint { off: 0, size: 1 }),
            },
            size,
            type_name: format!("{size} bytes"),
        }
    }

    /// Top-level named fields: a struct's members, or one field called `scalar_name`.
    pub fn fields<'a>(&'a self, scalar_name: &'a str) -> Vec<(&'a str, &'a Node)> {
        match &self.root {
            Node::Struct { fields, .. } => fields.iter().map(|(n, f)| (n.as_str(), f)).collect(),
            other => vec![(scalar_name, other)],
        }
    }

    /// Writes the fields as `"name":value` pairs into an open JSON object (no braces).
    pub fn write_fields(&self, data: &[u8], scalar_name: &str, sink: &mut JsonSink<'_>) {
        match &self.root {
            Node::Struct { off, fields } => {
                for (name, f) in fields {
                    sink.key(name);
                    f.render(data, *off as usize, sink);
                    container_member(name, f, data, *off as usize, sink);
                }
            }
            other => {
                sink.key(scalar_name);
                other.render(data, 0, sink);
            }
        }
    }

    /// The whole value as a `serde_json::Value` (for tools and introspection, not hot paths).
    pub fn to_value(&self, data: &[u8]) -> serde_json::Value {
        let mut out = Vec::with_capacity(64);
        self.root
            .render(data, 0, &mut JsonSink::new(&mut out, false));
        serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests;
