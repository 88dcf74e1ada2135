//! `ebpfctl push` / `pull` / `image ...` / `run REF` against a real OCI registry (Debian's
//! docker-registry on a loopback port), checked with skopeo; the store read by skopeo; bad
//! input. Needs root, docker-registry, skopeo, script (util-linux).
mod common;
mod killer;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ebpfctl_oci::format::sha256_digest;
use serde_json::Value;

/// A docker-registry serving a fresh storage directory on a free loopback port; killed (and
/// its directory removed) on drop.
struct Registry {
    child: Child,
    dir: PathBuf,
    host: String,
    port: u16,
    /// HTTPS (self-signed) rather than plain HTTP.
    tls: bool,
}

impl Registry {
    fn start(name: &str) -> Registry {
        Self::start_with(name, None, false)
    }

    /// With `(user, password)`: basic auth from an htpasswd file (bcrypt). With `tls`: HTTPS
    /// with a fresh self-signed certificate for 127.0.0.1.
    fn start_with(name: &str, user: Option<(&str, &str)>, tls: bool) -> Registry {
        Self::start_on("127.0.0.1", name, user, tls)
    }

    /// As [`Registry::start_with`], listening on `host` (an address of this machine).
    fn start_on(host: &str, name: &str, user: Option<(&str, &str)>, tls: bool) -> Registry {
        let dir = tmp().join(format!("oci-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let port = free_port_on(host);
        let config = dir.join("config.yml");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {host}:{port}\n",
            dir.join("data").display()
        );
        if let Some((user, password)) = user {
            let htpasswd = dir.join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{}\n", bcrypt(password))).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if tls {
            // A throwaway CA (ca.pem, what SSL_CERT_FILE can trust) and a server certificate
            // it signs for `host` (webpki refuses a CA certificate as the server's own).
            let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
            let (csr, cert, key) = (
                dir.join("req.pem"),
                dir.join("cert.pem"),
                dir.join("key.pem"),
            );
            let ext = dir.join("ext.cnf");
            std::fs::write(
                &ext,
                format!("basicConstraints=CA:FALSE\nsubjectAltName=IP:{host}\n"),
            )
            .unwrap();
            let ec = [
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ];
            let p = |p: &PathBuf| p.to_str().unwrap().to_string();
            for args in [
                [
                    &["req", "-x509"][..],
                    &ec,
                    &["-days", "1", "-subj", "/CN=ebpfctl test CA"],
                ]
                .concat()
                .iter()
                .map(|s| s.to_string())
                .chain(["-keyout".into(), p(&ca_key), "-out".into(), p(&ca)])
                .collect::<Vec<_>>(),
                [&["req"][..], &ec, &["-subj", &format!("/CN={host}")]]
                    .concat()
                    .iter()
                    .map(|s| s.to_string())
                    .chain(["-keyout".into(), p(&key), "-out".into(), p(&csr)])
                    .collect(),
                ["x509", "-req", "-days", "1", "-in"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain([p(&csr), "-CA".into(), p(&ca), "-CAkey".into(), p(&ca_key)])
                    .chain(["-CAcreateserial".into(), "-extfile".into(), p(&ext)])
                    .chain(["-out".into(), p(&cert)])
                    .collect(),
            ] {
                let o = Command::new("openssl")
                    .args(&args)
                    .current_dir(&dir)
                    .output()
                    .expect("openssl is needed by this test");
                assert!(
                    o.status.success(),
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry; scripts/setup.sh --test) is needed by this test");
        let mut reg = Registry {
            child,
            dir,
            host: host.to_string(),
            port,
            tls,
        };
        let deadline = Instant::now() + patient(Duration::from_secs(10));
        while TcpStream::connect((host, port)).is_err() {
            if let Ok(Some(st)) = reg.child.try_wait() {
                panic!("docker-registry exited ({st}) on port {port}");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        reg
    }

    fn reference(&self, repo_tag: &str) -> String {
        format!("{}:{}/{repo_tag}", self.host, self.port)
    }

    /// The flag that reaches it: `--plain-http`, or `--tls-no-verify` for its self-signed
    /// certificate.
    fn flag(&self) -> &'static str {
        if self.tls {
            "--tls-no-verify"
        } else {
            "--plain-http"
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A bcrypt hash (cost 4: the registry checks it on every request) from libxcrypt via python3.
fn bcrypt(password: &str) -> String {
    let o = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))",
            password,
        ])
        .output()
        .expect("python3 is needed by this test");
    let hash = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(
        o.status.success() && hash.starts_with("$2"),
        "bcrypt via python3 crypt failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    hash
}

/// A loopback port nothing listens on (bound by the kernel's choice, then released).
fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

fn free_port_on(host: &str) -> u16 {
    TcpListener::bind((host, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An IPv4 address of this machine that is not loopback (fails loudly without one).
fn non_loopback_ipv4() -> String {
    let mut found = None;
    // SAFETY: getifaddrs fills a list we only read and free with freeifaddrs.
    unsafe {
        let mut ifs: *mut libc::ifaddrs = std::ptr::null_mut();
        assert_eq!(libc::getifaddrs(&mut ifs), 0, "getifaddrs failed");
        let mut cur = ifs;
        while !cur.is_null() {
            let a = (*cur).ifa_addr;
            if found.is_none() && !a.is_null() && (*a).sa_family as i32 == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && !ip.is_unspecified() {
                    found = Some(ip.to_string());
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(ifs);
    }
    found.expect("this test needs an IPv4 address that is not loopback (none is configured)")
}

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("skopeo (apt-get install skopeo; scripts/setup.sh --test) is needed by this test")
}

/// `skopeo inspect --raw [--config]`: the exact bytes the registry serves.
fn inspect_raw(reference: &str, config: bool) -> Vec<u8> {
    let url = format!("docker://{reference}");
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    if config {
        args.push("--config");
    }
    args.push(&url);
    let o = skopeo(&args);
    assert!(
        o.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// This test process's own data directory (its store): never the real user's.
fn data_home() -> PathBuf {
    let d = tmp().join(format!("oci-data-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `ebpfctl ARGS` with the store in [`data_home`] (shadows the harness's own).
fn ebpfctl(args: &[&str]) -> Output {
    ebpfctl_env(args, &[])
}

fn ebpfctl_env(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .env("XDG_DATA_HOME", data_home());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn push(reg: &Registry, obj: &Path, repo_tag: &str, extra: &[&str]) -> String {
    let r = reg.reference(repo_tag);
    let mut args = vec!["push", obj.to_str().unwrap(), &r, reg.flag()];
    args.extend_from_slice(extra);
    ok(&ebpfctl(&args), "ebpfctl push")
}

/// Copies a hand-made OCI image (one config, one layer) into the registry with skopeo.
fn skopeo_push_image(
    reg: &Registry,
    repo_tag: &str,
    artifact_type: Option<&str>,
    config: (&str, &[u8]),
    layer: (&str, &[u8]),
) {
    let layout = reg
        .dir
        .join(format!("layout-{}", repo_tag.replace([':', '/'], "-")));
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let blob = |data: &[u8]| -> Value {
        let d = sha256_digest(data);
        std::fs::write(blobs.join(&d[7..]), data).unwrap();
        serde_json::json!({"digest": d, "size": data.len()})
    };
    let mut cfg = blob(config.1);
    cfg["mediaType"] = config.0.into();
    let mut lay = blob(layer.1);
    lay["mediaType"] = layer.0.into();
    let mut manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cfg,
        "layers": [lay],
    });
    if let Some(a) = artifact_type {
        manifest["artifactType"] = a.into();
    }
    let mut m = blob(&serde_json::to_vec(&manifest).unwrap());
    m["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    m["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "v1"});
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [m]})).unwrap(),
    )
    .unwrap();
    let src = format!("oci:{}:v1", layout.display());
    let dst = format!("docker://{}", reg.reference(repo_tag));
    let o = skopeo(&["copy", "--dest-tls-verify=false", &src, &dst]);
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn scratch(name: &str) -> PathBuf {
    let d = tmp().join(format!("oci-scratch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn push_inspect_pull_roundtrip() {
    let reg = Registry::start("roundtrip");
    let obj = example("exec_print");
    let src = repo().join("examples/exec_print.bpf.c");
    let digest = push(
        &reg,
        &obj,
        "probes/exec:v1",
        &["--source", src.to_str().unwrap()],
    );
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "digest: {digest}"
    );

    // What the registry serves, as a third-party client sees it.
    let r = reg.reference("probes/exec:v1");
    let raw = inspect_raw(&r, false);
    assert_eq!(
        sha256_digest(&raw),
        digest,
        "printed digest is the manifest's"
    );
    let m: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["artifactType"], "application/vnd.ebpfctl.probe.v1");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.ebpfctl.probe.config.v1+json"
    );
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{m}");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.ebpfctl.probe.object.v1+elf"
    );
    assert_eq!(
        layers[0]["annotations"]["org.opencontainers.image.title"],
        "exec_print.bpf.o"
    );
    assert_eq!(
        layers[1]["mediaType"],
        "application/vnd.ebpfctl.probe.source.v1+c"
    );
    let obj_bytes = std::fs::read(&obj).unwrap();
    assert_eq!(layers[0]["digest"], sha256_digest(&obj_bytes).as_str());
    assert_eq!(
        layers[1]["digest"],
        sha256_digest(&std::fs::read(&src).unwrap()).as_str()
    );
    let ann = &m["annotations"];
    assert_eq!(ann["org.opencontainers.image.title"], "exec_print");
    assert_eq!(ann["org.opencontainers.image.version"], "v1");
    assert_eq!(ann["org.opencontainers.image.licenses"], "GPL");
    assert!(ann["org.opencontainers.image.created"]
        .as_str()
        .unwrap()
        .starts_with("20"));

    // The config blob describes the probe.
    let cfg: Value = serde_json::from_slice(&inspect_raw(&r, true)).unwrap();
    assert_eq!(cfg["name"], "exec_print");
    assert_eq!(cfg["ebpfctlVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(cfg["license"], "GPL");
    assert_eq!(
        cfg["programs"][0],
        serde_json::json!({"name": "exec_print", "section": "tracepoint/sched/sched_process_exec", "attach": "tracepoint"})
    );
    assert_eq!(
        cfg["maps"][0],
        serde_json::json!({"name": "execs", "type": "ringbuf", "keyword": "print"})
    );
    assert!(cfg["architecture"].as_str().unwrap().len() > 2, "{cfg}");

    // Pull to a file: the same bytes.
    let dir = scratch("roundtrip");
    let out = dir.join("pulled.o");
    let printed = ok(
        &ebpfctl(&["pull", &r, "--plain-http", "--out", out.to_str().unwrap()]),
        "ebpfctl pull --out",
    );
    assert_eq!(printed, out.display().to_string());
    assert_eq!(std::fs::read(&out).unwrap(), obj_bytes);

    // Pull into a store of its own (by digest this time), twice: the second finds it all there.
    let data = dir.join("data");
    let by_digest = reg.reference(&format!("probes/exec@{digest}"));
    let env = [("XDG_DATA_HOME", data.as_path())];
    let o = ebpfctl_env(&["pull", &by_digest, "--plain-http"], &env);
    let path = ok(&o, "ebpfctl pull (store)");
    let want = data
        .join("ebpfctl/store/blobs/sha256")
        .join(&sha256_digest(&obj_bytes)[7..]);
    assert_eq!(path, want.display().to_string());
    assert_eq!(std::fs::read(&want).unwrap(), obj_bytes);
    let o = ebpfctl_env(&["pull", &by_digest, "--plain-http"], &env);
    assert_eq!(ok(&o, "ebpfctl pull (stored)"), path);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already in the store"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // SOURCE_DATE_EPOCH makes pushes reproducible: same inputs, same digest.
    let epoch = [("SOURCE_DATE_EPOCH", Path::new("1700000000"))];
    let r2 = reg.reference("probes/exec:repro");
    let twice: Vec<String> = (0..2)
        .map(|_| {
            ok(
                &ebpfctl_env(
                    &["push", obj.to_str().unwrap(), &r2, "--plain-http"],
                    &epoch,
                ),
                "push with SOURCE_DATE_EPOCH",
            )
        })
        .collect();
    assert_eq!(twice[0], twice[1]);
    let m: Value = serde_json::from_slice(&inspect_raw(&r2, false)).unwrap();
    assert_eq!(
        m["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );

    // A corrupted blob in the store is not trusted: pulled again.
    std::fs::write(&want, b"garbage").unwrap();
    ok(
        &ebpfctl_env(&["pull", &by_digest, "--plain-http"], &env),
        "pull over a bad cache entry",
    );
    assert_eq!(std::fs::read(&want).unwrap(), obj_bytes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_straight_from_the_registry() {
    let reg = Registry::start("run");
    let obj = example("exec_print");
    push(&reg, &obj, "probe:v1", &[]);
    let r = reg.reference("probe:v1");
    let dir = scratch("run");
    let run = Run::start_with_env(
        &[
            "run",
            &r, // a loopback registry: plain HTTP without a flag
            "-o",
            "json",
            "--duration",
            "2",
        ],
        &[("XDG_DATA_HOME", dir.display().to_string())],
    );
    let pid = target(&["getppid", "1"]);
    let lines = run.wait_json("the exec event", |v| v.iter().any(|e| e["pid"] == pid));
    let e = lines.iter().find(|e| e["pid"] == pid).unwrap();
    assert_eq!(e["_map"], "execs");
    assert_eq!(e["comm"], "ebpfctl-example");
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    // It ran the cached copy of the pushed object.
    // It ran the object it pulled into its store (not the pusher's).
    let stored = dir
        .join("ebpfctl/store/blobs/sha256")
        .join(&sha256_digest(&std::fs::read(&obj).unwrap())[7..]);
    assert!(stored.exists(), "{stored:?}");
    let index = std::fs::read_to_string(dir.join("ebpfctl/store/index.json")).unwrap();
    assert!(index.contains(&format!("\"{r}\"")), "{index}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_gets_one_line() {
    let reg = Registry::start("bad");

    // Not a BPF object: refused before anything reaches the registry.
    let readme = repo().join("README.md");
    let r = reg.reference("bad:v1");
    let o = ebpfctl(&["push", readme.to_str().unwrap(), &r, "--plain-http"]);
    assert_one_line_error(&o, "not a valid BPF object");
    assert!(
        !skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{r}")
        ])
        .status
        .success(),
        "a refused object reached the registry"
    );
    let o = ebpfctl(&["push", "/nonexistent/probe.o", &r, "--plain-http"]);
    assert_one_line_error(&o, "cannot read /nonexistent/probe.o");
    let obj = example("exec_print");
    let o = ebpfctl(&["push", obj.to_str().unwrap(), "Not A Ref", "--plain-http"]);
    assert_one_line_error(&o, "invalid image reference");
    let by_digest = reg.reference(&format!("bad@{}", sha256_digest(b"x")));
    let o = ebpfctl(&["push", obj.to_str().unwrap(), &by_digest, "--plain-http"]);
    assert_one_line_error(&o, "not a digest");

    // A tag or repository that does not exist.
    push(&reg, &obj, "probe:v1", &[]);
    let o = ebpfctl(&["pull", &reg.reference("probe:nope"), "--plain-http"]);
    assert_one_line_error(&o, "not found in the registry");
    let o = ebpfctl(&["pull", &reg.reference("nothing:v1"), "--plain-http"]);
    assert_one_line_error(&o, "not found in the registry");
    let o = ebpfctl(&[
        "run",
        &reg.reference("probe:nope"),
        "--plain-http",
        "--duration",
        "1",
    ]);
    assert_one_line_error(&o, "not found in the registry");

    // A container image, not a probe: refused, naming what it is.
    skopeo_push_image(
        &reg,
        "plain:v1",
        None,
        (
            "application/vnd.oci.image.config.v1+json",
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        ),
        ("application/vnd.oci.image.layer.v1.tar", &[0u8; 1024]),
    );
    let o = ebpfctl(&["pull", &reg.reference("plain:v1"), "--plain-http"]);
    assert_one_line_error(
        &o,
        "is not an ebpfctl probe: config media type application/vnd.oci.image.config.v1+json",
    );
    // Another artifact type.
    skopeo_push_image(
        &reg,
        "other:v1",
        Some("application/vnd.example.thing.v1"),
        ("application/vnd.oci.empty.v1+json", b"{}"),
        ("application/octet-stream", b"hello"),
    );
    let o = ebpfctl(&["pull", &reg.reference("other:v1"), "--plain-http"]);
    assert_one_line_error(
        &o,
        "is not an ebpfctl probe: artifact type application/vnd.example.thing.v1",
    );
    // Our artifact type around something that is not a BPF object.
    skopeo_push_image(
        &reg,
        "liar:v1",
        Some("application/vnd.ebpfctl.probe.v1"),
        (
            "application/vnd.ebpfctl.probe.config.v1+json",
            br#"{"name":"x"}"#,
        ),
        ("application/vnd.ebpfctl.probe.object.v1+elf", b"not an elf"),
    );
    let dir = scratch("bad");
    let out = dir.join("liar.o");
    let o = ebpfctl(&[
        "pull",
        &reg.reference("liar:v1"),
        "--plain-http",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "not a valid BPF object");
    assert!(!out.exists(), "a bad object was written");

    // Nothing listening; and HTTPS to a plain-HTTP registry (with the hint).
    let dead = format!("127.0.0.1:{}/probe:v1", free_port());
    let o = ebpfctl(&["pull", &dead, "--plain-http"]);
    assert_one_line_error(&o, "cannot connect to registry");
    let o = ebpfctl(&["push", obj.to_str().unwrap(), &dead, "--plain-http"]);
    assert_one_line_error(&o, "cannot connect to registry");
    let o = ebpfctl(&["pull", &reg.reference("probe:v1"), "--plain-http=false"]);
    assert_one_line_error(
        &o,
        "the registry answered without TLS: if it has no HTTPS, pass --plain-http",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bumblebee_images_are_accepted() {
    let reg = Registry::start("bee");
    let obj = example("exec_print");
    let bytes = std::fs::read(&obj).unwrap();
    skopeo_push_image(
        &reg,
        "bee:v1",
        None,
        (
            "application/ebpf.oci.image.config.v1+json",
            br#"{"description":"a bee probe"}"#,
        ),
        ("application/ebpf.oci.image.program.v1+binary", &bytes),
    );
    let dir = scratch("bee");
    let out = dir.join("bee.o");
    ok(
        &ebpfctl(&[
            "pull",
            &reg.reference("bee:v1"),
            "--plain-http",
            "-o",
            out.to_str().unwrap(),
        ]),
        "pull a bumblebee image",
    );
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    // And it runs straight from the registry.
    let r = reg.reference("bee:v1");
    let run = Run::start_with_env(
        &["run", &r, "-o", "json"],
        &[("XDG_DATA_HOME", dir.join("data").display().to_string())],
    );
    let pid = target(&["getppid", "1"]);
    run.wait_json("the exec event", |v| v.iter().any(|e| e["pid"] == pid));
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A warning line, then the one-line error.
fn assert_warning_then_error(o: &Output, warning: &str, error: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "expected a warning and an error:\n{err}");
    assert!(
        lines[0].starts_with("ebpfctl: warning:") && lines[0].contains(warning),
        "expected warning {warning:?}: {err}"
    );
    assert!(
        lines[1].starts_with("ebpfctl: error:") && lines[1].contains(error),
        "expected error {error:?}: {err}"
    );
}

/// Asserts a success whose stderr warns that a password crosses plain HTTP.
fn ok_warned(o: &Output, what: &str, warning: &str) -> String {
    let out = ok(o, what);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("ebpfctl: warning:") && l.contains(warning)),
        "{what}: expected warning {warning:?}:\n{err}"
    );
    out
}

const PLAIN_LOOPBACK: &str = "the password of alice for 127.0.0.1:";
const STAYS_HERE: &str = "goes over plain HTTP, unencrypted (loopback: it stays on this machine)";

#[test]
fn credentials_from_flags_or_environment() {
    let reg = Registry::start_with("auth", Some(("alice", "s3cret")), false);
    let obj = example("exec_print");
    let o = obj.to_str().unwrap();
    let r = reg.reference("private:v1");
    // No credentials: one line saying so. Wrong ones: a warning that the password crosses
    // plain HTTP (loopback here), then the error.
    let out = ebpfctl(&["push", o, &r, "--plain-http"]);
    assert_one_line_error(&out, "access denied by the registry");
    let out = ebpfctl(&[
        "push",
        o,
        &r,
        "--plain-http",
        "-u",
        "alice",
        "--password",
        "wrong",
    ]);
    assert_warning_then_error(&out, STAYS_HERE, "access denied by the registry");
    // Flags for push, environment for pull.
    ok_warned(
        &ebpfctl(&[
            "push",
            o,
            &r,
            "--plain-http",
            "--username",
            "alice",
            "--password",
            "s3cret",
        ]),
        "push with credentials",
        PLAIN_LOOPBACK,
    );
    let dir = scratch("auth");
    let file = dir.join("p.o");
    let f = file.to_str().unwrap();
    let out = ebpfctl(&["pull", &r, "-o", f]);
    assert_one_line_error(&out, "access denied by the registry");
    let out = Command::new(bin())
        .args(["pull", &r, "-o", f])
        .env("XDG_DATA_HOME", data_home())
        .env("EBPFCTL_REGISTRY_USER", "alice")
        .env("EBPFCTL_REGISTRY_PASSWORD", "s3cret")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok_warned(
        &out,
        "pull with credentials from the environment",
        STAYS_HERE,
    );
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&obj).unwrap());
    // A login saved by `skopeo login` (the auth.json of podman, docker's config.json format).
    let authfile = dir.join("auth.json");
    let registry = r.split('/').next().unwrap();
    let o = skopeo(&[
        "login",
        "--tls-verify=false",
        "--authfile",
        authfile.to_str().unwrap(),
        "-u",
        "alice",
        "-p",
        "s3cret",
        registry,
    ]);
    assert!(
        o.status.success(),
        "skopeo login: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::remove_file(&file).unwrap();
    let out = ebpfctl_env(
        &["pull", &r, "--plain-http", "-o", f],
        &[("REGISTRY_AUTH_FILE", authfile.as_path())],
    );
    ok_warned(&out, "pull with a saved login", STAYS_HERE);
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&obj).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn self_signed_https_needs_tls_no_verify() {
    let reg = Registry::start_with("tls", None, true);
    let obj = example("exec_print");
    let o = obj.to_str().unwrap();
    let r = reg.reference("probe:v1");
    // Loopback: plain HTTP by default, which this registry refuses, with the way out.
    let out = ebpfctl(&["push", o, &r]);
    assert_one_line_error(&out, "plain HTTP reached a registry that speaks HTTPS: pass --plain-http=false, or --tls-no-verify");
    // Verified HTTPS refuses the certificate, in one line with the way out.
    let out = ebpfctl(&["push", o, &r, "--plain-http=false"]);
    assert_one_line_error(
        &out,
        "its certificate is not trusted: add its CA with SSL_CERT_FILE, or pass --tls-no-verify",
    );
    // Trusting it through SSL_CERT_FILE: verified HTTPS works.
    let out = ebpfctl_env(
        &["push", o, &r, "--plain-http=false"],
        &[("SSL_CERT_FILE", reg.dir.join("ca.pem").as_path())],
    );
    ok(&out, "push over verified HTTPS");
    // --tls-no-verify: HTTPS without certificate checks.
    let digest = push(&reg, &obj, "probe:v1", &[]);
    let dir = scratch("tls");
    let out = dir.join("p.o");
    let printed = ok(
        &ebpfctl(&["pull", &r, "--tls-no-verify", "-o", out.to_str().unwrap()]),
        "pull over self-signed HTTPS",
    );
    assert_eq!(printed, out.display().to_string());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&obj).unwrap());
    let o = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{r}"),
    ]);
    assert_eq!(sha256_digest(&o.stdout), digest);
    // Both at once contradict each other.
    let both = ebpfctl(&["pull", &r, "--plain-http", "--tls-no-verify"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plain_http_off_loopback_only_when_asked_and_passwords_are_announced() {
    let host = non_loopback_ipv4();
    let reg = Registry::start_on(&host, "offloop", Some(("alice", "s3cret")), false);
    let obj = example("exec_print");
    let o = obj.to_str().unwrap();
    let r = reg.reference("probe:v1");
    let creds = ["-u", "alice", "--password", "s3cret"];
    // Not loopback: HTTPS unless told otherwise, and no fallback to plain HTTP, verified or not.
    for flags in [&[][..], &["--tls-no-verify"][..]] {
        let mut args = vec!["push", o, &r];
        args.extend_from_slice(flags);
        args.extend_from_slice(&creds);
        let out = ebpfctl(&args);
        assert_one_line_error(&out, "pass --plain-http");
    }
    let out = ebpfctl(&["pull", &r]);
    assert_one_line_error(&out, "pass --plain-http");
    // --plain-http: it works, and the password crossing the network in clear is announced.
    let mut args = vec!["push", o, &r, "--plain-http"];
    args.extend_from_slice(&creds);
    let anyone = "goes over plain HTTP, unencrypted; anyone on the path can read it";
    ok_warned(&ebpfctl(&args), "push over plain HTTP", anyone);
    let dir = scratch("offloop");
    let out = dir.join("p.o");
    let mut args = vec!["pull", &r, "--plain-http", "-o", out.to_str().unwrap()];
    args.extend_from_slice(&creds);
    ok_warned(&ebpfctl(&args), "pull over plain HTTP", anyone);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&obj).unwrap());
    // Anonymous: no password, no warning (the registry refuses us).
    let o2 = ebpfctl(&["pull", &r, "--plain-http", "-o", out.to_str().unwrap()]);
    assert_one_line_error(&o2, "access denied by the registry");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn insecure_is_gone_with_a_pointer_to_its_replacements() {
    let obj = example("exec_print");
    for args in [
        vec![
            "push",
            obj.to_str().unwrap(),
            "127.0.0.1:1/p:v1",
            "--insecure",
        ],
        vec!["pull", "127.0.0.1:1/p:v1", "--insecure"],
        vec!["run", "127.0.0.1:1/p:v1", "--insecure-registry"],
    ] {
        let o = ebpfctl(&args);
        assert_one_line_error(&o, "--plain-http for a registry without TLS");
        assert!(String::from_utf8_lossy(&o.stderr).contains("--tls-no-verify"));
    }
}

#[test]
fn a_pulled_probe_with_unsafe_helpers_needs_the_flag() {
    let reg = Registry::start("unsafe");
    push(&reg, &killer::killer(), "killer:v1", &[]);
    let r = reg.reference("killer:v1");
    let dir = scratch("unsafe");
    let env = [("XDG_DATA_HOME", dir.display().to_string())];
    let comm = format!("ocikill{}", std::process::id() % 100000);
    let param = format!("target_comm={comm}");
    let out = Command::new(bin())
        .args(["run", &r, "--param", &param, "--duration", "5"])
        .env("XDG_DATA_HOME", &dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_one_line_error(
        &out,
        "program kill_target (tracepoint/syscalls/sys_enter_getppid) calls bpf_send_signal (sends signals, SIGKILL included, to the traced process): refused",
    );
    let target = killer::target_named(&comm);
    assert!(killer::run_target(&target).success());
    let run = Run::start_with_env(
        &[
            "run",
            &r,
            "--allow-unsafe-helpers",
            "--param",
            &param,
            "-o",
            "json",
        ],
        &env,
    );
    let st = killer::run_target(&target);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        st.signal(),
        Some(9),
        "the pulled probe should have killed it: {st}"
    );
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{p:?}: {e}")))
        .unwrap_or_else(|e| panic!("{p:?}: {e}"))
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The store is an OCI image layout: skopeo reads it, both ways; list, tag, rm, push from
/// the store; `inspect REF` and `run REF` read the store before any registry.
#[test]
fn the_store_is_an_oci_layout_and_comes_first() {
    let reg = Registry::start("store");
    let obj = example("exec_print");
    let bytes = std::fs::read(&obj).unwrap();
    let dir = scratch("store");
    let store = dir.join("store");
    let st = store.to_str().unwrap();
    let r = reg.reference("probes/exec:v1");
    let digest = ok(
        &ebpfctl(&["image", "push", obj.to_str().unwrap(), &r, "--store", st]),
        "image push OBJECT REF",
    );

    // The layout: oci-layout, index.json naming the full reference, blobs by digest; private.
    assert_eq!(
        read_json(&store.join("oci-layout")),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );
    let index = read_json(&store.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    let entry = &index["manifests"][0];
    assert_eq!(entry["digest"], digest.as_str());
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        r.as_str()
    );
    assert_eq!(entry["platform"]["architecture"], "amd64");
    assert_eq!(mode(&store), 0o700);
    assert_eq!(mode(&store.join("blobs/sha256")), 0o700);
    assert_eq!(mode(&store.join("index.json")), 0o600);
    let blob = store.join("blobs/sha256").join(&sha256_digest(&bytes)[7..]);
    assert_eq!(mode(&blob), 0o600);
    assert_eq!(std::fs::read(&blob).unwrap(), bytes);

    // skopeo reads it: into a directory (byte-identical manifest), and into the registry.
    let out = dir.join("copied");
    let o = skopeo(&[
        "copy",
        &format!("oci:{st}:{r}"),
        &format!("dir:{}", out.display()),
    ]);
    assert!(
        o.status.success(),
        "skopeo copy oci: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        sha256_digest(&std::fs::read(out.join("manifest.json")).unwrap()),
        digest
    );
    assert_eq!(
        std::fs::read(out.join(&sha256_digest(&bytes)[7..])).unwrap(),
        bytes
    );
    let copied = reg.reference("probes/copied:v1");
    let o = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{st}:{r}"),
        &format!("docker://{copied}"),
    ]);
    assert!(
        o.status.success(),
        "skopeo copy to the registry: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(sha256_digest(&inspect_raw(&copied, false)), digest);

    // list: table and JSON.
    let table = ok(&ebpfctl(&["image", "list", "--store", st]), "image list");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("REFERENCE") && lines[0].contains("ARCH"),
        "{table}"
    );
    assert!(
        lines[1].starts_with(&r) && lines[1].contains(&digest[7..19]),
        "{table}"
    );
    let list: Value = serde_json::from_str(&ok(
        &ebpfctl(&["image", "list", "-o", "json", "--store", st]),
        "image list -o json",
    ))
    .unwrap();
    let e = &list[0];
    assert_eq!(e["reference"], r.as_str());
    assert_eq!(e["digest"], digest.as_str());
    assert_eq!(e["architectures"], serde_json::json!(["amd64"]));
    assert_eq!(e["name"], "exec_print");
    assert_eq!(e["format"], "ebpfctl");
    assert!(e["size"].as_u64().unwrap() > bytes.len() as u64, "{e}");
    assert!(e["created"].as_str().unwrap().starts_with("20"), "{e}");

    // tag, then push the new name from the store (no object given): the same manifest.
    let r2 = reg.reference("probes/renamed:v2");
    ok(
        &ebpfctl(&["image", "tag", &r, &r2, "--store", st]),
        "image tag",
    );
    let d2 = ok(
        &ebpfctl(&["image", "push", &r2, "--store", st]),
        "image push REF",
    );
    assert_eq!(d2, digest);
    assert_eq!(sha256_digest(&inspect_raw(&r2, false)), digest);
    let o = ebpfctl(&["image", "push", &reg.reference("nothing:v1"), "--store", st]);
    assert_one_line_error(&o, "not in the store");

    // describe, from the store and from the registry.
    let d: Value = serde_json::from_str(&ok(
        &ebpfctl(&["image", "describe", &r2, "-o", "json", "--store", st]),
        "image describe (store)",
    ))
    .unwrap();
    assert_eq!(d["source"], "store");
    assert_eq!(
        d["manifests"][0]["config"]["programs"][0]["section"],
        "tracepoint/sched/sched_process_exec"
    );
    assert_eq!(d["manifests"][0]["config"]["maps"][0]["keyword"], "print");
    let text = ok(
        &ebpfctl(&["image", "describe", &copied, "--store", st]),
        "image describe (registry)",
    );
    assert!(text.contains("(from the registry)"), "{text}");
    assert!(
        text.contains("exec_print") && text.contains("execs") && text.contains("print: "),
        "{text}"
    );
    // A bare name the store does not have is not looked up on Docker Hub.
    let o = ebpfctl(&["image", "describe", "no-such-probe", "--store", st]);
    assert_one_line_error(&o, "no-such-probe: not in the store");
    assert_one_line_error(&o, "names no registry");

    // Store first: a name whose registry does not exist still inspects and runs.
    let offline = format!("127.0.0.1:{}/gone/exec:v1", free_port());
    ok(
        &ebpfctl(&["image", "tag", &r, &offline, "--store", st]),
        "image tag offline",
    );
    let o = ebpfctl(&["inspect", &offline, "--store", st]);
    let text = ok(&o, "inspect REF from the store");
    assert!(text.contains("exec_print"), "{text}");
    let run = Run::start_with_env(&["run", &offline, "--store", st, "-o", "json"], &[]);
    let pid = target(&["getppid", "1"]);
    run.wait_json("the exec event", |v| v.iter().any(|e| e["pid"] == pid));
    let (status, _, err) = run.stop();
    assert!(status.success(), "{err:?}");

    // rm: names go, blobs only when nothing names them any more.
    ok(
        &ebpfctl(&["image", "rm", &offline, &r2, "--store", st]),
        "image rm",
    );
    assert!(blob.exists(), "still named {r}");
    ok(
        &ebpfctl(&["image", "rm", &r, "--store", st]),
        "image rm last",
    );
    assert!(
        !blob.exists(),
        "the object should be gone with its last name"
    );
    assert_eq!(
        read_json(&store.join("index.json"))["manifests"],
        serde_json::json!([])
    );
    let o = ebpfctl(&["image", "rm", &r, "--store", st]);
    assert_one_line_error(&o, "not in the store");
    let o = ebpfctl(&["inspect", &offline, "--store", st]);
    assert_one_line_error(&o, "cannot connect to registry");

    // A store another user could change is refused.
    let shared = dir.join("shared");
    std::fs::create_dir(&shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = ebpfctl(&["image", "list", "--store", shared.to_str().unwrap()]);
    assert_one_line_error(&o, "is writable by group or others");
    // The way out named is another --store, not the environment variable it overrides.
    assert_one_line_error(&o, "chmod go-w it, or name another directory of your own");
    let theirs = dir.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let o = ebpfctl(&["image", "list", "--store", theirs.to_str().unwrap()]);
    assert_one_line_error(&o, "store directory");
    assert_one_line_error(&o, "is owned by uid 65534, not by you (uid 0)");
    assert_one_line_error(&o, "remove it, or name another directory of your own");
    assert!(!theirs.join("index.json").exists() && !theirs.join("blobs").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Tells which `__TARGET_ARCH_*` it was built with, in every event (and a parameter).
const ARCH_PROBE: &str = r#"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "ebpfctl.h"

#if defined(bpf_target_arm64)
const volatile int built_for = 64;
#elif defined(bpf_target_x86)
const volatile int built_for = 86;
#else
const volatile int built_for = 0;
#endif

struct arch_event {
	pid pid;
	pid ppid;
	int built_for;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
	__type(value, struct arch_event);
} archs SEC(".maps.print");

SEC("tracepoint/sched/sched_process_exec")
int arch_exec(void *ctx)
{
	struct arch_event *e = bpf_ringbuf_reserve(&archs, sizeof(*e), 0);
	if (!e)
		return 0;
	struct task_struct *task = (void *)bpf_get_current_task();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->built_for = built_for;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"#;

/// `ebpfctl build --arch ARCH` of [`ARCH_PROBE`].
fn build_arch(dir: &Path, arch: Option<&str>) -> PathBuf {
    let src = dir.join("arch_probe.bpf.c");
    std::fs::write(&src, ARCH_PROBE).unwrap();
    let out = dir.join(format!("arch_probe-{}.bpf.o", arch.unwrap_or("host")));
    let mut cmd = Command::new(bin());
    cmd.arg("build").arg(&src).arg("-o").arg(&out);
    if let Some(a) = arch {
        cmd.args(["--arch", a]);
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "ebpfctl build --arch {arch:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `image push --arch x86_64=F --arch arm64=F` writes an image index; skopeo sees both and
/// picks arm64's when asked; `run` and `pull` take this machine's.
#[test]
fn multi_arch_image_index() {
    let reg = Registry::start("multiarch");
    let dir = scratch("multiarch");
    let x86 = build_arch(&dir, None);
    let arm = build_arch(&dir, Some("arm64"));
    assert_ne!(std::fs::read(&x86).unwrap(), std::fs::read(&arm).unwrap());
    let r = reg.reference("probes/arch:v1");
    let arg = |a: &str, p: &Path| format!("{a}={}", p.display());
    let digest = ok(
        &ebpfctl(&[
            "image",
            "push",
            &r,
            "--arch",
            &arg("x86_64", &x86),
            "--arch",
            &arg("arm64", &arm),
        ]),
        "image push --arch",
    );

    let raw = inspect_raw(&r, false);
    assert_eq!(sha256_digest(&raw), digest);
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["artifactType"], "application/vnd.ebpfctl.probe.v1");
    let platforms: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
            (
                m["platform"]["os"].as_str().unwrap().to_string(),
                m["platform"]["architecture"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            ("linux".to_string(), "amd64".to_string()),
            ("linux".to_string(), "arm64".to_string())
        ]
    );
    // skopeo resolves the index for a platform (its non-raw inspect refuses any artifact
    // whose config is not a container image config, so the config is read raw).
    let config_for = |arch: &str| -> Value {
        let o = skopeo(&[
            "inspect",
            "--raw",
            "--config",
            "--tls-verify=false",
            "--override-os",
            "linux",
            "--override-arch",
            arch,
            &format!("docker://{r}"),
        ]);
        assert!(
            o.status.success(),
            "skopeo --override-arch {arch}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let arm_cfg = config_for("arm64");
    assert_eq!(arm_cfg["architecture"], "arm64");
    assert_eq!(arm_cfg["parameters"][0]["name"], "built_for");
    assert_eq!(arm_cfg["parameters"][0]["default"], "64");
    let x86_cfg = config_for("amd64");
    assert_eq!(x86_cfg["architecture"], "amd64");
    assert_eq!(x86_cfg["parameters"][0]["default"], "86");

    // run on this machine picks x86_64's object.
    let data = dir.join("data");
    let run = Run::start_with_env(
        &["run", &r, "-o", "json"],
        &[("XDG_DATA_HOME", data.display().to_string())],
    );
    let pid = target(&["getppid", "1"]);
    let lines = run.wait_json("the exec event", |v| v.iter().any(|e| e["pid"] == pid));
    let e = lines.iter().find(|e| e["pid"] == pid).unwrap();
    assert_eq!(e["built_for"], 86, "{e}");
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");

    // pull picks this machine's, or the one asked for.
    let env = [("XDG_DATA_HOME", data.as_path())];
    let path = ok(&ebpfctl_env(&["pull", &r], &env), "pull an index");
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&x86).unwrap());
    let out = dir.join("arm.o");
    let o = ebpfctl_env(
        &[
            "image",
            "pull",
            &r,
            "--arch",
            "arm64",
            "--out",
            out.to_str().unwrap(),
        ],
        &env,
    );
    ok(&o, "pull --arch arm64");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&arm).unwrap());
    assert!(String::from_utf8_lossy(&o.stderr).contains("built for arm64"));
    let o = ebpfctl_env(&["pull", &r, "--arch", "s390x"], &env);
    assert_one_line_error(
        &o,
        "has no image for s390x (it has: linux/amd64, linux/arm64)",
    );

    // describe from the registry shows both platforms.
    let d: Value = serde_json::from_str(&ok(
        &ebpfctl_env(
            &[
                "image",
                "describe",
                &reg.reference("probes/arch:v1"),
                "-o",
                "json",
                "--store",
                dir.join("empty").to_str().unwrap(),
            ],
            &env,
        ),
        "describe an index",
    ))
    .unwrap();
    assert_eq!(d["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(d["manifests"][1]["platform"]["architecture"], "arm64");
    assert_eq!(d["manifests"][1]["config"]["architecture"], "arm64");

    // Bad --arch values, before anything is sent.
    let o = ebpfctl(&["image", "push", &r, "--arch", &arg("sparc", &x86)]);
    assert_one_line_error(&o, "unknown architecture");
    let o = ebpfctl(&[
        "image",
        "push",
        &r,
        "--arch",
        &arg("x86_64", &x86),
        "--arch",
        &arg("amd64", &x86),
    ]);
    assert_one_line_error(&o, "given twice");
    let o = ebpfctl(&["build", "x.bpf.c", "--arch", "sparc"]);
    assert!(!o.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A credential helper of ours: keeps what `store` is given in a file beside itself and logs
/// each action.
const FAKE_HELPER: &str = r#"#!/bin/sh
here=$(dirname "$0")
echo "$1" >> "$here/helper.log"
case "$1" in
store) cat > "$here/secret.json" ;;
get)
	read url
	echo "$url" >> "$here/helper.log"
	if [ -f "$here/secret.json" ]; then cat "$here/secret.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) read url; rm -f "$here/secret.json" ;;
*) exit 2 ;;
esac
"#;

/// `image login` checks credentials and saves them 0600 in auth.json, or through the
/// credential helper the file names; `image logout` erases them.
#[test]
fn login_logout_and_credential_helpers() {
    let reg = Registry::start_with("login", Some(("alice", "s3cret")), false);
    let obj = example("exec_print");
    let registry = format!("{}:{}", reg.host, reg.port);
    let r = reg.reference("private:v1");
    let dir = scratch("login");
    let auth = dir.join("cfg/auth.json");
    let login = |password: &str, file: &Path, path: Option<&str>| -> Output {
        let mut cmd = Command::new(bin());
        cmd.args([
            "image",
            "login",
            &registry,
            "-u",
            "alice",
            "--password-stdin",
            "--authfile",
        ])
        .arg(file)
        .env("XDG_DATA_HOME", data_home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    // Wrong password: refused by the registry, nothing saved.
    let o = login("wrong", &auth, None);
    assert_warning_then_error(&o, STAYS_HERE, "access denied by the registry");
    assert!(!auth.exists());
    // Right one: saved 0600 as auth.json's base64 user:password, which skopeo reads too.
    ok_warned(&login("s3cret", &auth, None), "image login", STAYS_HERE);
    assert_eq!(mode(&auth), 0o600);
    assert_eq!(mode(&dir.join("cfg")), 0o700);
    let saved = read_json(&auth);
    assert_eq!(saved["auths"][&registry]["auth"], "YWxpY2U6czNjcmV0");
    let o = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--authfile",
        auth.to_str().unwrap(),
        &format!("docker://{r}"),
    ]);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("unauthorized"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // push and pull use it.
    let env = [("REGISTRY_AUTH_FILE", auth.as_path())];
    ok(
        &ebpfctl_env(&["push", obj.to_str().unwrap(), &r], &env),
        "push with a login",
    );
    let f = dir.join("p.o");
    ok(
        &ebpfctl_env(&["pull", &r, "--out", f.to_str().unwrap()], &env),
        "pull with a login",
    );
    // logout erases it; then the registry refuses us again.
    ok(
        &ebpfctl(&[
            "image",
            "logout",
            &registry,
            "--authfile",
            auth.to_str().unwrap(),
        ]),
        "image logout",
    );
    assert_eq!(read_json(&auth)["auths"], serde_json::json!({}));
    let o = ebpfctl_env(&["pull", &r], &env);
    assert_one_line_error(&o, "access denied by the registry");
    let o = ebpfctl(&[
        "image",
        "logout",
        &registry,
        "--authfile",
        auth.to_str().unwrap(),
    ]);
    assert_one_line_error(&o, "not logged in to");

    // With a credential helper configured for the registry, the secret goes to it.
    let bin_dir = dir.join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let helper = bin_dir.join("docker-credential-ebpfctltest");
    write_exe(&helper, FAKE_HELPER);
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let hauth = dir.join("helper-auth.json");
    std::fs::write(
        &hauth,
        format!(r#"{{"credHelpers": {{"{registry}": "ebpfctltest"}}}}"#),
    )
    .unwrap();
    let o = login("s3cret", &hauth, Some(&path));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    ok(&o, "image login with a helper");
    assert!(err.contains("docker-credential-ebpfctltest"), "{err}");
    let secret = read_json(&bin_dir.join("secret.json"));
    assert_eq!(secret["ServerURL"], registry.as_str());
    assert_eq!(secret["Username"], "alice");
    assert_eq!(secret["Secret"], "s3cret");
    let saved = read_json(&hauth);
    assert_eq!(
        saved["auths"][&registry],
        serde_json::json!({}),
        "no secret in the file: {saved}"
    );
    assert_eq!(saved["credHelpers"][&registry], "ebpfctltest");
    let pull = |extra: &[(&str, &str)]| -> Output {
        let mut cmd = Command::new(bin());
        cmd.args(["pull", &r])
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("REGISTRY_AUTH_FILE", &hauth)
            .env("PATH", &path)
            .stdin(Stdio::null());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    ok(&pull(&[]), "pull through the helper");
    let log = std::fs::read_to_string(bin_dir.join("helper.log")).unwrap();
    assert!(
        log.lines().any(|l| l == "get") && log.contains(&registry),
        "{log}"
    );
    let mut cmd = Command::new(bin());
    let o = cmd
        .args(["image", "logout", &registry, "--authfile"])
        .arg(&hauth)
        .env("PATH", &path)
        .output()
        .unwrap();
    ok(&o, "image logout with a helper");
    assert!(!bin_dir.join("secret.json").exists(), "erase was not run");
    assert!(std::fs::read_to_string(bin_dir.join("helper.log"))
        .unwrap()
        .lines()
        .any(|l| l == "erase"));
    assert_one_line_error(&pull(&[]), "access denied by the registry");
    // A helper that is not installed: one line naming it.
    std::fs::write(
        &hauth,
        format!(r#"{{"credHelpers": {{"{registry}": "missing"}}}}"#),
    )
    .unwrap();
    assert_one_line_error(&pull(&[]), "docker-credential-missing is not on PATH");

    // -p is no password any more; an empty stdin is refused.
    let o = ebpfctl(&[
        "push",
        obj.to_str().unwrap(),
        &r,
        "-u",
        "alice",
        "-p",
        "s3cret",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = login("", &auth, None);
    assert_one_line_error(&o, "stdin held no password");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `ebpfctl ARGS` under a pseudo-terminal (`script`); what the terminal showed.
fn under_pty(args: &[&str], env: &[(&str, &Path)]) -> String {
    let line = std::iter::once(bin())
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd
        .output()
        .expect("script (util-linux) is needed by this test");
    assert!(
        o.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Push and pull draw progress bars on a terminal, and nothing of the sort through a pipe.
#[test]
fn progress_bars_only_on_a_terminal() {
    let reg = Registry::start("progress");
    let obj = example("exec_print");
    let dir = scratch("progress");
    let r = reg.reference("probe:v1");
    let (a, b) = (dir.join("a"), dir.join("b"));
    let env = [("XDG_DATA_HOME", a.as_path())];
    let shown = under_pty(&["push", obj.to_str().unwrap(), &r], &env);
    assert!(shown.contains("push exec_print.bpf.o"), "{shown}");
    assert!(
        shown.contains("[=====") && shown.contains("KiB"),
        "no bar: {shown}"
    );
    // Pushed again: the registry has the blobs, and the bars say so.
    let shown = under_pty(&["push", obj.to_str().unwrap(), &r], &env);
    assert!(shown.contains("already in the registry"), "{shown}");
    let env_b = [("XDG_DATA_HOME", b.as_path())];
    let shown = under_pty(&["pull", &r], &env_b);
    assert!(
        shown.contains("pull exec_print.bpf.o") && shown.contains("[====="),
        "{shown}"
    );
    // Through pipes: stderr has the summary line only, stdout the digest / path.
    let o = ebpfctl_env(&["push", obj.to_str().unwrap(), &r], &env);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        !err.contains('\r') && !err.contains('\x1b') && !err.contains("[="),
        "{err:?}"
    );
    let o = ebpfctl_env(&["pull", &r], &[("XDG_DATA_HOME", dir.join("c").as_path())]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains('\r') && !err.contains('\x1b'), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--format bumblebee` writes bumblebee's media types and the names `bee` looks for, in the
/// registry and in a store (bee's own store is an OCI layout too); ebpfctl reads it back with
/// its description.
#[test]
fn bumblebee_format_is_written_for_bee() {
    let reg = Registry::start("beefmt");
    let obj = example("exec_print");
    let bytes = std::fs::read(&obj).unwrap();
    let dir = scratch("beefmt");
    let store = dir.join("bee-store");
    let r = reg.reference("solo/exec:v1");
    ok(
        &ebpfctl(&[
            "image",
            "push",
            &r,
            "--file",
            obj.to_str().unwrap(),
            "--format",
            "bumblebee",
            "--description",
            "execs, one per line",
            "--authors",
            "alice",
            "--store",
            store.to_str().unwrap(),
        ]),
        "push --format bumblebee",
    );
    let m: Value = serde_json::from_slice(&inspect_raw(&r, false)).unwrap();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert!(m.get("artifactType").is_none(), "{m}");
    assert_eq!(
        m["config"]["mediaType"],
        "application/ebpf.oci.image.config.v1+json"
    );
    assert_eq!(
        m["config"]["annotations"]["org.opencontainers.image.title"],
        "config.json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/ebpf.oci.image.program.v1+binary"
    );
    assert_eq!(
        m["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "program.o"
    );
    assert_eq!(m["layers"][0]["digest"], sha256_digest(&bytes).as_str());
    assert_eq!(
        m["annotations"]["org.opencontainers.image.description"],
        "execs, one per line"
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.authors"],
        "alice"
    );
    // The config is JSON (bee's config type is an empty object: any JSON reads) holding ours.
    let cfg: Value = serde_json::from_slice(&inspect_raw(&r, true)).unwrap();
    assert_eq!(cfg["name"], "exec_print");
    // The store entry carries the platform and the full reference, what `bee list` shows.
    let index = read_json(&store.join("index.json"));
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        r.as_str()
    );
    assert_eq!(
        index["manifests"][0]["platform"],
        serde_json::json!({"architecture": "amd64", "os": "linux"})
    );
    // ebpfctl reads it back, description included, and runs it.
    let data = dir.join("data");
    let env = [("XDG_DATA_HOME", data.as_path())];
    let o = ebpfctl_env(&["pull", &r], &env);
    ok(&o, "pull a --format bumblebee image");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exec_print"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let list: Value = serde_json::from_str(&ok(
        &ebpfctl_env(&["image", "list", "-o", "json"], &env),
        "list",
    ))
    .unwrap();
    assert_eq!(list[0]["format"], "bumblebee");
    assert_eq!(list[0]["name"], "exec_print");
    let run = Run::start_with_env(
        &["run", &r, "-o", "json"],
        &[("XDG_DATA_HOME", data.display().to_string())],
    );
    let pid = target(&["getppid", "1"]);
    run.wait_json("the exec event", |v| v.iter().any(|e| e["pid"] == pid));
    let (st, _, err) = run.stop();
    assert!(st.success(), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
