//! Stack ids to symbolised frames: members typed `kernel_stack` / `user_stack` hold an id from
//! `bpf_get_stackid()` into the object's stack-trace map; the runner reads the map and names
//! each frame, kernel frames from `/proc/kallsyms`, user frames from the ELF symbols of the
//! files mapped into the process (blazesym, by the libbpf authors).
use std::fmt;

use blazesym::symbolize::source::{Kernel, Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::MaybeDefault;
use libbpf_rs::{MapCore, MapFlags, MapHandle};

/// One frame of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub addr: u64,
    /// The symbol the address is in, if one is known.
    pub sym: Option<String>,
    /// Bytes from the symbol's start.
    pub offset: u64,
    /// `kernel`, a kernel module, or the path of the user-space file.
    pub module: Option<String>,
}

impl Frame {
    /// `sym+0x1a`, or the address when no symbol is known.
    pub fn label(&self) -> String {
        match &self.sym {
            Some(s) if self.offset == 0 => s.clone(),
            Some(s) => format!("{s}+{:#x}", self.offset),
            None => format!("{:#x}", self.addr),
        }
    }
}

/// Resolves stack ids; shared by every decoder of a run (printers and the metrics thread).
pub trait StackResolve: fmt::Debug + Send + Sync {
    /// The frames of stack `id`, innermost first; empty for a negative id (no stack: the
    /// BPF side's error) or an id the map does not hold.
    fn frames(&self, id: i64, user: bool, pid: Option<u32>) -> Vec<Frame>;
}

thread_local! {
    // blazesym caches parsed files per symbolizer and is not thread-safe: one per thread
    // that prints (in practice the runner's own).
    static SYMBOLIZER: Symbolizer = Symbolizer::new();
}

/// The frames of a loaded stack-trace map.
pub struct Stacks {
    map: MapHandle,
}

impl fmt::Debug for Stacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stacks")
            .field("map", &self.map.name())
            .finish()
    }
}

impl Stacks {
    /// Stacks of `map` (a `BPF_MAP_TYPE_STACK_TRACE` map).
    pub fn new(map: MapHandle) -> Stacks {
        Stacks { map }
    }

    fn addresses(&self, id: i64) -> Vec<u64> {
        let Ok(key) = u32::try_from(id) else {
            return Vec::new();
        };
        let Ok(Some(value)) = self.map.lookup(&key.to_ne_bytes(), MapFlags::ANY) else {
            return Vec::new();
        };
        value
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
            .take_while(|&a| a != 0)
            .collect()
    }
}

impl StackResolve for Stacks {
    fn frames(&self, id: i64, user: bool, pid: Option<u32>) -> Vec<Frame> {
        let addrs = self.addresses(id);
        if addrs.is_empty() {
            return Vec::new();
        }
        let src = if user {
            match pid.filter(|&p| p != 0) {
                Some(p) => {
                    let mut proc = Process::new(p.into());
                    // Symbols only: line info would need DWARF and costs far more.
                    proc.debug_syms = false;
                    proc.perf_map = true;
                    Some(Source::Process(proc))
                }
                None => None,
            }
        } else {
            Some(Source::Kernel(Kernel {
                kallsyms: MaybeDefault::Default,
                vmlinux: MaybeDefault::None,
                debug_syms: false,
                ..Default::default()
            }))
        };
        let syms = src.and_then(|src| {
            SYMBOLIZER.with(|s| {
                s.symbolize(&src, Input::AbsAddr(&addrs))
                    .ok()
                    .map(|v| v.into_iter().map(owned).collect::<Vec<_>>())
            })
        });
        addrs
            .iter()
            .enumerate()
            .map(|(i, &addr)| {
                let (sym, offset, module) = syms
                    .as_ref()
                    .and_then(|s| s.get(i).cloned().flatten())
                    .unwrap_or((None, 0, None));
                Frame {
                    addr,
                    sym,
                    offset,
                    module: module.or_else(|| (!user).then(|| "kernel".to_string())),
                }
            })
            .collect()
    }
}

type Owned = Option<(Option<String>, u64, Option<String>)>;

fn owned(s: Symbolized<'_>) -> Owned {
    match s {
        Symbolized::Sym(sym) => Some((
            Some(sym.name.into_owned()),
            sym.offset as u64,
            sym.module
                .map(|m| m.to_string_lossy().into_owned())
                .filter(|m| !m.is_empty()),
        )),
        Symbolized::Unknown(_) => None,
    }
}
