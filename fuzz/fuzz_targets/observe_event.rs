//! observe's request records and process notes, through its printers. The JSON line must be
//! JSON.
#![no_main]
use ebpfctl_tools::observe::event::{self, Request};
use ebpfctl_tools::observe::output::{self, ServiceNames};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(mut r) = Request::decode(data, 1_700_000_000_000_000_000) {
        // Learnt first, so filling in the names reads nothing from /proc.
        let mut names = ServiceNames::default();
        names.learn(r.pid, "comm".into(), data);
        names.fill(&mut r, "exe");
        let mut line = Vec::new();
        output::write_request(&mut line, output::Format::Json, &r).expect("writes to a Vec");
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&line) {
            panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&line));
        }
        let _ = output::log_line(&r);
    }
    if let Some(p) = event::decode_proc(data) {
        let mut names = ServiceNames::default();
        let pid = p.pid;
        names.learn(pid, p.comm, p.environ);
        let _ = names.identity(pid);
    }
    if let Some(tp) = event::find_traceparent(data) {
        let _ = event::parse_traceparent(&tp);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = event::parse_traceparent(s);
    }
});
