//! `ebpfctl execsnoop` on the real kernel (run as root): real execs, asserted on output.
mod common;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// One tracer at a time: the burst tests count every event and every loss, and a sibling
/// test's tracer and workload would compete with them for the CPU.
static SERIAL: Mutex<()> = Mutex::new(());

/// `ebpfctl execsnoop` under the shared harness.
struct Tracer;

impl Tracer {
    fn start(args: &[&str]) -> common::Tool {
        common::Tool::start("execsnoop", args)
    }
}

fn marker(tag: &str) -> String {
    format!("ebpfctl-test-{tag}-{}", std::process::id())
}

fn args_of(e: &Value) -> Vec<&str> {
    e["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

fn with_arg<'a>(events: &'a [Value], ty: &str, arg: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == ty && args_of(e).contains(&arg))
        .collect()
}

fn run_true(args: &[&str]) -> u32 {
    let mut c = Command::new("/bin/true").args(args).spawn().unwrap();
    let pid = c.id();
    assert!(c.wait().unwrap().success());
    pid
}

#[test]
fn true_with_args_is_started_then_exited() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let m = marker("true");
    let t = Tracer::start(&["-o", "json", "--no-snapshot"]);
    let pid = run_true(&["a b", &m, "c"]);
    let (events, _) = t.stop();
    let started = with_arg(&events, "started", &m);
    assert_eq!(started.len(), 1, "{events:?}");
    let s = started[0];
    assert_eq!(args_of(s), ["/bin/true", "a b", m.as_str(), "c"]);
    assert_eq!(s["pid"], pid);
    assert_eq!(s["ppid"], std::process::id());
    assert_eq!(s["uid"], 0);
    assert_eq!(s["gid"], 0);
    assert!(s["exe"].as_str().unwrap().ends_with("/true"), "{s}");
    assert!(!s["parent_comm"].as_str().unwrap().is_empty());
    assert_eq!(s["args_truncated"], false);
    // RFC 3339 with nanoseconds, UTC.
    let st = s["start_time"].as_str().unwrap();
    assert_eq!(st.len(), 30, "{st}");
    assert!(st.ends_with('Z') && st.as_bytes()[10] == b'T', "{st}");

    let exited: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "exited" && e["pid"] == pid)
        .collect();
    assert_eq!(exited.len(), 1, "{events:?}");
    let x = exited[0];
    assert_eq!(x["start_time"], s["start_time"]);
    assert_eq!(x["args"], s["args"]);
    assert_eq!(x["exe"], s["exe"]);
    assert_eq!(x["exit_code"], 0);
    let rt = x["running_time_ns"].as_u64().unwrap();
    assert!(rt > 1_000 && rt < 5_000_000_000, "running_time_ns {rt}");
    assert!(x["end_time"].as_str().unwrap() > st);
}

#[test]
fn exec_of_a_non_executable_file_is_an_error_13() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(marker("noexec"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-executable");
    std::fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
    let t = Tracer::start(&["-o", "json", "--no-snapshot"]);
    let err = Command::new(&file).arg("x").spawn().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    // Then a successful exec: the failure must not leak into it.
    let pid = run_true(&[&marker("after-error")]);
    let (events, _) = t.stop();
    std::fs::remove_dir_all(&dir).unwrap();
    let path = file.to_str().unwrap();
    let errors: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "error" && e["exe"] == path)
        .collect();
    assert!(!errors.is_empty(), "{events:?}");
    assert_eq!(errors[0]["error_code"], -13);
    assert_eq!(errors[0]["error"], "EACCES");
    assert_eq!(args_of(errors[0]), [path, "x"]);
    let ok = with_arg(&events, "started", &marker("after-error"));
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0]["pid"], pid);
    assert!(ok[0].get("error_code").is_none());
}

