//! Builds a probe against this kernel's generated vmlinux.h with the bundled headers.
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ebpfctl-build-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn compiles_a_core_probe_against_generated_vmlinux_h() {
    let dir = scratch("ok");
    let inc = ebpfctl_build::prepare_include_dir(&dir.join("inc")).expect("vmlinux.h");
    let header = std::fs::read_to_string(inc.join("vmlinux.h")).unwrap();
    assert!(
        header.contains("struct task_struct {"),
        "vmlinux.h lacks task_struct"
    );
    let src = dir.join("p.bpf.c");
    std::fs::write(
        &src,
        r#"#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "ebpfctl.h"
struct ev { pid p; duration d; ipv4_addr a; comm c; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(".maps");
EBPFCTL_LOST_COUNTER(events);
SEC("tp/sched/sched_process_exec") int h(void *ctx) {
    struct task_struct *t = (void *)bpf_get_current_task();
    struct ev *e = ebpfctl_reserve(events, struct ev);
    if (!e) return 0;
    e->p = BPF_CORE_READ(t, tgid); e->d = ebpfctl_log2(7); e->a = 0;
    bpf_get_current_comm(e->c, sizeof(e->c));
    bpf_ringbuf_submit(e, 0);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#,
    )
    .unwrap();
    let out = dir.join("p.bpf.o");
    ebpfctl_build::Compile {
        src,
        out: out.clone(),
        include_dir: inc,
        extra_includes: vec![],
        cflags: vec![],
    }
    .run()
    .expect("compile");
    let obj = std::fs::read(&out).unwrap();
    assert_eq!(&obj[..4], b"\x7fELF");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn compile_error_carries_clang_diagnostics() {
    let dir = scratch("bad");
    let inc = ebpfctl_build::prepare_include_dir(&dir.join("inc")).unwrap();
    let src = dir.join("bad.bpf.c");
    std::fs::write(&src, "int f( { return 0; }\n").unwrap();
    let err = ebpfctl_build::Compile {
        src,
        out: dir.join("bad.o"),
        include_dir: inc,
        extra_includes: vec![],
        cflags: vec![],
    }
    .run()
    .unwrap_err();
    assert!(err.to_string().contains("error:"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
