//! The output conventions: a keyword on a map says what the runner does with it.
//!
//! Two spellings are accepted (docs/conventions.md): the seed's section suffix
//! (`SEC(".maps.print")`) and bumblebee's map-name prefix (`print_events`).

use std::fmt;

/// What the runner makes of a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Keyword {
    /// One record per event (ring buffer / perf array) or a snapshot of all entries per interval.
    Print,
    /// A Prometheus counter: per key (hash) or per event (+1, members as labels).
    Counter,
    /// A Prometheus gauge per key.
    Gauge,
    /// A Prometheus histogram: one numeric member per event, or a map keyed by slot.
    Hist,
}

impl Keyword {
    pub const ALL: [Keyword; 4] = [
        Keyword::Print,
        Keyword::Counter,
        Keyword::Gauge,
        Keyword::Hist,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Print => "print",
            Keyword::Counter => "counter",
            Keyword::Gauge => "gauge",
            Keyword::Hist => "hist",
        }
    }

    pub fn parse(s: &str) -> Option<Keyword> {
        Keyword::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a keyword came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeywordSource {
    Section,
    Prefix,
}

/// The keyword of a map section name: `Ok(None)` for `.maps`, `Err(suffix)` for an unknown one.
pub fn from_section(section: &str) -> Result<Option<Keyword>, String> {
    match section.strip_prefix(".maps.") {
        None => Ok(None),
        Some(kw) => Keyword::parse(kw).map(Some).ok_or_else(|| kw.to_string()),
    }
}

/// The keyword of a map name (`print_events` → print).
pub fn from_name(name: &str) -> Option<Keyword> {
    Keyword::ALL.into_iter().find(|k| {
        name.strip_prefix(k.as_str())
            .is_some_and(|rest| rest.starts_with('_'))
    })
}

/// The name a map shows under in outputs: the map name with its keyword prefix removed.
pub fn display_name(name: &str) -> &str {
    match from_name(name) {
        Some(k) => &name[k.as_str().len() + 1..],
        None => name,
    }
}

/// Kernel map families, by what the runner can do with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFamily {
    /// Ring buffer (one reader, variable-size records).
    RingBuf,
    /// Perf event array (per-CPU buffers).
    PerfArray,
    /// Hash, LRU hash, array and their per-CPU variants: key → value storage.
    KeyValue,
    Other,
}

pub const BPF_MAP_TYPE_HASH: u32 = 1;
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
pub const BPF_MAP_TYPE_PERF_EVENT_ARRAY: u32 = 4;
pub const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
pub const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
pub const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
pub const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
pub const BPF_MAP_TYPE_STACK_TRACE: u32 = 7;
pub const BPF_MAP_TYPE_STRUCT_OPS: u32 = 26;
pub const BPF_MAP_TYPE_RINGBUF: u32 = 27;
/// Frames a stack-trace map holds per entry when its value size is left at 0
/// (PERF_MAX_STACK_DEPTH, the kernel's default `kernel.perf_event_max_stack`).
pub const DEFAULT_STACK_DEPTH: u32 = 127;

pub fn family(map_type: u32) -> MapFamily {
    match map_type {
        BPF_MAP_TYPE_RINGBUF => MapFamily::RingBuf,
        BPF_MAP_TYPE_PERF_EVENT_ARRAY => MapFamily::PerfArray,
        BPF_MAP_TYPE_HASH
        | BPF_MAP_TYPE_ARRAY
        | BPF_MAP_TYPE_PERCPU_HASH
        | BPF_MAP_TYPE_PERCPU_ARRAY
        | BPF_MAP_TYPE_LRU_HASH
        | BPF_MAP_TYPE_LRU_PERCPU_HASH => MapFamily::KeyValue,
        _ => MapFamily::Other,
    }
}

pub fn is_percpu(map_type: u32) -> bool {
    matches!(
        map_type,
        BPF_MAP_TYPE_PERCPU_HASH | BPF_MAP_TYPE_PERCPU_ARRAY | BPF_MAP_TYPE_LRU_PERCPU_HASH
    )
}

/// Map kinds whose `max_entries` must stay 0: cgroup storage (19, 21), socket/inode/task/cgroup
/// local storage (24, 28, 29, 32) and struct_ops (26). The runner's default size skips them.
pub fn sized_by_kernel(map_type: u32) -> bool {
    matches!(map_type, 19 | 21 | 24 | 26 | 28 | 29 | 32)
}

/// The kernel's name of a map type ("ringbuf", "hash"...), as libbpf spells it.
pub fn map_type_name(map_type: u32) -> String {
    // SAFETY: libbpf_bpf_map_type_str only indexes a static table and returns NULL when out of range.
    let p = unsafe { libbpf_sys::libbpf_bpf_map_type_str(map_type) };
    if p.is_null() {
        return format!("type {map_type}");
    }
    // SAFETY: non-null results point to static NUL-terminated strings.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// Checks that `kw` makes sense on a map of `map_type`; the error says what would.
pub fn check(kw: Keyword, map_type: u32) -> Result<(), String> {
    let fam = family(map_type);
    let ok = !matches!(
        (kw, fam),
        (_, MapFamily::Other) | (Keyword::Gauge, MapFamily::RingBuf | MapFamily::PerfArray)
    );
    if ok {
        return Ok(());
    }
    let supported = match fam {
        MapFamily::RingBuf | MapFamily::PerfArray => "print, counter or hist",
        MapFamily::KeyValue => "print, counter, gauge or hist",
        MapFamily::Other => "none: use a ring buffer, perf event array, hash, LRU hash or array",
    };
    Err(format!(
        "keyword `{kw}` is not supported on a {} map (supported: {supported})",
        map_type_name(map_type)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings() {
        assert_eq!(from_section(".maps.print"), Ok(Some(Keyword::Print)));
        assert_eq!(from_section(".maps"), Ok(None));
        assert_eq!(from_section(".maps.bogus"), Err("bogus".to_string()));
        assert_eq!(from_name("counter_syscalls"), Some(Keyword::Counter));
        assert_eq!(from_name("histogram"), None);
        assert_eq!(display_name("hist_latency"), "latency");
        assert!(check(Keyword::Gauge, BPF_MAP_TYPE_RINGBUF)
            .unwrap_err()
            .contains("ringbuf"));
        assert!(check(Keyword::Hist, BPF_MAP_TYPE_HASH).is_ok());
        assert!(check(Keyword::Print, 3).is_err());
    }
}
