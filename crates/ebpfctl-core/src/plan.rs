//! What the runner does with each map of an object, decided before load (pure: no kernel):
//! which maps are printed or measured, with which decoders, which member a stream `hist`
//! observes and into which buckets, which maps are slot histograms. `run` follows the plan;
//! `inspect` shows it.
use crate::convention::{self, Keyword, MapFamily};
use crate::decode::{DecodeError, Decoder, Node};
use crate::object::{MapSpec, ObjectSpec};
use crate::print::MapOut;
use crate::unit::{Base, Layout, MapMeta, Unit};

/// Bumblebee's default buckets for a `hist_` ring buffer observing its member `le`.
pub const BUMBLEBEE_BUCKETS: [f64; 10] = [
    0.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

/// Choices from the command line that change the plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--all-maps`: every map without a keyword is treated as `print`.
    pub all_maps: bool,
    /// `--hist-key`: the member a stream `hist` observes.
    pub hist_key: Option<String>,
    /// `--buckets`: bucket bounds for stream `hist` maps.
    pub buckets: Option<Vec<f64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("map {map}: cannot decode its type: {source}")]
    Decode { map: String, source: DecodeError },
    #[error("{0}")]
    Hist(String),
    /// Two maps would show under one name, or two metrics under one name.
    #[error("{0}")]
    Clash(String),
}

/// What a stream `hist` observes.
#[derive(Debug, Clone, PartialEq)]
pub struct Observe {
    pub member: String,
    /// Upper bounds (`le`) in the exposed unit (seconds, bytes or the member's own), ascending;
    /// +Inf is implied.
    pub buckets: Vec<f64>,
    /// The member's unit: `ns` for a `duration` member, else the map's `ebpfctl:unit` tag.
    /// Values are observed converted to its base unit (seconds, bytes), the metric named so.
    pub unit: Option<Unit>,
}

impl Observe {
    /// The base unit observations are in, if any.
    pub fn base(&self) -> Option<Base> {
        self.unit.and_then(Unit::base)
    }

    /// A recorded value in the exposed unit.
    pub fn convert(&self, x: f64) -> f64 {
        match self.unit {
            Some(u) if u.base().is_some() => u.to_base(x),
            _ => x,
        }
    }
}

/// Buckets for durations in seconds: 1 µs … ~16 s, doubling.
pub fn duration_buckets() -> Vec<f64> {
    (0..25).map(|i| 1e-6 * f64::from(1u32 << i)).collect()
}

/// Buckets for plain numbers: 1 … 2^31, doubling.
pub fn number_buckets() -> Vec<f64> {
    (0..32).map(|i| f64::from(1u32 << i.min(31))).collect()
}

/// The member a stream `hist` observes: `--hist-key`, else the first `duration` member, else
/// one named `value`, else bumblebee's `le` (with bumblebee's buckets). `--buckets` (in the
/// exposed unit) overrides the buckets, then the map's `ebpfctl:buckets` tag (in the map's
/// unit). The error names the members.
pub fn observe(
    map: &str,
    fields: &[(&str, &Node)],
    opts: &PlanOptions,
    meta: &MapMeta,
) -> Result<Observe, String> {
    let member = match &opts.hist_key {
        Some(k) => fields.iter().find(|(n, _)| n == k),
        None => fields
            .iter()
            .find(|(_, n)| n.is_duration())
            .or_else(|| fields.iter().find(|(n, _)| *n == "value"))
            .or_else(|| fields.iter().find(|(n, _)| *n == "le")),
    };
    let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    let Some((name, node)) = member else {
        return Err(match &opts.hist_key {
            Some(k) => format!(
                "map {map}: --hist-key {k}: no such member; members: {}",
                names.join(", ")
            ),
            None => format!(
                "map {map}: hist needs a numeric member to observe (a `duration` member, one named `value` or `le`, or --hist-key); members: {}",
                names.join(", ")
            ),
        });
    };
    // A `duration` member is nanoseconds whatever the map says.
    let unit = if node.is_duration() {
        Some(Unit::Ns)
    } else {
        meta.unit
    };
    let base = unit.and_then(Unit::base);
    let convert = |x: f64| match unit {
        Some(u) if base.is_some() => u.to_base(x),
        _ => x,
    };
    let buckets = match (&opts.buckets, &meta.buckets) {
        (Some(b), _) => b.clone(),
        (None, Some(Layout::Bounds(b))) => b.iter().map(|x| convert(*x)).collect(),
        _ if base == Some(Base::Seconds) => duration_buckets(),
        _ if *name == "le" && unit.is_none() => BUMBLEBEE_BUCKETS.to_vec(),
        _ => number_buckets(),
    };
    Ok(Observe {
        member: name.to_string(),
        buckets,
        unit,
    })
}

