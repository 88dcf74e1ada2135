//! The BTF value decoder with type and bytes from the fuzzer. Input: type id (u32 LE), BTF
//! length (u32 LE), that many bytes of BTF, then the value's bytes. The JSON it writes must
//! be JSON.
#![no_main]
use ebpfctl_core::btf::Btf;
use ebpfctl_core::decode::{Decoder, JsonSink};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let id = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let n = (u32::from_le_bytes(data[4..8].try_into().unwrap()) as usize).min(data.len() - 8);
    let (raw, value) = data[8..].split_at(n);
    let Ok(btf) = Btf::parse(raw) else { return };
    let id = id % (btf.len() as u32 + 1);
    let Ok(d) = Decoder::new(&btf, id) else {
        return;
    };
    let mut out = Vec::new();
    out.push(b'{');
    d.write_fields(value, "value", &mut JsonSink::new(&mut out, false));
    out.push(b'}');
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&out) {
        panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(&out));
    }
    let _ = d.root.text(value, 0);
    for (_, f) in d.fields("value") {
        let _ = f.number(value, 0);
    }
});
