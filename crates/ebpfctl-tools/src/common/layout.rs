//! Test support: member offsets of a C struct as compiled into a probe (from its BTF), so
//! the Rust decoders' offsets are checked against the real layout.
use std::collections::HashMap;

use ebpfctl_core::btf::Kind;
use ebpfctl_core::object::ObjectSpec;

/// Byte offsets of the members of `name`, and its size.
pub fn struct_layout(object: &[u8], name: &str) -> (HashMap<String, usize>, usize) {
    let spec = ObjectSpec::parse(object).expect("the probe parses");
    let btf = spec.btf.expect("the probe has BTF");
    let id = btf
        .find(name, Kind::Struct)
        .next()
        .unwrap_or_else(|| panic!("struct {name} in the probe's BTF"));
    let offsets = btf
        .members(id)
        .iter()
        .map(|m| (btf.str(m.name_off).to_string(), (m.bit_offset / 8) as usize))
        .collect();
    (offsets, btf.size_of(id).expect("sized") as usize)
}