/// The slots member of a libbpf-tools histogram value (`struct hist { __u32 slots[N]; ... }`:
/// log2 buckets, slot *i* counting values in [2^i, 2^(i+1))), if the value has that shape.
pub fn slots_member(value: &Decoder) -> Option<String> {
    let Node::Struct { fields, .. } = &value.root else {
        return None;
    };
    fields.iter().find_map(|(n, f)| match f {
        Node::Array { elem, count, .. }
            if n == "slots"
                && *count > 0
                && matches!(**elem, Node::Uint { .. } | Node::Int { .. }) =>
        {
            Some(n.clone())
        }
        _ => None,
    })
}

/// Maps that are never printed: libbpf's own (USDT specs), and kinds with nothing to show.
fn printable(m: &MapSpec) -> bool {
    !m.name.starts_with("__bpf_") && !matches!(convention::family(m.map_type), MapFamily::Other)
}

/// The output plan of each map the run prints or measures.
pub fn plan(spec: &ObjectSpec, opts: &PlanOptions) -> Result<Vec<MapOut>, PlanError> {
    let mut outs = Vec::new();
    for m in &spec.maps {
        let keyword = match m.keyword {
            Some(k) => k,
            None if opts.all_maps && printable(m) => Keyword::Print,
            None => continue,
        };
        let dec = |id: u32| match &spec.btf {
            Some(btf) => Decoder::new(btf, id).map_err(|source| PlanError::Decode {
                map: m.name.clone(),
                source,
            }),
            None => Ok(Decoder::raw(0)),
        };
        let stream = matches!(
            convention::family(m.map_type),
            MapFamily::RingBuf | MapFamily::PerfArray
        );
        // Keyword maps were checked for a value type when the object was parsed; maps taken
        // in by --all-maps may have none (raw bytes then).
        let (value, raw) = match (m.value_type, stream) {
            (Some(v), _) if spec.btf.is_some() => (dec(v)?, false),
            (_, true) => (Decoder::raw(0), true),
            (_, false) => (Decoder::raw(m.value_size as usize), false),
        };
        let key = match (stream, m.key_type) {
            (true, _) => None,
            (false, Some(k)) if spec.btf.is_some() => Some(dec(k)?),
            (false, _) => Some(Decoder::raw(m.key_size as usize)),
        };
        let mut out = MapOut::new(m, key, value);
        out.keyword = keyword;
        out.raw = raw;
        if stream && keyword == Keyword::Hist {
            out.observe = Some(
                observe(&m.name, &out.value.fields("value"), opts, &m.meta)
                    .map_err(PlanError::Hist)?,
            );
        }
        if !stream {
            out.slots = slots_member(&out.value);
        }
        out.id = outs.len();
        outs.push(out);
    }
    check_names(&outs).map_err(PlanError::Clash)?;
    Ok(outs)
}

/// The runner's own metric families (print/prometheus.rs), which no map may take.
pub const RUNNER_FAMILIES: [(&str, &str); 6] = [
    ("ebpfctl_events", "counter"),
    ("ebpfctl_lost_events", "counter"),
    ("ebpfctl_decode_errors", "counter"),
    ("ebpfctl_output_dropped", "counter"),
    ("ebpfctl_program_run_time_seconds", "counter"),
    ("ebpfctl_program_runs", "counter"),
];

