//! `ebpfctl init` → `ebpfctl build` → `ebpfctl run` for one choice, with the decoded output
//! or metrics of the run checked (used by tests/init.rs here and tests/kernels.rs in guests).
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{bin, patient, promtool_ok, sample, tmp, Run};

/// Every (map, keyword) pair `init` accepts (gauge needs a hash map).
pub const COMBOS: [(&str, &str); 7] = [
    ("ringbuf", "print"),
    ("ringbuf", "counter"),
    ("ringbuf", "hist"),
    ("hash", "print"),
    ("hash", "counter"),
    ("hash", "gauge"),
    ("hash", "hist"),
];

/// `ebpfctl init DIR --name NAME ARGS` then `ebpfctl build DIR/NAME.bpf.c`: the object.
pub fn init_and_build(name: &str, args: &[&str]) -> PathBuf {
    let dir = tmp().join("init").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let o = Command::new(bin())
        .arg("init")
        .arg(&dir)
        .args(["--name", name])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ebpfctl init {name} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let src = dir.join(format!("{name}.bpf.c"));
    let o = Command::new(bin()).arg("build").arg(&src).output().unwrap();
    assert!(
        o.status.success(),
        "ebpfctl build of init {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(&src).unwrap_or_default()
    );
    let obj = dir.join(format!("{name}.bpf.o"));
    assert!(obj.exists(), "no {}", obj.display());
    obj
}

/// How to trigger a probe's event and what its label is.
pub struct Trigger<'a> {
    /// Extra `ebpfctl run` arguments (`--iface lo`, `--param ...`).
    pub run_args: &'a [&'a str],
    /// The label member and its value for our events: ("comm", "ebpfctl-init-tp") or
    /// ("dst", "127.0.0.1:47201/udp").
    pub label: (&'a str, &'a str),
    /// Makes at least one event.
    pub fire: &'a dyn Fn(),
    /// The member holding the number (`age`, a duration, or `bytes`) and, for packets, its
    /// exact value.
    pub value: (&'a str, Option<u64>),
}

/// Inits, builds and runs `kind` with `map`/`keyword` (map name `map_name`), fires the
/// trigger until the output shows our event, and checks it: JSON for print, metrics for the
/// others.
pub fn check(kind: &str, extra: &[&str], map: &str, keyword: &str, map_name: &str, t: &Trigger) {
    let name = format!("init_{kind}_{map}_{keyword}").replace('-', "_");
    let mut args = vec!["--kind", kind, "--map", map, "--keyword", keyword];
    args.extend(extra);
    let obj = init_and_build(&name, &args);
    let obj = obj.to_str().unwrap();
    let mut run_args = vec![
        "run",
        obj,
        "--duration",
        "60s",
        "-o",
        "json",
        "--interval",
        "100ms",
    ];
    if keyword == "print" {
        run_args.push("--no-metrics");
    } else {
        run_args.extend(["--metrics-addr", "127.0.0.1:0"]);
    }
    run_args.extend(t.run_args);
    let run = Run::start(&run_args);
    let what = format!("{kind} {map} {keyword}");
    let (lk, lv) = t.label;
    let (vk, exact) = t.value;
    let deadline = Instant::now() + patient(Duration::from_secs(20));
    let series = |suffix: &str| format!("ebpfctl_{map_name}{suffix}{{{lk}=\"{lv}\"}}");
    loop {
        (t.fire)();
        std::thread::sleep(Duration::from_millis(300));
        let done = if keyword == "print" {
            let ours: Vec<_> = run
                .json()
                .into_iter()
                .filter(|v| v["_map"] == map_name && v[lk] == lv)
                .collect();
            if let Some(e) = ours.first() {
                let member = if map == "hash" {
                    assert!(e["count"].as_u64().unwrap_or(0) >= 1, "{what}: {e}");
                    format!("last_{vk}")
                } else {
                    vk.to_string()
                };
                let n = e[&member].as_u64();
                assert!(n.is_some_and(|n| n > 0), "{what}: no {member} in {e}");
                if let Some(x) = exact {
                    assert_eq!(n, Some(x), "{what}: {e}");
                }
                true
            } else {
                false
            }
        } else {
            let m = run.scrape();
            let secs = if vk == "age" { "_seconds" } else { "" };
            let got = match keyword {
                "counter" => sample(&m, &series("_total")),
                "gauge" => sample(&m, &series(secs)),
                // A ring buffer's hist observes the member (a duration: seconds); a hash
                // map's counts log2 slots of the raw number.
                _ if map == "ringbuf" => sample(&m, &series(&format!("{secs}_count"))),
                _ => sample(&m, &series("_count")),
            };
            if let Some(v) = got {
                promtool_ok(&m);
                assert!(v > 0.0, "{what}: {m}");
                if let (Some(x), "gauge") = (exact, keyword) {
                    assert_eq!(v, x as f64, "{what}: {m}");
                }
                if keyword == "hist" {
                    let unit = if map == "ringbuf" { secs } else { "" };
                    assert!(
                        m.contains(&format!("ebpfctl_{map_name}{unit}_bucket{{")),
                        "{what}: no buckets: {m}"
                    );
                }
                true
            } else {
                false
            }
        };
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no event labelled {lk}={lv} after 20 s; json: {:?}\nstderr:\n{}",
            run.json().iter().rev().take(3).collect::<Vec<_>>(),
            run.stderr().join("\n")
        );
    }
    let (st, _, err) = run.stop();
    assert!(st.success(), "{what}: {err:?}");
    assert!(!err.iter().any(|l| l.contains("lost")), "{what}: {err:?}");
}
