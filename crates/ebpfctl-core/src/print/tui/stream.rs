//! A tool's live view (execsnoop, opensnoop, observe): the event log (newest first, the last
//! [`super::panel::STREAM_ROWS`] kept for scrolling) above summary panels counted from the same events, the
//! status line and the keys.
//!
//! [`StreamView`] is the state and its drawing, built in steps (`layout` → `panels` →
//! `status` → `keys`) like `run`'s view; [`StreamTui`] feeds it from a tool's loop and puts it
//! on the screen through the [`Driver`] run's view uses too.
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::live::Rate;
use super::panel::{Entry, Kind, Panel};
use super::{Driver, Held, Key, View};
use crate::inspect::print::nanos;
use crate::print::stream_view::{Event, TallySpec, ViewSpec};
use crate::print::writer::{Source, Writer};

/// Distinct keys a summary counts one by one; later ones add to `(other)`.
pub const MAX_KEYS: usize = 10_000;
/// The fewest lines the summaries get (borders, header and three rows).
const MIN_SUMMARY: u16 = 6;
/// The fewest lines the log keeps.
const MIN_LOG: u16 = 5;

/// Duration buckets per doubling: quantiles are within about 4 %.
const PER_DOUBLING: f64 = 16.0;

/// Counts of one key.
#[derive(Debug, Default)]
struct Counts {
    n: u64,
    errors: u64,
    /// Log-scale duration histogram: bucket → events.
    hist: BTreeMap<u16, u64>,
}

impl Counts {
    fn add(&mut self, ev: &Event) {
        self.n += 1;
        self.errors += u64::from(ev.error);
        if let Some(ns) = ev.duration_ns {
            let b = ((ns.max(1) as f64).log2() * PER_DOUBLING) as u16;
            *self.hist.entry(b).or_default() += 1;
        }
    }

    /// The `q` quantile of the durations (the middle of its bucket), if any were given.
    fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.hist.values().sum();
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (&b, &n) in &self.hist {
            seen += n;
            if seen >= rank {
                return Some(((f64::from(b) + 0.5) / PER_DOUBLING).exp2());
            }
        }
        None
    }
}

/// One summary: counts per key and the panel showing them.
struct Tally {
    spec: TallySpec,
    by: HashMap<Vec<String>, Counts>,
    other: Counts,
    panel: Panel,
    changed: bool,
}

impl Tally {
    fn new(spec: TallySpec) -> Tally {
        let mut panel = Panel::new(&spec.title, Kind::Summary);
        panel.noun = spec.noun.clone();
        // Numbers first (fixed widths), the key after them; its last column takes the rest.
        let mut columns = vec![spec.count.clone(), spec.errors.clone()];
        if spec.durations {
            columns.extend(["p50".to_string(), "p99".to_string()]);
        }
        columns.extend(spec.keys.iter().cloned());
        panel.columns = columns;
        panel.fill_last = true;
        Tally {
            spec,
            by: HashMap::new(),
            other: Counts::default(),
            panel,
            changed: false,
        }
    }

    fn add(&mut self, key: &[String], ev: &Event) {
        self.changed = true;
        if let Some(c) = self.by.get_mut(key) {
            return c.add(ev);
        }
        if self.by.len() >= MAX_KEYS {
            return self.other.add(ev);
        }
        self.by.entry(key.to_vec()).or_default().add(ev);
    }

    fn cells(&self, key: &[String], c: &Counts) -> Vec<String> {
        let mut cells = vec![c.n.to_string(), c.errors.to_string()];
        if self.spec.durations {
            for q in [0.5, 0.99] {
                cells.push(c.quantile(q).map_or("-".into(), nanos));
            }
        }
        cells.extend(key.iter().cloned());
        cells
    }

    /// The panel's rows: most events first, then by key.
    fn refresh(&mut self) {
        if !self.changed {
            return;
        }
        self.changed = false;
        let mut keys: Vec<(&Vec<String>, &Counts)> = self.by.iter().collect();
        keys.sort_by(|a, b| b.1.n.cmp(&a.1.n).then_with(|| a.0.cmp(b.0)));
        let mut rows: Vec<Entry> = keys
            .into_iter()
            .map(|(k, c)| Entry {
                cells: self.cells(k, c),
                value: c.n as f64,
            })
            .collect();
        if self.other.n > 0 {
            let mut key = vec!["(other)".to_string()];
            key.resize(self.spec.keys.len().max(1), String::new());
            rows.push(Entry {
                cells: self.cells(&key, &self.other),
                value: self.other.n as f64,
            });
        }
        let columns = self.panel.columns.clone();
        let key_cols = self.panel.key_cols;
        self.panel.set_entries(columns, key_cols, rows);
    }
}

/// The view's state: the log, the summaries, the selection and the counters.
pub struct StreamView {
    log: Panel,
    tallies: Vec<Tally>,
    /// 0: the log; 1..: the summaries.
    selected: usize,
    /// Each panel's height at the last draw (for page keys).
    heights: Vec<u16>,
    paused: bool,
    /// Events that came while the log was paused.
    unseen: u64,
    color: bool,
    events: u64,
    rate: Rate,
    pub lost: u64,
    pub dropped: u64,
    pub metrics: Option<SocketAddr>,
    pub notice: Option<String>,
}