#[test]
fn snapshot_contains_this_test() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Running before the tracer starts: in the snapshot, and `exited` when it ends.
    let mut sleeper = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let t = Tracer::start(&["-o", "json"]);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let (events, _) = t.stop();
    let sp = sleeper.id();
    let s: Vec<&Value> = events.iter().filter(|e| e["pid"] == sp).collect();
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(
        (&s[0]["type"], &s[1]["type"]),
        (&"started".into(), &"exited".into())
    );
    assert_eq!(s[1]["source"], "snapshot");
    assert_eq!(s[1]["args"], serde_json::json!(["/bin/sleep", "30"]));
    assert_eq!(s[1]["exit_signal"], "SIGKILL");
    assert_eq!(s[1]["start_time"], s[0]["start_time"]);
    let me = std::process::id();
    let mine: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "started" && e["pid"] == me)
        .collect();
    assert_eq!(mine.len(), 1, "no snapshot event for pid {me}");
    let exe = std::env::current_exe().unwrap();
    assert_eq!(mine[0]["exe"], exe.to_str().unwrap());
    assert_eq!(mine[0]["source"], "snapshot");
    assert!(args_of(mine[0])[0].contains("execsnoop"));
    // The parent's comm comes with it.
    assert!(!mine[0]["parent_comm"].as_str().unwrap().is_empty());
}

/// Not a test on its own: the multi-threaded program of `threads_exit_once`.
#[test]
fn helper_threads() {
    if std::env::var_os("EBPFCTL_TEST_THREADS").is_none() {
        return;
    }
    let mut hs = Vec::new();
    for i in 0..4u64 {
        hs.push(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20 * i))
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    // Threads still running when the process exits.
    for _ in 0..3 {
        std::thread::spawn(|| std::thread::sleep(Duration::from_secs(60)));
    }
    std::thread::sleep(Duration::from_millis(50));
    std::process::exit(7);
}

#[test]
fn a_multithreaded_process_exits_once() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = Tracer::start(&["-o", "json", "--no-snapshot"]);
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_threads",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EBPFCTL_TEST_THREADS", "1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = c.id();
    assert_eq!(c.wait().unwrap().code(), Some(7));
    let (events, _) = t.stop();
    let exited: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "exited" && e["pid"] == pid)
        .collect();
    assert_eq!(exited.len(), 1, "exited events for {pid}: {exited:?}");
    assert_eq!(exited[0]["exit_code"], 7);
}

#[test]
fn long_argument_lists_are_truncated_and_flagged() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let m = marker("long");
    let long = "L".repeat(300);
    let many: Vec<String> = (0..40).map(|i| format!("arg{i}")).collect();
    let mut args: Vec<&str> = vec![&m, &long];
    args.extend(many.iter().map(String::as_str));

    let t = Tracer::start(&["-o", "json", "--no-snapshot"]);
    run_true(&args);
    let (events, _) = t.stop();
    let s = with_arg(&events, "started", &m);
    assert_eq!(s.len(), 1);
    let got = args_of(s[0]);
    assert_eq!(got.len(), 20, "default --max-args is 20");
    assert_eq!(got[2].len(), 128, "default argument length is 128");
    assert_eq!(s[0]["args_truncated"], true);

    // Exactly --max-args arguments, each exactly --arg-len bytes: nothing is cut.
    let exact: Vec<String> = (0..4).map(|i| format!("{i}{}", "x".repeat(31))).collect();
    let mut args2: Vec<&str> = vec![&m];
    args2.extend(exact.iter().map(String::as_str));
    let t = Tracer::start(&[
        "-o",
        "json",
        "--no-snapshot",
        "--max-args",
        "6",
        "--arg-len",
        "32",
    ]);
    run_true(&args2);
    let (events, _) = t.stop();
    let s = with_arg(&events, "started", &m);
    assert_eq!(args_of(s[0]).len(), 6);
    assert_eq!(args_of(s[0])[5], exact[3]);
    assert_eq!(s[0]["args_truncated"], false, "{:?}", s[0]);

    let t = Tracer::start(&[
        "-o",
        "json",
        "--no-snapshot",
        "--max-args",
        "60",
        "--arg-len",
        "512",
    ]);
    run_true(&args);
    let (events, _) = t.stop();
    let s = with_arg(&events, "started", &m);
    assert_eq!(args_of(s[0]).len(), 43);
    assert_eq!(args_of(s[0])[2], long);
    assert_eq!(s[0]["args_truncated"], false);
}

