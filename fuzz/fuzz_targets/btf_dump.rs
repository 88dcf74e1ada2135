//! BTF validation before libbpf's `btf_dump`: whatever `Btf::parse` accepts is dumped as C by
//! libbpf, as `btf dump --format c` does. A crash here is a gap in the validation.
#![no_main]
use ebpfctl_build::BtfSource;
use ebpfctl_core::btf::Btf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(ebpfctl_core::load::libbpf_log::silence);
    if Btf::parse(data).is_err() {
        return;
    }
    let _ = ebpfctl_build::dump_c(&BtfSource::Raw(data), &mut std::io::sink());
});
