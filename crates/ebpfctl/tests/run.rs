//! `ebpfctl run` on the real kernel: each example probe, triggered by real events, with its
//! decoded output and metrics checked; bad input; cleanup.
mod common;

use common::*;
use serde_json::Value;

fn path_with_target() -> (&'static str, String) {
    (
        "PATH",
        format!(
            "{}:{}",
            target_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
}

#[test]
fn uprobe_on_our_program_decodes_every_member() {
    let obj = example("uprobe_types");
    let run = Run::start_with_env(
        &["run", obj.to_str().unwrap(), "-o", "json", "--no-metrics"],
        &[path_with_target()],
    );
    let pid = target(&["sample"]);
    let lines = run.wait_json("the sample event", |v| v.iter().any(|e| e["pid"] == pid));
    let e = lines.iter().find(|e| e["pid"] == pid).unwrap();
    assert_eq!(e["_map"], "samples");
    assert!(e["_time"].as_str().unwrap().ends_with('Z'));
    let expect = serde_json::json!({
        "u8": 250, "s8": -7, "u16": 65000, "s16": -300, "u32": 4000000000u32, "s32": -2000000000,
        "u64": 18446744073709551615u64, "s64": -9000000000000000000i64, "flag": true, "color": "BLUE",
        "bf_a": 5, "bf_b": 17, "bf_c": -3, "name": "ebpfctl", "arr": [1, 2, 3], "f32": 1.5, "f64": -2.25,
        "ptr": "0xdeadbeef", "inner": {"port": 8080, "delta": -1}, "un": {"as_u32": 0x04030201, "as_bytes": [1, 2, 3, 4]},
        "v4": "10.1.2.3", "v6": "2001:db8::1", "ep": "127.0.0.1:9091/tcp", "err": "-EACCES", "sig": "SIGKILL",
        "sc": "openat", "took": 1500000, "who": "target",
    });
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&e[k], v, "member {k} in {e}");
    }
    // timestamp: monotonic ns from the target, printed as wall-clock time close to now.
    // Within a minute either side of now (not "the same minute": the event may come just
    // before a minute turns). UTC RFC 3339 to the second ("YYYY-MM-DDTHH:MM:SS", fixed
    // width) sorts as the times it names.
    let at = e["at"].as_str().unwrap();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128;
    let minute = 60_000_000_000i128;
    let (lo, hi) = (
        ebpfctl_core::decode::time::rfc3339_ns(now_ns - minute),
        ebpfctl_core::decode::time::rfc3339_ns(now_ns + minute),
    );
    let second = |t: &str| t.get(..19).unwrap_or_default().to_string();
    assert!(
        at.ends_with('Z') && second(&lo) <= second(at) && second(at) <= second(&hi),
        "timestamp {at} not within a minute of now ({lo} .. {hi})"
    );
    // u64 stays exact on the wire, not rounded through a float.
    let (_, out, _) = run.stop();
    assert!(String::from_utf8_lossy(&out).contains("\"u64\":18446744073709551615"));
}

