//! `ebpfctl top`: per-program run time, events/s and CPU share from BPF statistics.
//!
//! Statistics are turned on with `BPF_ENABLE_STATS` where the kernel has it: the kernel keeps
//! them on only while our fd is open, so they switch back off however we exit (SIGINT, panic,
//! SIGKILL) and `kernel.bpf_stats_enabled` reads as before. Without it we write the sysctl
//! and restore the previous value on drop, on SIGINT/SIGTERM (the loop polls the stop flag)
//! and from a panic hook.
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;

use super::print::{self, Table};
use super::sys::{self, ObjKind};
use super::{InspectError, Result};
use crate::print::writer::{Sink, Source, Writer};

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// The previous sysctl value to write back, shared with the panic hook.
static RESTORE: Mutex<Option<String>> = Mutex::new(None);

fn restore_sysctl() {
    let prev = RESTORE.lock().ok().and_then(|mut g| g.take());
    if let Some(prev) = prev {
        let _ = std::fs::write(SYSCTL, prev);
    }
}

/// Chains a panic hook (once per process) that writes the remembered sysctl value back.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_sysctl();
            hook(info);
        }));
    });
}

/// Holds BPF statistics on; restores the previous state when dropped.
#[derive(Debug)]
pub struct StatsGuard {
    _fd: Option<OwnedFd>,
    /// How statistics were turned on, for display.
    pub how: &'static str,
}

impl StatsGuard {
    /// Turns statistics on: with `BPF_ENABLE_STATS`, or through the sysctl when the kernel
    /// lacks it or `EBPFCTL_STATS=sysctl` is set.
    pub fn enable() -> Result<StatsGuard> {
        if std::env::var("EBPFCTL_STATS").as_deref() == Ok("sysctl") {
            return Self::enable_sysctl(io::Error::other("skipped: EBPFCTL_STATS=sysctl"));
        }
        // SAFETY: plain syscall wrapper; a non-negative result is an fd we own.
        let rc = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        if rc >= 0 {
            return Ok(StatsGuard {
                // SAFETY: fresh fd owned by nobody else.
                _fd: Some(unsafe { OwnedFd::from_raw_fd(rc) }),
                how: "BPF_ENABLE_STATS (off again when ebpfctl exits)",
            });
        }
        Self::enable_sysctl(sys::errno_of(rc))
    }

    /// Writes `kernel.bpf_stats_enabled = 1`, remembering the previous value for drop, the
    /// panic hook and signal-driven exits (the loops poll the stop flag and drop the guard).
    fn enable_sysctl(enable_err: io::Error) -> Result<StatsGuard> {
        let prev = std::fs::read_to_string(SYSCTL).map_err(|e| {
            InspectError::Stats(format!(
                "BPF statistics need kernel.bpf_stats_enabled, and {SYSCTL} is unreadable ({e}); BPF_ENABLE_STATS failed too ({enable_err})"
            ))
        })?;
        let prev = prev.trim().to_string();
        if prev == "1" {
            return Ok(StatsGuard {
                _fd: None,
                how: "kernel.bpf_stats_enabled (already on)",
            });
        }
        *RESTORE
            .lock()
            .map_err(|_| InspectError::Stats("statistics state lock poisoned".into()))? =
            Some(prev);
        install_panic_hook();
        std::fs::write(SYSCTL, "1").map_err(|e| {
            restore_sysctl();
            InspectError::Stats(format!(
                "BPF statistics need kernel.bpf_stats_enabled: writing {SYSCTL} failed ({e}) and BPF_ENABLE_STATS failed ({enable_err})"
            ))
        })?;
        Ok(StatsGuard {
            _fd: None,
            how: "kernel.bpf_stats_enabled (restored on exit)",
        })
    }
}

impl Drop for StatsGuard {
    fn drop(&mut self) {
        restore_sysctl();
    }
}

