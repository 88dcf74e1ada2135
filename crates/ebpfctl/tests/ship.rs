//! Shipping ebpfctl: the container image of scripts/image.sh (reproducible, OCI labels),
//! pushed to a real registry (Debian's docker-registry on a loopback port), inspected with
//! skopeo, pulled and run with podman tracing a second container; the capabilities each
//! tool needs (docs/deploy.md), measured in containers with `--cap-drop=all --cap-add=...`;
//! the one-line error naming a missing capability. Needs root, podman + crun
//! (scripts/podman-setup.sh), docker-registry, skopeo, busybox-static.
mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The image's repository name in the registry and in podman's storage.
const REPO: &str = "ebpfctl-ship-test";

/// What every container needs on this machine (scripts/podman-setup.sh --print-flags).
const RUN_FLAGS: [&str; 6] = [
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
    "--network",
    "none",
];

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn run(cmd: &mut Command, what: &str) -> String {
    let o = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("{what}: cannot start ({e}); scripts/setup.sh --test installs it")
    });
    ok(&o, what)
}

fn podman() -> Command {
    Command::new("podman")
}

/// A docker-registry on a free loopback port, killed on drop.
struct Registry {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Registry {
    fn start() -> Registry {
        let dir = tmp().join(format!("ship-registry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (scripts/setup.sh --test) is needed by this test");
        let mut reg = Registry { child, dir, port };
        let deadline = Instant::now() + patient(Duration::from_secs(10));
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = reg.child.try_wait() {
                panic!("docker-registry exited ({st})");
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        reg
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The image built once per test process from this test's ebpfctl, pushed to a registry,
/// inspected there and pulled into podman's storage as `localhost/ebpfctl-ship-test:<tag>`.
struct Image {
    layout: PathBuf,
    digest: String,
    /// `skopeo inspect` (labels, architecture, ...) and `skopeo inspect --config` through
    /// the registry.
    inspect: Value,
    config: Value,
    /// What podman runs.
    name: String,
}

fn build_image(out: &Path) -> String {
    let o = Command::new(repo().join("scripts/image.sh"))
        .arg("--binary")
        .arg(bin())
        .arg("--out")
        .arg(out)
        .args(["--tag", "test"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&o, "scripts/image.sh")
}

fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        // Layouts of earlier runs (38 MB each) go first.
        for e in std::fs::read_dir(tmp()).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with("ship-oci-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let layout = tmp().join(format!("ship-oci-{}", std::process::id()));
        let digest = build_image(&layout);
        assert!(digest.starts_with("sha256:"), "image.sh printed {digest:?}");

        // Images of earlier runs of this test (one name, retagged per run) go first.
        let old = run(
            podman()
                .args(["images", "--format", "{{.ID}}", "--filter"])
                .arg(format!("reference=*{REPO}*")),
            "podman images",
        );
        for id in old.lines() {
            let _ = podman().args(["rmi", "-f", id]).output();
        }

        let reg = Registry::start();
        let remote = format!("127.0.0.1:{}/{REPO}:test", reg.port);
        run(
            Command::new("skopeo")
                .args(["copy", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:test", layout.display()))
                .arg(format!("docker://{remote}")),
            "skopeo copy oci: docker://",
        );
        let inspect: Value = serde_json::from_str(&run(
            Command::new("skopeo")
                .args(["inspect", "--tls-verify=false"])
                .arg(format!("docker://{remote}")),
            "skopeo inspect",
        ))
        .unwrap();
        let config: Value = serde_json::from_str(&run(
            Command::new("skopeo")
                .args(["inspect", "--config", "--tls-verify=false"])
                .arg(format!("docker://{remote}")),
            "skopeo inspect --config",
        ))
        .unwrap();
        run(
            podman().args(["pull", "-q", "--tls-verify=false", &remote]),
            "podman pull",
        );
        let name = format!("localhost/{REPO}:{}", std::process::id());
        run(podman().args(["tag", &remote, &name]), "podman tag");
        run(podman().args(["rmi", &remote]), "podman rmi");
        drop(reg);
        Image {
            layout,
            digest,
            inspect,
            config,
            name,
        }
    })
}

/// A root filesystem of busybox-static: `sh`, `true`, `sleep`.
fn busybox_rootfs() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tmp().join(format!("ship-busybox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        assert!(
            Path::new("/bin/busybox").exists(),
            "/bin/busybox (apt-get install busybox-static) is needed by this test"
        );
        copy_exe(Path::new("/bin/busybox"), &dir.join("bin/busybox"));
        for a in ["sh", "true", "sleep"] {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(a)).unwrap();
        }
        dir
    })
    .clone()
}

/// Runs `/bin/true MARKER` in a busybox container.
fn exec_in_second_container(marker: &str) {
    let rootfs = busybox_rootfs();
    let o = podman()
        .args(["run", "--rm"])
        .args(RUN_FLAGS)
        .arg("--rootfs")
        .arg(&rootfs)
        .args(["/bin/sh", "-c", &format!("/bin/true {marker}; /bin/true")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("hybrid mode"),
        "crun refuses this cgroup layout: run scripts/podman-setup.sh\n{err}"
    );
    ok(&o, "podman run busybox");
}

/// An ebpfctl container started by `podman run` in the foreground, its stdout and stderr
/// collected; its ebpfctl process is found by its host pid (host PID namespace).
struct Container {
    child: Child,
    name: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Container {
    fn start(tag: &str, flags: &[&str], args: &[&str]) -> Container {
        // Unique per container, not per tag: two tests starting the same tool at once must
        // not `rm -f` each other's container.
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("{REPO}-{tag}-{}-{seq}", std::process::id());
        let _ = podman().args(["rm", "-f", &name]).output();
        let mut child = podman()
            .args(["run", "--rm", "--name", &name])
            .args(flags)
            .arg(&image().name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("podman (scripts/podman-setup.sh) is needed by this test");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        for (pipe, sink) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                Arc::clone(&stdout),
            ),
            (Box::new(child.stderr.take().unwrap()), Arc::clone(&stderr)),
        ] {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Container {
            child,
            name,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits for a stderr line containing `ready`; panics with stderr if the container ends.
    fn wait_ready(&mut self, ready: &str) {
        let deadline = Instant::now() + patient(Duration::from_secs(60));
        loop {
            if self.stderr().contains(ready) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "container {} ended ({st}) before {ready:?}:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "container {} not ready:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host pid of the container's ebpfctl.
    fn host_pid(&self) -> u32 {
        let pid = run(
            podman().args(["inspect", "-f", "{{.State.Pid}}", &self.name]),
            "podman inspect",
        );
        pid.parse()
            .unwrap_or_else(|_| panic!("podman inspect pid: {pid:?}"))
    }

    fn events(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
            .collect()
    }

    /// Waits for the container to end by itself; returns its exit code and stderr.
    fn wait(mut self) -> (i32, String) {
        let deadline = Instant::now() + patient(Duration::from_secs(60));
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200));
                return (st.code().unwrap_or(-1), self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "container {} did not end:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `podman stop` (SIGTERM to ebpfctl); returns its exit code and stderr.
    fn stop(self) -> (i32, String) {
        run(
            podman().args(["stop", "-t", "10", &self.name]),
            "podman stop",
        );
        self.wait()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman().args(["rm", "-f", "-t", "0", &self.name]).output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn image_is_reproducible_and_labelled() {
    let img = image();
    // Same binary, same libraries, same SOURCE_DATE_EPOCH: the same digest.
    let again = tmp().join(format!("ship-oci-again-{}", std::process::id()));
    assert_eq!(
        build_image(&again),
        img.digest,
        "scripts/image.sh is not reproducible"
    );
    let _ = std::fs::remove_dir_all(&again);

    // What the registry serves, as skopeo sees it.
    let labels = &img.inspect["Labels"];
    for key in [
        "source",
        "revision",
        "version",
        "created",
        "title",
        "description",
        "licenses",
    ] {
        let v = labels[format!("org.opencontainers.image.{key}")].as_str();
        assert!(
            v.is_some_and(|v| !v.is_empty()),
            "label org.opencontainers.image.{key} missing: {labels}"
        );
    }
    assert_eq!(labels["org.opencontainers.image.title"], "ebpfctl");
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    let full = run(Command::new(bin()).arg("--version"), "ebpfctl --version");
    let version = full.lines().next().unwrap_or_default().to_string();
    assert_eq!(
        format!(
            "ebpfctl {}",
            labels["org.opencontainers.image.version"].as_str().unwrap()
        ),
        version
    );
    assert_eq!(img.inspect["Architecture"], "amd64");
    assert_eq!(img.inspect["Os"], "linux");
    assert_eq!(img.inspect["Layers"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        img.config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/ebpfctl"])
    );
    assert_eq!(img.config["created"], "2023-11-14T22:13:20Z");

    // The image runs: the binary finds its libraries, and nothing but ebpfctl is in it.
    let v = run(
        podman()
            .args(["run", "--rm"])
            .args(RUN_FLAGS)
            .args([&img.name, "--version"]),
        "podman run IMAGE --version",
    );
    assert_eq!(v, full);
    let o = podman()
        .args(["run", "--rm"])
        .args(RUN_FLAGS)
        .args(["--entrypoint", "/bin/sh", &img.name, "-c", "true"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "the image has a shell");
    assert!(img.layout.join("index.json").exists());
}

#[test]
fn privileged_container_traces_a_second_container() {
    let marker = format!("ship-marker-{}", std::process::id());
    let mut c = Container::start(
        "execsnoop",
        &[
            &RUN_FLAGS[..],
            &[
                "--privileged",
                "--pid",
                "host",
                "-v",
                "/sys/kernel/tracing:/sys/kernel/tracing",
            ],
        ]
        .concat(),
        &["execsnoop", "-o", "json", "--no-snapshot", "-n", "^true$"],
    );
    c.wait_ready("tracing (");
    let held = bpf::Held::of(c.host_pid());
    assert!(
        !held.progs.is_empty(),
        "the container's ebpfctl holds no program"
    );

    exec_in_second_container(&marker);
    let deadline = Instant::now() + patient(Duration::from_secs(15));
    let event = loop {
        let found = c.events().into_iter().find(|e| {
            e["type"] == "started" && e["args"] == serde_json::json!(["/bin/true", marker])
        });
        if let Some(e) = found {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no exec of /bin/true {marker} seen; stderr:\n{}",
            c.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(event["comm"], "true");
    assert!(
        event["exe"]
            .as_str()
            .is_some_and(|e| e.ends_with("busybox")),
        "{event}"
    );
    let (code, err) = c.stop();
    assert_eq!(code, 0, "execsnoop in the container: {err}");
    assert!(err.contains("execsnoop: stopped;"), "{err}");
    held.assert_gone("ebpfctl execsnoop in a container");
}

/// Runs a tool in a container with only `caps`, for about a second.
fn with_caps(tag: &str, caps: &[&str], extra: &[&str], args: &[&str]) -> (i32, String) {
    let mut flags: Vec<String> = RUN_FLAGS.iter().map(|s| s.to_string()).collect();
    flags.extend(
        [
            "--pid",
            "host",
            // podman's default seccomp profile allows bpf() and perf_event_open() only with
            // CAP_SYS_ADMIN; the capabilities are what is measured here.
            "--security-opt",
            "seccomp=unconfined",
            "-v",
            "/sys/kernel/tracing:/sys/kernel/tracing:ro",
            "--cap-drop=all",
        ]
        .map(String::from),
    );
    flags.extend(caps.iter().map(|c| format!("--cap-add={c}")));
    flags.extend(extra.iter().map(|s| s.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Container::start(tag, &flags, args).wait()
}

#[test]
fn capabilities_each_tool_needs() {
    image();
    let go = "/usr/bin/docker-registry";
    let mount = format!("{go}:/target/docker-registry:ro");
    // As the DaemonSet does: a host binary through a host process's root (/proc/1/root on
    // a node; this test's own process here), which needs CAP_SYS_PTRACE.
    let host_path = format!("/proc/{}/root{go}", std::process::id());
    // (container tag, capabilities, extra podman flags, ebpfctl args, exit code, stderr has)
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        Vec<&'a str>,
        Vec<&'a str>,
        i32,
        String,
    );
    let mut cases: Vec<Case> = Vec::new();
    // execsnoop and opensnoop: CAP_BPF + CAP_PERFMON are enough (no CAP_SYS_ADMIN, no
    // CAP_SYS_RESOURCE: BPF memory is charged to the cgroup, not RLIMIT_MEMLOCK), unless
    // kernel.perf_event_paranoid is above 2 (Debian's kernels: 3), where perf events, the
    // tracepoints' attachment, are for CAP_SYS_ADMIN only: then refused up front, saying so.
    let paranoid = perf_event_paranoid();
    let paranoid_says =
        "CAP_SYS_ADMIN (perf events (tracepoints, kprobes): kernel.perf_event_paranoid is above 2";
    for (tool, no_perfmon) in [
        ("execsnoop", "execsnoop-bpf-only"),
        ("opensnoop", "opensnoop-bpf-only"),
    ] {
        cases.push(if paranoid > 2 {
            (
                tool,
                &["CAP_BPF", "CAP_PERFMON"],
                vec![],
                vec![tool, "-o", "json", "-d", "1"],
                1,
                format!("needs {paranoid_says}"),
            )
        } else {
            (
                tool,
                &["CAP_BPF", "CAP_PERFMON"],
                vec![],
                vec![tool, "-o", "json", "-d", "1"],
                0,
                format!("{tool}: stopped;"),
            )
        });
        cases.push((
            no_perfmon,
            &["CAP_BPF"],
            vec![],
            vec![tool, "-d", "1"],
            1,
            if paranoid > 2 {
                format!("needs {paranoid_says}, which allows them to CAP_SYS_ADMIN only; with 2 CAP_PERFMON is enough) and CAP_PERFMON (tracing programs), which this process lacks")
            } else {
                "needs CAP_PERFMON (tracing programs), which this process lacks".into()
            },
        ));
    }
    // observe: uprobes need CAP_SYS_ADMIN, whatever else it has.
    cases.push((
        "observe-no-admin",
        &["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE"],
        vec!["-v", &mount],
        vec!["observe", "/target/docker-registry", "--duration", "1"],
        1,
        "needs CAP_SYS_ADMIN (uprobes".into(),
    ));
    cases.push((
        "observe",
        &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"],
        vec![],
        vec!["observe", &host_path, "-o", "json", "--duration", "1"],
        0,
        "observe: ready".into(),
    ));
    // The containers run at the same time (each is mostly podman's start-up).
    std::thread::scope(|s| {
        let runs: Vec<_> = cases
            .iter()
            .map(|(tag, caps, extra, args, _, _)| {
                s.spawn(move || with_caps(tag, caps, extra, args))
            })
            .collect();
        for ((tag, caps, _, args, want_code, want_err), r) in cases.iter().zip(runs) {
            let (code, err) = r.join().unwrap();
            assert_eq!(
                code, *want_code,
                "{tag}: ebpfctl {args:?} with {caps:?}: {err}"
            );
            assert!(
                err.contains(want_err.as_str()),
                "{tag}: ebpfctl {args:?} with {caps:?}: expected {want_err:?} in:\n{err}"
            );
        }
    });
}

/// kernel.perf_event_paranoid (Debian's kernels: 3, this machine's: 2).
fn perf_event_paranoid() -> i32 {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn missing_capability_is_one_line() {
    // setpriv drops them from the bounding set; as root the exec'd ebpfctl lacks them.
    let o = Command::new("setpriv")
        .args([
            "--bounding-set",
            "-perfmon,-sys_admin",
            bin(),
            "execsnoop",
            "-d",
            "1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("setpriv (util-linux)");
    // Above paranoid 2 CAP_SYS_ADMIN is named first (capabilities_each_tool_needs).
    assert_one_line_error(
        &o,
        if perf_event_paranoid() > 2 {
            "and CAP_PERFMON (tracing programs), which this process lacks"
        } else {
            "needs CAP_PERFMON (tracing programs), which this process lacks"
        },
    );
    let obj = example("xdp_udp");
    let o = Command::new("setpriv")
        .args(["--bounding-set", "-net_admin,-sys_admin", bin(), "run"])
        .arg(&obj)
        .args(["--iface", "lo"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_one_line_error(&o, "needs CAP_NET_ADMIN (network programs)");
    let o = Command::new("setpriv")
        .args([
            "--bounding-set",
            "-sys_admin",
            bin(),
            "observe",
            "/usr/bin/docker-registry",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_one_line_error(&o, "needs CAP_SYS_ADMIN (uprobes");
}

#[test]
fn observe_takes_the_otlp_endpoint_from_the_environment() {
    // An endpoint observe refuses shows that OTEL_EXPORTER_OTLP_ENDPOINT is read (before
    // anything is loaded), as the DaemonSet sets it.
    let o = Command::new(bin())
        .args(["observe", "/usr/bin/docker-registry", "--duration", "1"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "ftp://collector.invalid:4318",
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_one_line_error(&o, "OTLP exporter for ftp://collector.invalid:4318");
}
