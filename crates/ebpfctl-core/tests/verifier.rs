//! A verifier rejection names the C source line of the failing instruction on every kernel:
//! from the kernel's log where it says `@ file:line` (6.4 on), else from the object's own
//! `.BTF.ext` laid out as libbpf loads the program (object/lines.rs). The failing line sits
//! in a subprogram that libbpf appends third, so instruction indices differ from the
//! object's; where the kernel names the line, ours must be the same.
//!
//! Needs root (it loads programs, all of which the verifier rejects: nothing stays loaded).
use std::path::{Path, PathBuf};

use ebpfctl_core::load::{verifier, LoadError, LoadOptions, Loaded};
use ebpfctl_core::object::ObjectSpec;

const SOURCE: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } counts SEC(".maps");

static __noinline int other(__u32 k)
{
	return k * 3;
}

static __noinline int leaf(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &k);
	*v += 1; /* the rejected line */
	return 0;
}

static __noinline int middle(__u32 k)
{
	return leaf(k) + 1;
}

#ifndef ONLY_SECOND
SEC("tracepoint/syscalls/sys_enter_getppid")
int first(void *ctx)
{
	return other(1) + middle(2);
}
#endif

SEC("tracepoint/syscalls/sys_enter_getpid")
int second(void *ctx)
{
	return middle(3) + other(4);
}
char LICENSE[] SEC("license") = "GPL";
"#;

fn compile(name: &str, cflags: &[&str]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verifier-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let inc = ebpfctl_build::prepare_include_dir(&dir.join("include")).unwrap();
    let src = dir.join(format!("{name}.bpf.c"));
    std::fs::write(&src, SOURCE).unwrap();
    let out = dir.join(format!("{name}.o"));
    ebpfctl_build::Compile {
        src,
        out: out.clone(),
        include_dir: inc,
        extra_includes: vec![],
        cflags: cflags.iter().map(|s| s.to_string()).collect(),
    }
    .run()
    .unwrap();
    out
}

fn rejected_line() -> u32 {
    SOURCE
        .lines()
        .position(|l| l.contains("the rejected line"))
        .unwrap() as u32
        + 1
}

fn names(spec: &ObjectSpec, program: &str) -> Vec<String> {
    spec.lines
        .layout(program)
        .unwrap()
        .iter()
        .map(|s| s.function.clone())
        .collect()
}

/// Loads `obj` (rejected), checks the report's source line and, where the kernel named it,
/// that the object's layout finds the same.
fn check(obj: &Path, program: &str) {
    let spec = ObjectSpec::from_path(obj).unwrap();
    // Strict: the first rejection is the error (otherwise it is a skip line and the other
    // programs are loaded again without it).
    let opts = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let report = match Loaded::load(&spec, &opts) {
        Err(LoadError::Verifier(r)) => r,
        Err(e) => panic!("expected a verifier rejection, got: {e}"),
        Ok(_) => panic!("the verifier accepted {program}"),
    };
    assert_eq!(report.program, program);
    let want = format!(
        "*v += 1; /* the rejected line */ @ {}:{}",
        file_name(obj),
        rejected_line()
    );
    assert_eq!(report.source.as_deref(), Some(want.as_str()), "{report}");
    let insn: u64 = report
        .insn
        .as_deref()
        .and_then(|i| i.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failing instruction in {report}"));
    let ours = spec
        .lines
        .line(program, insn)
        .unwrap_or_else(|| panic!("no line for instruction {insn} of {program}"));
    assert_eq!(ours.function, "leaf");
    assert_eq!(ours.verifier_style(), want);
    // The instruction is past the entry function: the appended layout, not the object's
    // offsets, found it.
    let entry = &spec.lines.layout(program).unwrap()[0];
    assert!(
        insn >= entry.len,
        "instruction {insn} is in the entry function"
    );
    // As a kernel before 6.4 logs it (text, no location): the object names the same line.
    let mut old = (*report).clone();
    old.source = old
        .source
        .as_deref()
        .map(|s| s.split(" @ ").next().unwrap().to_string());
    verifier::locate(&mut old, &spec.lines);
    assert_eq!(old.source, report.source);
    eprintln!("{program}: instruction {insn} is {want}");
}

fn file_name(obj: &Path) -> String {
    obj.with_extension("bpf.c")
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn subprograms_are_laid_out_as_libbpf_appends_them() {
    let obj = compile("subprogs", &[]);
    let spec = ObjectSpec::from_path(&obj).unwrap();
    assert_eq!(names(&spec, "first"), ["first", "other", "middle", "leaf"]);
    assert_eq!(
        names(&spec, "second"),
        ["second", "middle", "leaf", "other"]
    );
    // Each segment starts where the previous one ends.
    for p in ["first", "second"] {
        let l = spec.lines.layout(p).unwrap();
        for w in l.windows(2) {
            assert_eq!(w[1].at, w[0].at + w[0].len, "{p}: {l:?}");
        }
    }
}

#[test]
fn rejection_in_a_subprogram_names_its_source_line() {
    let obj = compile("subprogs", &[]);
    check(&obj, "first");
    let only = compile("subprogs_second", &["-DONLY_SECOND"]);
    check(&only, "second");
}
