//! `run -o table` on a terminal: one panel per map, the selected one scrollable, a status
//! line (events/s, lost, dropped by output, metrics address) and the keys.
//!
//! [`LiveView`] is the state and its drawing, built in steps (`layout` → `panels` →
//! `status` → `keys`), each a short method; [`TuiPrinter`] feeds it from the run session
//! (the [`Printer`] calls) and owns the [`Screen`].
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::panel::{Entry as Row, Kind, Panel, Sort};
use super::{Driver, Held, Key, View};
use crate::convention;
use crate::print::table::{event_row, histograms, row};
use crate::print::writer::{Source, Writer};
use crate::print::{Entry, MapOut, Printer};

/// The smallest selected panel that still shows rows.
const MIN_SELECTED: u16 = 6;
/// The tallest an unselected panel gets.
const MAX_OTHER: u16 = 8;

/// The live view's state: panels by display name, the selection, the sort, the counters.
pub struct LiveView {
    panels: BTreeMap<String, Panel>,
    selected: usize,
    sort: Sort,
    reverse: bool,
    color: bool,
    /// The selected panel's height at the last draw (for page keys).
    page: u16,
    events: u64,
    rate: Rate,
    pub dropped: u64,
    pub metrics: Option<SocketAddr>,
    pub notice: Option<String>,
}

/// Events per second over the last second or more.
pub(super) struct Rate {
    since: Instant,
    base: u64,
    per_sec: f64,
}

impl Rate {
    pub(super) fn new() -> Rate {
        Rate {
            since: Instant::now(),
            base: 0,
            per_sec: 0.0,
        }
    }

    pub(super) fn per_sec(&self) -> f64 {
        self.per_sec
    }

    pub(super) fn update(&mut self, total: u64) {
        let dt = self.since.elapsed();
        if dt >= Duration::from_secs(1) {
            self.per_sec = (total - self.base) as f64 / dt.as_secs_f64();
            self.base = total;
            self.since = Instant::now();
        }
    }
}

impl LiveView {
    pub fn new(color: bool) -> LiveView {
        LiveView {
            panels: BTreeMap::new(),
            selected: 0,
            sort: Sort::Value,
            reverse: false,
            color,
            page: MIN_SELECTED,
            events: 0,
            rate: Rate::new(),
            dropped: 0,
            metrics: None,
            notice: None,
        }
    }

    fn panel(&mut self, map: &MapOut, kind: Kind) -> &mut Panel {
        self.panels
            .entry(map.display.clone())
            .or_insert_with(|| Panel::new(&map.display, kind))
    }

    /// The kind of `map`'s panel.
    fn kind_of(map: &MapOut) -> Kind {
        if map.is_stream() {
            return Kind::Stream;
        }
        if map.slots.is_some() {
            return Kind::Text;
        }
        let t = map.map_type;
        let lru = matches!(
            t,
            convention::BPF_MAP_TYPE_LRU_HASH | convention::BPF_MAP_TYPE_LRU_PERCPU_HASH
        );
        let hash = lru
            || matches!(
                t,
                convention::BPF_MAP_TYPE_HASH | convention::BPF_MAP_TYPE_PERCPU_HASH
            );
        Kind::Entries {
            max: map.max_entries,
            hash,
            lru,
        }
    }

    /// One event of a stream map.
    pub fn event(&mut self, map: &MapOut, data: &[u8]) {
        let (cols, cells) = event_row(map, data);
        self.events += 1;
        self.panel(map, Kind::Stream).push_event(cols, cells);
    }

    /// A snapshot of a key/value map (histograms as text).
    pub fn snapshot(&mut self, map: &MapOut, entries: &[Entry]) {
        if map.slots.is_some() {
            let mut text = histograms(map, entries);
            if text.is_empty() {
                text.push_str("(no entries yet)\n");
            }
            self.panel(map, Kind::Text)
                .set_text(text, entries.len() as u64);
            return;
        }
        let mut columns = Vec::new();
        let key_cols = map.key.as_ref().map_or(0, |k| k.fields("key").len());
        let rows = entries
            .iter()
            .map(|(k, v)| {
                let (cols, cells) = row(map, Some(k), v);
                columns = cols;
                Row {
                    cells,
                    value: map.value.root.number(v, 0).unwrap_or(0.0),
                }
            })
            .collect();
        let (sort, reverse) = (self.sort, self.reverse);
        let kind = Self::kind_of(map);
        let p = self.panel(map, kind);
        p.set_entries(columns, key_cols, rows);
        p.sort(sort, reverse);
    }

