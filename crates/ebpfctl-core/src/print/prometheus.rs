//! Prometheus metrics from maps (names and labels: docs/metrics.md).
//!
//! - stream maps (`counter`, `hist` on a ring buffer / perf array) update families per event;
//! - key/value maps (`counter`, `gauge`, `hist`) are read at scrape time by [`MapCollector`],
//!   per-CPU values summed;
//! - the runner's own series: events, lost events, decode errors, records dropped by a stalled
//!   stdout per map, and per-program run time and count ([`ProgramStats`]).
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;

use libbpf_rs::MapHandle;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::MapOut;
use crate::convention::Keyword;
use crate::decode::Node;
use crate::unit::{Base, Layout, Unit};

pub type Labels = Vec<(String, String)>;

/// Metric and label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// The metric name for a map: `ebpfctl_<name without keyword prefix>`.
pub fn metric_name(map: &MapOut) -> String {
    format!("ebpfctl_{}", sanitize(&map.display))
}

pub use crate::plan::{duration_buckets, number_buckets};

fn labels_of(node_fields: &[(&str, &Node)], data: &[u8], skip: Option<&str>) -> Labels {
    node_fields
        .iter()
        .filter(|(n, _)| Some(*n) != skip)
        .map(|(n, node)| (sanitize(n), node.text(data, 0)))
        .collect()
}

/// The runner's own series.
#[derive(Clone)]
pub struct RunnerMetrics {
    pub events: Family<Labels, Counter>,
    pub lost: Family<Labels, Counter>,
    pub decode_errors: Family<Labels, Counter>,
    /// Records read from the kernel that stdout did not take in time (print/writer.rs).
    pub output_dropped: Family<Labels, Counter>,
}

impl RunnerMetrics {
    pub fn register(reg: &mut Registry) -> RunnerMetrics {
        let m = RunnerMetrics {
            events: Family::default(),
            lost: Family::default(),
            decode_errors: Family::default(),
            output_dropped: Family::default(),
        };
        reg.register(
            "ebpfctl_events",
            "Records read from ring buffers and perf event arrays, per map",
            m.events.clone(),
        );
        reg.register(
            "ebpfctl_lost_events",
            "Events lost (ring buffer full, perf lost samples), per map",
            m.lost.clone(),
        );
        reg.register(
            "ebpfctl_decode_errors",
            "Records that could not be decoded (too short for their type), per map",
            m.decode_errors.clone(),
        );
        reg.register(
            "ebpfctl_output_dropped",
            "Records dropped because stdout did not take them in time (a stalled reader), per map; not ring-buffer loss",
            m.output_dropped.clone(),
        );
        m
    }

    pub fn map_labels(map: &MapOut) -> Labels {
        vec![("map".to_string(), map.display.clone())]
    }
}

/// Per-event metrics of one stream map (`counter` or `hist` keyword).
pub struct StreamMetric {
    kind: StreamKind,
    /// What a `hist` observes (member, unit).
    observe: Option<crate::plan::Observe>,
}

/// The help text of a map's metrics: its `ebpfctl:help` tag, else `default`.
fn help_of(map: &MapOut, default: String) -> String {
    map.meta.help.clone().unwrap_or(default)
}