impl StreamView {
    pub fn new(spec: ViewSpec, color: bool) -> StreamView {
        let mut log = Panel::new(&spec.log, Kind::Stream);
        log.columns = spec.columns;
        log.fill_last = true;
        let tallies: Vec<Tally> = spec.tallies.into_iter().map(Tally::new).collect();
        StreamView {
            log,
            heights: vec![0; tallies.len() + 1],
            tallies,
            selected: 0,
            paused: false,
            unseen: 0,
            color,
            events: 0,
            rate: Rate::new(),
            lost: 0,
            dropped: 0,
            metrics: None,
            notice: None,
        }
    }

    /// One event: into the log (unless paused) and every summary.
    pub fn event(&mut self, ev: Event) {
        self.events += 1;
        for (t, key) in self.tallies.iter_mut().zip(&ev.keys) {
            t.add(key, &ev);
        }
        if self.paused {
            self.unseen += 1;
            self.log.count += 1;
            return;
        }
        let columns = std::mem::take(&mut self.log.columns);
        self.log.push_event(columns, ev.cells);
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    fn panels(&self) -> usize {
        self.tallies.len() + 1
    }

    fn panel_mut(&mut self, i: usize) -> &mut Panel {
        match i {
            0 => &mut self.log,
            i => &mut self.tallies[i - 1].panel,
        }
    }

    /// Applies one key; false when it asks to quit.
    pub fn key(&mut self, key: Key) -> bool {
        let n = self.panels();
        let h = self.heights[self.selected];
        let page = (h as isize - 3).max(1);
        let scroll = |v: &mut StreamView, d: isize| {
            let sel = v.selected;
            v.panel_mut(sel).scroll_by(d, h);
        };
        match key {
            Key::Quit => return false,
            Key::Next => self.selected = (self.selected + 1) % n,
            Key::Prev => self.selected = (self.selected + n - 1) % n,
            Key::Up => scroll(self, -1),
            Key::Down => scroll(self, 1),
            Key::PageUp => scroll(self, -page),
            Key::PageDown => scroll(self, page),
            Key::Top => scroll(self, isize::MIN / 2),
            Key::Bottom => scroll(self, isize::MAX / 2),
            Key::Char('p' | ' ') => {
                self.paused = !self.paused;
                self.unseen = 0;
            }
            Key::Char(_) => {}
        }
        true
    }

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
        for t in &mut self.tallies {
            t.refresh();
        }
        let [log, summaries, status, keys] = self.layout(f.area());
        self.panels_in(f, log, summaries);
        self.status(f, status);
        self.keys(f, keys);
    }