#[test]
fn section_convention_ring_buffer_with_value_type() {
    let obj = example("exec_print");
    let run = Run::start(&["run", obj.to_str().unwrap(), "-o", "json"]);
    let pid = target(&["getppid", "1"]);
    let lines = run.wait_json("the exec event", |v| v.iter().any(|e| e["pid"] == pid));
    let e = lines.iter().find(|e| e["pid"] == pid).unwrap();
    assert_eq!(e["_map"], "execs");
    assert_eq!(e["ppid"], std::process::id());
    assert_eq!(e["uid"], 0);
    assert_eq!(e["comm"], "ebpfctl-example");
    assert!(
        e["filename"]
            .as_str()
            .unwrap()
            .ends_with("/ebpfctl-example-target"),
        "{e}"
    );
    assert!(e["at"].as_str().unwrap().starts_with("20"), "{e}");
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

#[test]
fn prefix_convention_params_percpu_counter_and_snapshot() {
    let obj = example("syscall_counter");
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--metrics-addr",
        "127.0.0.1:0",
        "--interval",
        "200ms",
        "--param",
        "target_comm=ebpfctl-example",
    ]);
    let pid = target(&["getppid", "1000"]);
    // A snapshot may come while the target still runs (slow guests): wait for the last one.
    let last =
        |e: &&Value| e["_map"] == "last_syscall" && e["key"] == pid && e["nr"] == "exit_group";
    let lines = run.wait_json("a snapshot of last_syscall", |v| v.iter().any(|e| last(&e)));
    let snap = lines.iter().find(last).unwrap();
    assert_eq!(snap["nr"], "exit_group", "{snap}");
    let m = run.scrape();
    promtool_ok(&m);
    let n = sample(
        &m,
        "ebpfctl_syscalls_total{nr=\"getppid\",comm=\"ebpfctl-example\"}",
    )
    .expect(&m);
    assert!(n >= 1000.0, "getppid count {n}");
    // The comm parameter filtered in the kernel: no other command shows up.
    for l in m
        .lines()
        .filter(|l| l.starts_with("ebpfctl_syscalls_total{"))
    {
        assert!(l.contains("comm=\"ebpfctl-example\""), "{l}");
    }
    assert!(
        sample(&m, "ebpfctl_program_runs_total{program=\"count_syscalls\"}").unwrap() > 0.0,
        "{m}"
    );
    run.stop();
}

#[test]
fn histograms_from_ring_buffer_and_slot_map_and_a_duration_gauge() {
    let obj = example("sleep_latency");
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "none",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    target(&["sleep", "5", "2000"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let m = run.scrape();
    promtool_ok(&m);
    let c = "{comm=\"ebpfctl-example\"}";
    assert_eq!(
        sample(&m, &format!("ebpfctl_sleeps_seconds_count{c}")),
        Some(5.0),
        "{m}"
    );
    let sum = sample(&m, &format!("ebpfctl_sleeps_seconds_sum{c}")).unwrap();
    assert!((0.0099..1.0).contains(&sum), "sum {sum}");
    assert_eq!(
        sample(
            &m,
            "ebpfctl_sleeps_seconds_bucket{le=\"0.001024\",comm=\"ebpfctl-example\"}"
        ),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "ebpfctl_sleeps_seconds_bucket{le=\"+Inf\",comm=\"ebpfctl-example\"}"
        ),
        Some(5.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, &format!("ebpfctl_sleep_slots_seconds_count{c}")),
        Some(5.0),
        "{m}"
    );
    // 2 ms sleeps land in log2(µs) slot 10 or 11 (1024..4095 µs); `le` in seconds (the map's
    // EBPFCTL_UNIT(us)).
    assert_eq!(
        sample(
            &m,
            "ebpfctl_sleep_slots_seconds_bucket{le=\"0.001023\",comm=\"ebpfctl-example\"}"
        ),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, &format!("ebpfctl_last_request_seconds{c}")),
        Some(0.002),
        "{m}"
    );
    assert_eq!(
        sample(&m, "ebpfctl_events_total{map=\"sleeps\"}"),
        Some(5.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "ebpfctl_lost_events_total{map=\"sleeps\"}"),
        Some(0.0),
        "{m}"
    );
    run.stop();
}

#[test]
fn perf_array_print_and_ring_buffer_counter() {
    let obj = example("signals");
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let pid = target(&["signal", "3"]);
    let lines = run.wait_json("3 signal events", |v| {
        v.iter().filter(|e| e["pid"] == pid).count() == 3
    });
    for e in lines.iter().filter(|e| e["pid"] == pid) {
        assert_eq!(e["_map"], "signals");
        assert_eq!(e["sig"], "SIGUSR1");
        assert_eq!(e["comm"], "ebpfctl-example");
        assert_eq!(e["result"], 0);
    }
    let m = run.scrape();
    promtool_ok(&m);
    assert_eq!(
        sample(
            &m,
            "ebpfctl_signal_counts_total{sig=\"SIGUSR1\",comm=\"ebpfctl-example\"}"
        ),
        Some(3.0),
        "{m}"
    );
    run.stop();
}

