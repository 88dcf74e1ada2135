//! Object parsing and normalisation, without the kernel: examples compiled here, parsed, and
//! the normalised bytes opened by libbpf.
use std::path::{Path, PathBuf};

use ebpfctl_core::btf::{Data, Kind};
use ebpfctl_core::convention::{Keyword, KeywordSource};
use ebpfctl_core::object::ObjectSpec;

fn compile(name: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("object-tests");
    let inc = ebpfctl_build::prepare_include_dir(&dir.join("include")).unwrap();
    let out = dir.join(format!("{name}.o"));
    ebpfctl_build::Compile {
        src: repo.join("examples").join(format!("{name}.bpf.c")),
        out: out.clone(),
        include_dir: inc,
        extra_includes: vec![repo.join("examples")],
        cflags: vec![],
    }
    .run()
    .unwrap();
    out
}

#[test]
fn keyword_sections_merge_into_one_maps_section() {
    let bytes = std::fs::read(compile("sleep_latency")).unwrap();
    let spec = ObjectSpec::parse(&bytes).unwrap();
    let kw = |n: &str| spec.map(n).unwrap_or_else(|| panic!("map {n}")).keyword;
    assert_eq!(kw("hist_sleeps"), Some(Keyword::Hist));
    assert_eq!(
        spec.map("hist_sleeps").unwrap().keyword_source,
        Some(KeywordSource::Prefix)
    );
    assert_eq!(kw("sleep_slots"), Some(Keyword::Hist));
    assert_eq!(
        spec.map("sleep_slots").unwrap().keyword_source,
        Some(KeywordSource::Section)
    );
    assert_eq!(kw("last_request"), Some(Keyword::Gauge));
    assert_eq!(kw("start"), None);
    // The unit and help of `sleep_slots` come from decl tags on its variable (no kernel).
    let meta = &spec.map("sleep_slots").unwrap().meta;
    assert_eq!(meta.unit, Some(ebpfctl_core::unit::Unit::Us));
    assert_eq!(meta.help.as_deref(), Some("Time in clock_nanosleep"));
    assert_eq!(spec.map("hist_sleeps").unwrap().meta, Default::default());
    assert!(
        spec.changes
            .iter()
            .any(|c| c.contains("merged map sections")),
        "{:?}",
        spec.changes
    );
    assert!(
        spec.changes.iter().any(|c| c.contains("hist_sleeps")),
        "{:?}",
        spec.changes
    );
    assert!(spec.params.iter().any(|p| p.name == "target_comm"));
    assert!(spec.map("hist_sleeps").unwrap().lost_counter.is_some());

    // One `.maps` DATASEC with all four maps; the ring buffer definition lost its value member.
    let btf = spec.btf.as_ref().unwrap();
    let ds: Vec<u32> = btf.find(".maps", Kind::Datasec).collect();
    assert_eq!(ds.len(), 1);
    let Data::Datasec(vars) = &btf.get(ds[0]).unwrap().data else {
        panic!()
    };
    let names: Vec<&str> = vars.iter().map(|v| btf.name(v.type_id)).collect();
    for m in ["hist_sleeps", "sleep_slots", "last_request", "start"] {
        assert!(names.contains(&m), "{names:?}");
    }
    assert_eq!(btf.find(".maps.hist", Kind::Datasec).count(), 0);
    let rb = spec.map("hist_sleeps").unwrap();
    assert_eq!(btf.type_name(rb.value_type.unwrap()), "struct sleep_event");

    // libbpf opens the normalised object and sees every map (no kernel needed to open).
    let open = libbpf_rs::ObjectBuilder::default()
        .open_memory(&spec.normalised)
        .unwrap();
    let mut got: Vec<String> = open
        .maps()
        .map(|m| m.name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    for m in ["hist_sleeps", "last_request", "sleep_slots", "start"] {
        assert!(got.iter().any(|g| g == m), "{got:?}");
    }
}

#[test]
fn parsing_is_deterministic() {
    let bytes = std::fs::read(compile("signals")).unwrap();
    let a = ObjectSpec::parse(&bytes).unwrap();
    let b = ObjectSpec::parse(&bytes).unwrap();
    assert_eq!(a.normalised, b.normalised);
    assert_eq!(a.programs.len(), 1);
    assert_eq!(a.programs[0].attach.kind(), "tracepoint");
    assert_eq!(a.license.as_deref(), Some("GPL"));
}

#[test]
fn untouched_objects_stay_byte_identical() {
    // Only `.maps` and no typed ring buffer: nothing to normalise.
    let bytes = std::fs::read(compile("xdp_udp")).unwrap();
    let spec = ObjectSpec::parse(&bytes).unwrap();
    assert!(spec.changes.is_empty(), "{:?}", spec.changes);
    assert_eq!(spec.normalised, bytes);
}

#[test]
fn parameters_and_counters_sit_at_their_symbol_offsets() {
    // clang leaves .rodata/.bss variable offsets at 0 in BTF; the parser must use the symbols.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("object-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("offsets.bpf.c");
    std::fs::write(
        &src,
        r#"#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"
const volatile __u32 first = 11;
const volatile __u64 second = 22;
const volatile char third[8] = "abc";
__u64 other_counter;
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); __type(value, __u64); } print_ev SEC(".maps");
EBPFCTL_LOST_COUNTER(print_ev);
SEC("tracepoint/syscalls/sys_enter_getppid") int offsets(void *c) {
    other_counter += first + second + third[0];
    __u64 *e = ebpfctl_reserve(print_ev, __u64);
    if (e) { *e = 1; bpf_ringbuf_submit(e, 0); }
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#,
    )
    .unwrap();
    let out = dir.join("offsets.o");
    let inc = ebpfctl_build::prepare_include_dir(&dir.join("include")).unwrap();
    ebpfctl_build::Compile {
        src,
        out: out.clone(),
        include_dir: inc,
        extra_includes: vec![],
        cflags: vec![],
    }
    .run()
    .unwrap();
    let spec = ObjectSpec::parse(&std::fs::read(&out).unwrap()).unwrap();
    let btf = spec.btf.as_ref().unwrap();
    let shown: Vec<(String, String)> = spec
        .params
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                ebpfctl_core::object::params::render(btf, p, &p.default),
            )
        })
        .collect();
    for (name, want) in [("first", "11"), ("second", "22"), ("third", "abc")] {
        assert!(
            shown.iter().any(|(n, v)| n == name && v == want),
            "{name}={want} in {shown:?}"
        );
    }
    let offsets: std::collections::HashSet<usize> = spec.params.iter().map(|p| p.offset).collect();
    assert_eq!(offsets.len(), 3, "distinct offsets: {:?}", spec.params);
    // Two .bss variables: the lost counter is wherever its symbol is, not blindly at 0.
    let raw = std::fs::read(&out).unwrap();
    let elf = object::read::File::parse(&*raw).unwrap();
    use object::{Object, ObjectSymbol};
    let sym = elf
        .symbols()
        .find(|s| s.name() == Ok("ebpfctl_lost_print_ev"))
        .unwrap();
    assert_eq!(
        spec.map("print_ev").unwrap().lost_counter,
        Some(sym.address() as usize)
    );
}