    /// An iterator program's latest output.
    pub fn iter_text(&mut self, prog: &str, text: &str) {
        let name = format!("{prog} (iterator)");
        let p = self
            .panels
            .entry(name.clone())
            .or_insert_with(|| Panel::new(&name, Kind::Text));
        p.set_text(text.to_string(), text.lines().count() as u64);
    }

    pub fn lost(&mut self, map: &MapOut, total: u64) {
        self.panel(map, Kind::Stream).lost = total;
    }

    /// Applies one key; false when it asks to quit.
    pub fn key(&mut self, key: Key) -> bool {
        let key = key.space_pages();
        let n = self.panels.len().max(1);
        let page = self.page as isize - 3;
        let scroll = |v: &mut LiveView, d: isize| {
            let h = v.page;
            if let Some(p) = v.panels.values_mut().nth(v.selected) {
                p.scroll_by(d, h);
            }
        };
        match key {
            Key::Quit => return false,
            Key::Next => self.selected = (self.selected + 1) % n,
            Key::Prev => self.selected = (self.selected + n - 1) % n,
            Key::Up => scroll(self, -1),
            Key::Down => scroll(self, 1),
            Key::PageUp => scroll(self, -page.max(1)),
            Key::PageDown => scroll(self, page.max(1)),
            Key::Top => scroll(self, isize::MIN / 2),
            Key::Bottom => scroll(self, isize::MAX / 2),
            Key::Char('k') => self.resort(Sort::Key),
            Key::Char('v') => self.resort(Sort::Value),
            Key::Char('r') => {
                self.reverse = !self.reverse;
                self.resort(self.sort);
            }
            Key::Char(_) => {}
        }
        true
    }

    fn resort(&mut self, sort: Sort) {
        self.sort = sort;
        for p in self.panels.values_mut() {
            p.sort(sort, self.reverse);
        }
    }

    /// `m` when styling is allowed (`--color`, `NO_COLOR`), else nothing.
    fn style(&self, m: Modifier) -> Style {
        if self.color {
            Style::default().add_modifier(m)
        } else {
            Style::default()
        }
    }

    /// Draws the whole view into `f`'s area.
    pub fn draw(&mut self, f: &mut Frame) {
        self.rate.update(self.events);
        let [body, status, keys] = self.layout(f.area());
        self.panels_in(f, body);
        self.status(f, status);
        self.keys(f, keys);
    }