/// One program in one frame.
#[derive(Debug, Clone, Serialize)]
pub struct TopRow {
    pub id: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// Totals since statistics were first on for this program.
    pub run_cnt: u64,
    pub run_time_ns: u64,
    /// Over the last interval.
    pub events: u64,
    pub events_per_sec: f64,
    pub avg_ns: Option<f64>,
    /// Share of one CPU spent in this program (100 = one core).
    pub cpu_percent: f64,
}

/// One sample of every (selected) program.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    pub time: String,
    pub interval_s: f64,
    pub programs: Vec<TopRow>,
}

/// Which programs to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub ids: Vec<u32>,
    pub name: Option<String>,
}

/// Samples programs' statistics and turns two samples into rates.
pub struct Sampler {
    filter: Filter,
    prev: HashMap<u32, (u64, u64)>,
    names: HashMap<u32, (String, String)>,
    last: Instant,
}

struct Stat {
    id: u32,
    run_time_ns: u64,
    run_cnt: u64,
}

fn read_stats(ids: &[u32]) -> Result<Vec<Stat>> {
    let ids = if ids.is_empty() {
        sys::all_ids(ObjKind::Prog)?
    } else {
        ids.to_vec()
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let fd = match sys::fd_by_id(ObjKind::Prog, id) {
            Ok(fd) => fd,
            Err(InspectError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        // SAFETY: all-zero is a valid bpf_prog_info with no buffers requested.
        let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
        sys::info_by_fd(
            std::os::fd::AsFd::as_fd(&fd),
            &mut info,
            &format!("program {id}"),
        )?;
        out.push(Stat {
            id,
            run_time_ns: info.run_time_ns,
            run_cnt: info.run_cnt,
        });
    }
    Ok(out)
}

impl Sampler {
    /// Takes the baseline sample. Fails when a requested id is not loaded.
    pub fn new(filter: Filter) -> Result<Sampler> {
        for &id in &filter.ids {
            sys::fd_by_id(ObjKind::Prog, id)?;
        }
        let mut s = Sampler {
            filter,
            prev: HashMap::new(),
            names: HashMap::new(),
            last: Instant::now(),
        };
        for st in read_stats(&s.filter.ids)? {
            s.prev.insert(st.id, (st.run_time_ns, st.run_cnt));
        }
        s.last = Instant::now();
        Ok(s)
    }

    fn name_of(&mut self, id: u32) -> (String, String) {
        self.names
            .entry(id)
            .or_insert_with(|| {
                super::prog::type_and_name(id).unwrap_or_else(|_| ("?".into(), "?".into()))
            })
            .clone()
    }

    /// Samples now; rates are over the time since the previous sample.
    pub fn sample(&mut self) -> Result<Frame> {
        let stats = read_stats(&self.filter.ids)?;
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64().max(1e-6);
        self.last = now;
        let mut rows = Vec::new();
        let mut seen = HashMap::new();
        for st in stats {
            let (kind, name) = self.name_of(st.id);
            seen.insert(st.id, (st.run_time_ns, st.run_cnt));
            if let Some(want) = &self.filter.name {
                if !name.contains(want.as_str()) {
                    continue;
                }
            }
            let (pt, pc) = self.prev.get(&st.id).copied().unwrap_or((0, 0));
            let dcnt = st.run_cnt.saturating_sub(pc);
            let dtime = st.run_time_ns.saturating_sub(pt);
            rows.push(TopRow {
                id: st.id,
                kind,
                name,
                run_cnt: st.run_cnt,
                run_time_ns: st.run_time_ns,
                events: dcnt,
                events_per_sec: dcnt as f64 / dt,
                avg_ns: (dcnt > 0).then(|| dtime as f64 / dcnt as f64),
                cpu_percent: dtime as f64 / (dt * 1e9) * 100.0,
            });
        }
        self.names.retain(|id, _| seen.contains_key(id));
        self.prev = seen;
        rows.sort_by(|a, b| {
            b.cpu_percent
                .total_cmp(&a.cpu_percent)
                .then(a.id.cmp(&b.id))
        });
        Ok(Frame {
            time: crate::decode::time::now_rfc3339(),
            interval_s: dt,
            programs: rows,
        })
    }
}

/// Sleeps `d`, waking early when `stop` is raised or `out` closed (its reader left).
/// Returns false when stopped or closed.
fn nap(d: Duration, stop: &AtomicBool, out: &Out) -> bool {
    let end = Instant::now() + d;
    let done = || stop.load(Ordering::Relaxed) || out.w.closed();
    while Instant::now() < end {
        if done() {
            return false;
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
    !done()
}

/// Where notices go (stderr in the CLI): frames a stalled stdout did not take.
pub type Notify<'a> = &'a mut dyn FnMut(&str);

/// Stdout through core's writer thread (print/writer.rs): a stalled reader never holds the
/// loop (frames that do not fit in time are dropped and counted); a closed one ends it.
struct Out {
    w: Writer,
    frame: Source,
}

impl Out {
    fn new(sink: Sink, stop: &Arc<AtomicBool>) -> Out {
        let mut w = Writer::new(sink).with_stop(Arc::clone(stop));
        let frame = w.source(Counter::default());
        Out { w, frame }
    }

    /// One frame; reports drops (rate-limited) to `notify`.
    fn frame(&mut self, bytes: &[u8], notify: Notify<'_>) {
        self.w.line(self.frame, bytes);
        self.w.flush();
        if let Some(d) = self.w.notice() {
            notify(&d.to_string());
        }
    }

    /// Waits (bounded) for what is queued; a write error other than EPIPE is the result.
    fn finish(&mut self, notify: Notify<'_>) -> Result<()> {
        if let Some(d) = self.w.finish() {
            notify(&d.to_string());
        }
        self.w
            .take_error()
            .map_or(Ok(()), |e| Err(InspectError::Output(e)))
    }
}

/// Headless: `count` JSON lines (0 = until stopped or stdout closes), one frame per
/// interval.
pub fn run_json(
    sink: Sink,
    filter: Filter,
    interval: Duration,
    count: u64,
    stop: &Arc<AtomicBool>,
    notify: Notify<'_>,
) -> Result<()> {
    let _stats = StatsGuard::enable()?;
    let mut s = Sampler::new(filter)?;
    let mut out = Out::new(sink, stop);
    let mut n = 0;
    while (count == 0 || n < count) && nap(interval, stop, &out) {
        let f = s.sample()?;
        let mut line =
            serde_json::to_vec(&f).map_err(|e| InspectError::Output(io::Error::other(e)))?;
        line.push(b'\n');
        out.frame(&line, notify);
        n += 1;
    }
    out.finish(notify)
}

/// The alternate screen, left however the view ends (the sequence goes through the writer,
/// so a stalled terminal cannot hold the exit either).
struct Screen<'a> {
    out: &'a mut Out,
    tty: bool,
}

impl<'a> Screen<'a> {
    fn enter(out: &'a mut Out, tty: bool) -> Screen<'a> {
        if tty {
            out.w.line(out.frame, b"\x1b[?1049h\x1b[?25l");
            out.w.flush();
        }
        Screen { out, tty }
    }
}

impl Drop for Screen<'_> {
    fn drop(&mut self) {
        if self.tty {
            self.out.w.line(self.out.frame, b"\x1b[?25h\x1b[?1049l");
        }
        // Written by `Out::finish`, or by the writer's own drop when unwinding.
        self.out.w.flush();
    }
}

/// Stdin without line buffering or echo while the view runs (for single-key commands);
/// the previous mode comes back on drop, including when unwinding from a panic.
struct Keys {
    saved: Option<libc::termios>,
}

impl Keys {
    fn new() -> Keys {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(libc::STDIN_FILENO) } != 1 {
            return Keys { saved: None };
        }
        // SAFETY: all-zero termios is valid storage for tcgetattr to fill.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `t` is a valid termios we own.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } != 0 {
            return Keys { saved: None };
        }
        let saved = t;
        t.c_lflag &= !(libc::ICANON | libc::ECHO);
        t.c_cc[libc::VMIN] = 0;
        t.c_cc[libc::VTIME] = 0;
        // SAFETY: `t` is a valid termios derived from the current one.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) } != 0 {
            return Keys { saved: None };
        }
        Keys { saved: Some(saved) }
    }

    /// A key pressed since the last call, if any (never blocks: VMIN = VTIME = 0).
    fn poll(&self) -> Option<u8> {
        self.saved?;
        let mut b = [0u8; 1];
        // SAFETY: reads at most one byte into `b`.
        let n = unsafe { libc::read(libc::STDIN_FILENO, b.as_mut_ptr().cast(), 1) };
        (n == 1).then_some(b[0])
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: restoring the termios read in `new`.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t) };
        }
    }
}

