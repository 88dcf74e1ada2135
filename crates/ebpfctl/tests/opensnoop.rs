//! `ebpfctl opensnoop` on the real kernel (run as root): real opens, asserted on output.
mod common;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// One tracer at a time: the burst tests count every event and every loss, and a sibling
/// test's tracer and workload would compete with them for the CPU.
static SERIAL: Mutex<()> = Mutex::new(());

/// `ebpfctl opensnoop` under the shared harness.
struct Tracer;

impl Tracer {
    fn start(args: &[&str]) -> common::Tool {
        common::Tool::start("opensnoop", args)
    }
}

fn marker(tag: &str) -> String {
    format!("ebpfctl-test-{tag}-{}", std::process::id())
}

fn me() -> String {
    std::process::id().to_string()
}

/// Opens a fresh temporary file and returns (path, the fd we got).
fn open_temp(tag: &str) -> (std::path::PathBuf, std::fs::File, i32) {
    use std::os::fd::AsRawFd;
    let path = std::env::temp_dir().join(marker(tag));
    std::fs::write(&path, b"x").unwrap();
    let f = std::fs::File::open(&path).unwrap();
    let fd = f.as_raw_fd();
    (path, f, fd)
}

fn for_path<'a>(events: &'a [Value], path: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["path"] == path).collect()
}

/// Read-only opens of `path` (`open_temp` also writes the file first).
fn reads_of<'a>(events: &'a [Value], path: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["path"] == path && e["flags"].as_u64().is_some_and(|f| f & 3 == 0))
        .collect()
}

#[test]
fn sees_an_open_with_its_fd_and_a_missing_file_with_enoent() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = Tracer::start(&["-o", "json", "-p", &me()]);
    let (path, file, fd) = open_temp("fd");
    let missing = std::env::temp_dir().join(marker("missing"));
    let err = std::fs::File::open(&missing).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let (ev, _) = t.stop();
    drop(file);
    std::fs::remove_file(&path).unwrap();

    let opened = reads_of(&ev, path.to_str().unwrap());
    assert_eq!(opened.len(), 1, "{ev:?}");
    let o = opened[0];
    assert_eq!(o["fd"], fd);
    assert_eq!(o["pid"], std::process::id());
    assert_eq!(o["errno"], 0);
    assert_eq!(o["uid"], 0);
    assert_eq!(o["syscall"], "openat");
    assert_eq!(o["flags"].as_u64().unwrap() & 3, 0, "read-only");
    assert!(o["tid"].as_u64().unwrap() > 0);
    assert!(!o["comm"].as_str().unwrap().is_empty());
    assert_eq!(o["time"].as_str().unwrap().len(), 30);

    let m = for_path(&ev, missing.to_str().unwrap());
    assert_eq!(m.len(), 1, "{ev:?}");
    assert_eq!(m[0]["fd"], -1);
    assert_eq!(m[0]["errno"], 2);
    assert_eq!(m[0]["error"], "ENOENT");
}

#[test]
fn open_and_openat2_with_flags_and_mode() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = Tracer::start(&["-o", "json", "-p", &me()]);
    let path = std::env::temp_dir().join(marker("creat"));
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // openat2(AT_FDCWD, path, {O_WRONLY|O_CREAT, 0640})
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: (libc::O_WRONLY | libc::O_CREAT) as u64,
        mode: 0o640,
        resolve: 0,
    };
    // SAFETY: a valid path and open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    assert!(fd >= 0, "openat2: {}", std::io::Error::last_os_error());
    // SAFETY: closing the fd openat2 just returned.
    unsafe { libc::close(fd as i32) };
    let (ev, _) = t.stop();
    std::fs::remove_file(&path).unwrap();
    let e = for_path(&ev, path.to_str().unwrap());
    assert_eq!(e.len(), 1, "{ev:?}");
    assert_eq!(e[0]["syscall"], "openat2");
    assert_eq!(e[0]["fd"], fd);
    assert_eq!(e[0]["mode"], 0o640);
    assert_eq!(e[0]["flags"], (libc::O_WRONLY | libc::O_CREAT) as u64);
}

