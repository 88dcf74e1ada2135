//! One map's panel: its rows (or text), its header line and its scroll position.
use std::cmp::Ordering;
use std::collections::VecDeque;

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Row, Table};
use ratatui::Frame;

/// Events a stream panel keeps for scrolling (newest first).
pub const STREAM_ROWS: usize = 1000;
/// The widest a column gets before its cells are cut.
const MAX_COL: usize = 48;

/// What a panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A ring buffer or perf array: the latest events.
    Stream,
    /// A key/value map's entries; `hash` maps can fill up (`lru` ones then evict).
    Entries { max: u32, hash: bool, lru: bool },
    /// Free text: histograms, iterator output.
    Text,
    /// Counts per key computed from events (a tool's summary): rows come ordered.
    Summary,
}

/// How entry panels are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Value,
    Key,
}

/// One row: its cells, and what it sorts by.
#[derive(Debug, Clone)]
pub struct Entry {
    pub cells: Vec<String>,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Panel {
    pub name: String,
    pub kind: Kind,
    pub columns: Vec<String>,
    /// Cells before this index are the key's.
    pub key_cols: usize,
    pub rows: VecDeque<Entry>,
    pub text: String,
    /// Events seen (streams) or entries in the last snapshot.
    pub count: u64,
    pub lost: u64,
    /// The first row (or text line) shown.
    pub scroll: usize,
    /// What a row is, for a summary's title (`commands`).
    pub noun: String,
    /// The last column takes the width the others leave (it is cut only at the edge).
    pub fill_last: bool,
}

/// Numbers compare as numbers, the rest as text.
fn cmp_cell(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}

impl Panel {
    pub fn new(name: &str, kind: Kind) -> Panel {
        Panel {
            name: name.to_string(),
            kind,
            columns: Vec::new(),
            key_cols: 0,
            rows: VecDeque::new(),
            text: String::new(),
            count: 0,
            lost: 0,
            scroll: 0,
            noun: String::new(),
            fill_last: false,
        }
    }

    /// A stream event, newest first.
    pub fn push_event(&mut self, columns: Vec<String>, cells: Vec<String>) {
        self.columns = columns;
        self.rows.push_front(Entry { cells, value: 0.0 });
        self.rows.truncate(STREAM_ROWS);
        self.count += 1;
        if self.scroll > 0 {
            // Keep the rows the reader is looking at in place.
            self.scroll = (self.scroll + 1).min(self.rows.len().saturating_sub(1));
        }
    }

    /// A snapshot's entries, ordered by `sort`.
    pub fn set_entries(&mut self, columns: Vec<String>, key_cols: usize, rows: Vec<Entry>) {
        if !columns.is_empty() {
            self.columns = columns;
            self.key_cols = key_cols;
        }
        self.count = rows.len() as u64;
        self.rows = rows.into();
    }

    /// Orders entry panels (streams stay newest first).
    pub fn sort(&mut self, sort: Sort, reverse: bool) {
        if !matches!(self.kind, Kind::Entries { .. }) {
            return;
        }
        let key_cols = self.key_cols;
        let rows = self.rows.make_contiguous();
        match sort {
            // Largest first.
            Sort::Value => rows.sort_by(|a, b| b.value.total_cmp(&a.value)),
            Sort::Key => rows.sort_by(|a, b| {
                a.cells
                    .iter()
                    .take(key_cols)
                    .zip(b.cells.iter().take(key_cols))
                    .map(|(x, y)| cmp_cell(x, y))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            }),
        }
        if reverse {
            rows.reverse();
        }
    }

    pub fn set_text(&mut self, text: String, count: u64) {
        self.text = text;
        self.count = count;
    }

    /// True when a hash map holds as many entries as it can.
    pub fn full(&self) -> bool {
        matches!(self.kind, Kind::Entries { max, hash: true, .. } if max > 0 && self.count >= max as u64)
    }

