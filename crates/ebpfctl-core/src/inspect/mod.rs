//! Introspection: what BPF programs, maps, links and BTF objects the kernel holds, what this
//! kernel supports, live per-program statistics, and one view of a BPF object file.
//!
//! Everything here reads kernel state through the `bpf(2)` syscall (via libbpf-sys) and
//! `/proc`; nothing is modified except BPF statistics while [`top`] runs (restored after).
//! Each view is a plain serialisable struct: the binary prints it as JSON or as text through
//! [`print`].

pub mod btf;
pub mod disasm;
pub mod feature;
pub mod link;
pub mod map;
pub mod net;
pub mod object;
pub mod print;
pub mod prog;
pub mod select;
pub mod top;

mod sys;

use std::io;

pub use sys::ObjKind;

/// Everything that can go wrong while looking at kernel BPF state.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("no {kind} with id {id} is loaded")]
    NotFound { kind: ObjKind, id: u32 },
    #[error("permission denied reading {kind} {id}: introspection needs root (CAP_SYS_ADMIN)")]
    Permission { kind: ObjKind, id: u32 },
    #[error("{what}: {source}")]
    Sys { what: String, source: io::Error },
    #[error("BTF of {what}: {source}")]
    Btf {
        what: String,
        source: crate::btf::BtfError,
    },
    #[error("decoding {what} through BTF: {source}")]
    Decode {
        what: String,
        source: crate::decode::DecodeError,
    },
    #[error("map {id} is a {kind} map, which has no keys to dump ({why})")]
    NotDumpable {
        id: u32,
        kind: String,
        why: &'static str,
    },
    #[error(transparent)]
    Object(#[from] crate::object::ObjectError),
    #[error(transparent)]
    Build(#[from] ebpfctl_build::BuildError),
    #[error("{0}")]
    Stats(String),
    #[error("no network interface named {0} in this network namespace (see `ip link`)")]
    NoInterface(String),
    /// A selector (`name X`, `tag T`, `pinned P`) that matches nothing, or the wrong kind.
    #[error("{0}")]
    NoMatch(String),
    #[error("writing output: {0}")]
    Output(#[source] io::Error),
}

impl InspectError {
    pub(crate) fn sys(what: impl Into<String>, source: io::Error) -> Self {
        InspectError::Sys {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T, E = InspectError> = std::result::Result<T, E>;