    /// Panels above, then the status line and the keys line.
    fn layout(&self, area: Rect) -> [Rect; 3] {
        Layout::vertical([
            Constraint::Min(1),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area)
    }

    /// Heights of the panels in `total` lines: unselected panels get what shows them (at
    /// most [`MAX_OTHER`]), the selected one the rest; short of room, the others shrink to
    /// their title line, and those that still do not fit are not shown (height 0).
    fn heights(&self, total: u16) -> Vec<u16> {
        let n = self.panels.len();
        let sel = self.selected.min(n.saturating_sub(1));
        let others: u16 = n.saturating_sub(1) as u16;
        let want: Vec<u16> = self
            .panels
            .values()
            .map(|p| (p.wanted_height().min(MAX_OTHER as usize)) as u16)
            .collect();
        let other_sum: u16 = want
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != sel)
            .map(|(_, &h)| h)
            .sum();
        let mut h: Vec<u16> = if other_sum + MIN_SELECTED <= total {
            want
        } else if others + MIN_SELECTED <= total {
            // Share what is left: each other panel gets the same, at least its title line.
            let each = ((total - MIN_SELECTED) / others.max(1)).max(1);
            want.iter().map(|&w| w.min(each)).collect()
        } else {
            // Only as many title lines as fit, nearest the selected panel first.
            let mut room = total.saturating_sub(MIN_SELECTED.min(total));
            let mut h = vec![0; n];
            for d in 1..n {
                for i in [sel.checked_sub(d), sel.checked_add(d).filter(|&i| i < n)]
                    .into_iter()
                    .flatten()
                {
                    if room > 0 {
                        h[i] = 1;
                        room -= 1;
                    }
                }
            }
            h
        };
        if n > 0 {
            let rest: u16 = h
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != sel)
                .map(|(_, &x)| x)
                .sum();
            h[sel] = total.saturating_sub(rest);
        }
        h
    }

    /// Every panel in its share of `area`, top to bottom in name order.
    fn panels_in(&mut self, f: &mut Frame, area: Rect) {
        if self.panels.is_empty() {
            f.render_widget(Paragraph::new("waiting for the first events..."), area);
            return;
        }
        self.selected = self.selected.min(self.panels.len() - 1);
        let heights = self.heights(area.height);
        self.page = heights[self.selected];
        let areas = Layout::vertical(heights.iter().map(|&h| Constraint::Length(h))).split(area);
        for (i, (p, a)) in self.panels.values().zip(areas.iter()).enumerate() {
            if a.height > 0 {
                p.render(f, *a, i == self.selected, self.color);
            }
        }
    }

    /// events/s, lost, dropped by output, metrics address, and the latest notice.
    fn status(&self, f: &mut Frame, area: Rect) {
        let lost: u64 = self.panels.values().map(|p| p.lost).sum();
        let mut text = format!(
            "events/s {:.1} | lost {lost} | dropped by output {}",
            self.rate.per_sec, self.dropped
        );
        if let Some(a) = self.metrics {
            text.push_str(&format!(" | metrics {a}"));
        }
        if let Some(n) = &self.notice {
            text.push_str(" | ");
            text.push_str(n);
        }
        f.render_widget(
            Paragraph::new(Line::from(text)).style(self.style(Modifier::REVERSED)),
            area,
        );
    }

    /// The keys and the current sort.
    fn keys(&self, f: &mut Frame, area: Rect) {
        let sort = match (self.sort, self.reverse) {
            (Sort::Value, false) => "value ↓",
            (Sort::Value, true) => "value ↑",
            (Sort::Key, false) => "key ↑",
            (Sort::Key, true) => "key ↓",
        };
        let bold = self.style(Modifier::BOLD);
        let line = Line::from(vec![
            Span::styled("q", bold),
            Span::raw(" quit  "),
            Span::styled("Tab", bold),
            Span::raw(" map  "),
            Span::styled("↑↓ PgUp PgDn", bold),
            Span::raw(" scroll  "),
            Span::styled("k/v", bold),
            Span::raw(" sort key/value  "),
            Span::styled("r", bold),
            Span::raw(format!(" reverse  [{sort}]")),
        ]);
        f.render_widget(Paragraph::new(line), area);
    }
}

/// The [`Printer`] of `run -o table` on a terminal: feeds a [`LiveView`] and puts it on the
/// screen at each flush through a [`Driver`]. `q`, Esc and Ctrl-C raise the run's stop flag.
pub struct TuiPrinter {
    view: LiveView,
    driver: Driver,
}

impl TuiPrinter {
    pub fn new(frames: Source, every: Duration, color: bool, held: Held) -> TuiPrinter {
        TuiPrinter {
            view: LiveView::new(color),
            driver: Driver::new(frames, every, held),
        }
    }
}

impl View for LiveView {
    fn key(&mut self, key: Key) -> bool {
        LiveView::key(self, key)
    }
    fn draw(&mut self, f: &mut Frame) {
        LiveView::draw(self, f)
    }
    fn counters(&mut self, dropped: u64, notice: Option<String>) {
        self.dropped = dropped;
        self.notice = notice;
    }
}

impl Printer for TuiPrinter {
    fn event(&mut self, _: &mut Writer, map: &MapOut, data: &[u8]) {
        self.view.event(map, data);
        self.driver.touch();
    }

    fn snapshot(&mut self, _: &mut Writer, map: &MapOut, entries: &[Entry]) {
        self.view.snapshot(map, entries);
        self.driver.touch();
    }

    fn iter_text(&mut self, _: &mut Writer, _: Source, prog: &str, text: &str) {
        self.view.iter_text(prog, text);
        self.driver.touch();
    }

    fn lost(&mut self, _: &mut Writer, map: &MapOut, _new: u64, total: u64) {
        self.view.lost(map, total);
        self.driver.touch();
    }