/// Makes histograms with fixed bucket bounds.
#[derive(Clone)]
pub struct Buckets(std::sync::Arc<Vec<f64>>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

enum StreamKind {
    Counter(Family<Labels, Counter>),
    Hist(Family<Labels, Histogram, Buckets>),
}

impl StreamMetric {
    /// Registers the metric for `map` (a `hist` observes what the plan chose:
    /// [`crate::plan::observe`]).
    pub fn register(reg: &mut Registry, map: &MapOut) -> Result<StreamMetric, String> {
        let name = metric_name(map);
        match map.keyword {
            Keyword::Counter => {
                let fam = Family::<Labels, Counter>::default();
                reg.register(
                    name,
                    help_of(map, format!("Events of map {} by their members", map.name)),
                    fam.clone(),
                );
                Ok(StreamMetric {
                    kind: StreamKind::Counter(fam),
                    observe: None,
                })
            }
            Keyword::Hist => {
                let obs = map
                    .observe
                    .clone()
                    .ok_or_else(|| format!("map {}: hist has no member to observe", map.name))?;
                let fam =
                    Family::new_with_constructor(Buckets(std::sync::Arc::new(obs.buckets.clone())));
                let help = help_of(
                    map,
                    format!(
                        "Distribution of {} in events of map {}",
                        obs.member, map.name
                    ),
                );
                // The registry appends the unit to the name (`_seconds`) and writes `# UNIT`.
                match obs.base() {
                    Some(b) => reg.register_with_unit(name, help, b.prometheus(), fam.clone()),
                    None => reg.register(name, help, fam.clone()),
                }
                Ok(StreamMetric {
                    kind: StreamKind::Hist(fam),
                    observe: Some(obs),
                })
            }
            _ => Err(format!(
                "map {}: keyword {} does not make stream metrics",
                map.name, map.keyword
            )),
        }
    }

    pub fn on_event(&self, map: &MapOut, data: &[u8]) {
        let fields = map.value.fields("value");
        match &self.kind {
            StreamKind::Counter(fam) => {
                fam.get_or_create(&labels_of(&fields, data, None)).inc();
            }
            StreamKind::Hist(fam) => {
                let Some(obs) = &self.observe else {
                    return;
                };
                let member = &obs.member;
                let Some((_, node)) = fields.iter().find(|(n, _)| n == member) else {
                    return;
                };
                let Some(v) = node.number(data, 0) else {
                    return;
                };
                let v = obs.convert(v);
                fam.get_or_create(&labels_of(&fields, data, Some(member)))
                    .observe(v);
            }
        }
    }
}

/// Reads a key/value map at scrape time and encodes it as counters, gauges or a histogram.
#[derive(Debug)]
pub struct MapCollector {
    map: MapHandle,
    out: MapOut,
    /// For `hist`: linear slot width, or None for log2 slots.
    linear_step: Option<f64>,
}

impl MapCollector {
    /// `map` is an owned handle of the loaded map (`MapHandle::try_from(&map)`).
    /// `linear_step` (`--hist-linear-step`) overrides the map's `ebpfctl:buckets` tag.
    pub fn new(map: MapHandle, out: MapOut, linear_step: Option<f64>) -> MapCollector {
        let linear_step = linear_step.or(match out.meta.buckets {
            Some(Layout::Linear(w)) => Some(w),
            _ => None,
        });
        MapCollector {
            map,
            out,
            linear_step,
        }
    }
}

/// Every entry of a key/value map, per-CPU values summed (read in batches: [`crate::snapshot`]).
pub use crate::snapshot::read_entries;

impl prometheus_client::collector::Collector for MapCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let entries = read_entries(&self.map, &self.out);
        let name = metric_name(&self.out);
        let key_fields = self
            .out
            .key
            .as_ref()
            .map(|k| k.fields("key"))
            .unwrap_or_default();
        let val_fields = self.out.value.fields("value");
        match self.out.keyword {
            Keyword::Counter | Keyword::Gauge => {
                // One series per key per numeric value member.
                type Series = (Option<Base>, Vec<(Labels, f64)>);
                let mut series: BTreeMap<String, Series> = BTreeMap::new();
                for (k, v) in &entries {
                    let labels = labels_of(&key_fields, k, None);
                    for (field, node) in &val_fields {
                        let Some(x) = node.number(v, 0) else { continue };
                        let n = if val_fields.len() == 1 {
                            name.clone()
                        } else {
                            format!("{name}_{}", sanitize(field))
                        };
                        // Durations and sizes are exposed in seconds and bytes, as Prometheus
                        // names them (the encoder appends the unit to the name).
                        let unit = self.out.unit_of(node);
                        let base = unit.and_then(Unit::base);
                        let x = match (base, unit) {
                            (Some(_), Some(u)) => u.to_base(x),
                            _ => x,
                        };
                        let e = series.entry(n).or_insert((base, Vec::new()));
                        e.1.push((labels.clone(), x));
                    }
                }
                let is_counter = self.out.keyword == Keyword::Counter;
                let (ty, help) = if is_counter {
                    (MetricType::Counter, "Counter")
                } else {
                    (MetricType::Gauge, "Gauge")
                };
                for (n, (base, samples)) in series {
                    let help = help_of(&self.out, format!("{help} from map {}", self.out.name));
                    let unit = base.map(Base::prometheus);
                    let mut me = enc.encode_descriptor(&n, &help, unit.as_ref(), ty)?;
                    for (labels, x) in samples {
                        let mut fam = me.encode_family(&labels)?;
                        // Integral values print as integers (`82`, not `82.0`).
                        let int = x.fract() == 0.0 && x.abs() < 9.007e15;
                        match (is_counter, int) {
                            (true, true) if x >= 0.0 => {
                                fam.encode_counter::<Labels, u64, f64>(&(x as u64), None)?
                            }
                            (true, _) => fam.encode_counter::<Labels, f64, f64>(&x, None)?,
                            (false, true) => fam.encode_gauge(&(x as i64))?,
                            (false, false) => fam.encode_gauge(&x)?,
                        }
                    }
                }
            }
            Keyword::Hist => {
                // Key: a slot (scalar key, or a member named `slot`) plus label members.
                let slot_name = if key_fields.len() == 1 {
                    key_fields[0].0
                } else {
                    "slot"
                };
                let mut hists: BTreeMap<Labels, BTreeMap<u64, u64>> = BTreeMap::new();
                for (k, v) in &entries {
                    let Some((_, slot_node)) = key_fields.iter().find(|(n, _)| *n == slot_name)
                    else {
                        continue;
                    };
                    let Some(slot) = slot_node.number(k, 0) else {
                        continue;
                    };
                    let count = self.out.value.root.number(v, 0).unwrap_or(0.0) as u64;
                    let labels = labels_of(&key_fields, k, Some(slot_name));
                    *hists
                        .entry(labels)
                        .or_default()
                        .entry(slot as u64)
                        .or_default() += count;
                }
                let (unit, unit_from) = self.slot_unit();
                let mut me = enc.encode_descriptor(
                    &name,
                    &help_of(
                        &self.out,
                        format!("Histogram from map {} (slot-keyed)", self.out.name),
                    ),
                    unit.as_ref(),
                    MetricType::Histogram,
                )?;
                for (labels, slots) in hists {
                    encode_slots(&mut me, &labels, &slots, self.linear_step, unit_from)?;
                }
            }
            // A libbpf-tools histogram value (`slots[]`), taken in by --all-maps.
            Keyword::Print if self.out.slots.is_some() => {
                let slot_name = self.out.slots.as_deref();
                let (unit, unit_from) = self.slot_unit();
                let mut me = enc.encode_descriptor(
                    &name,
                    &help_of(
                        &self.out,
                        format!("Histogram from the slots of map {} (log2)", self.out.name),
                    ),
                    unit.as_ref(),
                    MetricType::Histogram,
                )?;
                for (k, v) in &entries {
                    let mut labels = labels_of(&key_fields, k, None);
                    for (n, node) in &val_fields {
                        if Some(*n) != slot_name
                            && matches!(node, Node::Str { .. } | Node::Char { .. })
                        {
                            labels.push((sanitize(n), node.text(v, 0)));
                        }
                    }
                    let counts = super::table::slot_counts(&self.out, v);
                    let slots: BTreeMap<u64, u64> = counts
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (i as u64, *c))
                        .collect();
                    encode_slots(&mut me, &labels, &slots, self.linear_step, unit_from)?;
                }
            }
            Keyword::Print => {}
        }
        Ok(())
    }
}