/// Row order of both live views (the line frames here and print/tui/top.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Cpu,
    Events,
    Avg,
    Id,
    Name,
}

impl SortBy {
    /// The order a key asks for: `c`, `e`, `a`, `i`, `n`.
    pub fn from_key(k: char) -> Option<SortBy> {
        Some(match k {
            'c' => SortBy::Cpu,
            'e' => SortBy::Events,
            'a' => SortBy::Avg,
            'i' => SortBy::Id,
            'n' => SortBy::Name,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SortBy::Cpu => "cpu",
            SortBy::Events => "events/s",
            SortBy::Avg => "avg",
            SortBy::Id => "id",
            SortBy::Name => "name",
        }
    }

    /// Largest first (id and name: ascending); ties by id.
    pub fn sort(self, rows: &mut [TopRow]) {
        if self == SortBy::Name {
            rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            return;
        }
        let f = |r: &TopRow| match self {
            SortBy::Cpu => r.cpu_percent,
            SortBy::Events => r.events_per_sec,
            SortBy::Avg => r.avg_ns.unwrap_or(0.0),
            _ => -f64::from(r.id),
        };
        rows.sort_by(|a, b| f(b).total_cmp(&f(a)).then(a.id.cmp(&b.id)));
    }
}

fn render(f: &Frame, sort: SortBy, tty: bool, interval: Duration, how: &str) -> Vec<u8> {
    let mut rows = f.programs.clone();
    sort.sort(&mut rows);
    let mut buf = Vec::new();
    let _ = write!(
        buf,
        "{}ebpfctl top  {}  {} programs  every {:.1}s  sorted by {}  statistics: {}\n\
         keys: c cpu  e events/s  a avg  i id  n name  q quit (or Ctrl-C)\n\n",
        if tty { "\x1b[H\x1b[2J" } else { "\n" },
        f.time,
        rows.len(),
        interval.as_secs_f64(),
        sort.name(),
        how
    );
    let mut t = Table::new(&[
        "ID",
        "TYPE",
        "NAME",
        ">EVENTS/S",
        ">AVG",
        ">CPU%",
        ">TOTAL RUNS",
        ">TOTAL TIME",
    ]);
    for r in &rows {
        t.row(vec![
            r.id.to_string(),
            r.kind.clone(),
            r.name.clone(),
            format!("{:.0}", r.events_per_sec),
            r.avg_ns.map_or("-".into(), print::nanos),
            format!("{:.2}", r.cpu_percent),
            r.run_cnt.to_string(),
            print::nanos(r.run_time_ns as f64),
        ]);
    }
    let _ = t.write(&mut buf);
    buf
}

/// The live view: redraws a table every interval until `q`, Ctrl-C, `count` frames or a
/// closed stdout.
pub fn run_tui(
    sink: Sink,
    filter: Filter,
    interval: Duration,
    count: u64,
    stop: &Arc<AtomicBool>,
    notify: Notify<'_>,
) -> Result<()> {
    let stats = StatsGuard::enable()?;
    let mut s = Sampler::new(filter)?;
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1;
    let mut out = Out::new(sink, stop);
    let screen = Screen::enter(&mut out, tty);
    let keys = Keys::new();
    let mut sort = SortBy::Cpu;
    let mut last: Option<Frame> = None;
    let mut n = 0;
    let mut next = Instant::now() + interval;
    while count == 0 || n < count {
        if stop.load(Ordering::Relaxed) || screen.out.w.closed() {
            break;
        }
        if let Some(k) = keys.poll() {
            if k == b'q' {
                break;
            }
            if let (Some(by), Some(f)) = (SortBy::from_key(char::from(k)), &last) {
                sort = by;
                screen
                    .out
                    .frame(&render(f, sort, tty, interval, stats.how), notify);
            }
            continue;
        }
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        next += interval;
        let f = s.sample()?;
        screen
            .out
            .frame(&render(&f, sort, tty, interval, stats.how), notify);
        last = Some(f);
        n += 1;
    }
    drop(screen);
    out.finish(notify)
}

/// The live view on a terminal (ratatui, feature `tui`): a table that fits the window
/// (the header stays), scrolls and sorts; redrawn every interval and at once on a key or a
/// resize, until `q`, Esc, Ctrl-C, a stop signal, `count` samples or a closed stdout. The
/// terminal is restored however it ends (print/tui).
#[cfg(feature = "tui")]
#[allow(clippy::too_many_arguments)]
pub fn run_live(
    sink: Sink,
    filter: Filter,
    interval: Duration,
    count: u64,
    color: bool,
    stop: &Arc<AtomicBool>,
    notify: Notify<'_>,
) -> Result<()> {
    use crate::print::tui::{top::TopView, Held, Screen};
    let stats = StatsGuard::enable()?;
    let mut s = Sampler::new(filter)?;
    let mut out = Out::new(sink, stop);
    let held = Held::default();
    let mut screen =
        Screen::enter(&mut out.w, out.frame, held.clone()).map_err(InspectError::Output)?;
    let mut view = TopView::new(stats.how, interval.as_secs_f64(), color);
    let mut sample = || -> Result<()> {
        let mut n = 0;
        let mut next = Instant::now() + interval;
        screen.draw(&mut out.w, |f| view.draw(f));
        while count == 0 || n < count {
            if stop.load(Ordering::Relaxed) || out.w.closed() {
                break;
            }
            let input = screen.input();
            let mut redraw = input.resized;
            for k in input.keys {
                if !view.key(k) {
                    return Ok(());
                }
                redraw = true;
            }
            if Instant::now() >= next {
                next += interval;
                view.set(&s.sample()?);
                n += 1;
                redraw = true;
            }
            if redraw {
                screen.draw(&mut out.w, |f| view.draw(f));
            }
            let wait = next.saturating_duration_since(Instant::now());
            std::thread::sleep(wait.min(Duration::from_millis(50)));
        }
        Ok(())
    };
    let r = sample();
    // Every way out: the leave sequence after the last frame, written (bounded wait), then
    // raw mode off.
    screen.leave(&mut out.w);
    let done = out.finish(notify);
    drop(screen);
    for m in held.take() {
        notify(&m);
    }
    r.and(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sysctl path restores the previous value from the panic hook (before any unwinding
    /// reaches the guard) and on drop. Root only: it writes kernel.bpf_stats_enabled.
    #[test]
    fn sysctl_stats_are_restored_on_panic_and_drop() {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        assert_eq!(uid, 0, "this test writes {SYSCTL}: run as root");
        let before = std::fs::read_to_string(SYSCTL).unwrap().trim().to_string();
        let guard = StatsGuard::enable_sysctl(io::Error::other("test")).unwrap();
        assert_eq!(std::fs::read_to_string(SYSCTL).unwrap().trim(), "1");
        let r = std::panic::catch_unwind(|| panic!("boom (expected by this test)"));
        assert!(r.is_err());
        assert_eq!(
            std::fs::read_to_string(SYSCTL).unwrap().trim(),
            before,
            "panic hook"
        );
        drop(guard);
        assert_eq!(
            std::fs::read_to_string(SYSCTL).unwrap().trim(),
            before,
            "drop"
        );
    }
}