/// The metric families a map's plan makes, as `(family name, type)`; the name includes the
/// unit suffix. Value members that may not be numbers count too (a superset is safe here).
pub fn metric_families(o: &MapOut) -> Vec<(String, &'static str)> {
    let name = format!("ebpfctl_{}", crate::print::prometheus::sanitize(&o.display));
    let suffixed = |n: &str, unit: Option<Unit>| match unit.and_then(Unit::base) {
        Some(b) => format!("{n}_{}", b.as_str()),
        None => n.to_string(),
    };
    let stream = o.is_stream();
    match (o.keyword, stream) {
        (Keyword::Counter, true) => vec![(name, "counter")],
        (Keyword::Hist, true) => vec![(
            suffixed(&name, o.observe.as_ref().and_then(|x| x.unit)),
            "histogram",
        )],
        (Keyword::Counter | Keyword::Gauge, false) => {
            let ty = if o.keyword == Keyword::Counter {
                "counter"
            } else {
                "gauge"
            };
            let fields = o.value.fields("value");
            let one = fields.len() == 1;
            fields
                .iter()
                .map(|(f, node)| {
                    let n = if one {
                        name.clone()
                    } else {
                        format!("{name}_{}", crate::print::prometheus::sanitize(f))
                    };
                    (suffixed(&n, o.unit_of(node)), ty)
                })
                .collect()
        }
        (Keyword::Hist, false) => vec![(suffixed(&name, o.meta.unit), "histogram")],
        (Keyword::Print, false) if o.slots.is_some() => {
            vec![(suffixed(&name, o.meta.unit), "histogram")]
        }
        // Gauges on streams are refused when the object is parsed.
        (Keyword::Print, _) | (Keyword::Gauge, true) => vec![],
    }
}

/// The names a family takes: its own (`# TYPE` in OpenMetrics) and its samples' (`_total` of
/// a counter; `_bucket`, `_sum`, `_count` of a histogram).
fn samples(family: &str, ty: &str) -> Vec<String> {
    let own = match ty {
        "counter" => &["", "_total"][..],
        "histogram" => &["", "_bucket", "_sum", "_count"][..],
        _ => &[""][..],
    };
    own.iter().map(|s| format!("{family}{s}")).collect()
}

/// Refuses a plan in which two maps share a display name (tables, JSON lines and metrics
/// would mix them), or two metric families would write the same sample name (each other's, or
/// the runner's own series). The error names both maps and what to rename.
fn check_names(outs: &[MapOut]) -> Result<(), String> {
    for (i, a) in outs.iter().enumerate() {
        if let Some(b) = outs[..i].iter().find(|b| b.display == a.display) {
            // The one whose name lost a prefix explains the rule.
            let prefixed = [a, b]
                .into_iter()
                .find(|m| m.name != m.display)
                .unwrap_or(a);
            return Err(format!(
                "maps {} and {} both show as `{}` (tables, JSON and metrics would mix them): rename one so that the names differ once the keyword prefix is removed (outputs show {} as `{}`)",
                b.name, a.name, a.display, prefixed.name, prefixed.display
            ));
        }
    }
    // sample name → who writes it
    let mut owner: std::collections::HashMap<String, String> = RUNNER_FAMILIES
        .iter()
        .flat_map(|(f, ty)| samples(f, ty))
        .map(|s| (s, "ebpfctl's own series".to_string()))
        .collect();
    for o in outs {
        for (family, ty) in metric_families(o) {
            for s in samples(&family, ty) {
                let me = format!("map {}", o.name);
                match owner.get(&s) {
                    Some(other) if *other != me => {
                        return Err(format!(
                            "map {}: its metric {s} is also written by {other}: rename the map",
                            o.name
                        ))
                    }
                    Some(_) => {
                        return Err(format!(
                            "map {}: two of its value members make the metric {s}: rename one",
                            o.name
                        ))
                    }
                    None => {
                        owner.insert(s, me);
                    }
                }
            }
        }
    }
    Ok(())
}