#[test]
fn filters_include_and_exclude() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (a, b) = (marker("fa"), marker("fb"));

    // -n: command name regex.
    let t = Tracer::start(&["-o", "json", "--no-snapshot", "-n", "^tru"]);
    run_true(&[&a]);
    Command::new("/bin/echo")
        .arg(&b)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let (ev, _) = t.stop();
    assert_eq!(with_arg(&ev, "started", &a).len(), 1, "-n keeps true");
    assert!(with_arg(&ev, "started", &b).is_empty(), "-n drops echo");
    assert!(ev.iter().all(|e| e["comm"] == "true"), "{ev:?}");

    // -l: argument match, not the command name.
    let t = Tracer::start(&["-o", "json", "--no-snapshot", "-l", &a]);
    run_true(&[&a]);
    run_true(&[&b]);
    let (ev, _) = t.stop();
    assert_eq!(with_arg(&ev, "started", &a).len(), 1);
    assert!(with_arg(&ev, "started", &b).is_empty());
    assert_eq!(
        ev.iter().filter(|e| e["type"] == "exited").count(),
        1,
        "{ev:?}"
    );

    // -u: in the kernel; nobody's exec shows, root's does not.
    let t = Tracer::start(&["-o", "json", "--no-snapshot", "-u", "65534"]);
    let mut c = Command::new("/bin/true")
        .arg(&a)
        .uid(65534)
        .gid(65534)
        .spawn()
        .unwrap();
    c.wait().unwrap();
    run_true(&[&b]);
    let (ev, _) = t.stop();
    let s = with_arg(&ev, "started", &a);
    assert_eq!(s.len(), 1, "{ev:?}");
    assert_eq!(s[0]["uid"], 65534);
    assert!(with_arg(&ev, "started", &b).is_empty());

    // -p: children of this process only, not grandchildren.
    // A child running before the tracer: in the filtered snapshot, and its exit is shown.
    let me = std::process::id().to_string();
    let mut sleeper = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let t = Tracer::start(&["-o", "json", "--ppid", &me]);
    run_true(&[&a]);
    Command::new("/bin/sh")
        .args(["-c", &format!("/bin/true {b}; :")])
        .status()
        .unwrap();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let (ev, _) = t.stop();
    assert_eq!(with_arg(&ev, "started", &a).len(), 1);
    assert_eq!(with_arg(&ev, "exited", &a).len(), 1, "{ev:?}");
    assert!(with_arg(&ev, "started", &b).is_empty());
    assert!(ev.iter().all(|e| e["ppid"] == std::process::id()), "{ev:?}");
    let sp = sleeper.id();
    let kinds: Vec<&Value> = ev
        .iter()
        .filter(|e| e["pid"] == sp)
        .map(|e| &e["type"])
        .collect();
    assert_eq!(kinds, ["started", "exited"], "{ev:?}");

    // -x: failed execs only, no started/exited.
    let t = Tracer::start(&["-o", "json", "-x"]);
    run_true(&[&a]);
    let missing = format!("/nonexistent/{b}");
    assert!(Command::new(&missing).status().is_err());
    let (ev, _) = t.stop();
    assert!(ev.iter().all(|e| e["type"] == "error"), "{ev:?}");
    assert!(ev
        .iter()
        .any(|e| e["exe"] == missing.as_str() && e["error_code"] == -2));
}

/// Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts).
fn cgroup2_root() -> std::path::PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            if right.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            left.split_whitespace().nth(4).map(std::path::PathBuf::from)
        })
        .expect("a cgroup v2 hierarchy is needed for --cgroup")
}

