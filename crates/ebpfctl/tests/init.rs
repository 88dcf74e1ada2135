//! `ebpfctl init`: every choice it offers is initialised, built and run here where this
//! kernel has the kind (tracepoint, uprobe, XDP and TC on loopback), with its decoded JSON or
//! metrics checked; kprobe and LSM run in the kernel matrix's guests (tests/kernels.rs). The
//! prompts are answered under a pty, and bad choices get one line.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::init::{check, init_and_build, Trigger, COMBOS};
use common::*;

#[test]
fn tracepoint_every_map_and_keyword() {
    let comm = "ebpfctl-init-tp";
    let fire = || {
        target_as(comm, &["getppid", "1"]);
    };
    for (map, kw) in COMBOS {
        check(
            "tracepoint",
            &[],
            map,
            kw,
            "execs",
            &Trigger {
                run_args: &[],
                label: ("comm", comm),
                fire: &fire,
                value: ("age", None),
            },
        );
    }
}

#[test]
fn the_default_tracepoint_prints_the_exec_filename() {
    // No flags and no terminal: the defaults (tracepoint on exec, ring buffer, print).
    let obj = init_and_build("init_default", &[]);
    let comm = "ebpfctl-init-df";
    let run = Run::start(&["run", obj.to_str().unwrap(), "-o", "json", "--no-metrics"]);
    target_as(comm, &["getppid", "1"]);
    let lines = run.wait_json("our exec", |v| v.iter().any(|e| e["comm"] == comm));
    let e = lines.iter().find(|e| e["comm"] == comm).unwrap();
    assert_eq!(e["_map"], "execs", "{e}");
    assert!(
        e["filename"].as_str().unwrap().ends_with(comm) && e["pid"].as_u64().unwrap() > 0,
        "{e}"
    );
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

#[test]
fn uprobe_on_a_test_program_every_map_and_keyword() {
    let comm = "ebpfctl-init-up";
    target_as(comm, &["sample"]); // makes the copy whose path the probe names
    let path = target_dir().join(comm);
    let at = format!("{}:ebpfctl_example_probe", path.display());
    let fire = || {
        target_as(comm, &["sample"]);
    };
    for (map, kw) in COMBOS {
        check(
            "uprobe",
            &["--target", &at],
            map,
            kw,
            "calls",
            &Trigger {
                run_args: &[],
                label: ("comm", comm),
                fire: &fire,
                value: ("age", None),
            },
        );
    }
}

/// A UDP datagram of one byte on loopback: 14 + 20 + 8 + 1 bytes.
const DATAGRAM: u64 = 43;

fn network(kind: &str, port: &str) {
    let dst = format!("127.0.0.1:{port}/udp");
    let param = format!("target_port={port}");
    let fire = || {
        target(&["udp", port, "3"]);
    };
    for (map, kw) in COMBOS {
        check(
            kind,
            &[],
            map,
            kw,
            "packets",
            &Trigger {
                run_args: &["--iface", "lo", "--param", &param],
                label: ("dst", &dst),
                fire: &fire,
                value: (
                    if (map, kw) == ("ringbuf", "hist") {
                        "value"
                    } else {
                        "bytes"
                    },
                    Some(DATAGRAM),
                ),
            },
        );
    }
}

#[test]
fn xdp_on_loopback_every_map_and_keyword() {
    network("xdp", "47211");
}

#[test]
fn tc_on_loopback_every_map_and_keyword() {
    network("tc", "47212");
}

#[test]
fn kprobe_and_lsm_build_here() {
    // They cannot load on this kernel (tests/kernels.rs runs them in guests); what init
    // writes for them must still compile on every combination.
    for kind in ["kprobe", "lsm"] {
        for (map, kw) in COMBOS {
            init_and_build(
                &format!("init_build_{kind}_{map}_{kw}"),
                &["--kind", kind, "--map", map, "--keyword", kw],
            );
        }
    }
}

#[test]
fn bad_choices_get_one_line() {
    let dir = tmp().join("init-bad");
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let o = ebpfctl(&["init", d, "--map", "ringbuf", "--keyword", "gauge"]);
    assert_one_line_error(&o, "--keyword gauge needs --map hash");
    let o = ebpfctl(&["init", d, "--kind", "xdp", "--target", "eth0"]);
    assert_one_line_error(&o, "--iface");
    let o = ebpfctl(&["init", d, "--kind", "uprobe", "--target", "bash"]);
    assert_one_line_error(&o, "BINARY:SYMBOL");
    let o = ebpfctl(&["init", d, "--map-name", "a\"b"]);
    assert_one_line_error(&o, "--map-name");
    let o = ebpfctl(&["init", d, "--kind", "nope"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("tracepoint, kprobe, uprobe, xdp, tc, lsm"));
    assert!(!dir.exists(), "a refused init wrote {}", dir.display());
}

/// Runs `ebpfctl init ARGS` on a pty (util-linux `script`), typing `answers`.
fn init_on_a_pty(args: &[&str], answers: &str) -> (bool, String) {
    let cmd = std::iter::once(bin().to_string())
        .chain(std::iter::once("init".to_string()))
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let screen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let screen = std::sync::Arc::clone(&screen);
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut out, &mut buf) {
                if n == 0 {
                    break;
                }
                screen
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        // As someone typing: each answer once its question is on the screen (every prompt
        // ends with "]: ").
        for (i, line) in answers.split_inclusive('\n').enumerate() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while screen.lock().unwrap().matches("]: ").count() <= i {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no question {} on the screen:\n{}",
                    i + 1,
                    screen.lock().unwrap()
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            stdin.write_all(line.as_bytes()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let st = child.wait().unwrap();
    reader.join().unwrap();
    let screen = screen.lock().unwrap().clone();
    (st.success(), screen)
}

#[test]
fn on_a_terminal_init_asks() {
    let dir = tmp().join("init-pty");
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    // uprobe, its target, a wrong answer then hash, hist (4th of a hash map's keywords), a map name.
    let (ok, screen) = init_on_a_pty(
        &[d, "--name", "asked"],
        "3\n/bin/bash:readline\n9\nhash\n4\nlines\n",
    );
    assert!(ok, "{screen}");
    for want in [
        "program kind:",
        "1) tracepoint",
        "6) lsm",
        "map kind:",
        "keyword:",
        "4) hist",
        "\"9\": answer 1-2",
    ] {
        assert!(screen.contains(want), "no {want:?} in:\n{screen}");
    }
    let src = std::fs::read_to_string(dir.join("asked.bpf.c")).unwrap();
    for want in [
        "SEC(\"uprobe//bin/bash:readline\")",
        "BPF_MAP_TYPE_HASH",
        "} hist_lines SEC(\".maps\");",
        "ebpfctl_log2(age)",
    ] {
        assert!(src.contains(want), "no {want:?} in:\n{src}");
    }
    // With a ring buffer, gauge is not offered; --yes asks nothing.
    let (ok, screen) = init_on_a_pty(&[d, "--name", "ring", "--kind", "tc"], "1\n\n\n");
    assert!(ok, "{screen}");
    assert!(
        screen.contains("3) hist") && !screen.contains("gauge"),
        "{screen}"
    );
    let src = std::fs::read_to_string(dir.join("ring.bpf.c")).unwrap();
    assert!(
        src.contains("SEC(\"tc/ingress\")") && src.contains("print_packets"),
        "{src}"
    );
    let (ok, screen) = init_on_a_pty(&[d, "--name", "quiet", "--yes"], "");
    assert!(ok && !screen.contains("program kind"), "{screen}");
    assert!(Path::new(&dir.join("quiet.bpf.c")).exists());
    // Closing the terminal's input mid-way: one error line naming the flags.
    let (ok, screen) = init_on_a_pty(&[d, "--name", "eof"], "");
    assert!(
        !ok && screen.contains("--kind, --map and --keyword"),
        "{screen}"
    );
    assert!(!dir.join("eof.bpf.c").exists());
}
