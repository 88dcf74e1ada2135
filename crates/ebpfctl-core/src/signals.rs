//! A stop flag raised by SIGINT, SIGTERM and SIGHUP, polled by every main loop.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers once and returns the shared flag.
pub fn stop_flag() -> Arc<AtomicBool> {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            // Registration only fails for forbidden signals (SIGKILL...), never these.
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        flag
    })
    .clone()
}

/// Stops the loops as a signal would (a view's quit key).
pub fn request_stop() {
    stop_flag().store(true, Ordering::Relaxed);
}

/// True once a stop signal arrived.
pub fn stop_requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