#[test]
fn cgroup_filter_includes_descendants_only() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let cg = cgroup2_root().join(marker("cg"));
    std::fs::create_dir(&cg).expect("creating a cgroup v2 directory");
    let (a, b) = (marker("cga"), marker("cgb"));
    let t = Tracer::start(&["-o", "json", "--cgroup", cg.to_str().unwrap()]);
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec /bin/true {a}",
        cg.display()
    );
    assert!(Command::new("/bin/sh")
        .args(["-c", &script])
        .status()
        .unwrap()
        .success());
    run_true(&[&b]);
    let (ev, _) = t.stop();
    std::fs::remove_dir(&cg).unwrap();
    assert_eq!(with_arg(&ev, "started", &a).len(), 1, "{ev:?}");
    assert!(with_arg(&ev, "started", &b).is_empty());
    assert!(
        ev.iter().all(|e| e["pid"] != std::process::id()),
        "snapshot filtered too"
    );
}

#[test]
fn table_output() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let m = marker("table");
    let t = Tracer::start(&["-U", "-t", "-q"]);
    let pid = run_true(&[&m]);
    let out = t.stop_raw().0;
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("TIME(s)  UID    PCOMM"), "{header}");
    assert!(header.ends_with("PID     PPID    RET ARGS"), "{header}");
    let row = out.lines().find(|l| l.contains(&m)).expect("a row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "0");
    assert_eq!(cols[2], "true");
    assert_eq!(cols[3], pid.to_string());
    assert_eq!(cols[5], "0");
    assert!(row.ends_with(&format!("\"/bin/true\" \"{m}\"")), "{row}");
}