#[test]
fn filters_include_and_exclude() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // -p of another process: our opens are not shown.
    let t = Tracer::start(&["-o", "json", "-p", "1"]);
    let (path, f, _) = open_temp("pfilter");
    drop(f);
    let (ev, _) = t.stop();
    assert!(for_path(&ev, path.to_str().unwrap()).is_empty());
    assert!(ev.iter().all(|e| e["pid"] == 1), "{ev:?}");

    // -x: failures only.
    let missing = std::env::temp_dir().join(marker("x-missing"));
    let t = Tracer::start(&["-o", "json", "-x", "-p", &me()]);
    let (path2, f, _) = open_temp("x-ok");
    drop(f);
    let _ = std::fs::File::open(&missing);
    let (ev, _) = t.stop();
    assert!(for_path(&ev, path2.to_str().unwrap()).is_empty());
    assert_eq!(for_path(&ev, missing.to_str().unwrap()).len(), 1);
    assert!(ev.iter().all(|e| e["errno"] != 0), "{ev:?}");

    // -t: one thread only.
    let tid = std::thread::spawn(|| {
        // SAFETY: gettid has no arguments.
        unsafe { libc::gettid() }
    })
    .join()
    .unwrap();
    // SAFETY: gettid has no arguments.
    let my_tid = unsafe { libc::gettid() };
    assert_ne!(tid, my_tid);
    let t = Tracer::start(&["-o", "json", "-t", &my_tid.to_string()]);
    let (path3, f, _) = open_temp("tid");
    drop(f);
    let other = std::thread::spawn(|| open_temp("tid-other"))
        .join()
        .unwrap();
    drop(other.1);
    let (ev, _) = t.stop();
    assert_eq!(reads_of(&ev, path3.to_str().unwrap()).len(), 1);
    assert!(for_path(&ev, other.0.to_str().unwrap()).is_empty());
    assert!(ev.iter().all(|e| e["tid"] == my_tid), "{ev:?}");

    // -n: command name regex (user space); -u: uid (kernel).
    let t = Tracer::start(&["-o", "json", "-n", "^cat$", "-u", "0"]);
    let (path4, f, _) = open_temp("name");
    drop(f);
    Command::new("/bin/cat")
        .arg(&path4)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let (ev, _) = t.stop();
    let seen = reads_of(&ev, path4.to_str().unwrap());
    assert_eq!(seen.len(), 1, "{ev:?}");
    assert_eq!(seen[0]["comm"], "cat");
    assert!(ev.iter().all(|e| e["comm"] == "cat" && e["uid"] == 0));

    let t = Tracer::start(&["-o", "json", "-u", "65534", "-p", &me()]);
    let (path5, f, _) = open_temp("uid");
    drop(f);
    let (ev, _) = t.stop();
    assert!(ev.is_empty(), "{ev:?}");
    for p in [path, path2, path3, other.0, path4, path5] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn table_output_extended() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = Tracer::start(&["-e", "-U", "-p", &me()]);
    let (path, f, fd) = open_temp("table");
    drop(f);
    let out = t.stop_raw().0;
    std::fs::remove_file(&path).unwrap();
    let header = out.lines().next().unwrap();
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        cols,
        ["UID", "PID", "TID", "COMM", "FD", "ERR", "FLAGS", "PATH"]
    );
    let row = out
        .lines()
        .find(|l| l.ends_with(path.to_str().unwrap()) && l.contains("O_RDONLY"))
        .expect("a row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[0], "0");
    assert_eq!(cols[1], me());
    assert!(cols.contains(&fd.to_string().as_str()), "{row}");
    assert!(row.contains("O_RDONLY|O_CLOEXEC"), "{row}");
}

