//! opensnoop's record decoder and printers. The JSON line must be JSON.
#![no_main]
use ebpfctl_tools::opensnoop::print::Place;
use ebpfctl_tools::opensnoop::{flag_names, print, Open, TableStyle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(o) = Open::parse(data) else { return };
    let _ = (o.path(), o.comm(), o.fd(), o.errno(), flag_names(o.flags));
    let mut line = Vec::new();
    // A host process (no container), and one with a host path beside its own.
    let host = Place {
        entry: None,
        host_path: None,
    };
    let beside = Place {
        entry: None,
        host_path: Some("/var/lib/containers/x"),
    };
    print::json(&mut line, &o, &host);
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&line) {
        panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&line));
    }
    line.clear();
    print::json(&mut line, &o, &beside);
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&line) {
        panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&line));
    }
    let mut row = Vec::new();
    print::table_row(&mut row, &TableStyle::default(), &o, 1_000_000, &host);
});
