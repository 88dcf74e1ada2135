//! `ebpfctl init DIR`: a starter probe that runs as is with `ebpfctl run`.
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
ebpfctl init myprobe\n  \
ebpfctl init myprobe --name execs && ebpfctl build myprobe/execs.bpf.c")]
pub struct Args {
    /// Directory to create.
    dir: PathBuf,
    /// Name of the probe file (NAME.bpf.c).
    #[arg(long, default_value = "probe")]
    name: String,
}

const TEMPLATE: &str = r#"// Built with `ebpfctl build`, run with `ebpfctl run`: no user-space code needed.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"

/* A parameter: ebpfctl run ... --param target_uid=1000 (-1: everyone). */
EBPFCTL_PARAM(__s64, target_uid, -1);

struct event {
	pid pid;
	uid uid;
	comm comm;
	char filename[128];
};

/* `.print`: one JSON line / table row per event. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__type(value, struct event);
} execs SEC(".maps.print");
EBPFCTL_LOST_COUNTER(execs);

/* `counter_` prefix: a Prometheus counter per key (here: per command name). */
struct exec_key { comm comm; };
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct exec_key);
	__type(value, __u64);
} counter_exec_calls SEC(".maps");

SEC("tracepoint/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u64 ug = bpf_get_current_uid_gid();
	if (target_uid >= 0 && (__u32)ug != target_uid)
		return 0;
	struct event *e = ebpfctl_reserve(execs, struct event);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->uid = (__u32)ug;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	unsigned off = ctx->__data_loc_filename & 0xffff;
	bpf_probe_read_str(e->filename, sizeof(e->filename), (void *)ctx + off);

	struct exec_key k = {};
	__builtin_memcpy(k.comm, e->comm, sizeof(k.comm));
	bpf_ringbuf_submit(e, 0); /* e is gone after this */
	__u64 one = 1, *n = bpf_map_lookup_elem(&counter_exec_calls, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counter_exec_calls, &k, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// A probe name becomes a file name in DIR: letters, digits, `_`, `-` and `.` only, so it
/// cannot leave DIR or hide.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !ok {
        anyhow::bail!(
            "--name {name:?}: use letters, digits, `_`, `-` and `.` (not first), e.g. --name my_probe"
        );
    }
    Ok(())
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    check_name(&a.name)?;
    let src = a.dir.join(format!("{}.bpf.c", a.name));
    if src.symlink_metadata().is_ok() {
        anyhow::bail!(
            "{} already exists; pick another directory or --name",
            src.display()
        );
    }
    std::fs::create_dir_all(&a.dir).with_context(|| format!("create {}", a.dir.display()))?;
    // O_CREAT|O_EXCL: never follows a symlink or replaces a file that appeared meanwhile.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&src)
        .with_context(|| format!("create {}", src.display()))?;
    std::io::Write::write_all(&mut f, TEMPLATE.as_bytes())
        .with_context(|| format!("write {}", src.display()))?;
    println!(
        "wrote {}\nnext:\n  ebpfctl build {}\n  sudo ebpfctl run {}",
        src.display(),
        src.display(),
        src.with_extension("o").display()
    );
    Ok(0)
}