    /// Lines of content: rows, or text lines.
    pub fn len(&self) -> usize {
        match self.kind {
            Kind::Text => self.text.lines().count(),
            _ => self.rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The height that shows everything (borders and the column header included).
    pub fn wanted_height(&self) -> usize {
        let header = usize::from(self.kind != Kind::Text);
        self.len().max(1) + header + 2
    }

    /// The title: name, what is counted, and the full-map warning.
    pub fn title(&self, color: bool) -> Line<'static> {
        let counted = match self.kind {
            Kind::Stream if self.lost > 0 => {
                format!("{} events, {} lost", self.count, self.lost)
            }
            Kind::Stream => format!("{} events", self.count),
            Kind::Entries {
                max, hash: true, ..
            } if max > 0 => {
                format!("{} of {max} entries", self.count)
            }
            Kind::Entries { .. } => format!("{} entries", self.count),
            Kind::Summary => format!("{} {}", self.count, self.noun),
            Kind::Text => String::new(),
        };
        let bold = if color {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        let mut spans = vec![
            Span::styled(format!(" {} ", self.name), bold),
            Span::raw(format!("{counted} ")),
        ];
        if self.full() {
            let lru = matches!(self.kind, Kind::Entries { lru: true, .. });
            let warn = if lru {
                " FULL: oldest entries are evicted "
            } else {
                " FULL: new keys are dropped "
            };
            let style = if color {
                Style::default()
                    .fg(ratatui::style::Color::Red)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            spans.push(Span::styled(warn, style));
        }
        Line::from(spans)
    }

    /// How many rows fit in a panel of `height` lines.
    fn visible(&self, height: u16) -> usize {
        let header = u16::from(self.kind != Kind::Text);
        height.saturating_sub(2 + header) as usize
    }

    /// Moves the scroll position by `delta` rows within what a panel of `height` shows.
    pub fn scroll_by(&mut self, delta: isize, height: u16) {
        let max = self.len().saturating_sub(self.visible(height).max(1));
        self.scroll = self.scroll.saturating_add_signed(delta).min(max);
    }

    /// Draws the panel in `area`: a bordered block (double when selected), its column
    /// header and the rows from the scroll position; cells are cut, never wrapped.
    pub fn render(&self, f: &mut Frame, area: Rect, selected: bool, color: bool) {
        if area.height < 3 {
            // Too small for a box: the title alone.
            let marker = if selected { "> " } else { "  " };
            let mut line = self.title(color);
            line.spans.insert(0, Span::raw(marker));
            f.render_widget(Paragraph::new(line), area);
            return;
        }
        let mut block = Block::bordered().title(self.title(color));
        if selected {
            block = block.border_type(BorderType::Double);
            if self.len() > self.visible(area.height) {
                block = block.title_bottom(Line::from(format!(
                    " rows {}-{} of {} ",
                    self.scroll + 1,
                    (self.scroll + self.visible(area.height)).min(self.len()),
                    self.len()
                )));
            }
        }
        let inner = block.inner(area);
        f.render_widget(block, area);
        let visible = self.visible(area.height);
        let scroll = self.scroll.min(self.len().saturating_sub(visible.max(1)));
        if self.kind == Kind::Text {
            let lines: Vec<Line> = self
                .text
                .lines()
                .skip(scroll)
                .take(visible)
                .map(|l| Line::from(l.to_string()))
                .collect();
            f.render_widget(Paragraph::new(lines), inner);
            return;
        }
        if self.rows.is_empty() {
            let none = if matches!(self.kind, Kind::Stream | Kind::Summary) {
                "(no events yet)"
            } else {
                "(no entries yet)"
            };
            f.render_widget(Paragraph::new(none), inner);
            return;
        }
        let shown: Vec<&Entry> = self.rows.iter().skip(scroll).take(visible).collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for r in &shown {
            for (i, c) in r.cells.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count()).min(MAX_COL);
                }
            }
        }
        let mut header = Row::new(self.columns.iter().map(|c| c.to_uppercase()));
        if color {
            header = header.style(Style::default().add_modifier(Modifier::BOLD));
        }
        let rows = shown
            .iter()
            .map(|r| Row::new(r.cells.iter().map(String::as_str)));
        let last = widths.len().saturating_sub(1);
        let fill = self.fill_last;
        let constraints = widths.iter().enumerate().map(|(i, &w)| {
            if fill && i == last {
                Constraint::Fill(1)
            } else {
                Constraint::Length(w as u16)
            }
        });
        let table = Table::new(rows, constraints)
            .header(header)
            .column_spacing(2);
        f.render_widget(table, inner);
    }
}