impl MapCollector {
    /// The Prometheus unit of a slot histogram and the map's unit to convert from.
    fn slot_unit(&self) -> (Option<prometheus_client::registry::Unit>, Option<Unit>) {
        match self.out.meta.unit {
            Some(u) => match u.base() {
                Some(b) => (Some(b.prometheus()), Some(u)),
                None => (None, None),
            },
            None => (None, None),
        }
    }
}

/// One histogram from slot counts: log2 slots (slot *s* holds [2^s, 2^(s+1)), `le`
/// 2^(s+1)−1), or linear ones of width `linear_step`; the sum estimated from midpoints.
/// Bounds and sum are converted from `unit` (the map's) to its base unit.
fn encode_slots(
    me: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &Labels,
    slots: &BTreeMap<u64, u64>,
    linear_step: Option<f64>,
    unit: Option<Unit>,
) -> Result<(), std::fmt::Error> {
    let upper = |s: u64| {
        let x = match linear_step {
            Some(step) => (s as f64 + 1.0) * step,
            None => 2f64.powi(s.min(1023) as i32 + 1) - 1.0,
        };
        unit.map_or(x, |u| u.to_base(x))
    };
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    let (mut count, mut sum) = (0u64, 0.0);
    let max = slots.keys().max().copied().unwrap_or(0);
    for s in 0..=max {
        let c = slots.get(&s).copied().unwrap_or(0);
        buckets.push((upper(s), c));
        count += c;
        // Midpoint estimate: slots keep no exact sum.
        let lo = if s == 0 { 0.0 } else { upper(s - 1) };
        sum += c as f64 * (lo + upper(s)) / 2.0;
    }
    buckets.push((f64::MAX, 0));
    me.encode_family(labels)?
        .encode_histogram::<Labels>(sum, count, &buckets, None)
}

