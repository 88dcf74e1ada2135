//! A live terminal view: one table per map, redrawn every interval. Stream maps show their
//! latest events; key/value maps their entries, largest value first.
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::time::{Duration, Instant};

use super::{Entry, MapOut, Printer};
use crate::decode::{time, Node};

const MAX_ROWS: usize = 20;

#[derive(Default)]
struct View {
    columns: Vec<String>,
    rows: VecDeque<Vec<String>>,
    events: u64,
    lost: u64,
}

/// Which escape codes the table writes; the default writes none (a file, a pipe).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStyle {
    /// Clear the screen before each frame (a live view on a terminal); without it frames
    /// follow one another, separated by a blank line.
    pub redraw: bool,
    /// Map names in bold.
    pub bold: bool,
}

/// Redraws the whole screen on `flush` when something changed.
pub struct TablePrinter<W: Write> {
    out: W,
    style: TableStyle,
    views: BTreeMap<String, View>,
    dirty: bool,
    every: Duration,
    last: Option<Instant>,
}

fn cell(node: &Node, data: &[u8], base: usize) -> String {
    if node.is_duration() {
        return time::human_duration(node.number(data, base).unwrap_or(0.0) as u64);
    }
    node.text(data, base)
}

fn row(map: &MapOut, key: Option<&[u8]>, value: &[u8]) -> (Vec<String>, Vec<String>) {
    let mut cols = Vec::new();
    let mut cells = Vec::new();
    if let (Some(kd), Some(k)) = (&map.key, key) {
        for (n, node) in kd.fields("key") {
            cols.push(n.to_string());
            cells.push(cell(node, k, 0));
        }
    }
    for (n, node) in map.value.fields("value") {
        cols.push(n.to_string());
        cells.push(cell(node, value, 0));
    }
    (cols, cells)
}

impl<W: Write> TablePrinter<W> {
    /// Redraws at most once per `every`.
    pub fn new(out: W, every: Duration, style: TableStyle) -> Self {
        Self {
            out,
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
                    .map(|c| c.to_uppercase())
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

impl<W: Write> Printer for TablePrinter<W> {
    fn event(&mut self, map: &MapOut, data: &[u8]) {
        let (cols, cells) = row(map, None, data);
        let v = self.views.entry(map.display.clone()).or_default();
        v.columns = cols;
        v.rows.push_front(cells);
        v.rows.truncate(MAX_ROWS);
        v.events += 1;
        self.dirty = true;
    }

    fn snapshot(&mut self, map: &MapOut, entries: &[Entry]) {
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

    fn lost(&mut self, map: &MapOut, _new: u64, total: u64) {
        self.views.entry(map.display.clone()).or_default().lost = total;
        self.dirty = true;
    }

    fn flush(&mut self) {
        if self.dirty && self.last.is_none_or(|t| t.elapsed() >= self.every) {
            self.last = Some(Instant::now());
            let _ = self.out.write_all(self.render().as_bytes());
            let _ = self.out.flush();
            self.dirty = false;
        }
    }

    fn finish(&mut self) {
        self.last = None;
        self.flush();
    }
}
