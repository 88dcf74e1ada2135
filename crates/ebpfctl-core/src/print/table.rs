//! A live terminal view: one table per map, redrawn every interval. Stream maps show their
//! latest events; key/value maps their entries, largest value first.
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::writer::{Source, Writer};
use super::{Entry, MapOut, Printer};
use crate::decode::{time, Node};

const MAX_ROWS: usize = 20;

#[derive(Default)]
struct View {
    columns: Vec<String>,
    rows: VecDeque<Vec<String>>,
    events: u64,
    lost: u64,
    /// Free text instead of rows: histograms, iterator output.
    text: Option<String>,
}

/// Which escape codes the table writes; the default writes none (a file, a pipe).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStyle {
    /// Clear the screen before each frame (a live view on a terminal); without it frames
    /// follow one another, separated by a blank line.
    pub redraw: bool,
    /// Map names in bold.
    pub bold: bool,
    /// The live view on ratatui (a terminal, with the `tui` feature): panels, keys, resizes;
    /// `redraw` and `bold` then do not apply.
    pub tui: bool,
}

/// Redraws the whole screen on `flush` when something changed; each redraw is one record of
/// `frames` for the writer's dropped counts.
pub struct TablePrinter {
    frames: Source,
    style: TableStyle,
    views: BTreeMap<String, View>,
    dirty: bool,
    every: Duration,
    last: Option<Instant>,
}

pub(crate) fn cell(node: &Node, data: &[u8], base: usize) -> String {
    if node.is_duration() {
        return time::human_duration(node.number(data, base).unwrap_or(0.0) as u64);
    }
    if let Some(frames) = node.frames(data, base) {
        let names: Vec<String> = frames.iter().map(|f| f.label()).collect();
        return names.join(";");
    }
    node.text(data, base)
}

/// A log2 histogram as text, one line per slot from the first to the last non-empty one:
/// `[lo, hi]  count  |bar|` (slot i counts values in [2^i, 2^(i+1)); slot 0 also 0).
pub fn log2_histogram(counts: &[u64]) -> String {
    let Some(last) = counts.iter().rposition(|&c| c > 0) else {
        return "  (empty)\n".into();
    };
    let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
    let max = counts.iter().copied().max().unwrap_or(1).max(1);
    const WIDTH: u64 = 40;
    let mut s = String::new();
    for (i, &c) in counts.iter().enumerate().take(last + 1).skip(first) {
        let lo: u64 = if i == 0 { 0 } else { 1u64 << i.min(63) };
        let hi: u64 = if i >= 63 {
            u64::MAX
        } else {
            (1u64 << (i + 1)) - 1
        };
        let bar = "*".repeat((c * WIDTH).div_ceil(max).min(WIDTH) as usize);
        s.push_str(&format!(
            "  {:>20} : {:<10} |{:<40}|\n",
            format!("{lo} -> {hi}"),
            c,
            bar
        ));
    }
    s
}

/// The slot counts of a `slots[]` member.
/// The columns and cells of one stream event: decoded members, or length and hex bytes
/// for a map printed raw.
pub(crate) fn event_row(map: &MapOut, data: &[u8]) -> (Vec<String>, Vec<String>) {
    if map.raw {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        (
            vec!["len".to_string(), "hex".to_string()],
            vec![data.len().to_string(), hex],
        )
    } else {
        row(map, None, data)
    }
}

/// One histogram per key of a slots map, labelled by the key and the other value members;
/// empty when the map has no entries.
pub(crate) fn histograms(map: &MapOut, entries: &[Entry]) -> String {
    let mut text = String::new();
    for (k, val) in entries {
        let mut labels = Vec::new();
        if let Some(kd) = &map.key {
            for (n, node) in kd.fields("key") {
                labels.push(format!("{n}={}", cell(node, k, 0)));
            }
        }
        for (n, node) in map.value.fields("value") {
            if Some(n) != map.slots.as_deref() {
                labels.push(format!("{n}={}", cell(node, val, 0)));
            }
        }
        text.push_str(&labels.join(" "));
        text.push('\n');
        text.push_str(&log2_histogram(&slot_counts(map, val)));
    }
    text
}

pub fn slot_counts(map: &MapOut, value: &[u8]) -> Vec<u64> {
    let Some(name) = &map.slots else {
        return Vec::new();
    };
    let Some((_, node)) = map
        .value
        .fields("value")
        .into_iter()
        .find(|(n, _)| n == name)
    else {
        return Vec::new();
    };
    let Node::Array {
        off,
        stride,
        count,
        elem,
    } = node
    else {
        return Vec::new();
    };
    (0..*count as usize)
        .map(|i| {
            elem.number(value, *off as usize + i * *stride as usize)
                .unwrap_or(0.0) as u64
        })
        .collect()
}

