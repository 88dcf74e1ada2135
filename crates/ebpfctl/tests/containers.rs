//! Real containers: podman + crun and containerd + ctr run busybox-static root filesystems
//! (and a static Go HTTP program) built here; execsnoop, opensnoop, observe and the runner
//! must say which container (and which pod) each event comes from, and filter by it.
//!
//! Needs `scripts/setup.sh --test` (podman, crun, containerd, busybox-static; the hugetlb
//! step of scripts/podman-setup.sh on a hybrid cgroup host). Every container, containerd
//! instance, cgroup and directory a test creates is removed by a Drop guard.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{patient, Run};
use serde_json::Value;

const POD_UID: &str = "5d0c2a4e-7b1f-4e8a-9c3d-1f2e3a4b5c6d";

fn root() {
    // SAFETY: geteuid has no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(euid == 0, "these tests run containers: run them as root");
}

fn need(cmd: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{cmd} is missing: run `scripts/setup.sh --test` (podman, crun, containerd, busybox-static)"
    );
}

/// A random hex string of `n` digits.
fn hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    // SAFETY: getrandom writes at most b.len() bytes into the buffer we own.
    unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    b.iter().map(|x| format!("{x:02x}")).collect::<String>()[..n].to_string()
}

fn run_ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The host setup (crun on a hybrid cgroup host), once per test process.
fn host_ready() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        root();
        run_ok(Command::new("bash").arg(common::repo().join("scripts/podman-setup.sh")));
    });
}

/// A static Go program: `loop ADDR` serves HTTP on ADDR and GETs itself every 100 ms.
const GO_SRC: &str = r#"package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	ln, err := net.Listen("tcp", os.Args[2])
	if err != nil {
		panic(err)
	}
	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hi") })
	go http.Serve(ln, nil)
	for {
		resp, err := http.Get("http://" + os.Args[2] + "/hello")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
}
"#;

/// A busybox-static root filesystem with `/etc/greeting` and `/app/server` (the Go
/// program), built once under the tests' target directory (reused by later runs).
fn rootfs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        need("busybox");
        let hash = GO_SRC.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        let r = common::tmp().join(format!("rootfs-{hash:016x}"));
        if r.join("app/server").exists() {
            return r;
        }
        // Built beside, then renamed: a half-built tree is never used.
        let part = tempfile::Builder::new()
            .prefix("rootfs-")
            .tempdir_in(common::tmp())
            .unwrap();
        let d = part.path();
        for sub in ["bin", "etc", "app", "proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        // The container reads it as root; a 0700 top directory is fine.
        common::copy_exe(Path::new("/bin/busybox"), &d.join("bin/busybox"));
        for app in ["sh", "cat", "sleep", "ls", "true", "echo"] {
            std::os::unix::fs::symlink("busybox", d.join("bin").join(app)).unwrap();
        }
        std::fs::write(d.join("etc/greeting"), "hello from a container\n").unwrap();
        let src = tempfile::tempdir_in(common::tmp()).unwrap();
        std::fs::write(src.path().join("main.go"), GO_SRC).unwrap();
        std::fs::write(src.path().join("go.mod"), "module server\n\ngo 1.17\n").unwrap();
        run_ok(
            Command::new("/usr/bin/go")
                .current_dir(src.path())
                .env("GOCACHE", common::tmp().join("gocache"))
                .env("GOPATH", common::tmp().join("gopath"))
                .env("CGO_ENABLED", "0")
                .env("GOTOOLCHAIN", "local")
                .env_remove("GOROOT")
                .args(["build", "-o"])
                .arg(d.join("app/server"))
                .arg("."),
        );
        let built = part.keep();
        if std::fs::rename(&built, &r).is_err() {
            // Another test process finished first: use its tree.
            let _ = std::fs::remove_dir_all(&built);
        }
        r
    })
}

/// A podman container, removed (`podman rm -f`) on drop.
struct Podman {
    id: String,
}

impl Podman {
    /// `podman run -d` of `cmd` in the test rootfs.
    fn run(name: &str, cmd: &[&str]) -> Podman {
        host_ready();
        need("podman");
        let id = run_ok(
            Command::new("podman")
                .args(["run", "-d", "--name", name, "--network", "none"])
                .args(["--ulimit=nofile=4096:4096", "--ulimit=nproc=4096:4096"])
                .arg("--rootfs")
                .arg(rootfs())
                .args(cmd),
        );
        assert_eq!(id.len(), 64, "podman run printed {id:?}");
        Podman { id }
    }