    /// The log, the summaries (about two fifths of the height), the status and keys lines.
    fn layout(&self, area: Rect) -> [Rect; 4] {
        let body = area.height.saturating_sub(2);
        let summaries = if self.tallies.is_empty() {
            0
        } else {
            (body * 2 / 5)
                .max(MIN_SUMMARY)
                .min(body.saturating_sub(MIN_LOG))
        };
        Layout::vertical([
            Constraint::Min(1),
            Constraint::Length(summaries),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area)
    }

    /// The log in `log`; the summaries side by side in `below`.
    fn panels_in(&mut self, f: &mut Frame, log: Rect, below: Rect) {
        self.heights[0] = log.height;
        self.log.render(f, log, self.selected == 0, self.color);
        if self.tallies.is_empty() || below.height == 0 {
            return;
        }
        let n = self.tallies.len() as u32;
        let areas = Layout::horizontal((0..n).map(|_| Constraint::Ratio(1, n))).split(below);
        for (i, (t, a)) in self.tallies.iter().zip(areas.iter()).enumerate() {
            self.heights[i + 1] = a.height;
            t.panel.render(f, *a, self.selected == i + 1, self.color);
        }
    }

    /// events/s, events, the pause, lost, dropped by output, metrics address, the latest
    /// notice.
    fn status(&self, f: &mut Frame, area: Rect) {
        let mut text = format!(
            "events/s {:.1} | events {}",
            self.rate.per_sec(),
            self.events
        );
        // Before the rest: a line cut at a narrow width still says so.
        if self.paused {
            text.push_str(&format!(" | PAUSED ({} new)", self.unseen));
        }
        text.push_str(&format!(
            " | lost {} | dropped by output {}",
            self.lost, self.dropped
        ));
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

    fn keys(&self, f: &mut Frame, area: Rect) {
        let bold = self.style(Modifier::BOLD);
        let pause = if self.paused { " resume" } else { " pause" };
        let line = Line::from(vec![
            Span::styled("q", bold),
            Span::raw(" quit  "),
            Span::styled("Tab", bold),
            Span::raw(" panel  "),
            Span::styled("↑↓ PgUp PgDn Home End", bold),
            Span::raw(" scroll  "),
            Span::styled("p", bold),
            Span::raw(pause),
        ]);
        f.render_widget(Paragraph::new(line), area);
    }
}

/// Drives a [`StreamView`] from a tool's loop through a [`Driver`].
pub struct StreamTui {
    view: StreamView,
    driver: Driver,
}

impl StreamTui {
    pub fn new(view: StreamView, frames: Source, every: Duration, held: Held) -> StreamTui {
        StreamTui {
            view,
            driver: Driver::new(frames, every, held),
        }
    }

    pub fn view(&mut self) -> &mut StreamView {
        self.driver.touch();
        &mut self.view
    }

    pub fn event(&mut self, ev: Event) {
        self.view.event(ev);
        self.driver.touch();
    }

    /// Keys, resizes and a redraw when due; false when a key asked to quit.
    pub fn tick(&mut self, out: &mut Writer) -> bool {
        self.driver.tick(out, &mut self.view)
    }

    /// Queues the leave sequence after the last frame; raw mode goes when this is dropped.
    pub fn leave(&mut self, out: &mut Writer) {
        self.driver.leave(out);
    }
}

impl View for StreamView {
    fn key(&mut self, key: Key) -> bool {
        StreamView::key(self, key)
    }
    fn draw(&mut self, f: &mut Frame) {
        StreamView::draw(self, f)
    }
    fn counters(&mut self, dropped: u64, notice: Option<String>) {
        self.dropped = dropped;
        self.notice = notice;
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn lines(v: &mut StreamView, w: u16, h: u16) -> Vec<String> {
        super::super::rendered(w, h, |f| v.draw(f))
    }

    fn view() -> StreamView {
        let tally = |title: &str, keys: &[&str], durations| TallySpec {
            title: title.into(),
            noun: "keys".into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            count: "count".into(),
            errors: "errors".into(),
            durations,
        };
        StreamView::new(
            ViewSpec {
                log: "events".into(),
                columns: vec!["pid".into(), "comm".into(), "path".into()],
                tallies: vec![
                    tally("top files", &["path"], true),
                    tally("top processes", &["pid", "comm"], false),
                ],
            },
            false,
        )
    }

    fn ev(i: u64) -> Event {
        let path = format!("/tmp/file{}", i % 3);
        Event {
            cells: vec![i.to_string(), "cat".into(), path.clone()],
            keys: vec![vec![path], vec![(i % 2).to_string(), "cat".into()]],
            error: i.is_multiple_of(4),
            duration_ns: Some(1000 * (i + 1)),
        }
    }

    #[test]
    fn log_summaries_status_and_keys_fit_80x24() {
        let mut v = view();
        for i in 0..30 {
            v.event(ev(i));
        }
        v.metrics = Some("127.0.0.1:19435".parse().unwrap());
        let l = lines(&mut v, 80, 24);
        let all = l.join("\n");
        assert!(l[0].contains("events 30 events"), "{all}");
        // Newest first.
        assert!(l[2].contains("29"), "{all}");
        assert!(all.contains("top files 3 keys"), "{all}");
        assert!(all.contains("10     3       "), "{all}");
        assert!(all.contains("/tmp/file0"), "{all}");
        assert!(
            l[22].starts_with("events/s 0.0 | events 30 | lost 0 | dropped by output 0 | metrics"),
            "{all}"
        );
        assert!(l[23].starts_with("q quit"), "{all}");
        let l = lines(&mut v, 160, 50);
        assert!(l[48].starts_with("events/s"), "{}", l.join("\n"));
    }

    #[test]
    fn pause_keeps_the_log_and_counts_on() {
        let mut v = view();
        v.event(ev(1));
        assert!(v.key(Key::Char('p')));
        for i in 2..10 {
            v.event(ev(i));
        }
        let l = lines(&mut v, 80, 24);
        let all = l.join("\n");
        assert!(all.contains("PAUSED (8 new)"), "{all}");
        assert!(l[2].starts_with("║1 "), "{all}");
        assert_eq!(v.tallies[0].by.values().map(|c| c.n).sum::<u64>(), 9);
        v.key(Key::Char(' '));
        v.event(ev(10));
        let l = lines(&mut v, 80, 24);
        assert!(l[2].starts_with("║10 "), "{}", l.join("\n"));
        assert!(!v.key(Key::Quit));
    }

    #[test]
    fn quantiles_are_close() {
        let mut c = Counts::default();
        for i in 1..=1000u64 {
            c.add(&Event {
                duration_ns: Some(i * 1000),
                ..Default::default()
            });
        }
        let p50 = c.quantile(0.5).unwrap();
        let p99 = c.quantile(0.99).unwrap();
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.05, "{p50}");
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.05, "{p99}");
    }

    #[test]
    fn tab_scrolls_the_selected_summary() {
        let mut v = view();
        for i in 0..200 {
            let mut e = ev(i);
            e.keys[0] = vec![format!("/f{i:03}")];
            v.event(e);
        }
        lines(&mut v, 80, 24);
        v.key(Key::Next);
        v.key(Key::Bottom);
        let all = lines(&mut v, 80, 24).join("\n");
        assert!(all.contains("/f199"), "{all}");
        assert!(all.contains("rows "), "{all}");
        assert_eq!(v.log.scroll, 0);
    }
}
