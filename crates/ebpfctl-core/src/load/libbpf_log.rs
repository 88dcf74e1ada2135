//! libbpf's own messages, taken as bytes.
//!
//! `libbpf_rs::set_print` turns each message into a `String` and panics (an abort, inside a
//! C callback) when it is not UTF-8, which a single changed byte in an object's section name
//! is enough for. Our C shim (`csrc/libbpf_log.c`) formats the message and hands us bytes;
//! they are shown lossily. Nothing else may install a libbpf print callback (clippy.toml
//! forbids `libbpf_rs::set_print`).

use std::ffi::{c_char, c_int};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// libbpf's message levels (`enum libbpf_print_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warn = 0,
    Info = 1,
    Debug = 2,
}

extern "C" {
    fn ebpfctl_libbpf_log_install(
        sink: Option<unsafe extern "C" fn(c_int, *const c_char, usize)>,
        max_level: c_int,
    );
}

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
static ECHO: AtomicBool = AtomicBool::new(false);

/// Called by the shim for every message up to the installed level.
///
/// # Safety
/// `msg` points to `len` readable bytes for the duration of the call.
unsafe extern "C" fn sink(level: c_int, msg: *const c_char, len: usize) {
    if msg.is_null() {
        return;
    }
    // SAFETY: the shim passes a buffer of `len` bytes that lives until we return.
    let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    // A panic must not cross into C; nothing below should panic, this is the last guard.
    let _ = std::panic::catch_unwind(|| record(level, bytes));
}

fn record(level: c_int, bytes: &[u8]) {
    let msg = String::from_utf8_lossy(bytes);
    if ECHO.load(Ordering::Relaxed) {
        // Not eprint!: it panics when stderr cannot be written.
        // libbpf starts its own lines with "libbpf: ".
        let prefix = if msg.starts_with("libbpf: ") {
            ""
        } else {
            "libbpf: "
        };
        let _ = write!(std::io::stderr(), "{prefix}{msg}");
    }
    if level != Level::Debug as c_int {
        LOG.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(msg.into_owned());
    }
}

/// Routes libbpf's messages into a buffer ([`take`]); with `echo` also to stderr, debug
/// messages included.
pub fn capture(echo: bool) {
    ECHO.store(echo, Ordering::Relaxed);
    let max = if echo { Level::Debug } else { Level::Info };
    // SAFETY: `sink` matches the shim's callback type and stays valid for the whole program.
    unsafe { ebpfctl_libbpf_log_install(Some(sink), max as c_int) };
}

/// Silences libbpf altogether.
pub fn silence() {
    // SAFETY: a null sink makes the shim uninstall its callback.
    unsafe { ebpfctl_libbpf_log_install(None, 0) };
}

/// The warning and info messages captured since the last call, oldest first.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *LOG.lock().unwrap_or_else(|p| p.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_messages_are_kept_lossily() {
        capture(false);
        take();
        let msg = b"failed to determine tracepoint '\xffched/x' perf event ID\n";
        // SAFETY: a valid buffer of msg.len() bytes.
        unsafe { sink(Level::Warn as c_int, msg.as_ptr().cast(), msg.len()) };
        let log = take();
        assert_eq!(log.len(), 1);
        assert!(log[0].contains("'\u{fffd}ched/x'"), "{log:?}");
    }
}