#[test]
fn a_burst_loses_nothing_and_losses_are_reported_when_forced() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let (path, f, _) = open_temp("burst");
    drop(f);
    let burst = |n: usize| {
        for _ in 0..n {
            drop(std::fs::File::open(&path).unwrap());
        }
    };
    // 20,000 opens, all seen. (A larger ring than the default: tests run the unoptimised
    // build, whose reader is several times slower; bench/snoop measures the default.)
    let t = Tracer::start(&["-o", "json", "-p", &me(), "--ring-kib", "8192"]);
    burst(20_000);
    // Read before the stop: the shutdown drain is bounded (500 ms), and a slow reader (the
    // debug build in a TCG guest) is still behind when the burst ends.
    let p = path.to_str().unwrap();
    t.wait_json("the burst's 20,000 opens", |v| {
        for_path(v, p).len() >= 20_000
    });
    let (ev, err) = t.stop();
    let n = for_path(&ev, path.to_str().unwrap()).len();
    assert_eq!(n, 20_000, "stderr: {err:?}");
    assert!(err.iter().any(|l| l.ends_with(" 0 lost")), "{err:?}");

    // A 4 KiB ring and a stopped reader: losses are counted and reported.
    let t = Tracer::start(&[
        "-o",
        "json",
        "-p",
        &me(),
        "--ring-kib",
        "4",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let addr = t
        .stderr()
        .iter()
        .find_map(|l| l.split("http://").nth(1))
        .map(|s| s.trim_end_matches("/metrics").to_string())
        .unwrap();
    // The harness read the tracer's fdinfo files (opens of this process) once it was ready:
    // let the tracer take those out of the small ring before it is stopped, and leave out
    // what the 4 KiB ring could not hold of them.
    std::thread::sleep(Duration::from_millis(300));
    let lost_before: u64 = t
        .stderr()
        .iter()
        .filter_map(|l| l.split(" events lost (").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0);
    // The reader is stopped during the burst: the 4 KiB ring fills and the rest is lost.
    let tracer_pid = t.pid() as i32;
    // SAFETY: kill(2) on the tracer we spawned.
    unsafe { libc::kill(tracer_pid, libc::SIGSTOP) };
    burst(20_000);
    // SAFETY: as above.
    unsafe { libc::kill(tracer_pid, libc::SIGCONT) };
    std::thread::sleep(Duration::from_millis(200));
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let (ev, err) = t.stop();
    std::fs::remove_file(&path).unwrap();
    let seen = for_path(&ev, path.to_str().unwrap()).len() as u64;
    let lost: u64 = ev
        .iter()
        .filter(|e| e["type"] == "lost")
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert!(lost > 0, "nothing lost with a 4 KiB ring? {err:?}");
    // Other processes are filtered in the kernel, so every open is seen or counted.
    assert_eq!(
        seen + lost - lost_before,
        20_000,
        "seen {seen} lost {lost} ({lost_before} before the burst)"
    );
    assert!(err.iter().any(|l| l.contains("events lost")), "{err:?}");
    let metric = body
        .lines()
        .find(|l| l.starts_with("ebpfctl_opensnoop_lost_events_total "))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("lost metric");
    assert!(metric > 0 && metric <= lost, "{body}");
}

#[test]
fn bad_input_is_one_line_and_nonzero() {
    // Serial too: spawning a command opens /dev/null in this process (its stdin), which the
    // tracers of the other tests (filtered on this pid) would count.
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for args in [
        &["-n", "[unclosed"][..],
        &["-u", "no-such-user-xyz"],
        &["--uid=-1"],
        &["-p", "abc"],
        &["-o", "xml"],
        &["--ring-kib", "100"],
        &["--duration=0"],
        &["--metrics-addr", "nope"],
    ] {
        let out = Command::new(common::bin())
            .arg("opensnoop")
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed events");
        assert!(
            err.lines().next().unwrap_or("").contains("error"),
            "{args:?}: {err}"
        );
        if !matches!(args[0], "-p" | "-o") {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        }
    }
}

#[test]
fn a_path_in_a_page_not_yet_mapped_is_read() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // A literal of this binary: after fork, the child has no page-table entry for it until
    // the kernel's own copy of the path faults it in, so it is unreadable at syscall entry.
    static PATH: &[u8] = b"/nonexistent/ebpfctl-opensnoop-cold-path\0";
    let t = Tracer::start(&["-o", "json"]);
    // SAFETY: the child only calls open and _exit (async-signal-safe).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: a NUL-terminated static path.
        unsafe {
            libc::open(PATH.as_ptr().cast(), libc::O_RDONLY);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for the child we forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let (ev, _) = t.stop();
    let e: Vec<&Value> = ev.iter().filter(|e| e["pid"] == pid).collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["path"], "/nonexistent/ebpfctl-opensnoop-cold-path");
    assert_eq!(e[0]["errno"], 2);
}

#[test]
fn long_paths_arrive_whole_and_overlong_ones_cut_with_a_flag() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let t = Tracer::start(&["-o", "json", "-p", &me()]);
    // 4,000 bytes: 200-byte components, whole; records are as long as their path.
    let comp = "d".repeat(199);
    let mut long = format!("/nonexistent-{}", marker("long"));
    while long.len() + comp.len() < 4000 {
        long.push('/');
        long.push_str(&comp);
    }
    // Longer than PATH_MAX: the kernel refuses it (ENAMETOOLONG); the record keeps 4,095
    // bytes and says it was cut.
    let e = "e".repeat(200);
    let overlong = format!("{long}/{e}/{e}");
    assert!(long.len() > 3800 && overlong.len() > 4096);
    let mut tried = Vec::new();
    for p in [&long, &overlong] {
        let c = std::ffi::CString::new(p.as_str()).unwrap();
        // SAFETY: a NUL-terminated path; the call fails (nothing to close).
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
        assert_eq!(fd, -1);
        tried.push(std::io::Error::last_os_error().raw_os_error().unwrap());
    }
    assert_eq!(tried, [libc::ENOENT, libc::ENAMETOOLONG]);
    let (ev, _) = t.stop();
    let whole = for_path(&ev, &long);
    assert_eq!(whole.len(), 1, "{ev:?}");
    assert_eq!(whole[0]["error"], "ENOENT");
    assert!(whole[0].get("path_truncated").is_none(), "{:?}", whole[0]);
    let cut: Vec<&Value> = ev
        .iter()
        .filter(|e| e["path_truncated"] == true && e["error"] == "ENAMETOOLONG")
        .collect();
    assert_eq!(cut.len(), 1, "{ev:?}");
    assert_eq!(cut[0]["path"], overlong[..4095]);
}
