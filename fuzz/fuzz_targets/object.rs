//! `ObjectSpec::parse` (ELF reading + normalisation) of any bytes; what it accepts goes on
//! to libbpf's own open (as `ebpfctl run` does, minus the kernel), to the decoders of its
//! maps and to its parameters. A crash in libbpf here is a check `parse` is missing.
#![no_main]
use ebpfctl_core::decode::Decoder;
use ebpfctl_core::object::{params, ObjectSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(ebpfctl_core::load::libbpf_log::silence);
    let Ok(spec) = ObjectSpec::parse(data) else {
        return;
    };
    // What `run` hands to libbpf goes through the parser again without a crash. It need not
    // parse: normalisation moves keyword maps' value types out of their definitions, which
    // libbpf wants and our parser does not accept from a user.
    let _ = ObjectSpec::parse(&spec.normalised);
    if let Ok(open) = libbpf_rs::ObjectBuilder::default().open_memory(&spec.normalised) {
        drop(open);
    }
    for p in &spec.programs {
        let _ = (p.attach.needs(), format!("{:?}", p.attach));
    }
    let Some(btf) = &spec.btf else { return };
    let sample = [0xa5u8; 256];
    for m in &spec.maps {
        for id in [m.key_type, m.value_type].into_iter().flatten() {
            if let Ok(d) = Decoder::new(btf, id) {
                let _ = d.to_value(&sample);
            }
        }
    }
    for p in &spec.params {
        let _ = params::render(btf, p, &p.default);
        for text in ["1", "-1", "0x10", "true", "abc", "10.0.0.1", "1ms"] {
            let _ = params::encode(btf, p, text);
        }
    }
});
