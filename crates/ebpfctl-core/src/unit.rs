//! What a probe says about a map in its source, as BTF declaration tags on the map variable
//! (`EBPFCTL_UNIT(us)`, `EBPFCTL_HELP("...")`, `EBPFCTL_BUCKETS("linear:100")` in ebpfctl.h):
//! the unit of its values, the help text of its metrics and its bucket layout. Metrics
//! convert values to base units (seconds, bytes) as Prometheus names them
//! (docs/conventions.md, docs/metrics.md).

use std::fmt;

use crate::btf::{Btf, Data, Kind};

/// The unit of a map's numeric values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Ns,
    Us,
    Ms,
    S,
    Bytes,
    KiB,
    MiB,
    GiB,
    KB,
    MB,
    GB,
    /// Dimensionless: a plain count (the default without a tag; stated explicitly).
    Count,
}

/// A Prometheus base unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Seconds,
    Bytes,
}

impl Base {
    pub fn as_str(self) -> &'static str {
        match self {
            Base::Seconds => "seconds",
            Base::Bytes => "bytes",
        }
    }

    pub fn prometheus(self) -> prometheus_client::registry::Unit {
        match self {
            Base::Seconds => prometheus_client::registry::Unit::Seconds,
            Base::Bytes => prometheus_client::registry::Unit::Bytes,
        }
    }
}

impl Unit {
    pub const ALL: [Unit; 12] = [
        Unit::Ns,
        Unit::Us,
        Unit::Ms,
        Unit::S,
        Unit::Bytes,
        Unit::KiB,
        Unit::MiB,
        Unit::GiB,
        Unit::KB,
        Unit::MB,
        Unit::GB,
        Unit::Count,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::S => "s",
            Unit::Bytes => "bytes",
            Unit::KiB => "KiB",
            Unit::MiB => "MiB",
            Unit::GiB => "GiB",
            Unit::KB => "kB",
            Unit::MB => "MB",
            Unit::GB => "GB",
            Unit::Count => "count",
        }
    }

    /// A unit as written in a tag: the names of [`Unit::as_str`], plus `µs`, `B`, `KB`.
    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "µs" => return Some(Unit::Us),
            "B" | "byte" => return Some(Unit::Bytes),
            "KB" => return Some(Unit::KB),
            _ => {}
        }
        Unit::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// The base unit values are exposed in; `None` for counts.
    pub fn base(self) -> Option<Base> {
        match self {
            Unit::Ns | Unit::Us | Unit::Ms | Unit::S => Some(Base::Seconds),
            Unit::Count => None,
            _ => Some(Base::Bytes),
        }
    }

    /// What one of this unit is in its base unit.
    pub fn factor(self) -> f64 {
        match self {
            Unit::Ns => 1e-9,
            Unit::Us => 1e-6,
            Unit::Ms => 1e-3,
            Unit::S | Unit::Bytes | Unit::Count => 1.0,
            Unit::KiB => 1024.0,
            Unit::MiB => 1024.0 * 1024.0,
            Unit::GiB => 1024.0 * 1024.0 * 1024.0,
            Unit::KB => 1e3,
            Unit::MB => 1e6,
            Unit::GB => 1e9,
        }
    }

    /// `x` of this unit in its base unit (divided by 10^k for sub-second units, so that
    /// 1023 µs is exactly the float nearest 0.001023 s).
    pub fn to_base(self, x: f64) -> f64 {
        match self {
            Unit::Ns => x / 1e9,
            Unit::Us => x / 1e6,
            Unit::Ms => x / 1e3,
            _ => x * self.factor(),
        }
    }

    fn names() -> String {
        Unit::ALL.map(|u| u.as_str()).join(", ")
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Unit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How a histogram map's slots or a stream histogram's buckets are laid out.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Slot *s* holds [2^s, 2^(s+1)) (slot-keyed maps, `slots[]` values): the default.
    Log2,
    /// Slot *s* holds [s·W, (s+1)·W), in the map's unit.
    Linear(f64),
    /// Bucket upper bounds for a stream `hist`, ascending, in the map's unit.
    Bounds(Vec<f64>),
}

