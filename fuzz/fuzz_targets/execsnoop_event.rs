//! execsnoop's records through its tracker (JSON and table), as the ring buffer delivers
//! them. Input: records, each after a u16 LE length. Every JSON line must be JSON.
#![no_main]
use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use ebpfctl_core::print::writer::Sink;
use ebpfctl_tools::common::containers::Containers;
use ebpfctl_tools::common::report::{Metrics, Output};
use ebpfctl_tools::execsnoop::track::{Mode, Tracker};
use ebpfctl_tools::execsnoop::{Filters, TableStyle};
use libfuzzer_sys::fuzz_target;

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);
impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn records(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        out.push(&data[2..2 + n]);
        data = &data[2 + n..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let recs = records(data);
    let filters = Filters::default();
    let metrics = Metrics::new("execsnoop", None).expect("metrics without a server");
    let json = Lines::default();
    let stop = Arc::new(AtomicBool::new(false));
    let out = RefCell::new(Output::new(
        Sink::new(json.clone()),
        Default::default(),
        Arc::clone(&stop),
    ));
    let mut t = Tracker::new(Mode::Json, &filters, &out, &metrics, Containers::off());
    for r in &recs {
        t.on_record(r);
    }
    drop(t);
    out.borrow_mut().writer().finish();
    for line in json
        .0
        .lock()
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(line) {
            panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(line));
        }
    }
    let table = RefCell::new(Output::new(Sink::discard(), Default::default(), stop));
    let mut t = Tracker::new(
        Mode::Table(TableStyle::default()),
        &filters,
        &table,
        &metrics,
        Containers::off(),
    );
    for r in &recs {
        t.on_record(r);
    }
});
