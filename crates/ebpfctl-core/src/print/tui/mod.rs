//! Live terminal views on ratatui (feature `tui`): `run -o table` on a terminal
//! ([`live::TuiPrinter`]: one panel per map), `top` ([`top::TopView`]: one table) and the
//! tools' event streams ([`stream::StreamTui`]: a log and summaries).
//!
//! Frames are drawn into a buffer and handed to the stdout [`Writer`] like any record, so a
//! terminal that stalls never holds the run loop (a frame that is dropped makes the next one
//! a full redraw). [`Screen`] owns the terminal's state: raw mode and the alternate screen are
//! left on every exit path — the normal end through the writer, after the last frame; drop
//! (errors, unwinding) and a panic hook directly.
pub mod live;
pub mod panel;
pub mod stream;
pub mod top;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Frame, Terminal, TerminalOptions, Viewport};

use super::writer::{Source, Writer};

const ENTER: &[u8] = b"\x1b[?1049h\x1b[?25l";
const LEAVE: &[u8] = b"\x1b[?25h\x1b[?1049l";

/// Whether a screen is up, for the panic hook.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Leaves raw mode and the alternate screen directly (not through the writer).
fn restore_now() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = crossterm::terminal::disable_raw_mode();
        let mut out = std::io::stdout();
        let _ = out.write_all(LEAVE);
        let _ = out.flush();
    }
}

/// Chains a panic hook (once per process) that restores the terminal before the message.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_now();
            hook(info);
        }));
    });
}

/// Notices (losses, drops, errors) that arrive while the screen is up: kept for the status
/// line and written to stderr once the terminal is back (see `run::run`).
#[derive(Clone, Default)]
pub struct Held(Rc<RefCell<HeldState>>);

#[derive(Default)]
struct HeldState {
    active: bool,
    lines: Vec<String>,
}

impl Held {
    /// Keeps `msg` if the screen is up; false when the caller should print it itself.
    pub fn hold(&self, msg: &str) -> bool {
        let mut s = self.0.borrow_mut();
        if s.active {
            s.lines.push(msg.to_string());
        }
        s.active
    }

    /// What was held, once the screen is down.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.borrow_mut().lines)
    }

    fn set_active(&self, on: bool) {
        self.0.borrow_mut().active = on;
    }

    fn last(&self) -> Option<String> {
        self.0.borrow().lines.last().cloned()
    }
}

/// What a key asks of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Quit,
    Next,
    Prev,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// A letter the view interprets (sort keys); Space is `Char(' ')`.
    Char(char),
}

impl Key {
    /// Space as a page down, for views that give it no other meaning.
    pub fn space_pages(self) -> Key {
        match self {
            Key::Char(' ') => Key::PageDown,
            k => k,
        }
    }
}

/// The keys in bytes read from a raw-mode terminal (xterm sequences): `q`, Esc and Ctrl-C
/// quit (raw mode turns Ctrl-C into a byte).
pub fn keys_of(mut b: &[u8]) -> Vec<Key> {
    let mut keys = Vec::new();
    while let Some(&c) = b.first() {
        let (key, used) = match c {
            0x1b => match b.get(1) {
                None => (Some(Key::Quit), 1),
                Some(b'[' | b'O') => csi(&b[2..]),
                Some(_) => (Some(Key::Quit), 1),
            },
            0x03 | b'q' => (Some(Key::Quit), 1),
            b'\t' => (Some(Key::Next), 1),
            b' ' => (Some(Key::Char(' ')), 1),
            b'g' => (Some(Key::Top), 1),
            b'G' => (Some(Key::Bottom), 1),
            c if c.is_ascii_graphic() => (Some(Key::Char(c as char)), 1),
            _ => (None, 1),
        };
        keys.extend(key);
        b = &b[used.min(b.len())..];
    }
    keys
}

/// After `ESC [` (or `ESC O`): the key and how many bytes the whole sequence took.
fn csi(rest: &[u8]) -> (Option<Key>, usize) {
    // Parameters, then one final byte in 0x40..=0x7e.
    let Some(end) = rest.iter().position(|b| (0x40..=0x7e).contains(b)) else {
        return (None, 2 + rest.len());
    };
    let key = match (&rest[..end], rest[end]) {
        (_, b'A') => Some(Key::Up),
        (_, b'B') => Some(Key::Down),
        (_, b'C') => Some(Key::Next),
        (_, b'D') => Some(Key::Prev),
        (_, b'Z') => Some(Key::Prev),
        (_, b'H') | (b"1" | b"7", b'~') => Some(Key::Top),
        (_, b'F') | (b"4" | b"8", b'~') => Some(Key::Bottom),
        (b"5", b'~') => Some(Key::PageUp),
        (b"6", b'~') => Some(Key::PageDown),
        _ => None,
    };
    (key, 2 + end + 1)
}