fn bounds(b: &[f64]) -> String {
    if b.len() > 6 {
        format!(
            "{}, {}, {} … {}",
            num(b[0]),
            num(b[1]),
            num(b[2]),
            num(b[b.len() - 1])
        )
    } else {
        b.iter().map(|x| num(*x)).collect::<Vec<_>>().join(", ")
    }
}

/// A number as people write it: `10`, `0.5`, `1e-06`.
pub fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// One line per map for `inspect`: what `run` does with it under `opts`.
pub fn describe(spec: &ObjectSpec, opts: &PlanOptions) -> Vec<(String, String)> {
    let outs = plan(spec, opts);
    let all = plan(
        spec,
        &PlanOptions {
            all_maps: true,
            ..opts.clone()
        },
    );
    spec.maps
        .iter()
        .map(|m| {
            let fam = convention::family(m.map_type);
            let line = if m.map_type == convention::BPF_MAP_TYPE_STRUCT_OPS {
                "registered with the kernel while running (its programs run through it)".into()
            } else if m.map_type == convention::BPF_MAP_TYPE_STACK_TRACE {
                "read to print kernel_stack/user_stack members as frames".into()
            } else {
                match &outs {
                    Err(e) => format!("refused: {e}"),
                    Ok(outs) => match outs.iter().find(|o| o.name == m.name) {
                        None if m.name.starts_with("__bpf_") || fam == MapFamily::Other => {
                            "left alone".into()
                        }
                        None => match all
                            .as_ref()
                            .ok()
                            .and_then(|a| a.iter().find(|o| o.name == m.name))
                        {
                            Some(o) => format!(
                                "left alone (no keyword); with --all-maps it {}",
                                what(o, m).replace(" (--all-maps)", "")
                            ),
                            None => "left alone (no keyword)".into(),
                        },
                        Some(o) => what(o, m),
                    },
                }
            };
            (m.name.clone(), line)
        })
        .collect()
}

fn what(o: &MapOut, m: &MapSpec) -> String {
    let by = if m.keyword.is_none() {
        " (--all-maps)"
    } else {
        ""
    };
    let ty = if o.raw {
        "raw bytes: no value type in BTF".to_string()
    } else {
        o.value.type_name.clone()
    };
    match (o.keyword, o.is_stream()) {
        (Keyword::Print, true) => format!("prints each event ({ty}){by}"),
        (Keyword::Print, false) => match &o.slots {
            Some(s) => format!(
                "prints a log2 histogram from {s}[] every interval; Prometheus histogram ebpfctl_{}{by}",
                crate::print::prometheus::sanitize(&o.display)
            ),
            None => format!("prints every entry every interval{by}"),
        },
        (Keyword::Counter, true) => "counts events by their members (Prometheus counter)".into(),
        (Keyword::Hist, true) => match &o.observe {
            Some(obs) => format!(
                "Prometheus histogram of member {} (buckets {}{}), other members as labels",
                obs.member,
                bounds(&obs.buckets),
                match obs.base() {
                    Some(b) => format!(" {}", b.as_str()),
                    None => String::new(),
                }
            ),
            None => "Prometheus histogram".into(),
        },
        (Keyword::Counter, false) => format!("Prometheus counter per key{}", in_units(o)),
        (Keyword::Gauge, _) => format!("Prometheus gauge per key{}", in_units(o)),
        (Keyword::Hist, false) => {
            let slots = match &o.meta.buckets {
                Some(Layout::Linear(w)) => format!("linear slots of width {}", num(*w)),
                _ => "log2 slots".into(),
            };
            let unit = match o.meta.unit {
                Some(u) => match u.base() {
                    Some(b) => format!(" of {u}, exposed in {}", b.as_str()),
                    None => format!(" of {u}"),
                },
                None => String::new(),
            };
            format!("Prometheus histogram from a slot-keyed map ({slots}{unit})")
        }
    }
}

/// ` (ms, exposed in seconds)` for a map whose unit tag converts its values.
fn in_units(o: &MapOut) -> String {
    match o.meta.unit {
        Some(u) => match u.base() {
            Some(b) => format!(" ({u}, exposed in {})", b.as_str()),
            None => format!(" ({u})"),
        },
        None => String::new(),
    }
}
