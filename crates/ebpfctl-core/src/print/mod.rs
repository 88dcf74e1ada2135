//! Printers: one per output format. Each receives decoded-on-demand records from the runner:
//! events (ring buffer / perf), snapshots (key/value maps, per interval), lost-event notices.
//!
//! `json` (JSON lines, docs/json.md), `table` (live terminal view), `folded` (flame graph
//! input), `prometheus` (metrics, docs/metrics.md). Printers format into a [`writer::Writer`], which owns stdout.

pub mod folded;
pub mod json;
pub mod prometheus;
pub mod stream_view;
pub mod table;
#[cfg(feature = "tui")]
pub mod tui;
pub mod writer;

use writer::Writer;

use crate::convention::{self, Keyword};
use crate::decode::Decoder;
use crate::object::MapSpec;

/// How the runner treats one map: its spec and compiled decoders.
#[derive(Debug, Clone)]
pub struct MapOut {
    /// Name in the object.
    pub name: String,
    /// Name in outputs (keyword prefix removed).
    pub display: String,
    pub keyword: Keyword,
    pub map_type: u32,
    pub key: Option<Decoder>,
    pub value: Decoder,
    pub percpu: bool,
    /// Position in the run's plan; the writer's source of this map's records.
    pub id: usize,
    /// A stream map with no value type in BTF (taken in by `--all-maps`): each record is
    /// printed as its length and hex bytes.
    pub raw: bool,
    /// The value's `slots` array member when the value is a libbpf-tools log2 histogram.
    pub slots: Option<String>,
    /// For a stream `hist`: the member observed and its buckets.
    pub observe: Option<crate::plan::Observe>,
    /// Unit, help text and bucket layout from the map's `ebpfctl:` tags.
    pub meta: crate::unit::MapMeta,
    /// The map's capacity (as created by the kernel once loaded; 0 when unknown).
    pub max_entries: u32,
}

impl MapOut {
    pub fn new(spec: &MapSpec, key: Option<Decoder>, value: Decoder) -> MapOut {
        MapOut {
            name: spec.name.clone(),
            display: convention::display_name(&spec.name).to_string(),
            keyword: spec.keyword.unwrap_or(Keyword::Print),
            map_type: spec.map_type,
            key,
            value,
            percpu: convention::is_percpu(spec.map_type),
            id: 0,
            raw: false,
            slots: None,
            observe: None,
            meta: spec.meta.clone(),
            max_entries: spec.max_entries,
        }
    }

    /// The unit of a numeric member: `ns` for a `duration` member, else the map's tag.
    pub fn unit_of(&self, node: &crate::decode::Node) -> Option<crate::unit::Unit> {
        if node.is_duration() {
            Some(crate::unit::Unit::Ns)
        } else {
            self.meta.unit
        }
    }

    /// True for ring buffers and perf arrays (one record per event).
    pub fn is_stream(&self) -> bool {
        matches!(
            convention::family(self.map_type),
            convention::MapFamily::RingBuf | convention::MapFamily::PerfArray
        )
    }
}

/// One key/value entry of a snapshot (per-CPU values already summed).
pub type Entry = (Vec<u8>, Vec<u8>);

/// What every printer implements; output goes into `out`.
pub trait Printer {
    /// One event from a stream map.
    fn event(&mut self, out: &mut Writer, map: &MapOut, data: &[u8]);
    /// All entries of a key/value map, once per interval.
    fn snapshot(&mut self, out: &mut Writer, map: &MapOut, entries: &[Entry]);
    /// `new` more events were lost on `map` (`total` so far).
    fn lost(&mut self, out: &mut Writer, map: &MapOut, new: u64, total: u64);
    /// The text an iterator program wrote in one read (`iter/...` sections, every interval);
    /// its records belong to `src` (the iterator's source in the writer).
    fn iter_text(&mut self, _out: &mut Writer, _src: writer::Source, _prog: &str, _text: &str) {}
    /// The metrics server listens on `addr` (for a status line).
    fn serving(&mut self, _addr: std::net::SocketAddr) {}
    /// Called once per poll cycle: flush or redraw.
    fn flush(&mut self, out: &mut Writer);
    /// Called once at exit: everything still pending goes out.
    fn finish(&mut self, out: &mut Writer) {
        self.flush(out);
    }
}

/// Prints nothing (`-o none`: metrics only).
pub struct NullPrinter;

impl Printer for NullPrinter {
    fn event(&mut self, _: &mut Writer, _: &MapOut, _: &[u8]) {}
    fn snapshot(&mut self, _: &mut Writer, _: &MapOut, _: &[Entry]) {}
    fn lost(&mut self, _: &mut Writer, _: &MapOut, _: u64, _: u64) {}
    fn flush(&mut self, _: &mut Writer) {}
}
