//! The BTF parser: raw records of any bytes (what `btf dump --format raw` shows), then, for
//! BTF that validates, every query a caller may make, and a re-encode that parses the same.
#![no_main]
use ebpfctl_core::btf::Btf;
use ebpfctl_core::inspect::btf::{type_json, type_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(records) = Btf::parse_records(data) else {
        return;
    };
    for (id, _) in records.iter() {
        let _ = type_text(&records, id);
    }
    if records.validate().is_err() {
        assert!(Btf::parse(data).is_err());
        return;
    }
    let btf = Btf::parse(data).expect("validated BTF parses");
    for (id, t) in btf.iter() {
        let _ = (btf.type_name(id), btf.size_of(id), btf.resolve(id));
        let _ = (
            btf.members(id).len(),
            btf.typedef_names(id),
            type_json(&btf, id),
        );
        let _ = btf.find(btf.str(t.name_off), t.kind).count();
    }
    let again = Btf::parse(&btf.encode()).expect("re-encoded BTF parses");
    assert_eq!(again.len(), btf.len());
    for (id, t) in btf.iter() {
        assert_eq!(again.get(id).ok(), Some(t));
    }
});
