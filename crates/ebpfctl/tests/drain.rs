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

/// A one-page ring of 72-byte records (8 of header): a record keeps straddling the end of
/// the data, which the consumer maps once and copies together; each must arrive whole.
const WRAP_PROBE: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"
const volatile __u32 target_tid = 0;
struct ev { __u64 n, a, b, c, d, e, f, g; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); __type(value, struct ev); } print_wrap SEC(".maps");
EBPFCTL_LOST_COUNTER(print_wrap);
__u64 seq;
SEC("tracepoint/syscalls/sys_enter_getpgid")
int wrap(void *ctx)
{
    if ((__u32)bpf_get_current_pid_tgid() != target_tid) return 0;
    struct ev *e = ebpfctl_reserve(print_wrap, struct ev);
    if (!e) return 0;
    __u64 n = __sync_fetch_and_add(&seq, 1);
    e->n = n; e->a = n + 1; e->b = n + 2; e->c = n + 3; e->d = n + 4; e->e = n + 5; e->f = n + 6; e->g = n + 7;
    bpf_ringbuf_submit(e, 0);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

#[test]
fn records_that_wrap_past_the_end_of_the_ring_arrive_whole() {
    let obj = build_source("drain_wrap", WRAP_PROBE);
    // SAFETY: gettid has no arguments.
    let tid = format!("target_tid={}", unsafe { libc::gettid() });
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "--param",
        &tid,
        "-o",
        "json",
        "--no-metrics",
    ]);
    // 56 records fit in the ring: in bursts of 8 with pauses, so that few are lost.
    let produced = 2000u64;
    for i in 0..produced {
        // SAFETY: getpgid of ourselves: no pointers.
        unsafe { libc::getpgid(0) };
        if i % 8 == 7 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let (st, out, err) = run.stop();
    assert!(st.success(), "{err:?}");
    let lines = common::parse_lines(&out);
    let records: Vec<&Value> = lines
        .iter()
        .filter(|e| e["_map"] == "wrap" && e.get("n").is_some())
        .collect();
    let mut last = None;
    for e in &records {
        let n = e["n"].as_u64().unwrap();
        for (i, f) in ["a", "b", "c", "d", "e", "f", "g"].iter().enumerate() {
            assert_eq!(e[f].as_u64(), Some(n + 1 + i as u64), "a torn record: {e}");
        }
        assert!(
            last.is_none_or(|l| n > l),
            "out of order: {n} after {last:?}"
        );
        last = Some(n);
    }
    let lost = lines
        .iter()
        .filter(|e| e["_map"] == "wrap")
        .filter_map(|e| e.get("_lost_total").and_then(Value::as_u64))
        .max()
        .unwrap_or(0);
    eprintln!(
        "produced {produced}: printed {}, lost {lost}",
        records.len()
    );
    // 2000 records of 72 bytes went 35 times round the 4 KiB ring.
    assert!(
        records.len() as u64 >= produced / 2,
        "{} printed, {lost} lost",
        records.len()
    );
    assert_eq!(records.len() as u64 + lost, produced, "{err:?}");
}