#[test]
fn xdp_counter_on_loopback_with_endpoint_labels() {
    let obj = example("xdp_udp");
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "none",
        "--iface",
        "lo",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    target(&["udp", "47123", "50"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let m = run.scrape();
    promtool_ok(&m);
    assert_eq!(
        sample(
            &m,
            "ebpfctl_udp_datagrams_total{dst=\"127.0.0.1:47123/udp\"}"
        ),
        Some(50.0),
        "{m}"
    );
    run.stop();
    // The XDP link is gone with the process: lo has no XDP program left.
    let ip = std::process::Command::new("ip")
        .args(["link", "show", "lo"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ip.stdout).contains("xdp"),
        "{}",
        String::from_utf8_lossy(&ip.stdout)
    );
}

#[test]
fn table_output_shows_each_map() {
    // A copy with its own program names: the histogram test runs the same example meanwhile.
    let src = std::fs::read_to_string(repo().join("examples/sleep_latency.bpf.c")).unwrap();
    let obj = build_source("sleep_table", &src.replace("int sleep_e", "int table_e"));
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "table",
        "--no-metrics",
        "--interval",
        "100ms",
        "--param",
        "target_comm=ebpfctl-table",
    ]);
    target_as("ebpfctl-table", &["sleep", "2", "1000"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    let (st, out, _) = run.stop();
    assert!(st.success());
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("sleeps") && text.contains("LATENCY") && text.contains("ebpfctl-table"),
        "{text}"
    );
    assert!(
        text.contains("last_request") && text.contains("sleep_slots"),
        "{text}"
    );
    // durations read as durations in tables
    assert!(text.contains("ms"), "{text}");
}

const LOSSY: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"
struct ev { __u64 n; char pad[56]; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); __type(value, struct ev); } print_flood SEC(".maps");
EBPFCTL_LOST_COUNTER(print_flood);
const volatile char target_comm[16] = "ebpfctl-lossy";
SEC("tracepoint/syscalls/sys_enter_getppid")
int flood(void *ctx) {
    char c[16];
    bpf_get_current_comm(c, sizeof(c));
    for (int i = 0; i < 15; i++) { if (c[i] != target_comm[i]) return 0; if (!c[i]) break; }
    for (int i = 0; i < 200; i++) {
        struct ev *e = ebpfctl_reserve(print_flood, struct ev);
        if (!e) continue;
        e->n = i;
        bpf_ringbuf_submit(e, 0);
    }
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

#[test]
fn lost_events_are_counted_and_reported_in_every_output() {
    let obj = build_source("lossy", LOSSY);
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--metrics-addr",
        "127.0.0.1:0",
        "--interval",
        "100ms",
    ]);
    target_as("ebpfctl-lossy", &["getppid", "1"]);
    let lines = run.wait_json("a loss record", |v| {
        v.iter().any(|e| e.get("_lost").is_some())
    });
    let got = lines.iter().filter(|e| e.get("n").is_some()).count() as u64;
    let lost: u64 = lines
        .iter()
        .filter_map(|e| e.get("_lost").and_then(Value::as_u64))
        .sum();
    // 4 KiB holds fewer than 200 records of 72 bytes: the rest must be accounted as lost.
    assert!(lost > 0 && got < 200, "got {got}, lost {lost}");
    assert_eq!(
        got + lost,
        200,
        "every event is either delivered or counted lost"
    );
    let m = run.scrape();
    assert_eq!(
        sample(&m, "ebpfctl_lost_events_total{map=\"flood\"}"),
        Some(lost as f64),
        "{m}"
    );
    let (_, _, err) = run.stop();
    assert!(
        err.iter().any(|l| l.contains("map print_flood: lost")),
        "{err:?}"
    );
}

