//! Whole-map reads (snapshots, scrapes, `map dump`) go through BPF_MAP_LOOKUP_BATCH: the bpf()
//! calls of the running ebpfctl are counted with strace while it snapshots maps of 3,000 keys
//! that this test filled through a real probe, and every value is checked.
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{build_source, ebpfctl, sample, Run};
use serde_json::Value;

/// Keys the probe records: `getpgid(BASE + i)` by this test process, i < KEYS.
const KEYS: u32 = 3000;

/// Four maps of the same keys: a hash, a per-CPU hash and an array printed as JSON snapshots,
/// and a hash counted in the metrics; a stack-trace map (no batch operations in the kernel)
/// for `map dump`'s key-by-key path.
const PROBE: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"
const volatile __u32 target_tgid = 0;
const volatile __u32 base = 0;
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096); __type(key, __u32); __type(value, __u64); } print_bh SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 4096); __type(key, __u32); __type(value, __u64); } print_bp SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 3000); __type(key, __u32); __type(value, __u64); } print_ba SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096); __type(key, __u32); __type(value, __u64); } counter_bc SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK_TRACE); __uint(key_size, sizeof(__u32)); __uint(value_size, 127 * sizeof(__u64)); __uint(max_entries, 64); } bstacks SEC(".maps");
static void add(void *map, __u32 k) {
    __u64 one = 1, *n = bpf_map_lookup_elem(map, &k);
    if (n) __sync_fetch_and_add(n, 1); else bpf_map_update_elem(map, &k, &one, BPF_NOEXIST);
}
SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(struct trace_event_raw_sys_enter *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target_tgid) return 0;
    __u32 k = (__u32)ctx->args[0];
    if (k < base || k >= base + 3000) return 0;
    add(&print_bh, k);
    add(&print_bp, k);
    add(&counter_bc, k);
    __u32 i = k - base;
    __u64 *slot = bpf_map_lookup_elem(&print_ba, &i);
    if (slot) __sync_fetch_and_add(slot, 1);
    bpf_get_stackid(ctx, &bstacks, 0);
    /* The user stack too: a syscall tracepoint has no kernel stack on 6.1. */
    bpf_get_stackid(ctx, &bstacks, BPF_F_USER_STACK);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#;

/// Key i is asked for 1 + i % 3 times.
fn want(i: u32) -> u64 {
    1 + u64::from(i % 3)
}

/// Starts the probe for keys from `base` and fills its maps.
fn start(base: u32, args: &[&str]) -> Run {
    let obj = build_source("batch_reads", PROBE);
    let tgid = format!("target_tgid={}", std::process::id());
    let base_p = format!("base={base}");
    let mut all = vec![
        "run",
        obj.to_str().unwrap(),
        "--param",
        &tgid,
        "--param",
        &base_p,
    ];
    all.extend_from_slice(args);
    let run = Run::start(&all);
    for i in 0..KEYS {
        for _ in 0..want(i) {
            // SAFETY: getpgid takes a pid and touches no memory (unknown pids give ESRCH).
            unsafe { libc::getpgid((base + i) as libc::pid_t) };
        }
    }
    run
}

/// strace attached to a running process and its threads, logging bpf() calls to a file.
struct Strace {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Strace {
    fn attach(pid: u32) -> Strace {
        let log = tempfile::NamedTempFile::new_in(common::tmp()).unwrap();
        let child = Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=bpf", "-o"])
            .arg(log.path())
            .args(["-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace is needed (scripts/setup.sh installs it)");
        // Attaching takes a moment; calls before it are not counted, which only lowers the count.
        std::thread::sleep(Duration::from_millis(500));
        Strace { child, log }
    }

    /// Detaches; returns the bpf() commands seen, by name.
    fn finish(mut self) -> Calls {
        // SAFETY: kill on our own child's pid with a valid signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        commands(self.log.path())
    }
}

impl Drop for Strace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an strace log of bpf() calls says about whole-map reads.
#[derive(Debug, Default)]
struct Calls {
    /// Every bpf() call, by command.
    by_cmd: BTreeMap<String, u64>,
    /// Whole-map reads begun: a batch lookup from the start (`in_batch=NULL`) or a
    /// get-next-key from the start (`key=NULL`).
    reads: u64,
}

impl Calls {
    fn get(&self, cmd: &str) -> u64 {
        self.by_cmd.get(cmd).copied().unwrap_or(0)
    }

