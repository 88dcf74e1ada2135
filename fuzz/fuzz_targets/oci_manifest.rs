//! What `pull` reads from a registry before it verifies anything: the manifest (is it a
//! probe? which layers?) and the probe config; and a reference as `run` tells it from a path.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ebpfctl_oci::check_manifest("fuzz", data);
    let _ = ebpfctl_oci::read_config(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = ebpfctl_oci::looks_like_reference(s);
    }
});