const MIXED: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ebpfctl.h"
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } counter_hits SEC(".maps");
static void hit(__u32 k) { __u64 one = 1, *n = bpf_map_lookup_elem(&counter_hits, &k); if (n) __sync_fetch_and_add(n, 1); else bpf_map_update_elem(&counter_hits, &k, &one, BPF_NOEXIST); }
SEC("kprobe/do_nanosleep") int mixed_kprobe(void *ctx) { hit(1); return 0; }
SEC("fentry/do_nanosleep") int BPF_PROG(mixed_fentry) { hit(2); return 0; }
SEC("tracepoint/syscalls/sys_enter_getppid") int mixed_tp(void *ctx) { hit(3); return 0; }
SEC("kprobe/ebpfctl_no_such_function") int mixed_missing(void *ctx) { hit(4); return 0; }
char LICENSE[] SEC("license") = "GPL";
"#;

/// Whether `ebpfctl feature` reports this attach kind available on the running kernel.
fn feature_available(kind: &str) -> bool {
    let o = ebpfctl(&["feature", "-o", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f: Value = serde_json::from_slice(&o.stdout).unwrap();
    f["attach"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in feature output"))["available"]
        .as_bool()
        .unwrap()
}

#[test]
fn programs_this_kernel_cannot_run_are_reported_and_the_rest_run() {
    let obj = build_source("mixed", MIXED);
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "none",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    target(&["getppid", "3"]);
    target(&["sleep", "1", "1000"]);
    let m = run.scrape();
    assert!(
        sample(&m, "ebpfctl_hits_total{key=\"3\"}").unwrap() >= 3.0,
        "{m}"
    );
    let (st, _, err) = run.stop();
    assert!(st.success());
    let skipped: Vec<&String> = err.iter().filter(|l| l.contains("skipped")).collect();
    // A kprobe on a function no kernel has is skipped everywhere; kprobes and fentry are
    // skipped where this kernel lacks them (this project's machines) and run where it has
    // them (the Debian kernels of scripts/vm-test.sh).
    assert!(
        skipped.iter().any(|l| l.contains("mixed_missing")),
        "{err:?}"
    );
    for (prog, kind, needs, key) in [
        ("mixed_kprobe", "kprobe", "kprobes", "1"),
        ("mixed_fentry", "fentry", "fentry", "2"),
    ] {
        if kind == "fentry" && feature_available("kprobe") && feature_available("fentry") {
            // Both hook do_nanosleep's entry: the fentry one is the alternative run skips.
            assert!(
                skipped.iter().any(|l| l.contains(prog)
                    && l.contains("mixed_kprobe (kprobe/do_nanosleep) already hooks")),
                "{err:?}"
            );
        } else if feature_available(kind) {
            // Its own skip line, not another's that names it.
            let own = format!("ebpfctl: program {prog} (");
            assert!(!skipped.iter().any(|l| l.starts_with(&own)), "{err:?}");
            let hits = sample(&m, &format!("ebpfctl_hits_total{{key=\"{key}\"}}"));
            assert!(hits.unwrap_or(0.0) >= 1.0, "{prog}: {m}");
        } else {
            assert!(
                skipped
                    .iter()
                    .any(|l| l.contains(prog) && l.contains(needs)),
                "{err:?}"
            );
        }
    }
    for l in &skipped {
        assert_eq!(l.lines().count(), 1);
    }
    // --strict: the same object fails and leaves nothing.
    let mark = bpf::Mark::now();
    let o = ebpfctl(&[
        "run",
        obj.to_str().unwrap(),
        "--strict",
        "--no-metrics",
        "--duration",
        "1",
    ]);
    // Where kprobes exist the missing function is an attach error of its own.
    assert_one_line_error(
        &o,
        if feature_available("kprobe") {
            "program mixed_missing (kprobe/ebpfctl_no_such_function) not attached"
        } else {
            "cannot run here (--strict)"
        },
    );
    mark.assert_nothing_left(
        "run --strict",
        &["mixed_kprobe", "mixed_fentry", "mixed_tp", "mixed_missing"],
    );
}

#[test]
fn list_params_shows_types_and_defaults() {
    let obj = example("syscall_counter");
    let o = ebpfctl(&["run", obj.to_str().unwrap(), "--list-params"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("target_comm") && text.contains("char[16]"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("min_nr")
            && l.contains("long long")
            && l.trim_end().ends_with('0')),
        "{text}"
    );
}

#[test]
fn duration_ends_the_run_and_flushes() {
    let obj = example("exec_print");
    // An exec during the run must be in stdout when the process ends by itself. The exec
    // comes once the programs are attached (the duration counts from then): on a slow
    // (emulated) machine attaching alone can take longer than a fixed delay.
    target_dir();
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "json",
        "--duration",
        "2",
    ]);
    let pid = target_as("ebpfctl-flush", &["getppid", "1"]);
    let (st, out, err) = run.wait_exit(std::time::Duration::from_secs(15));
    assert!(st.success(), "{err:?}");
    let lines = parse_lines(&out);
    assert!(
        lines.iter().any(|e| e["pid"] == pid),
        "exec of {pid} not flushed: {} lines",
        lines.len()
    );
}

// ---- bad input: one clear line, non-zero exit, no panic, nothing loaded ----

fn write_tmp(name: &str, bytes: &[u8]) -> String {
    let p = tmp().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn bad_input_not_elf() {
    let p = write_tmp("not-elf.o", b"this is a text file\n");
    assert_one_line_error(&ebpfctl(&["run", &p]), "not an ELF file");
}

#[test]
fn bad_input_truncated_elf() {
    let full = std::fs::read(example("exec_print")).unwrap();
    let p = write_tmp("truncated.o", &full[..full.len() / 3]);
    assert_one_line_error(&ebpfctl(&["run", &p]), "truncated");
}

#[test]
fn bad_input_elf_of_another_machine() {
    assert_one_line_error(&ebpfctl(&["run", "/bin/true"]), "is for x86-64, not BPF");
}

#[test]
fn bad_input_missing_file() {
    assert_one_line_error(&ebpfctl(&["run", "/nonexistent/probe.o"]), "No such file");
}

#[test]
fn bad_input_keyword_without_btf() {
    // Compiled without -g: no BTF, so the `print` keyword cannot decode anything.
    let dir = tmp().join("nobtf");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("nobtf.bpf.c");
    std::fs::write(
        &src,
        "struct { int (*type)[27]; int (*max_entries)[4096]; } print_events __attribute__((section(\".maps\"), used));\n\
         __attribute__((section(\"tracepoint/syscalls/sys_enter_getppid\"), used)) int f(void *c) { return 0; }\n\
         char LICENSE[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
    .unwrap();
    let out = dir.join("nobtf.o");
    let clang = ebpfctl_build::find_clang().unwrap();
    let st = std::process::Command::new(clang)
        .args(["-O2", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    assert_one_line_error(&ebpfctl(&["run", out.to_str().unwrap()]), "no BTF");
}

#[test]
fn bad_input_keyword_on_unsupported_map_kind() {
    let obj = build_source(
        "badkw",
        r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); __type(value, __u64); } events SEC(".maps.gauge");
SEC("tracepoint/syscalls/sys_enter_getppid") int badkw(void *c) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"#,
    );
    assert_one_line_error(
        &ebpfctl(&["run", obj.to_str().unwrap()]),
        "keyword `gauge` is not supported on a ringbuf map",
    );
}

#[test]
fn bad_input_unknown_and_malformed_params() {
    // A copy of the example with its own program name, so the check below sees only this test.
    let src = std::fs::read_to_string(repo().join("examples/syscall_counter.bpf.c")).unwrap();
    let obj = build_source("params", &src.replace("count_syscalls", "params_probe"));
    let o = obj.to_str().unwrap();
    let mark = bpf::Mark::now();
    assert_one_line_error(
        &ebpfctl(&["run", o, "--param", "nope=1"]),
        "unknown parameter nope; the object's parameters: target_comm, min_nr",
    );
    assert_one_line_error(
        &ebpfctl(&["run", o, "--param", "min_nr=lots"]),
        "parameter min_nr: expected an integer",
    );
    assert_one_line_error(
        &ebpfctl(&["run", o, "--param", "target_comm=a-name-longer-than-15"]),
        "longer than 15 bytes",
    );
    mark.assert_nothing_left("run --param", &["params_probe"]);
}

#[test]
fn bad_input_verifier_rejection_is_explained() {
    let obj = build_source(
        "rejected",
        r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } counts SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int rejected(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&counts, &k);
	*v += 1;
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#,
    );
    let mark = bpf::Mark::now();
    let o = ebpfctl(&["run", obj.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"));
    let first = err.lines().next().unwrap();
    assert!(
        first.starts_with("ebpfctl: error:")
            && first.contains("the verifier rejected program rejected"),
        "{err}"
    );
    assert!(
        err.contains("rejected.bpf.c:"),
        "source line missing: {err}"
    );
    assert!(err.contains("*v += 1"), "C source text missing: {err}");
    assert!(err.contains("hint: missing NULL check"), "{err}");
    mark.assert_nothing_left("a rejected object", &["rejected"]);
}

const KINDS: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ebpfctl.h"
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } counter_kind_hits SEC(".maps");
static void hit(__u32 k) { __u64 one = 1, *n = bpf_map_lookup_elem(&counter_kind_hits, &k); if (n) __sync_fetch_and_add(n, 1); else bpf_map_update_elem(&counter_kind_hits, &k, &one, BPF_NOEXIST); }
SEC("tc/ingress") int kinds_tc(struct __sk_buff *s) { hit(1); return 0; /* TC_ACT_OK */ }
SEC("tcx/egress") int kinds_tcx(struct __sk_buff *s) { hit(2); return 0; /* TCX_NEXT */ }
SEC("socket") int kinds_socket(struct __sk_buff *s) { hit(3); return 0; }
SEC("cgroup_skb/egress") int kinds_cgroup(struct __sk_buff *s) { hit(4); return 1; }
SEC("perf_event") int kinds_perf(void *ctx) { hit(5); return 0; }
SEC("tp_btf/sched_process_exec") int BPF_PROG(kinds_tp_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) { hit(6); return 0; }
char LICENSE[] SEC("license") = "GPL";
"#;

fn cgroup2_root() -> String {
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("cgroup2"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        .expect("cgroup v2 must be mounted for this test")
}

#[test]
fn network_cgroup_perf_and_btf_tracepoint_kinds_attach() {
    // tcx came in 6.6: before it, `tc/ingress` is a legacy clsact filter (with a notice) and
    // the `tcx/egress` program cannot attach, so the object runs without it and a tcx-only
    // run is refused with the reason. Decided from the kernel, said out loud.
    let tcx = kernel_has_tcx();
    let source = if tcx {
        KINDS.to_string()
    } else {
        eprintln!(
            "KERNEL MATRIX: kernel {:?} has no tcx (Linux 6.6+): the tcx/egress program is left out, tc/ingress must fall back to a legacy tc filter",
            kernel_version()
        );
        KINDS
            .lines()
            .filter(|l| !l.contains("SEC(\"tcx/"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let obj = build_source(if tcx { "kinds" } else { "kinds_notcx" }, &source);
    let cg = cgroup2_root();
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "none",
        "--iface",
        "lo",
        "--cgroup",
        &cg,
        "--perf-freq",
        "200",
        "--metrics-addr",
        "127.0.0.1:0",
        "--strict",
    ]);
    let legacy_notice = |stderr: &[String]| {
        stderr
            .iter()
            .find(|l| {
                l.contains("program kinds_tc:") && l.contains("so it is a tc filter on lo ingress")
            })
            .cloned()
    };
    if tcx {
        assert_eq!(
            legacy_notice(&run.stderr()),
            None,
            "tc/ingress should be a tcx link on this kernel"
        );
    } else {
        let notice = legacy_notice(&run.stderr())
            .unwrap_or_else(|| panic!("no legacy tc notice:\n{}", run.stderr().join("\n")));
        assert!(
            notice.contains("this kernel has no tcx links (Linux 6.6+"),
            "{notice}"
        );
        assert!(notice.contains("ebpfctl net detach"), "{notice}");
        let tc = tc_filters_on_lo_ingress();
        assert!(
            tc.contains("kinds_tc"),
            "the legacy filter is not on lo:\n{tc}"
        );
    }
    target(&["udp", "47124", "20"]);
    std::thread::sleep(std::time::Duration::from_millis(600));
    let m = run.scrape();
    for (k, what) in [
        (1, "tc ingress"),
        (2, "tcx egress"),
        (3, "socket filter"),
        (4, "cgroup_skb egress"),
        (5, "perf_event"),
        (6, "tp_btf"),
    ] {
        if k == 2 && !tcx {
            continue;
        }
        let n = sample(&m, &format!("ebpfctl_kind_hits_total{{key=\"{k}\"}}")).unwrap_or(0.0);
        assert!(n > 0.0, "{what} never ran:\n{m}");
    }
    run.stop();
    // The tc filter and the clsact qdisc we created are gone.
    let tc = tc_filters_on_lo_ingress();
    assert!(!tc.contains("kinds_tc"), "{tc}");
    if !tcx {
        // What the kernel cannot do is refused with the reason, not attached halfway.
        let tcx_only = build_source(
            "kinds_tcx_only",
            &KINDS
                .lines()
                .filter(|l| {
                    !l.contains("SEC(\"")
                        || ["SEC(\"tcx/", "SEC(\".maps\")", "SEC(\"license\")"]
                            .iter()
                            .any(|k| l.contains(k))
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
        let o = ebpfctl(&[
            "run",
            tcx_only.to_str().unwrap(),
            "-o",
            "none",
            "--iface",
            "lo",
            "--strict",
            "--duration",
            "1",
        ]);
        assert_one_line_error(&o, "tcx needs Linux 6.6+");
    }
}

fn tc_filters_on_lo_ingress() -> String {
    let tc = std::process::Command::new("tc")
        .args(["filter", "show", "dev", "lo", "ingress"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&tc.stdout).into_owned()
}

const HIST_KEY: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"
struct sized { __u32 kind; __u64 bytes; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 16); __type(value, struct sized); } hist_sizes SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 8); __type(key, __u32); __type(value, __u64); } hist_linear SEC(".maps");
const volatile char target_comm[16] = "ebpfctl-histkey";
SEC("tracepoint/syscalls/sys_enter_getppid")
int histkey(void *ctx) {
    char c[16];
    bpf_get_current_comm(c, sizeof(c));
    for (int i = 0; i < 15; i++) { if (c[i] != target_comm[i]) return 0; if (!c[i]) break; }
    struct sized *e = bpf_ringbuf_reserve(&hist_sizes, sizeof(*e), 0);
    if (e) { e->kind = 7; e->bytes = 300; bpf_ringbuf_submit(e, 0); }
    __u32 slot = 300 / 100; /* linear slots of width 100 */
    __u64 *n = bpf_map_lookup_elem(&hist_linear, &slot);
    if (n) __sync_fetch_and_add(n, 1);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

#[test]
fn hist_key_and_linear_slots_choose_what_is_observed() {
    let obj = build_source("histkey", HIST_KEY);
    let o = obj.to_str().unwrap();
    // Without --hist-key there is no `duration` or `value` member: one clear line naming the members.
    let bad = ebpfctl(&[
        "run",
        o,
        "-o",
        "none",
        "--metrics-addr",
        "127.0.0.1:0",
        "--duration",
        "1",
    ]);
    assert_one_line_error(&bad, "members: kind, bytes");
    let run = Run::start(&[
        "run",
        o,
        "-o",
        "none",
        "--metrics-addr",
        "127.0.0.1:0",
        "--hist-key",
        "bytes",
        "--hist-linear-step",
        "100",
    ]);
    target_as("ebpfctl-histkey", &["getppid", "4"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let m = run.scrape();
    promtool_ok(&m);
    assert_eq!(
        sample(&m, "ebpfctl_sizes_count{kind=\"7\"}"),
        Some(4.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "ebpfctl_sizes_sum{kind=\"7\"}"),
        Some(1200.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "ebpfctl_sizes_bucket{le=\"256.0\",kind=\"7\"}"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "ebpfctl_sizes_bucket{le=\"512.0\",kind=\"7\"}"),
        Some(4.0),
        "{m}"
    );
    // Array slot 3 of width 100 covers [300, 400): le="300" has 0, le="400" has 4.
    assert_eq!(
        sample(&m, "ebpfctl_linear_bucket{le=\"300.0\"}"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "ebpfctl_linear_bucket{le=\"400.0\"}"),
        Some(4.0),
        "{m}"
    );
    run.stop();
}

/// File offset of `symbol` in the ELF executable at `path` (through its PT_LOAD segments).
fn file_offset(path: &std::path::Path, symbol: &str) -> u64 {
    use object::{Object, ObjectSegment, ObjectSymbol};
    let data = std::fs::read(path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let addr = file
        .symbols()
        .find(|s| s.name() == Ok(symbol))
        .unwrap_or_else(|| panic!("{symbol} not in {}", path.display()))
        .address();
    file.segments()
        .find_map(|seg| {
            let (off, size) = seg.file_range();
            (addr >= seg.address() && addr < seg.address() + size)
                .then(|| addr - seg.address() + off)
        })
        .unwrap()
}

#[test]
fn uprobe_at_a_file_offset() {
    // A copy of its own: a probe on a file fires for every process running that file,
    // including the targets of tests running at the same time.
    const COPY: &str = "ebpfctl-offset";
    target_as(COPY, &["sample"]);
    let bin = target_dir().join(COPY);
    let off = file_offset(&bin, "ebpfctl_example_probe");
    let src = format!(
        r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct {{ __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); }} counter_offset_hits SEC(".maps");
SEC("uprobe/{}:{off:#x}") int at_offset(void *ctx) {{ __u32 k = 0; __u64 *n = bpf_map_lookup_elem(&counter_offset_hits, &k); if (n) __sync_fetch_and_add(n, 1); return 0; }}
char LICENSE[] SEC("license") = "GPL";
"#,
        bin.display()
    );
    let obj = build_source("uprobe_offset", &src);
    let run = Run::start(&[
        "run",
        obj.to_str().unwrap(),
        "-o",
        "none",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    target_as(COPY, &["sample"]);
    target_as(COPY, &["sample"]);
    let m = run.scrape();
    assert_eq!(sample(&m, "ebpfctl_offset_hits_total"), Some(2.0), "{m}");
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    // An offset past the end of the file: one line naming the target, nothing left loaded.
    let bad = src.replace(&format!("{off:#x}"), "0x7fffffff");
    let obj = build_source("uprobe_bad_offset", &bad);
    let mark = bpf::Mark::now();
    let o = ebpfctl(&[
        "run",
        obj.to_str().unwrap(),
        "--strict",
        "-o",
        "none",
        "--no-metrics",
    ]);
    assert_one_line_error(&o, "is past the end of");
    mark.assert_nothing_left("a uprobe past the end", &["at_offset"]);
}