    /// bpf() calls that read map entries.
    fn map_reads(&self) -> u64 {
        [
            "BPF_MAP_LOOKUP_BATCH",
            "BPF_MAP_GET_NEXT_KEY",
            "BPF_MAP_LOOKUP_ELEM",
        ]
        .iter()
        .map(|c| self.get(c))
        .sum()
    }
}

fn commands(log: &Path) -> Calls {
    let text = std::fs::read_to_string(log).unwrap();
    let mut calls = Calls::default();
    for l in text.lines() {
        let Some(rest) = l.split("bpf(").nth(1) else {
            continue;
        };
        let cmd = rest.split(',').next().unwrap_or("").to_string();
        let starts = match cmd.as_str() {
            "BPF_MAP_LOOKUP_BATCH" => rest.contains("in_batch=NULL"),
            "BPF_MAP_GET_NEXT_KEY" => rest.contains("key=NULL"),
            _ => false,
        };
        calls.reads += u64::from(starts);
        *calls.by_cmd.entry(cmd).or_insert(0) += 1;
    }
    calls
}

/// Every key printed for map `name` so far, with the largest value seen (counts only grow;
/// a snapshot taken during the fill shows smaller ones).
fn printed(lines: &[Value], name: &str, index_base: u32) -> BTreeMap<u32, u64> {
    let mut last = BTreeMap::new();
    for e in lines.iter().filter(|e| e["_map"] == name) {
        let k = e["key"].as_u64().unwrap() as u32 + index_base;
        let v = e["value"].as_u64().unwrap();
        let m = last.entry(k).or_insert(0);
        *m = v.max(*m);
    }
    last
}

#[test]
fn snapshots_of_3000_keys_cost_a_few_bpf_calls_and_every_value_is_right() {
    let base = 0x7e00_0000;
    let run = start(
        base,
        &[
            "-o",
            "json",
            "--interval",
            "500ms",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    );
    // Count while ebpfctl snapshots the three printed maps (3,000 keys each) several times
    // and serves two scrapes of the counted one.
    let strace = Strace::attach(run.pid());
    std::thread::sleep(Duration::from_millis(2500));
    let scrapes = 2;
    let mut metrics = String::new();
    for _ in 0..scrapes {
        metrics = run.scrape();
    }
    let calls = strace.finish();
    // One read per printed map per snapshot, one per scrape.
    assert!(calls.reads >= 3 * 4 + scrapes, "{calls:?}");
    let per_read = calls.map_reads() as f64 / calls.reads as f64;
    let per_snapshot = 3.0 * per_read;
    eprintln!(
        "bpf() calls: {:?}; {} whole-map reads of 3,000 keys: {per_read:.2} calls per map, \
         {per_snapshot:.1} per snapshot of 3 maps",
        calls.by_cmd, calls.reads
    );
    // A batch for the whole map, then the kernel's ENOENT (an array answers it in a second
    // call): at most two calls per map, and no key-by-key reads.
    assert!(
        per_read <= 2.0,
        "{per_read:.2} bpf() calls per map read: {calls:?}"
    );
    assert!(per_snapshot < 20.0);
    assert_eq!(calls.get("BPF_MAP_GET_NEXT_KEY"), 0, "{calls:?}");
    assert_eq!(calls.get("BPF_MAP_LOOKUP_ELEM"), 0, "{calls:?}");
    // Every value is there and right, in each map kind.
    let lines = run.json();
    let want_all: BTreeMap<u32, u64> = (0..KEYS).map(|i| (base + i, want(i))).collect();
    assert_eq!(printed(&lines, "bh", 0), want_all, "hash");
    assert_eq!(printed(&lines, "bp", 0), want_all, "per-CPU hash (summed)");
    assert_eq!(printed(&lines, "ba", base), want_all, "array");
    for i in [0, 1, 2, KEYS / 2, KEYS - 1] {
        let s = format!("ebpfctl_bc_total{{key=\"{}\"}}", base + i);
        assert_eq!(sample(&metrics, &s), Some(want(i) as f64), "{s}");
    }
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("ebpfctl_bc_total{"))
        .count();
    assert_eq!(series, KEYS as usize);
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

/// CPUs the kernel may bring up (`/sys/devices/system/cpu/possible`: "0-3", "0,2-5").
fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    text.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

/// The ids of the maps named `names` among those the run holds.
fn held_map_ids(run: &Run, names: &[&str]) -> Vec<u32> {
    names
        .iter()
        .map(|want| {
            *run.held()
                .maps
                .iter()
                .find(|&&id| {
                    let o = ebpfctl(&["map", "show", &id.to_string(), "-o", "json"]);
                    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
                    let v = if v.is_array() { v[0].clone() } else { v };
                    v["name"] == *want
                })
                .unwrap_or_else(|| panic!("the run holds no map {want}"))
        })
        .collect()
}

/// `strace -f -e trace=bpf ebpfctl ARGS`: (stdout, stderr, bpf() commands).
fn traced(args: &[&str], env: &[(&str, &str)]) -> (Vec<u8>, String, Calls) {
    let log = tempfile::NamedTempFile::new_in(common::tmp()).unwrap();
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=bpf", "-o"])
        .arg(log.path())
        .arg(common::bin())
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("strace is needed (scripts/setup.sh)");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "ebpfctl {args:?}: {err}");
    (o.stdout, err, commands(log.path()))
}

#[test]
fn map_dump_reads_in_batches_and_falls_back_key_by_key_where_the_kernel_refuses() {
    let base = 0x7d00_0000;
    let run = start(base, &["-o", "none"]);
    let ids = held_map_ids(&run, &["print_bh", "print_bp", "bstacks"]);
    let (hash, percpu, stacks) = (ids[0].to_string(), ids[1].to_string(), ids[2].to_string());

    // A hash of 3,000 keys: one or two batch calls, every value right.
    let (out, err, calls) = traced(&["map", "dump", &hash, "-o", "json"], &[]);
    assert!(err.is_empty(), "{err}");
    let v: Value = serde_json::from_slice(&out).unwrap();
    let got: BTreeMap<u64, u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["key"].as_u64().unwrap(), e["value"].as_u64().unwrap()))
        .collect();
    let want_all: BTreeMap<u64, u64> = (0..KEYS).map(|i| (u64::from(base + i), want(i))).collect();
    assert_eq!(got, want_all);
    assert!(
        (1..=2).contains(&calls.get("BPF_MAP_LOOKUP_BATCH")),
        "{calls:?}"
    );
    assert_eq!(calls.get("BPF_MAP_GET_NEXT_KEY"), 0, "{calls:?}");