pub(crate) fn row(map: &MapOut, key: Option<&[u8]>, value: &[u8]) -> (Vec<String>, Vec<String>) {
    let mut cols = Vec::new();
    let mut cells = Vec::new();
    if let (Some(kd), Some(k)) = (&map.key, key) {
        for (n, node) in kd.fields("key") {
            cols.push(n.to_string());
            cells.push(cell(node, k, 0));
        }
    }
    for (n, node) in map.value.fields("value") {
        // A tagged unit in the column title (`latency (us)`); durations print as times.
        match map.meta.unit {
            Some(u) if !node.is_duration() && node.number(value, 0).is_some() => {
                cols.push(format!("{n} ({u})"))
            }
            _ => cols.push(n.to_string()),
        }
        cells.push(cell(node, value, 0));
    }
    (cols, cells)
}

impl TablePrinter {
    /// Redraws at most once per `every`.
    pub fn new(frames: Source, every: Duration, style: TableStyle) -> Self {
        Self {
            frames,
            style,
            views: BTreeMap::new(),
            dirty: true,
            every,
            last: None,
        }
    }

    fn render(&self) -> String {
        let mut s = String::from(if self.style.redraw {
            "\x1b[H\x1b[2J"
        } else {
            ""
        });
        let (bold, plain) = if self.style.bold {
            ("\x1b[1m", "\x1b[0m")
        } else {
            ("", "")
        };
        for (name, v) in &self.views {
            if let Some(text) = &v.text {
                s.push_str(&format!("{bold}{name}{plain}\n{text}\n"));
                continue;
            }
            s.push_str(&format!(
                "{bold}{name}{plain}  events {}  lost {}\n",
                v.events, v.lost
            ));
            let mut widths: Vec<usize> = v.columns.iter().map(|c| c.chars().count()).collect();
            for r in &v.rows {
                for (i, c) in r.iter().enumerate() {
                    if let Some(w) = widths.get_mut(i) {
                        *w = (*w).max(c.chars().count()).min(48);
                    }
                }
            }
            let line = |cells: &[String]| {
                let mut l = String::new();
                for (i, c) in cells.iter().enumerate() {
                    let w = widths.get(i).copied().unwrap_or(8);
                    let c: String = c.chars().take(48).collect();
                    l.push_str(&format!("{c:<w$}  "));
                }
                l.trim_end().to_string() + "\n"
            };
            s.push_str(&line(
                &v.columns
                    .iter()
                    .map(|c| match c.split_once(" (") {
                        // A unit keeps its case: `VALUE (KiB)`.
                        Some((name, unit)) => format!("{} ({unit}", name.to_uppercase()),
                        None => c.to_uppercase(),
                    })
                    .collect::<Vec<_>>(),
            ));
            for r in &v.rows {
                s.push_str(&line(r));
            }
            s.push('\n');
        }
        s
    }
}

impl Printer for TablePrinter {
    fn event(&mut self, _: &mut Writer, map: &MapOut, data: &[u8]) {
        let (cols, cells) = event_row(map, data);
        let v = self.views.entry(map.display.clone()).or_default();
        v.columns = cols;
        v.rows.push_front(cells);
        v.rows.truncate(MAX_ROWS);
        v.events += 1;
        self.dirty = true;
    }

    fn snapshot(&mut self, _: &mut Writer, map: &MapOut, entries: &[Entry]) {
        if map.slots.is_some() {
            let text = histograms(map, entries);
            let v = self.views.entry(map.display.clone()).or_default();
            v.text = Some(if text.is_empty() {
                "  (no entries yet)\n".into()
            } else {
                text
            });
            self.dirty = true;
            return;
        }
        let mut rows: Vec<(f64, Vec<String>)> = Vec::with_capacity(entries.len());
        let mut columns = Vec::new();
        for (k, val) in entries {
            let (cols, cells) = row(map, Some(k), val);
            columns = cols;
            rows.push((map.value.root.number(val, 0).unwrap_or(0.0), cells));
        }
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        let v = self.views.entry(map.display.clone()).or_default();
        if !columns.is_empty() {
            v.columns = columns;
        }
        v.events = entries.len() as u64;
        v.rows = rows.into_iter().take(MAX_ROWS).map(|(_, r)| r).collect();
        self.dirty = true;
    }

    fn iter_text(&mut self, _: &mut Writer, _: Source, prog: &str, text: &str) {
        let v = self.views.entry(format!("{prog} (iterator)")).or_default();
        let lines: Vec<&str> = text.lines().take(MAX_ROWS).collect();
        v.text = Some(lines.join("\n") + "\n");
        self.dirty = true;
    }

    fn lost(&mut self, _: &mut Writer, map: &MapOut, _new: u64, total: u64) {
        self.views.entry(map.display.clone()).or_default().lost = total;
        self.dirty = true;
    }

    fn flush(&mut self, out: &mut Writer) {
        if self.dirty && self.last.is_none_or(|t| t.elapsed() >= self.every) {
            self.last = Some(Instant::now());
            out.line(self.frames, self.render().as_bytes());
            out.flush();
            self.dirty = false;
        }
    }

    fn finish(&mut self, out: &mut Writer) {
        self.last = None;
        self.flush(out);
    }
}