    fn serving(&mut self, addr: SocketAddr) {
        self.view.metrics = Some(addr);
        self.driver.touch();
    }

    fn flush(&mut self, out: &mut Writer) {
        // A quit key has raised the stop flag already; the run ends through it.
        self.driver.tick(out, &mut self.view);
    }

    fn finish(&mut self, out: &mut Writer) {
        self.driver.leave(out);
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn lines(view: &mut LiveView, w: u16, h: u16) -> Vec<String> {
        super::super::rendered(w, h, |f| view.draw(f))
    }

    fn entries(view: &mut LiveView, name: &str, max: u32, n: u64) {
        let mut p = Panel::new(
            name,
            Kind::Entries {
                max,
                hash: true,
                lru: false,
            },
        );
        let rows = (0..n)
            .map(|i| Row {
                cells: vec![format!("key{i:03}"), (i * 10).to_string()],
                value: (i * 10) as f64,
            })
            .collect();
        p.set_entries(vec!["comm".into(), "count".into()], 1, rows);
        p.sort(Sort::Value, false);
        view.panels.insert(name.into(), p);
    }

    fn stream(view: &mut LiveView, name: &str, n: u64) {
        let mut p = Panel::new(name, Kind::Stream);
        for i in 0..n {
            p.push_event(
                vec!["pid".into(), "comm".into()],
                vec![i.to_string(), "x".repeat(100)],
            );
        }
        view.panels.insert(name.into(), p);
    }

    #[test]
    fn panels_status_and_keys_fit_80x24() {
        let mut v = LiveView::new(false);
        entries(&mut v, "counts", 5, 5);
        stream(&mut v, "events", 50);
        v.metrics = Some("127.0.0.1:19435".parse().unwrap());
        let l = lines(&mut v, 80, 24);
        let all = l.join("\n");
        assert!(
            l[0].contains("counts") && l[0].contains("5 of 5 entries"),
            "{all}"
        );
        assert!(all.contains("FULL: new keys are dropped"), "{all}");
        assert!(all.contains("events 50 events"), "{all}");
        assert!(
            l[22].starts_with(
                "events/s 0.0 | lost 0 | dropped by output 0 | metrics 127.0.0.1:19435"
            ),
            "{all}"
        );
        assert!(l[23].starts_with("q quit"), "{all}");
        // Largest value first; cells cut to the column, not wrapped.
        assert!(l[2].contains("key004"), "{all}");
        assert_eq!(l.len(), 24);
    }

    #[test]
    fn selected_panel_scrolls_and_sorts_by_key() {
        let mut v = LiveView::new(false);
        entries(&mut v, "a", 0, 100);
        lines(&mut v, 80, 24);
        assert!(v.key(Key::Char('k')));
        let l = lines(&mut v, 80, 24);
        assert!(l[2].contains("key000"), "{}", l.join("\n"));
        v.key(Key::PageDown);
        let l = lines(&mut v, 80, 24);
        assert!(!l[2].contains("key000"), "{}", l.join("\n"));
        assert!(l.join("\n").contains("rows "), "{}", l.join("\n"));
        v.key(Key::Top);
        let l = lines(&mut v, 80, 24);
        assert!(l[2].contains("key000"));
        assert!(!v.key(Key::Quit));
    }

    #[test]
    fn many_panels_shrink_to_titles_and_the_selected_one_keeps_rows() {
        let mut v = LiveView::new(false);
        for i in 0..30 {
            entries(&mut v, &format!("m{i:02}"), 0, 3);
        }
        v.key(Key::Next);
        let h = v.heights(22);
        assert_eq!(h.iter().sum::<u16>(), 22);
        assert!(h[1] >= MIN_SELECTED, "{h:?}");
        let l = lines(&mut v, 80, 24);
        assert!(l.join("\n").contains("m01"));
    }

    #[test]
    fn resizes_to_160x50() {
        let mut v = LiveView::new(true);
        entries(&mut v, "counts", 10, 3);
        stream(&mut v, "events", 200);
        let l = lines(&mut v, 160, 50);
        assert!(l[48].starts_with("events/s"), "{}", l.join("\n"));
        assert!(l.join("\n").contains("3 of 10 entries"));
    }
}
