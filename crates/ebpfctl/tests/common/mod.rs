//! A tiny harness for CLI tests: build examples once, start `ebpfctl run` and wait until it
//! runs, stop it with SIGINT, scrape its metrics, and check that what it loaded is gone.
#![allow(dead_code)]

pub mod bpf;
pub mod go;
pub mod init;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ebpfctl")
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn tmp() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ebpfctl-tests");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `make` once per key in this test process. `make` must not call `once_per_key` itself
/// (the lock is held while it runs, so concurrent callers wait for the first).
fn once_per_key(key: &str, make: impl FnOnce() -> PathBuf) -> PathBuf {
    static DONE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut done = DONE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = done.get(key) {
        return p.clone();
    }
    let p = make();
    done.insert(key.to_string(), p.clone());
    p
}

/// Compiles C source text into a BPF object with `ebpfctl build`.
pub fn build_source(name: &str, source: &str) -> PathBuf {
    let dir = tmp().join("src");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.bpf.c"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(format!("{name}.bpf.o"));
    // The include cache of this tree's tests: the default one (~/.cache/ebpfctl/include) is
    // shared with every other ebpfctl binary on the machine, each rewriting ebpfctl.h with its
    // own copy before compiling, so a build could get another version's header.
    let o = Command::new(bin())
        .env("XDG_CACHE_HOME", tmp().join("cache"))
        .args(["build"])
        .arg(&src)
        .args(["-I"])
        .arg(repo().join("examples"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ebpfctl build {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `examples/<name>.bpf.c` compiled once per test process.
pub fn example(name: &str) -> PathBuf {
    once_per_key(name, || {
        let src =
            std::fs::read_to_string(repo().join("examples").join(format!("{name}.bpf.c"))).unwrap();
        build_source(name, &src)
    })
}

/// `examples/target/target.c` compiled once, as `ebpfctl-example-target`; returns its directory.
pub fn target_dir() -> PathBuf {
    once_per_key("target", || {
        let dir = tmp().join("bin");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join(TARGET);
        let o = Command::new("gcc")
            .args(["-O1", "-Wall", "-I"])
            .arg(repo().join("include"))
            .arg("-o")
            .arg(&out)
            .arg(repo().join("examples/target/target.c"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "gcc target.c: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        dir
    })
}

/// Copies an executable through `cp`, so no file descriptor writing it is ever open in this
/// process: a test thread forking at the same moment would inherit such a descriptor and
/// make every exec of the copy fail with ETXTBSY until its child execs.
pub fn copy_exe(src: &Path, dst: &Path) {
    let st = Command::new("cp")
        .arg("--")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap();
    assert!(st.success(), "cp {} {}: {st}", src.display(), dst.display());
}

/// How many times longer than here the tests wait for the machine: `EBPFCTL_TEST_PATIENCE`
/// (default 1). scripts/vm-test-guest.sh sets it: a QEMU TCG guest runs about 16 times slower.
pub fn patience() -> u32 {
    std::env::var("EBPFCTL_TEST_PATIENCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// `d` times [`patience`]: for deadlines and for how long a target lingers to be seen.
pub fn patient(d: Duration) -> Duration {
    d * patience()
}

/// Writes an executable (a script) the way `copy_exe` copies one: the bytes go to a staging
/// file that is never executed, and `cp` makes the executable from it.
pub fn write_exe(dst: &Path, contents: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    let name = dst.file_name().unwrap().to_string_lossy();
    let staging = dst.with_file_name(format!(".{name}.{}.staging", std::process::id()));
    std::fs::write(&staging, contents).unwrap();
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy_exe(&staging, dst);
    std::fs::remove_file(&staging).unwrap();
}

/// Runs the example target with arguments; returns its pid after it exited successfully.
pub fn target(args: &[&str]) -> u32 {
    target_as(TARGET, args)
}

const TARGET: &str = "ebpfctl-example-target";

/// Runs the example target under another file name, so its command name (the first 15
/// bytes) tells its events apart from other tests running at the same time.
pub fn target_as(name: &str, args: &[&str]) -> u32 {
    let dir = target_dir();
    let path = dir.join(name);
    if name != TARGET {
        once_per_key(&format!("target-as-{name}"), || {
            copy_exe(&dir.join(TARGET), &path);
            path.clone()
        });
    }
    let mut child = Command::new(&path).args(args).spawn().unwrap();
    let pid = child.id();
    let st = child.wait().unwrap();
    assert!(st.success(), "target {args:?} failed: {st}");
    pid
}

/// The running kernel's (major, minor), from /proc/sys/kernel/osrelease.
pub fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// tcx links (`BPF_TCX_INGRESS`/`EGRESS`) came in Linux 6.6: before it `tcx/` sections
/// cannot attach and `tc/` sections fall back to legacy clsact filters.
pub fn kernel_has_tcx() -> bool {
    kernel_version() >= (6, 6)
}

/// A running `ebpfctl run`.
pub struct Run {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    /// The programs, maps and links the child held once it was ready: [`Run::stop`] checks
    /// that exactly these are gone.
    held: bpf::Held,
}

impl Run {
    /// Starts `ebpfctl ARGS` and waits for the "running:" notice (or fails with its stderr).
    pub fn start(args: &[&str]) -> Run {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, String)]) -> Run {
        Self::start_until(args, env, "running:")
    }

    /// Starts `ebpfctl ARGS` and waits until a stderr line contains `ready`.
    pub fn start_until(args: &[&str], env: &[(&str, String)], ready: &str) -> Run {
        // SAFETY: geteuid has no arguments and cannot fail.
        let euid = unsafe { libc::geteuid() };
        assert!(euid == 0, "these tests load BPF programs: run them as root");
        let mut cmd = Command::new(bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // If the test process dies (killed, timed out), take ebpfctl with it: an orphan would
        // keep its programs loaded and confuse later tests.
        // SAFETY: prctl is async-signal-safe and touches only the child being set up.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (e2, o2) = (Arc::clone(&stderr), Arc::clone(&stdout));
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                e2.lock().unwrap().push(line.trim_end().to_string());
                line.clear();
            }
        });
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o2.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut run = Run {
            child,
            stderr,
            stdout,
            held: bpf::Held::default(),
        };
        let deadline = Instant::now() + patient(Duration::from_secs(30));
        loop {
            if run.stderr().iter().any(|l| l.contains(ready)) {
                run.held = bpf::Held::of(run.pid());
                // A ready run holds its programs; an empty set would make stop()'s check vacuous.
                assert!(
                    !run.held.progs.is_empty(),
                    "ebpfctl {args:?} is ready but holds no BPF program (fdinfo unreadable?)"
                );
                return run;
            }
            if let Ok(Some(st)) = run.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "ebpfctl {args:?} exited ({st}) before {ready:?}:\n{}",
                    run.stderr().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "ebpfctl {args:?} did not start:\n{}",
                run.stderr().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the child held in the kernel once it was ready.
    pub fn held(&self) -> &bpf::Held {
        &self.held
    }

    /// The metrics URL announced on stderr.
    pub fn metrics_addr(&self) -> String {
        self.stderr()
            .iter()
            .find_map(|l| {
                l.split("serving metrics on http://")
                    .nth(1)
                    .map(|r| r.trim_end_matches("/metrics").to_string())
            })
            .unwrap_or_else(|| {
                panic!(
                    "no metrics address announced:\n{}",
                    self.stderr().join("\n")
                )
            })
    }

    pub fn scrape(&self) -> String {
        scrape(&self.metrics_addr())
    }

    /// Stdout so far, as JSON values (one per line).
    pub fn json(&self) -> Vec<serde_json::Value> {
        let out = self.stdout.lock().unwrap().clone();
        // Only whole lines: the child may be in the middle of writing the last one.
        let end = out.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        parse_lines(&out[..end])
    }

    /// Waits until `pred` holds for the JSON lines so far (or panics after 10 s, times
    /// [`patience`]).
    pub fn wait_json(
        &self,
        what: &str,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + patient(Duration::from_secs(10));
        loop {
            let v = self.json();
            if pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got {} lines:\n{:?}\nstderr:\n{}",
                v.len(),
                v.iter().rev().take(5).collect::<Vec<_>>(),
                self.stderr().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGINT, then wait; checks that every program, map and link the child held is gone;
    /// returns (exit status, stdout, stderr lines).
    pub fn stop(self) -> (std::process::ExitStatus, Vec<u8>, Vec<String>) {
        // SAFETY: kill on our own child's pid with a valid signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.finish("on SIGINT", patient(Duration::from_secs(15)))
    }

    /// Waits for the child to end by itself (e.g. `--duration`); checks as [`Run::stop`].
    pub fn wait_exit(self, timeout: Duration) -> (std::process::ExitStatus, Vec<u8>, Vec<String>) {
        self.finish("by itself", timeout)
    }

    fn finish(
        mut self,
        how: &str,
        timeout: Duration,
    ) -> (std::process::ExitStatus, Vec<u8>, Vec<String>) {
        let deadline = Instant::now() + timeout;
        let st = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "ebpfctl did not stop {how} within {timeout:?}:\n{}",
                    self.stderr().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        let out = self.stdout.lock().unwrap().clone();
        self.held
            .assert_gone(&format!("ebpfctl (pid {})", self.pid()));
        (st, out, self.stderr())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn parse_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub fn scrape(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "scrape: {body}");
    body.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The value of the first sample whose line starts with `series` (name{labels}).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `promtool check metrics` must accept the exposition.
pub fn promtool_ok(metrics: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus) is needed by this test");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics failed:\n{}{}\n--- metrics:\n{metrics}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs ebpfctl to completion.
pub fn ebpfctl(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Asserts a failure with exactly one stderr line starting "ebpfctl: error:" containing `want`.
pub fn assert_one_line_error(o: &Output, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(lines[0].starts_with("ebpfctl: error:"), "{err}");
    assert!(lines[0].contains(want), "expected {want:?} in: {err}");
}

/// A running tool (`ebpfctl execsnoop|opensnoop ...`).
pub struct Tool {
    run: Run,
    name: &'static str,
}

impl Tool {
    /// Starts `ebpfctl TOOL ARGS` and waits for its "tracing (" notice.
    pub fn start(tool: &'static str, args: &[&str]) -> Tool {
        let mut all = vec![tool];
        all.extend_from_slice(args);
        Tool {
            run: Run::start_until(&all, &[], "tracing ("),
            name: tool,
        }
    }

    /// Waits (10 s at most) until the JSON lines so far satisfy `pred`.
    pub fn wait_json(
        &self,
        what: &str,
        pred: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        self.run.wait_json(what, pred)
    }

    pub fn pid(&self) -> u32 {
        self.run.pid()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.run.stderr()
    }

    /// Stops the tool (SIGINT) after letting the last events through; checks it exited 0
    /// and left none of what it loaded; returns stdout and stderr.
    pub fn stop_raw(self) -> (String, Vec<String>) {
        std::thread::sleep(Duration::from_millis(150));
        let name = self.name;
        let (status, out, err) = self.run.stop();
        assert!(status.success(), "{name} exited with {status}: {err:?}");
        (String::from_utf8_lossy(&out).into_owned(), err)
    }

    /// As [`Tool::stop_raw`], with stdout's JSON lines parsed.
    pub fn stop(self) -> (Vec<serde_json::Value>, Vec<String>) {
        let (out, err) = self.stop_raw();
        let events = out
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
            .collect();
        (events, err)
    }
}
