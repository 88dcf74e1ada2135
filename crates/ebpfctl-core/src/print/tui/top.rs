//! `top` on a terminal: one table of programs that fits the height (the header stays),
//! scrolls, sorts (keys in the footer) and drops columns that do not fit the width.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::Key;
use crate::inspect::print::nanos;
use crate::inspect::top::{Frame as Sample, SortBy, TopRow};

/// A column: its header, its width (0: the name column, which takes the rest) and whether
/// its cells are numbers (right-aligned).
struct Col {
    title: &'static str,
    width: u16,
    number: bool,
}

const COLS: [Col; 8] = [
    Col {
        title: "ID",
        width: 6,
        number: true,
    },
    Col {
        title: "TYPE",
        width: 13,
        number: false,
    },
    Col {
        title: "NAME",
        width: 0,
        number: false,
    },
    Col {
        title: "EVENTS/S",
        width: 9,
        number: true,
    },
    Col {
        title: "AVG",
        width: 9,
        number: true,
    },
    Col {
        title: "CPU%",
        width: 7,
        number: true,
    },
    Col {
        title: "TOTAL RUNS",
        width: 11,
        number: true,
    },
    Col {
        title: "TOTAL TIME",
        width: 11,
        number: true,
    },
];
/// The name column's least width before columns on the right are left out.
const MIN_NAME: u16 = 16;

/// The view's state: the latest sample, the order, the scroll position.
pub struct TopView {
    rows: Vec<TopRow>,
    time: String,
    sort: SortBy,
    scroll: usize,
    /// Rows shown at the last draw (for page keys).
    page: usize,
    /// How statistics are on, and the interval, for the title.
    pub how: String,
    pub interval_s: f64,
    /// Bold and reverse video allowed (`--color`, `NO_COLOR`).
    color: bool,
}

impl TopView {
    pub fn new(how: &str, interval_s: f64, color: bool) -> TopView {
        TopView {
            rows: Vec::new(),
            time: String::new(),
            sort: SortBy::Cpu,
            scroll: 0,
            page: 10,
            how: how.to_string(),
            interval_s,
            color,
        }
    }

    /// A new sample.
    pub fn set(&mut self, f: &Sample) {
        self.rows = f.programs.clone();
        self.time = f.time.clone();
        self.sort.sort(&mut self.rows);
    }

    /// Applies one key; false when it asks to quit.
    pub fn key(&mut self, k: Key) -> bool {
        let k = k.space_pages();
        let max = self.rows.len().saturating_sub(self.page.max(1));
        let page = self.page.max(1);
        match k {
            Key::Quit => return false,
            Key::Up => self.scroll = self.scroll.saturating_sub(1),
            Key::Down => self.scroll = (self.scroll + 1).min(max),
            Key::PageUp => self.scroll = self.scroll.saturating_sub(page),
            Key::PageDown => self.scroll = (self.scroll + page).min(max),
            Key::Top => self.scroll = 0,
            Key::Bottom => self.scroll = max,
            Key::Char(c) => {
                if let Some(by) = SortBy::from_key(c) {
                    self.sort = by;
                    self.sort.sort(&mut self.rows);
                }
            }
            Key::Next | Key::Prev => {}
        }
        true
    }