    // Per-CPU values keep one entry per possible CPU, summing to the count.
    let (out, _, calls) = traced(&["map", "dump", &percpu, "-o", "json"], &[]);
    let v: Value = serde_json::from_slice(&out).unwrap();
    let ncpu = possible_cpus();
    assert_eq!(v.as_array().unwrap().len(), KEYS as usize);
    for e in v.as_array().unwrap() {
        let i = e["key"].as_u64().unwrap() as u32 - base;
        let cpus = e["values"].as_array().unwrap();
        assert_eq!(cpus.len(), ncpu, "{e}");
        let sum: u64 = cpus.iter().map(|c| c["value"].as_u64().unwrap()).sum();
        assert_eq!(sum, want(i), "{e}");
    }
    assert!(calls.get("BPF_MAP_LOOKUP_BATCH") <= 2, "{calls:?}");

    // A stack-trace map has no batch operation: one refused call, then key by key, with the
    // reason in the debug log only.
    let (out, err, calls) = traced(&["map", "dump", &stacks, "-o", "json"], &[]);
    assert!(
        err.is_empty(),
        "the fallback is not the user's business: {err}"
    );
    let n = serde_json::from_slice::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .len() as u64;
    assert!(n >= 1, "no stack recorded");
    assert_eq!(calls.get("BPF_MAP_LOOKUP_BATCH"), 1, "{calls:?}");
    assert_eq!(calls.get("BPF_MAP_GET_NEXT_KEY"), n + 1, "{calls:?}");
    assert_eq!(calls.get("BPF_MAP_LOOKUP_ELEM"), n, "{calls:?}");
    let (_, err, _) = traced(
        &["map", "dump", &stacks, "-o", "json"],
        &[("EBPFCTL_DEBUG", "1")],
    );
    assert!(
        err.lines().any(|l| l.starts_with("ebpfctl: debug: ")
            && l.contains("BPF_MAP_LOOKUP_BATCH refused (ENOTSUPP")),
        "{err}"
    );
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}
