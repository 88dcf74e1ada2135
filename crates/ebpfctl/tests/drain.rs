//! Records a ring buffer still holds when the bounded shutdown drain (500 ms) gives up are
//! counted as lost: every record the probe produced is printed, dropped by the output, or
//! in the final `_lost_total`.
mod common;

use std::time::Duration;

use common::{build_source, Run};
use serde_json::Value;

/// Per getppid call of the test process: `PER_CALL` records of 64 bytes into a 32 MiB ring
/// (room for ~466,000), so no reservation fails and what is lost is what was left unread.
const PROBE: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"
const volatile __u32 target_tgid = 0;
struct ev { __u64 n, a, b, c, d, e, f, g; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 32 << 20); __type(value, struct ev); } print_burst SEC(".maps");
EBPFCTL_LOST_COUNTER(print_burst);
__u64 seq;
SEC("tracepoint/syscalls/sys_enter_getppid")
int burst(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target_tgid) return 0;
    for (int i = 0; i < 100; i++) {
        struct ev *e = ebpfctl_reserve(print_burst, struct ev);
        if (!e) return 0;
        __u64 n = __sync_fetch_and_add(&seq, 1);
        e->n = n; e->a = n + 1; e->b = n + 2; e->c = n + 3; e->d = n + 4; e->e = n + 5; e->f = n + 6; e->g = n + 7;
        bpf_ringbuf_submit(e, 0);
    }
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;
const PER_CALL: u64 = 100;

#[test]
fn records_left_in_the_ring_at_exit_are_counted_as_lost() {
    let obj = build_source("drain_burst", PROBE);
    let tgid = format!("target_tgid={}", std::process::id());
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "--param",
        &tgid,
        "-o",
        "json",
        "--no-metrics",
    ]);
    let pid = run.pid() as i32;
    // Frozen, ebpfctl reads nothing while the ring fills with 400,000 records: more than a
    // debug build decodes and prints in the 500 ms the drain is given after SIGINT.
    // SAFETY: signals to our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(100));
    let calls = 4000;
    for _ in 0..calls {
        // SAFETY: getppid has no arguments.
        unsafe { libc::getppid() };
    }
    let produced = calls * PER_CALL;
    // SAFETY: as above; SIGINT stays pending until SIGCONT resumes it.
    unsafe {
        libc::kill(pid, libc::SIGINT);
        libc::kill(pid, libc::SIGCONT);
    }
    let (st, out, err) = run.wait_exit(Duration::from_secs(30));
    assert!(st.success(), "{err:?}");
    let lines = common::parse_lines(&out);
    let printed = lines
        .iter()
        .filter(|e| e["_map"] == "burst" && e.get("n").is_some())
        .count() as u64;
    let lost_total = lines
        .iter()
        .filter(|e| e["_map"] == "burst")
        .filter_map(|e| e.get("_lost_total").and_then(Value::as_u64))
        .max()
        .unwrap_or(0);
    // Records read but not written (a slow stdout): counted apart, on stderr.
    let dropped = err
        .iter()
        .filter_map(|l| {
            l.split(" records dropped (")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    eprintln!("produced {produced}: printed {printed}, lost {lost_total}, dropped {dropped}");
    assert!(
        lost_total > 0,
        "the drain read all {produced} records (printed {printed}): nothing was left to count"
    );
    assert_eq!(
        printed + dropped + lost_total,
        produced,
        "every record is printed, dropped by the output or counted lost; stderr: {err:?}"
    );
    assert!(
        err.iter().any(|l| l.contains("map print_burst: lost")
            && l.contains(&format!("({lost_total} in all)"))),
        "{err:?}"
    );
}