    /// Title line, the table (header and the rows that fit), the keys line.
    pub fn draw(&mut self, f: &mut Frame) {
        let [title, table, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(2),
            Constraint::Length(1),
        ])
        .areas(f.area());
        self.title(f, title);
        self.table(f, table);
        self.keys(f, keys);
    }

    fn style(&self, m: Modifier) -> Style {
        if self.color {
            Style::default().add_modifier(m)
        } else {
            Style::default()
        }
    }

    fn title(&self, f: &mut Frame, area: Rect) {
        let text = format!(
            "ebpfctl top  sorted by {}  {} programs  every {:.1}s  {}  statistics: {}",
            self.sort.name(),
            self.rows.len(),
            self.interval_s,
            self.time,
            self.how
        );
        f.render_widget(
            Paragraph::new(text).style(self.style(Modifier::REVERSED)),
            area,
        );
    }

    /// How many columns fit in `width` with the name column at least [`MIN_NAME`] wide.
    fn columns_for(width: u16) -> usize {
        let mut used = MIN_NAME;
        let mut n = 0;
        for c in &COLS {
            let w = if c.width == 0 { 0 } else { c.width + 1 };
            if used + w > width && n > 2 {
                break;
            }
            used += w;
            n += 1;
        }
        n
    }

    fn table(&mut self, f: &mut Frame, area: Rect) {
        let n = Self::columns_for(area.width);
        let visible = area.height.saturating_sub(1) as usize;
        self.page = visible;
        self.scroll = self
            .scroll
            .min(self.rows.len().saturating_sub(visible.max(1)));
        let cell = |i: usize, s: String| {
            let line = Line::from(s);
            Cell::from(if COLS[i].number {
                line.right_aligned()
            } else {
                line
            })
        };
        let header = Row::new((0..n).map(|i| cell(i, COLS[i].title.to_string())))
            .style(self.style(Modifier::BOLD));
        let rows = self.rows.iter().skip(self.scroll).take(visible).map(|r| {
            let all = [
                r.id.to_string(),
                r.kind.clone(),
                r.name.clone(),
                format!("{:.0}", r.events_per_sec),
                r.avg_ns.map_or("-".into(), nanos),
                format!("{:.2}", r.cpu_percent),
                r.run_cnt.to_string(),
                nanos(r.run_time_ns as f64),
            ];
            Row::new(all.into_iter().take(n).enumerate().map(|(i, s)| cell(i, s)))
        });
        let widths = COLS.iter().take(n).map(|c| match c.width {
            0 => Constraint::Min(MIN_NAME),
            w => Constraint::Length(w),
        });
        f.render_widget(
            Table::new(rows, widths).header(header).column_spacing(1),
            area,
        );
    }

    fn keys(&self, f: &mut Frame, area: Rect) {
        let bold = self.style(Modifier::BOLD);
        let mut spans = vec![
            Span::styled("q", bold),
            Span::raw(" quit  "),
            Span::styled("↑↓", bold),
            Span::raw(" scroll  sort:"),
        ];
        for (k, what) in [
            ("c", "cpu"),
            ("e", "events/s"),
            ("a", "avg"),
            ("i", "id"),
            ("n", "name"),
        ] {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(k, bold));
            spans.push(Span::raw(format!(" {what}")));
        }
        if self.rows.len() > self.page {
            spans.push(Span::raw(format!(
                "  rows {}-{} of {}",
                self.scroll + 1,
                (self.scroll + self.page).min(self.rows.len()),
                self.rows.len()
            )));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), area);
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn sample(n: u32) -> Sample {
        Sample {
            time: "t".into(),
            interval_s: 1.0,
            programs: (0..n)
                .map(|i| TopRow {
                    id: i + 1,
                    kind: "tracepoint".into(),
                    name: format!("a_rather_long_program_name_{i}"),
                    run_cnt: u64::from(i) * 1000,
                    run_time_ns: u64::from(i) * 1_000_000,
                    events: 0,
                    events_per_sec: f64::from(i),
                    avg_ns: Some(100.0),
                    cpu_percent: f64::from(i) / 10.0,
                })
                .collect(),
        }
    }

    fn lines(v: &mut TopView, w: u16, h: u16) -> Vec<String> {
        super::super::rendered(w, h, |f| v.draw(f))
    }

    #[test]
    fn the_header_stays_at_24_rows_and_rows_scroll() {
        let mut v = TopView::new("BPF_ENABLE_STATS", 1.0, true);
        v.set(&sample(100));
        let l = lines(&mut v, 80, 24);
        assert!(l[1].trim_start().starts_with("ID"), "{}", l.join("\n"));
        assert!(l[1].contains("NAME") && l[1].contains("CPU%"));
        assert!(
            !l[1].contains("TOTAL TIME"),
            "80 columns leave the last one out"
        );
        // Highest CPU first: program 100.
        assert!(l[2].trim_start().starts_with("100"), "{}", l.join("\n"));
        assert!(l[23].contains("rows 1-21 of 100"), "{}", l[23]);
        v.key(Key::PageDown);
        let l = lines(&mut v, 80, 24);
        assert!(l[1].trim_start().starts_with("ID"));
        assert!(l[23].contains("rows 22-42 of 100"), "{}", l[23]);
        v.key(Key::Char('i'));
        v.key(Key::Top);
        let l = lines(&mut v, 160, 50);
        assert!(l[1].contains("TOTAL TIME"));
        assert!(l[2].trim_start().starts_with('1'), "{}", l.join("\n"));
        assert!(!v.key(Key::Quit));
    }
}