/// The terminal's size; 80x24 when it reports none.
fn term_size() -> (u16, u16) {
    match crossterm::terminal::size() {
        Ok((w, h)) if w > 0 && h > 0 => (w, h),
        _ => (80, 24),
    }
}

fn area((w, h): (u16, u16)) -> Rect {
    Rect::new(0, 0, w, h)
}

/// What stdin has to read.
enum Ready {
    Nothing,
    Keys,
    /// Hung up or closed.
    Gone,
}

fn stdin_ready() -> Ready {
    let mut p = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n <= 0 {
        return Ready::Nothing;
    }
    if p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        return Ready::Gone;
    }
    Ready::Keys
}

/// What happened on the terminal since the last call.
#[derive(Debug, Default)]
pub struct Input {
    pub keys: Vec<Key>,
    pub resized: bool,
}

/// A frame's bytes, shared between the ratatui backend that writes them and the screen that
/// hands them to the writer.
#[derive(Clone, Default)]
struct Frames(Rc<RefCell<Vec<u8>>>);

impl Write for Frames {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The terminal while a view runs: raw mode, the alternate screen, and a ratatui terminal
/// whose output goes through the stdout writer.
pub struct Screen {
    term: Terminal<CrosstermBackend<Frames>>,
    /// What the terminal wrote for the frame being drawn.
    bytes: Frames,
    src: Source,
    /// Raw mode is on and stdin is the terminal (keys are read).
    raw: bool,
    /// The terminal's size at the last look, for resizes.
    size: Option<(u16, u16)>,
    /// The leave sequence is queued (or written): nothing more to restore but raw mode.
    left: bool,
    /// The writer's dropped count at the last frame: more means the terminal missed a frame.
    dropped: u64,
    held: Held,
}

impl Screen {
    /// Enters the alternate screen (through the writer) and raw mode.
    pub fn enter(out: &mut Writer, src: Source, held: Held) -> std::io::Result<Screen> {
        let bytes = Frames::default();
        // A fixed viewport resized by `draw` itself: a terminal that reports no size (a pty
        // nobody sized, e.g. under script(1)) is drawn at 80x24 instead of not at all.
        let term = Terminal::with_options(
            CrosstermBackend::new(bytes.clone()),
            TerminalOptions {
                viewport: Viewport::Fixed(area(term_size())),
            },
        )?;
        install_panic_hook();
        out.line(src, ENTER);
        out.flush();
        // SAFETY: isatty only inspects the descriptor.
        let tty_in = unsafe { libc::isatty(libc::STDIN_FILENO) } == 1;
        let raw = tty_in && crossterm::terminal::enable_raw_mode().is_ok();
        ACTIVE.store(true, Ordering::SeqCst);
        held.set_active(true);
        Ok(Screen {
            term,
            bytes,
            src,
            raw,
            size: Some(term_size()),
            left: false,
            dropped: out.dropped(),
            held,
        })
    }

    /// Keys and resizes waiting (never blocks). A terminal that hung up (its window closed)
    /// reads as `q`.
    pub fn input(&mut self) -> Input {
        let mut input = Input::default();
        let size = Some(term_size());
        if size != self.size {
            self.size = size;
            input.resized = true;
        }
        if !self.raw {
            return input;
        }
        let mut buf = [0u8; 256];
        let n = match stdin_ready() {
            Ready::Nothing => return input,
            // SAFETY: reads at most `buf.len()` bytes into `buf`; poll said it will not block.
            Ready::Keys => unsafe {
                libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len())
            },
            Ready::Gone => 0,
        };
        if n < 0 {
            // EINTR or EAGAIN: nothing this time.
            return input;
        }
        if n == 0 {
            // Hung up (the window closed) or at its end: as `q`, and no more reads.
            self.raw = false;
            input.keys.push(Key::Quit);
            return input;
        }
        input.keys = keys_of(&buf[..n as usize]);
        input
    }

    /// The latest notice held while the screen is up.
    pub fn last_notice(&self) -> Option<String> {
        self.held.last()
    }

    /// Draws one frame (fitted to the terminal's current size) and queues it.
    pub fn draw(&mut self, out: &mut Writer, f: impl FnOnce(&mut Frame)) {
        if self.left {
            return;
        }
        if out.dropped() != self.dropped {
            // The terminal missed a frame: the next one must not be a difference from it.
            let _ = self.term.clear();
        }
        let now = area(term_size());
        if now != self.term.get_frame().area() {
            // Clears the screen: the next frame is drawn whole at the new size.
            let _ = self.term.resize(now);
        }
        let _ = self.term.draw(f);
        {
            let mut bytes = self.bytes.0.borrow_mut();
            out.line(self.src, &bytes);
            bytes.clear();
        }
        out.flush();
        self.dropped = out.dropped();
    }

