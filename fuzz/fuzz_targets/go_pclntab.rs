//! The function table of stripped Go binaries. Input: `.text` address (u64 LE), then the
//! `.gopclntab` section.
#![no_main]
use ebpfctl_tools::observe::{goelf, pclntab};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let text = u64::from_le_bytes(data[..8].try_into().unwrap());
    let wanted = [
        goelf::FN_ROUND_TRIP,
        goelf::FN_SERVE_HTTP,
        goelf::FN_FINISH_REQUEST,
        goelf::FN_HIJACK,
        "main.main",
    ];
    if let Ok(found) = pclntab::find_functions(&data[8..], text, &wanted) {
        assert_eq!(found.len(), wanted.len());
    }
});
