//! The x86-64 and arm64 code analysis of `observe`: entry probe, RETs, deferred returns and
//! the success check. Input: callee address (u64 LE), then code loaded at 0x401000.
#![no_main]
use ebpfctl_tools::observe::{deferred, goelf, success};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let callee = u64::from_le_bytes(data[..8].try_into().unwrap());
    let code = &data[8..];
    let ip = 0x40_1000;
    let (entry, rets) = goelf::find_rets_amd64(code, ip);
    assert!(entry as usize <= code.len());
    assert!(rets.iter().all(|&r| (r as usize) < code.len()));
    let _ = goelf::emulated_amd64(&code[entry as usize..]);
    let _ = goelf::find_rets_arm64(code);
    let _ = deferred::deferred_returns_amd64(code, ip);
    let _ = deferred::rip_lea_targets(code, ip);
    let _ = success::success_check_amd64(code, ip, callee);
});