/// Per-program run time and run count from the kernel (BPF statistics are switched on while
/// the runner serves metrics).
#[derive(Debug)]
pub struct ProgramStats {
    pub programs: Vec<(String, OwnedFd)>,
}

impl prometheus_client::collector::Collector for ProgramStats {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut stats = Vec::new();
        for (name, fd) in &self.programs {
            // SAFETY: bpf_prog_info is plain data; the kernel fills at most `len` bytes.
            let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
            // SAFETY: fd is a valid program fd; info/len describe a writable buffer.
            let rc = unsafe {
                libbpf_sys::bpf_prog_get_info_by_fd(
                    std::os::fd::AsRawFd::as_raw_fd(fd),
                    &mut info,
                    &mut len,
                )
            };
            if rc == 0 {
                stats.push((
                    vec![("program".to_string(), name.clone())],
                    info.run_time_ns as f64 / 1e9,
                    info.run_cnt as f64,
                ));
            }
        }
        let mut me = enc.encode_descriptor(
            "ebpfctl_program_run_time_seconds",
            "Time spent running each BPF program (needs BPF statistics, enabled while serving)",
            None,
            MetricType::Counter,
        )?;
        for (l, t, _) in &stats {
            me.encode_family(l)?
                .encode_counter::<Labels, f64, f64>(t, None)?;
        }
        let mut me = enc.encode_descriptor(
            "ebpfctl_program_runs",
            "Times each BPF program ran",
            None,
            MetricType::Counter,
        )?;
        for (l, _, c) in &stats {
            me.encode_family(l)?
                .encode_counter::<Labels, u64, f64>(&(*c as u64), None)?;
        }
        Ok(())
    }
}

/// Keeps the kernel's BPF run-time statistics on while alive (`BPF_ENABLE_STATS`).
pub struct StatsGuard(#[allow(dead_code)] OwnedFd);

impl StatsGuard {
    pub fn enable() -> Option<StatsGuard> {
        // SAFETY: bpf_enable_stats takes a plain enum and returns an fd or a negative errno.
        let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        // SAFETY: a non-negative return is a fresh fd we own.
        (fd >= 0).then(|| StatsGuard(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }
}