/// What the tags of one map say.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MapMeta {
    pub unit: Option<Unit>,
    pub help: Option<String>,
    pub buckets: Option<Layout>,
}

/// The tag prefix ebpfctl reads; other decl tags are left alone.
pub const TAG_PREFIX: &str = "ebpfctl:";

/// Reads the `ebpfctl:` declaration tags on BTF VAR `var` (component_idx −1). The error
/// names the bad tag and what it accepts.
pub fn from_btf(btf: &Btf, var: u32) -> Result<MapMeta, String> {
    let mut meta = MapMeta::default();
    for (_, t) in btf.iter() {
        if t.kind != Kind::DeclTag || t.size_or_type != var {
            continue;
        }
        if !matches!(t.data, Data::DeclTag { component_idx: -1 }) {
            continue;
        }
        let Some(tag) = btf.str(t.name_off).strip_prefix(TAG_PREFIX) else {
            continue;
        };
        parse_tag(&mut meta, tag)?;
    }
    Ok(meta)
}

fn parse_tag(meta: &mut MapMeta, tag: &str) -> Result<(), String> {
    let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
    let value = value.trim();
    match key {
        "unit" => {
            let u = Unit::parse(value).ok_or_else(|| {
                format!(
                    "tag `ebpfctl:unit={value}`: unknown unit (known: {})",
                    Unit::names()
                )
            })?;
            meta.unit = Some(u);
        }
        "help" => {
            if value.is_empty() || value.contains('\n') {
                return Err("tag `ebpfctl:help=`: the help text must be one non-empty line".into());
            }
            meta.help = Some(value.to_string());
        }
        "buckets" => meta.buckets = Some(parse_layout(value)?),
        _ => {
            return Err(format!(
            "tag `ebpfctl:{tag}`: unknown (known: ebpfctl:unit=, ebpfctl:help=, ebpfctl:buckets=)"
        ))
        }
    }
    Ok(())
}

fn parse_layout(value: &str) -> Result<Layout, String> {
    let bad = |why: &str| {
        format!("tag `ebpfctl:buckets={value}`: {why} (expected log2, linear:WIDTH or ascending bounds like 1,5,10)")
    };
    if value == "log2" {
        return Ok(Layout::Log2);
    }
    if let Some(w) = value.strip_prefix("linear:") {
        return match w.trim().parse::<f64>() {
            Ok(w) if w > 0.0 && w.is_finite() => Ok(Layout::Linear(w)),
            _ => Err(bad("the width must be a positive number")),
        };
    }
    let bounds: Vec<f64> = value
        .split(',')
        .map(|b| b.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad("not a number"))?;
    if bounds.is_empty()
        || bounds.iter().any(|b| !b.is_finite())
        || bounds.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(bad("bounds must be finite and ascending"));
    }
    Ok(Layout::Bounds(bounds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        let mut m = MapMeta::default();
        parse_tag(&mut m, "unit=us").unwrap();
        parse_tag(&mut m, "help=Time spent sleeping").unwrap();
        parse_tag(&mut m, "buckets=linear:100").unwrap();
        assert_eq!(m.unit, Some(Unit::Us));
        assert_eq!(m.help.as_deref(), Some("Time spent sleeping"));
        assert_eq!(m.buckets, Some(Layout::Linear(100.0)));
        parse_tag(&mut m, "buckets=1, 5,10").unwrap();
        assert_eq!(m.buckets, Some(Layout::Bounds(vec![1.0, 5.0, 10.0])));
        assert!(parse_tag(&mut m, "unit=parsecs")
            .unwrap_err()
            .contains("known: ns, us"));
        assert!(parse_tag(&mut m, "buckets=5,1").is_err());
        assert!(parse_tag(&mut m, "colour=red").is_err());
        assert_eq!(Unit::Us.base(), Some(Base::Seconds));
        assert_eq!(Unit::KiB.factor(), 1024.0);
        assert_eq!(Unit::Count.base(), None);
        assert_eq!(Unit::parse("µs"), Some(Unit::Us));
    }
}
