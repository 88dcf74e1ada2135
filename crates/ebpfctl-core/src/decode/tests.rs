//! Decoder tests against the kernel's own BTF (types whose layout is fixed by the ABI).
use super::*;
use crate::btf::Kind;

fn kernel() -> Btf {
    Btf::parse(&std::fs::read("/sys/kernel/btf/vmlinux").expect("kernel BTF")).unwrap()
}

fn json(btf: &Btf, name: &str, kind: Kind, data: &[u8]) -> serde_json::Value {
    let id = btf
        .find(name, kind)
        .next()
        .unwrap_or_else(|| panic!("{name} in vmlinux BTF"));
    Decoder::new(btf, id).unwrap().to_value(data)
}

#[test]
fn structs_nested_and_bitfields() {
    let btf = kernel();
    // struct tcphdr: source, dest, seq, ack_seq, then bitfields res1:4 doff:4 fin:1 syn:1 ...
    let mut h = [0u8; 20];
    h[0..2].copy_from_slice(&[0x1f, 0x90]);
    h[12] = 0x50; // doff = 5
    h[13] = 0x12; // syn + ack
    let v = json(&btf, "tcphdr", Kind::Struct, &h);
    assert_eq!(v["source"], 0x901f, "{v}");
    assert_eq!(v["doff"], 5, "{v}");
    assert_eq!(v["syn"], 1, "{v}");
    assert_eq!(v["ack"], 1, "{v}");
    assert_eq!(v["fin"], 0, "{v}");
    // struct sockaddr_in nests struct in_addr.
    let mut s = [0u8; 16];
    s[0] = 2;
    s[4..8].copy_from_slice(&[127, 0, 0, 1]);
    let v = json(&btf, "sockaddr_in", Kind::Struct, &s);
    assert_eq!(v["sin_family"], 2);
    assert_eq!(v["sin_addr"]["s_addr"], u32::from_le_bytes([127, 0, 0, 1]));
}

#[test]
fn enums_by_name_and_u64_exact() {
    let btf = kernel();
    let v = json(&btf, "bpf_map_type", Kind::Enum, &27u32.to_le_bytes());
    assert_eq!(v, "BPF_MAP_TYPE_RINGBUF");
    let v = json(&btf, "bpf_map_type", Kind::Enum, &9999u32.to_le_bytes());
    assert_eq!(v, 9999);
    let id = btf.find("u64", Kind::Typedef).next().unwrap();
    let mut out = Vec::new();
    Decoder::new(&btf, id).unwrap().root.render(
        &u64::MAX.to_le_bytes(),
        0,
        &mut JsonSink::new(&mut out, false),
    );
    assert_eq!(out, b"18446744073709551615");
}

#[test]
fn char_arrays_are_strings_and_text_is_plain() {
    let btf = kernel();
    // struct new_utsname has char sysname[65] first.
    let mut d = vec![0u8; 65 * 6];
    d[..5].copy_from_slice(b"Linux");
    let id = btf.find("new_utsname", Kind::Struct).next().unwrap();
    let dec = Decoder::new(&btf, id).unwrap();
    assert_eq!(dec.to_value(&d)["sysname"], "Linux");
    let fields = dec.fields("value");
    assert_eq!(fields[0].0, "sysname");
    assert_eq!(fields[0].1.text(&d, 0), "Linux");
}

#[test]
fn special_typedefs_by_name() {
    assert_eq!(Special::from_typedef("ipv4_addr"), Some(Special::Ipv4));
    assert_eq!(
        Special::from_typedef("ebpfctl_duration"),
        Some(Special::Duration)
    );
    assert_eq!(Special::from_typedef("errno"), Some(Special::Errno));
    assert_eq!(Special::from_typedef("u32"), None);
    let mut out = Vec::new();
    let n = Node::Special {
        off: 0,
        size: 4,
        kind: Special::Errno,
    };
    n.render(
        &(-13i32).to_le_bytes(),
        0,
        &mut JsonSink::new(&mut out, false),
    );
    assert_eq!(out, b"\"-EACCES\"");
}