    fn wait(&self) {
        run_ok(Command::new("podman").args(["wait", &self.id]));
    }

    /// The container's main process on the host.
    fn pid(&self) -> u32 {
        run_ok(Command::new("podman").args(["inspect", "-f", "{{.State.Pid}}", &self.id]))
            .parse()
            .unwrap()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A private containerd (own root, state and socket), stopped and removed on drop.
struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
    containers: Mutex<Vec<(String, String)>>,
    /// Cgroup parents given to `ctr run --cgroup` (removed from every hierarchy on drop).
    cgroup_tops: Mutex<Vec<String>>,
}

impl Containerd {
    fn start() -> Containerd {
        host_ready();
        need("containerd");
        need("ctr");
        let dir = tempfile::Builder::new()
            .prefix("ebpfctl-containerd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{r}/state/containerd.sock\"\n\
             [ttrpc]\n  address = \"{r}/state/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"\"\n",
            r = d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd {
            dir,
            child,
            containers: Mutex::new(Vec::new()),
            cgroup_tops: Mutex::new(Vec::new()),
        };
        let deadline = Instant::now() + patient(Duration::from_secs(20));
        while !c.socket().exists() {
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                std::fs::read_to_string(c.dir.path().join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("state/containerd.sock")
    }

    fn ctr(&self, ns: &str) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address").arg(self.socket()).args(["-n", ns]);
        c
    }

    /// `ctr run -d` in namespace `ns` with labels and, if given, a cgroup path.
    fn run(&self, ns: &str, id: &str, labels: &[(&str, &str)], cgroup: Option<&str>, cmd: &[&str]) {
        let mut c = self.ctr(ns);
        c.args(["run", "-d"]);
        for (k, v) in labels {
            c.arg("--label").arg(format!("{k}={v}"));
        }
        if let Some(cg) = cgroup {
            c.args(["--cgroup", cg]);
            let top = cg
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap()
                .to_string();
            self.cgroup_tops.lock().unwrap().push(top);
        }
        c.arg("--rootfs").arg(rootfs()).arg(id).args(cmd);
        self.containers
            .lock()
            .unwrap()
            .push((ns.to_string(), id.to_string()));
        run_ok(&mut c);
    }
}

/// Removes `/<top>` and everything below it from every cgroup hierarchy (v1 and v2).
fn remove_cgroup_tree(top: &str) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = right.split_whitespace().next().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        let Some(point) = left.split_whitespace().nth(4) else {
            continue;
        };
        let base = Path::new(point).join(top);
        let mut dirs = Vec::new();
        let mut stack = vec![base];
        while let Some(d) = stack.pop() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
                dirs.push(d);
            }
        }
        for d in dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for (ns, id) in self.containers.lock().unwrap().iter() {
            let quiet = |c: &mut Command| {
                let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
            };
            quiet(self.ctr(ns).args(["task", "kill", "-s", "SIGKILL", id]));
            let deadline = Instant::now() + patient(Duration::from_secs(5));
            loop {
                let o = self.ctr(ns).args(["task", "delete", id]).output();
                if o.is_ok_and(|o| o.status.success()) || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            quiet(self.ctr(ns).args(["container", "delete", id]));
        }
        // SAFETY: kill on our own child's pid with a valid signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + patient(Duration::from_secs(10));
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for top in self.cgroup_tops.lock().unwrap().iter() {
            remove_cgroup_tree(top);
        }
        // Mounts the shim may have left under our state dir (none when tasks were deleted).
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let base = self.dir.path().display().to_string();
        for point in info.lines().filter_map(|l| l.split_whitespace().nth(4)) {
            if point.starts_with(&base) {
                let c = std::ffi::CString::new(point).unwrap();
                // SAFETY: a NUL-terminated path; MNT_DETACH only unmounts it.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

fn tool(tool: &str, args: &[&str], env: &[(&str, String)]) -> Run {
    let mut all = vec![tool];
    all.extend_from_slice(args);
    Run::start_until(&all, env, "tracing (")
}

fn stop(run: Run) -> Vec<Value> {
    std::thread::sleep(Duration::from_millis(200));
    let (st, out, err) = run.stop();
    assert!(st.success(), "exited {st}: {err:?}");
    common::parse_lines(&out)
}

fn container(e: &Value) -> &Value {
    &e["container"]
}

/// execsnoop and opensnoop with `--container NAME` see only that podman container, with
/// its runtime, id and name, the executable as the container sees it and on the host; the
/// container labels on the metrics.
#[test]
fn podman_execsnoop_and_opensnoop() {
    root();
    rootfs();
    let name = format!("ebpfctl-web-{}", hex(8));
    let other = format!("ebpfctl-other-{}", hex(8));
    let exec = tool(
        "execsnoop",
        &["-o", "json", "--container", &name, "--no-snapshot"],
        &[],
    );
    let open = tool(
        "opensnoop",
        &[
            "-o",
            "json",
            "--container",
            &name,
            "--metrics-container-labels",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    let script = "cat /etc/greeting; sleep 0.3; cat /etc/greeting";
    let web = Podman::run(&name, &["/bin/sh", "-c", script]);
    let noise = Podman::run(&other, &["/bin/sh", "-c", script]);
    web.wait();
    noise.wait();
    // The open of /etc/greeting by `cat` in the chosen container, with its container.
    let opens = open.wait_json("cat's opens of /etc/greeting", |v| {
        v.iter().filter(|e| e["path"] == "/etc/greeting").count() >= 2
    });
    let metrics = common::scrape(&metrics_addr(&open));
    let execs = exec.wait_json("two cat execs", |v| {
        v.iter()
            .filter(|e| e["type"] == "started" && e["args"][0] == "cat")
            .count()
            >= 2
    });
    let opens_all = stop(open);
    let execs_all = stop(exec);
    let _ = (opens, execs);

    let host_root = rootfs().display().to_string();
    for e in &opens_all {
        let c = container(e);
        assert_eq!(c["name"], name.as_str(), "only the chosen container: {e}");
        assert_eq!(c["runtime"], "podman", "{e}");
        assert_eq!(c["id"], web.id.as_str(), "{e}");
    }
    let greeting: Vec<&Value> = opens_all
        .iter()
        .filter(|e| e["path"] == "/etc/greeting")
        .collect();
    assert!(greeting.len() >= 2, "{opens_all:?}");
    for e in &greeting {
        assert_eq!(e["host_path"], format!("{host_root}/etc/greeting"), "{e}");
        assert!(e["cgroup_id"].as_u64().unwrap() > 1, "{e}");
    }
    // Metrics: the container's own series.
    let series = format!(
        "ebpfctl_opensnoop_events_total{{result=\"ok\",container=\"{name}\",pod=\"\",namespace=\"\"}}"
    );
    assert!(
        common::sample(&metrics, &series).is_some_and(|v| v >= 2.0),
        "{series} in:\n{metrics}"
    );
    common::promtool_ok(&metrics);

    let cats: Vec<&Value> = execs_all
        .iter()
        .filter(|e| e["type"] == "started" && e["args"][0] == "cat")
        .collect();
    assert_eq!(
        cats.len(),
        2,
        "only the chosen container's two cats: {execs_all:?}"
    );
    for e in &execs_all {
        assert_eq!(container(e)["name"], name.as_str(), "{e}");
    }
    for e in cats {
        assert_eq!(e["exe"], "/bin/busybox", "the container's view: {e}");
        assert_eq!(e["host_exe"], format!("{host_root}/bin/busybox"), "{e}");
        assert_eq!(container(e)["id"], web.id.as_str());
    }
    drop(noise);
    drop(web);
}

fn metrics_addr(run: &Run) -> String {
    run.stderr()
        .iter()
        .find_map(|l| {
            l.split("metrics on http://")
                .nth(1)
                .map(|r| r.trim_end_matches("/metrics").to_string())
        })
        .unwrap_or_else(|| panic!("no metrics address in {:?}", run.stderr()))
}

/// Without a filter, the table has a CONTAINER column and the snapshot knows running
/// containers.
#[test]
fn podman_table_and_snapshot() {
    root();
    rootfs();
    let name = format!("ebpfctl-snap-{}", hex(8));
    // Long enough to outlive both tools' start-up in a TCG guest (it ended first once at
    // 30 s); removed on drop.
    let c = Podman::run(&name, &["/bin/sleep", "600"]);
    let pid = c.pid();
    let exec = tool("execsnoop", &["-o", "json", "--containers"], &[]);
    let v = exec.wait_json("the sleeping container in the snapshot", |v| {
        v.iter()
            .any(|e| e["pid"] == pid && e["source"] == "snapshot")
    });
    let e = v.iter().find(|e| e["pid"] == pid).unwrap();
    assert_eq!(container(e)["name"], name.as_str(), "{e}");
    assert_eq!(e["exe"], "/bin/busybox", "{e}");
    let _ = stop(exec);

    let table = tool("execsnoop", &["--container", &name], &[]);
    run_ok(Command::new("podman").args(["exec", &c.id, "/bin/true"]));
    std::thread::sleep(Duration::from_millis(500));
    let (st, out, _) = table.stop();
    assert!(st.success());
    let out = String::from_utf8_lossy(&out);
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("CONTAINER"), "{out}");
    assert!(
        lines.any(|l| l.contains(&name) && l.contains("/bin/true")),
        "{out}"
    );
}

/// containerd + ctr, with the labels a kubelet sets and the cgroup layouts of the kubelet's
/// two drivers: names and pods come from containerd's API; --pod/--namespace filter.
#[test]
fn containerd_kubernetes_pods() {
    root();
    rootfs();
    let cd = Containerd::start();
    let env = [("CONTAINERD_ADDRESS", cd.socket().display().to_string())];
    let top = format!("ebpfctl-test-{}", hex(8));
    let (app, other, plain) = (hex(64), hex(64), format!("plain-{}", hex(6)));
    // A namespace of our own: its default cgroup /<namespace>/<id> is ours to remove.
    let ns = format!("ebpfctl-{}", hex(8));
    let labels = |pod: &str, ns: &str, name: &str| {
        vec![
            ("io.kubernetes.pod.name", pod.to_string()),
            ("io.kubernetes.pod.namespace", ns.to_string()),
            ("io.kubernetes.pod.uid", POD_UID.to_string()),
            ("io.kubernetes.container.name", name.to_string()),
        ]
    };
    let exec = tool(
        "execsnoop",
        &[
            "-o",
            "json",
            "--pod",
            "web-0",
            "--namespace",
            "shop",
            "--no-snapshot",
        ],
        &env,
    );
    let open = tool("opensnoop", &["-o", "json", "--containers"], &env);
    let script = "while true; do cat /etc/greeting >/dev/null; sleep 0.2; done";
    let l = labels("web-0", "shop", "app");
    let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The cgroupfs driver's layout: /kubepods/<qos>/pod<uid>/<id>.
    cd.run(
        "k8s.io",
        &app,
        &l,
        Some(&format!("/{top}/kubepods/burstable/pod{POD_UID}/{app}")),
        &["/bin/sh", "-c", script],
    );
    // The systemd driver's layout, in another pod.
    let l2 = labels("db-0", "shop", "db");
    let l2: Vec<(&str, &str)> = l2.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let uid_ = POD_UID.replace('-', "_");
    cd.run(
        "k8s.io",
        &other,
        &l2,
        Some(&format!(
            "/{top}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice/cri-containerd-{other}.scope"
        )),
        &["/bin/sh", "-c", script],
    );
    // A plain ctr container: containerd's default cgroup /<namespace>/<id>.
    cd.cgroup_tops.lock().unwrap().push(ns.clone());
    cd.run(&ns, &plain, &[], None, &["/bin/sh", "-c", script]);

    let named = |v: &[Value], id: &str| {
        v.iter()
            .filter(|e| e["container"]["id"] == id && e["container"]["name"].is_string())
            .count()
    };
    let opens = open.wait_json("named opens of all three containers", |v| {
        named(v, &app) >= 2 && named(v, &other) >= 2 && named(v, &plain) >= 2
    });
    let execs = exec.wait_json("execs of web-0", |v| named(v, &app) >= 2);
    let execs = {
        let _ = execs;
        stop(exec)
    };
    let _ = opens;
    let opens = stop(open);

    let last = |v: &[Value], id: &str| -> Value {
        v.iter()
            .rev()
            .find(|e| e["container"]["id"] == id && e["container"]["name"].is_string())
            .unwrap()["container"]
            .clone()
    };
    assert_eq!(
        last(&opens, &app),
        serde_json::json!({"runtime":"containerd","id":app,"name":"app","pod":"web-0",
            "namespace":"shop","pod_uid":POD_UID,"container":"app"})
    );
    assert_eq!(
        last(&opens, &other),
        serde_json::json!({"runtime":"containerd","id":other,"name":"db","pod":"db-0",
            "namespace":"shop","pod_uid":POD_UID,"container":"db"})
    );
    assert_eq!(
        last(&opens, &plain),
        serde_json::json!({"runtime":"containerd","id":plain,"name":plain})
    );
    // The filter: only the web-0 pod's container.
    assert!(!execs.is_empty());
    for e in &execs {
        assert_eq!(e["container"]["pod"], "web-0", "{e}");
        assert_eq!(e["container"]["id"], app.as_str(), "{e}");
    }
    drop(cd);
    remove_cgroup_tree(&top);
}

/// observe follows a Go program given by its path inside a podman container and reports
/// its container and both pids.
#[test]
fn observe_go_in_a_container() {
    root();
    rootfs();
    let name = format!("ebpfctl-go-{}", hex(8));
    let c = Podman::run(&name, &["/app/server", "loop", "127.0.0.1:8080"]);
    let pid = c.pid();
    let obs = Run::start_until(
        &["observe", "--container", &name, "/app/server", "-o", "json"],
        &[],
        "observe: ready",
    );
    let v = obs.wait_json("requests of the container", |v| {
        v.iter().filter(|e| e["kind"] == "server").count() >= 2
            && v.iter().any(|e| e["kind"] == "client")
    });
    let (st, _, err) = obs.stop();
    assert!(st.success(), "{err:?}");
    for e in &v {
        assert_eq!(e["pid"], pid, "the host pid: {e}");
        assert_eq!(e["container_pid"], 1, "the pid inside the container: {e}");
        assert_eq!(e["container"]["name"], name.as_str(), "{e}");
        assert_eq!(e["container"]["id"], c.id.as_str(), "{e}");
    }
    assert!(v.iter().any(|e| e["path"] == "/hello"));
    // A path that is not in the container: one clear line.
    let o = common::ebpfctl(&["observe", "--container", &name, "/no/such/binary"]);
    common::assert_one_line_error(&o, "not found in the chosen containers");
    let o = common::ebpfctl(&[
        "observe",
        "--container",
        "ebpfctl-no-such-container",
        "/app/server",
    ]);
    common::assert_one_line_error(&o, "no running container matches");
}

/// A probe of the runner's with a `cgroup_id` member.
const CGROUP_PROBE: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "ebpfctl.h"

char LICENSE[] SEC("license") = "GPL";

struct exec_event {
	cgroup_id cgroup_id;
	pid pid;
	comm comm;
	char filename[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__type(value, struct exec_event);
} execs SEC(".maps.print");
EBPFCTL_LOST_COUNTER(execs);

SEC("tracepoint/sched/sched_process_exec")
int on_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct exec_event *e = ebpfctl_reserve(execs, struct exec_event);
	if (!e)
		return 0;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	unsigned off = ctx->__data_loc_filename & 0xffff;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
"#;

/// `ebpfctl run --containers`: a `cgroup_id` member is followed by its container.
#[test]
fn runner_cgroup_id_members_carry_their_container() {
    root();
    rootfs();
    let obj = common::build_source("cgroup_exec", CGROUP_PROBE);
    let obj = obj.to_str().unwrap();
    let name = format!("ebpfctl-run-{}", hex(8));
    let run = Run::start(&["run", obj, "-o", "json", "--containers"]);
    let c = Podman::run(
        &name,
        &[
            "/bin/sh",
            "-c",
            "cat /etc/greeting >/dev/null; sleep 0.3; cat /etc/greeting",
        ],
    );
    c.wait();
    // busybox's sh runs its applets through /proc/self/exe: any exec of the container.
    let v = run.wait_json("execs of the container, named", |v| {
        v.iter().any(|e| e["container"]["name"] == name.as_str())
    });
    let e = v
        .iter()
        .find(|e| e["container"]["name"] == name.as_str())
        .unwrap();
    assert_eq!(e["container"]["id"], c.id.as_str(), "{e}");
    assert_eq!(e["container"]["runtime"], "podman", "{e}");
    assert!(e["cgroup_id"].as_u64().unwrap() > 1, "{e}");
    // Events outside containers have the number only.
    assert!(v
        .iter()
        .any(|e| e["container"].is_null() && e["cgroup_id"].is_u64()));
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
}

/// The probe above with the in-kernel container filter of include/ebpfctl.h.
fn filtered_probe() -> String {
    CGROUP_PROBE
        .replace(
            "EBPFCTL_LOST_COUNTER(execs);",
            "EBPFCTL_LOST_COUNTER(execs);\nEBPFCTL_CGROUP_FILTER;",
        )
        .replace(
            "\tstruct exec_event *e = ebpfctl_reserve",
            "\tif (!ebpfctl_cgroup_passes(bpf_get_current_cgroup_id()))\n\t\treturn 0;\n\tstruct exec_event *e = ebpfctl_reserve",
        )
}

/// `ebpfctl run --container NAME`: in the kernel, only the named container's events pass,
/// including those of a container that starts after the run (found within a second); the
/// host's and another container's execs never reach the output.
#[test]
fn runner_container_filter_in_the_kernel() {
    root();
    rootfs();
    let src = filtered_probe();
    assert!(src.contains("ebpfctl_cgroup_passes"), "{src}");
    let obj = common::build_source("cgroup_exec_filtered", &src);
    let obj = obj.to_str().unwrap();
    let name = format!("ebpfctl-runf-{}", hex(8));
    let other = format!("ebpfctl-runo-{}", hex(8));
    let run = Run::start(&[
        "run",
        obj,
        "-o",
        "json",
        "--containers",
        "--container",
        &name,
    ]);
    let err = run.stderr().join("\n");
    assert!(err.contains("no running container matches"), "{err}");
    let script = "cat /etc/greeting >/dev/null; sleep 2; cat /etc/greeting; sleep 0.5";
    let c = Podman::run(&name, &["/bin/sh", "-c", script]);
    let o = Podman::run(&other, &["/bin/sh", "-c", script]);
    for _ in 0..3 {
        common::target_as("ebpfctl-runf-h", &["getppid"]);
    }
    c.wait();
    o.wait();
    let v = run.wait_json("execs of the named container", |v| {
        v.iter().any(|e| e["container"]["name"] == name.as_str())
    });
    // Both containers are gone: within two walks their verdicts are too, only the default
    // (key 0) stays in the map.
    let filter = verdict_map_of(run.pid());
    let deadline = Instant::now() + patient(Duration::from_secs(5));
    loop {
        let keys = map_keys(filter);
        if keys == [0] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "verdicts of exited containers stay in the filter map: {keys:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (st, out, err) = run.stop();
    assert!(st.success(), "{err:?}");
    let all = common::parse_lines(&out);
    assert!(all.len() >= v.len());
    for e in &all {
        assert_eq!(
            e["container"]["name"],
            name.as_str(),
            "an event outside --container {name} passed: {e}"
        );
    }
}

/// The id of the container filter map a process holds.
fn verdict_map_of(pid: u32) -> u32 {
    let held = common::bpf::Held::of(pid);
    (held.maps.iter().copied())
        .find(|&id| common::bpf::describe(common::bpf::Kind::Map, id).contains("\"ebpfctl_cgroup_"))
        .unwrap_or_else(|| panic!("pid {pid} holds no ebpfctl_cgroup_filter map: {held:?}"))
}

/// The keys of a `u64`-keyed hash map, by bpftool.
fn map_keys(id: u32) -> Vec<u64> {
    let o = Command::new("bpftool")
        .args(["-j", "map", "dump", "id", &id.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut keys: Vec<u64> = (v.as_array().unwrap().iter())
        .map(|e| {
            let bytes: Vec<u8> = (e["key"].as_array().unwrap().iter())
                .map(|b| {
                    u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
                })
                .collect();
            u64::from_ne_bytes(bytes.try_into().unwrap())
        })
        .collect();
    keys.sort();
    keys
}

/// `run --container` on an object without the filter map: one line naming what to add,
/// before anything is loaded.
#[test]
fn runner_container_filter_needs_the_map() {
    let obj = common::build_source("cgroup_exec", CGROUP_PROBE);
    let mark = common::bpf::Mark::now();
    let o = common::ebpfctl(&["run", obj.to_str().unwrap(), "--container", "x"]);
    common::assert_one_line_error(&o, "declare EBPFCTL_CGROUP_FILTER");
    mark.assert_nothing_left("run --container without the map", &["on_exec"]);
}

/// Empty container filters are refused in one line, before anything is loaded.
#[test]
fn bad_container_flags() {
    for (tool, args, want) in [
        (
            "execsnoop",
            &["--container", ""][..],
            "--container: expected a container name or id",
        ),
        ("opensnoop", &["--pod", " "][..], "--pod: expected a name"),
        (
            "observe",
            &["--namespace", "", "/bin/true"][..],
            "--namespace: expected a name",
        ),
    ] {
        let mut all = vec![tool];
        all.extend_from_slice(args);
        let mark = common::bpf::Mark::now();
        let o = common::ebpfctl(&all);
        common::assert_one_line_error(&o, want);
        mark.assert_nothing_left(
            &format!("ebpfctl {all:?}"),
            &[
                "esnp_exec",
                "esnp_enter_exec",
                "osnp_enter_open",
                "osnp_exit_open",
            ],
        );
    }
}