    /// Queues the leave sequence after the last frame; raw mode goes on drop.
    pub fn leave(&mut self, out: &mut Writer) {
        if !self.left {
            self.left = true;
            out.line(self.src, LEAVE);
            out.flush();
            self.held.set_active(false);
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.held.set_active(false);
        if self.left {
            // The normal end: the writer has the leave sequence; raw mode alone is left.
            if ACTIVE.swap(false, Ordering::SeqCst) {
                let _ = crossterm::terminal::disable_raw_mode();
            }
        } else {
            restore_now();
        }
    }
}

/// A live view a [`Driver`] puts on the terminal.
pub trait View {
    /// Takes a key; false when it asks to quit.
    fn key(&mut self, key: Key) -> bool;
    fn draw(&mut self, f: &mut Frame);
    /// The frames the output dropped and the latest notice, for the status line.
    fn counters(&mut self, dropped: u64, notice: Option<String>);
}

/// Puts a [`View`] on the terminal from a loop: the screen is entered at the first
/// [`Driver::tick`] (after the start-up lines), keys are read and the view is redrawn when
/// something changed (new data at most once per `every`; keys and resizes at once; the
/// counters each second). `q`, Esc and Ctrl-C raise the stop flag, as SIGINT does.
pub struct Driver {
    screen: Option<Screen>,
    frames: Source,
    held: Held,
    every: std::time::Duration,
    last: Option<std::time::Instant>,
    dirty: bool,
    /// The screen could not be set up: nothing more is tried (the output goes on).
    failed: bool,
}

impl Driver {
    pub fn new(frames: Source, every: std::time::Duration, held: Held) -> Driver {
        Driver {
            screen: None,
            frames,
            held,
            every,
            last: None,
            dirty: true,
            failed: false,
        }
    }

    /// New data for the view: redrawn at the next tick that is due.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Keys, resizes and a redraw when due; false when a key asked to quit.
    pub fn tick(&mut self, out: &mut Writer, view: &mut impl View) -> bool {
        if self.screen.is_none() && !self.failed {
            match Screen::enter(out, self.frames, self.held.clone()) {
                Ok(s) => self.screen = Some(s),
                Err(_) => self.failed = true,
            }
        }
        let Some(screen) = self.screen.as_mut() else {
            return true;
        };
        let input = screen.input();
        let mut now = input.resized;
        let mut go_on = true;
        for k in input.keys {
            if !view.key(k) {
                crate::signals::request_stop();
                go_on = false;
            }
            now = true;
        }
        let due = self.dirty && self.last.is_none_or(|t| t.elapsed() >= self.every);
        // The rate and counters move each second even without new data.
        let stale = self
            .last
            .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1));
        if now || due || stale {
            view.counters(out.dropped(), screen.last_notice());
            screen.draw(out, |f| view.draw(f));
            self.last = Some(std::time::Instant::now());
            self.dirty = false;
        }
        go_on
    }

    /// Queues the leave sequence after the last frame; raw mode goes when the screen is
    /// dropped.
    pub fn leave(&mut self, out: &mut Writer) {
        if let Some(s) = self.screen.as_mut() {
            s.leave(out);
        }
    }
}

/// The text of what `draw` puts on a W x H screen, a string per row (the views' unit tests).
#[cfg(test)]
pub(crate) fn rendered(w: u16, h: u16, draw: impl FnOnce(&mut ratatui::Frame)) -> Vec<String> {
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
    t.draw(draw).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_terminal_bytes() {
        assert_eq!(keys_of(b"q"), [Key::Quit]);
        assert_eq!(keys_of(b"\x1b"), [Key::Quit]);
        assert_eq!(keys_of(b"\x03"), [Key::Quit]);
        assert_eq!(
            keys_of(b"\x1b[A\x1b[B\x1b[5~\x1b[6~\tk\x1b[Z\x1bOH\x1b[4~v"),
            [
                Key::Up,
                Key::Down,
                Key::PageUp,
                Key::PageDown,
                Key::Next,
                Key::Char('k'),
                Key::Prev,
                Key::Top,
                Key::Bottom,
                Key::Char('v'),
            ]
        );
        // An unknown sequence is skipped whole.
        assert_eq!(keys_of(b"\x1b[15~r"), [Key::Char('r')]);
    }
}