#[test]
fn metrics_count_events() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = Tracer::start(&[
        "-o",
        "json",
        "--no-snapshot",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let addr = t
        .stderr()
        .iter()
        .find_map(|l| l.split("http://").nth(1))
        .map(|s| s.trim_end_matches("/metrics").to_string())
        .expect("the metrics address on stderr");
    run_true(&[&marker("metrics")]);
    std::thread::sleep(Duration::from_millis(100));
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    t.stop();
    assert!(
        body.contains("ebpfctl_execsnoop_lost_events_total 0"),
        "{body}"
    );
    let started = body
        .lines()
        .find(|l| l.starts_with("ebpfctl_execsnoop_events_total{type=\"started\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("started counter");
    assert!(started >= 1, "{body}");
}

#[test]
fn bad_input_is_one_line_and_nonzero() {
    for args in [
        &["-n", "(unclosed"][..],
        &["-u", "no-such-user-xyz"],
        &["--uid=-5"],
        &["--max-args", "0"],
        &["--max-args", "61"],
        &["--arg-len", "0"],
        &["--arg-len", "5000"],
        &["-o", "yaml"],
        &["--cgroup", "/nonexistent/cgroup"],
        &["--cgroup", "/tmp"],
        &["--ring-kib", "3"],
        &["--metrics-addr", "not an address"],
        &["--duration=-1"],
        &["--bogus-flag"],
    ] {
        let out = Command::new(common::bin())
            .arg("execsnoop")
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed events");
        let first = err.lines().next().unwrap_or("");
        assert!(first.contains("error"), "{args:?}: {err}");
        if !args[0].starts_with("--bogus") && args[0] != "-o" {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        }
    }
}

/// fork + execve with argv strings in this binary's .rodata: after fork, the child has no
/// page-table entries for them until the kernel's own copy faults them in, so a probe that
/// reads argv at syscall entry gets nothing (the storm benchmark's case).
fn fork_exec_rodata_args(path: &'static [u8]) -> u32 {
    static ARG1: &[u8] = b"ebpfctl-rodata-arg\0";
    static ARG2: &[u8] = b"second\0";
    let argv = [
        path.as_ptr().cast::<libc::c_char>(),
        ARG1.as_ptr().cast(),
        ARG2.as_ptr().cast(),
        std::ptr::null(),
    ];
    let envp = [std::ptr::null::<libc::c_char>()];
    // SAFETY: the child only calls execve and _exit (async-signal-safe) on data prepared
    // before the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: NUL-terminated strings and NULL-terminated arrays that live in the child.
        unsafe {
            libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for the child we just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    pid as u32
}

#[test]
fn arguments_in_file_backed_pages_of_a_fresh_fork_are_read() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = Tracer::start(&[
        "-o",
        "json",
        "--no-snapshot",
        "--ppid",
        &std::process::id().to_string(),
    ]);
    let ok = fork_exec_rodata_args(b"/bin/true\0");
    let failed = fork_exec_rodata_args(b"/nonexistent/ebpfctl-rodata\0");
    let (ev, _) = t.stop();
    let s: Vec<&Value> = ev
        .iter()
        .filter(|e| e["pid"] == ok && e["type"] == "started")
        .collect();
    assert_eq!(s.len(), 1, "{ev:?}");
    assert_eq!(args_of(s[0]), ["/bin/true", "ebpfctl-rodata-arg", "second"]);
    let f: Vec<&Value> = ev
        .iter()
        .filter(|e| e["pid"] == failed && e["type"] == "error")
        .collect();
    assert_eq!(f.len(), 1, "{ev:?}");
    assert_eq!(f[0]["error_code"], -2);
    assert_eq!(f[0]["exe"], "/nonexistent/ebpfctl-rodata");
    // A failed exec (ENOENT) stops before the kernel touches argv, so pages of the fresh fork
    // that were never faulted in cannot be read from BPF: then the list is cut and flagged.
    let want = [
        "/nonexistent/ebpfctl-rodata",
        "ebpfctl-rodata-arg",
        "second",
    ];
    let got = args_of(f[0]);
    assert!(
        got == want || (want.starts_with(&got) && f[0]["args_truncated"] == true),
        "{:?}",
        f[0]
    );
}

#[test]
fn execveat_is_traced() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let m = std::ffi::CString::new(marker("execveat")).unwrap();
    let path = std::ffi::CString::new("/bin/true").unwrap();
    let argv = [path.as_ptr(), m.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    let t = Tracer::start(&["-o", "json", "--no-snapshot"]);
    // SAFETY: the child only calls execveat and _exit on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: NUL-terminated strings and NULL-terminated arrays that live in the child.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                libc::AT_FDCWD,
                path.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                0,
            );
            libc::_exit(127);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for the child we forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let (ev, _) = t.stop();
    let s = with_arg(&ev, "started", m.to_str().unwrap());
    assert_eq!(s.len(), 1, "{ev:?}");
    assert_eq!(s[0]["source"], "execveat");
    assert_eq!(s[0]["pid"], pid);
    assert!(s[0]["exe"].as_str().unwrap().ends_with("/true"));
}

#[test]
fn losses_are_counted_and_reported() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = Tracer::start(&[
        "-o",
        "json",
        "--no-snapshot",
        "--ring-kib",
        "4",
        "--ppid",
        &std::process::id().to_string(),
    ]);
    // The reader is stopped while 100 execs fill the 4 KiB ring.
    let tracer = t.pid() as i32;
    // SAFETY: kill(2) on the tracer we spawned.
    unsafe { libc::kill(tracer, libc::SIGSTOP) };
    let m = marker("loss");
    for _ in 0..100 {
        run_true(&[&m]);
    }
    // SAFETY: as above.
    unsafe { libc::kill(tracer, libc::SIGCONT) };
    let (ev, err) = t.stop();
    let started = ev
        .iter()
        .filter(|e| e["type"] == "started" && args_of(e).contains(&m.as_str()))
        .count() as u64;
    let lost: u64 = ev
        .iter()
        .filter(|e| e["type"] == "lost")
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert!(lost > 0, "{err:?}");
    // Each of the 100 execs was either shown or counted lost (the count also covers other
    // processes' exit records, which --ppid filters only in user space).
    assert!(
        started + lost >= 100,
        "started {started} lost {lost}: {err:?}"
    );
    assert!(started < 100);
    assert!(err.iter().any(|l| l.contains("events lost")), "{err:?}");
    assert!(
        err.iter().any(|l| l.ends_with(&format!(" {lost} lost"))),
        "{err:?}"
    );
}
