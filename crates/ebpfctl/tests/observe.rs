//! `ebpfctl observe` against real Go programs on the real kernel (run as root).
//!
//! Go programs are built with the oldest (Debian's 1.19) and newest (1.27.3 under
//! /opt/ebpfctl-go) toolchains, normal and stripped (`-s -w`, one of them PIE), and cached
//! in a temp dir keyed by the source, shared by the tests of a run (and later runs). Every
//! live test copies the binary it observes, so concurrent observers never see each other's
//! processes (uprobes fire per file). Live tests run one at a time and check that what each
//! observer loaded is gone from the kernel afterwards.
mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::patient;
use serde_json::Value;

use common::go::{
    cache_dir, client, free_port, go_build, http_get, private_copy, Build, Go, Server, TempCopy,
    ALL_GO,
};

const EBPFCTL: &str = env!("CARGO_BIN_EXE_ebpfctl");

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// Live tests one at a time: they load probes and time requests.
fn live_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running `ebpfctl observe`.
struct Observer {
    child: Child,
    stderr: Receiver<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
    diag: Vec<String>,
    /// What the observer held in the kernel once ready; gone after [`Observer::finish`].
    held: common::bpf::Held,
}

impl Observer {
    fn start(args: &[&str]) -> Observer {
        Self::start_env(args, &[])
    }

    fn start_env(args: &[&str], env: &[(&str, &str)]) -> Observer {
        let mut child = Command::new(EBPFCTL)
            .arg("observe")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ebpfctl");
        let (tx, rx) = channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let mut o = Observer {
            child,
            stderr: rx,
            stdout: Some(stdout),
            diag: Vec::new(),
            held: common::bpf::Held::default(),
        };
        o.wait_diag("observe: ready", patient(Duration::from_secs(30)));
        o.held = common::bpf::Held::of(o.child.id());
        assert!(
            !o.held.progs.is_empty(),
            "observe is ready but holds no program"
        );
        o
    }

    fn wait_diag(&mut self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.diag.iter().find(|l| l.contains(what)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(l) => self.diag.push(l),
                Err(_) => panic!(
                    "observer did not print {what:?} in {timeout:?}; stderr so far: {:#?}",
                    self.diag
                ),
            }
        }
    }

    /// Waits for exit (sending SIGINT first when `interrupt`), checks that what it loaded is
    /// gone, returns (stdout, stderr lines).
    fn finish(mut self, interrupt: bool, timeout: Duration) -> (String, Vec<String>) {
        if interrupt {
            // SAFETY: kill(2) with our own child's pid and a valid signal number.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let out = self.stdout.take().unwrap().join().unwrap();
                while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(200)) {
                    self.diag.push(l);
                }
                assert!(
                    st.success(),
                    "observer failed ({st}); stderr: {:#?}",
                    self.diag
                );
                self.held.assert_gone("ebpfctl observe");
                return (out, std::mem::take(&mut self.diag));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "observer did not stop in {timeout:?}; stderr: {:#?}",
                    self.diag
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn parse_events(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{k} missing or not a string in {v}"))
}
fn n(v: &Value, k: &str) -> i64 {
    v.get(k)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("{k} missing or not a number in {v}"))
}

/// Observes a fresh copy of one build: a server and a client started after the observer,
/// every field of every client and server event checked.
fn check_fields(go: Go, build: Build) {
    let _live = live_lock();
    let built = go_build(go, build, false);
    let name = format!("obs-{:?}-{:?}", go, build).to_lowercase();
    let bin = private_copy(&built, &name);
    let bin_s = bin.to_str().unwrap();
    // 6 client requests (one fails) + 5 server requests (one hijacked).
    let obs = Observer::start(&[bin_s, "-o", "json", "--count", "11", "--poll-ms", "50"]);
    let server = Server::start(&bin, &[("NAME", "backend")]);
    let port = server.port;
    let base = format!("http://127.0.0.1:{port}");
    let dead = free_port();
    let urls = vec![
        format!("{base}/ok?x=1"),
        // Escaped: both sides report the path unescaped, as url.URL.Path has it (the
        // server's from the request line's target, which the probe reads as sent).
        format!("{base}/mis%73ing"),
        format!("{base}/empty"),
        format!("{base}/slow"),
        format!("{base}/hijack"),
        format!("http://127.0.0.1:{dead}/refused"),
    ];
    let (client_pid, said) = client(
        &bin,
        &urls,
        &[("SERVICE_NAME", "frontend"), ("TRACEPARENT", TRACEPARENT)],
    );
    assert_eq!(
        &said[..5],
        &["200 5", "404 4", "200 0", "201 6", "200 3"],
        "client output {said:?}"
    );
    assert!(said[5].contains("connection refused"), "{said:?}");
    let (out, diag) = obs.finish(false, Duration::from_secs(20));
    assert!(
        diag.iter()
            .any(|l| l.contains("11 requests, 0 lost events")),
        "{diag:#?}"
    );
    let events = parse_events(&out);
    assert_eq!(events.len(), 11, "{out}");
    let comm: String = name.chars().take(15).collect();
    let expect = [
        ("/ok", 200, 5),
        ("/missing", 404, 4),
        ("/empty", 200, 0),
        ("/slow", 201, 6),
    ];
    for (path, status, len) in expect {
        for kind in ["client", "server"] {
            let e = events
                .iter()
                .find(|e| s(e, "kind") == kind && s(e, "path") == path)
                .unwrap_or_else(|| panic!("no {kind} event for {path} in {out}"));
            assert_eq!(s(e, "method"), "GET");
            assert_eq!(s(e, "proto"), "HTTP/1.1");
            assert_eq!(s(e, "scheme"), "http");
            assert_eq!(s(e, "host"), format!("127.0.0.1:{port}"));
            let query = if path == "/ok" { "x=1" } else { "" };
            assert_eq!(s(e, "query"), query);
            let url = if query.is_empty() {
                format!("{base}{path}")
            } else {
                format!("{base}{path}?{query}")
            };
            assert_eq!(s(e, "url"), url);
            assert_eq!(n(e, "status"), status, "{e}");
            assert_eq!(n(e, "content_length"), len, "{e}");
            assert_eq!(s(e, "comm"), comm);
            assert!(e["error"].is_null(), "{e}");
            // OpenTelemetry's error.type: a client's 4xx and 5xx, a server's 5xx.
            if kind == "client" && status >= 400 {
                assert_eq!(e["error_type"], status.to_string(), "{e}");
            } else {
                assert!(e["error_type"].is_null(), "{e}");
            }
            assert!(e.get("hijacked").is_none(), "{e}");
            assert!(n(e, "goroutine") > 0);
            assert!(n(e, "tid") > 0);
            let now_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as i64;
            let start = n(e, "start_unix_ns");
            assert!(
                start > now_ns - 120_000_000_000 && start <= now_ns,
                "start_unix_ns {start} vs now {now_ns}"
            );
            let d = n(e, "duration_ns");
            if path == "/slow" {
                assert!(
                    (50_000_000..5_000_000_000).contains(&d),
                    "{kind} {path} took {d} ns"
                );
            } else {
                assert!(
                    (1_000..2_000_000_000).contains(&d),
                    "{kind} {path} took {d} ns"
                );
            }
            if kind == "client" {
                assert_eq!(n(e, "pid"), client_pid as i64);
                assert_eq!(s(e, "service"), format!("{comm}@frontend"));
                assert!(e.get("remote_addr").is_none());
            } else {
                assert_eq!(n(e, "pid"), server.pid() as i64);
                assert_eq!(s(e, "service"), format!("{comm}@backend"));
                assert!(s(e, "remote_addr").starts_with("127.0.0.1:"), "{e}");
                assert_eq!(s(e, "traceparent"), TRACEPARENT);
            }
        }
    }
    // A hijacked connection: the client got the handler's raw response; the server event
    // says so, with no status (the handler wrote none through the ResponseWriter).
    let hijack = |kind: &str| {
        events
            .iter()
            .find(|e| s(e, "kind") == kind && s(e, "path") == "/hijack")
            .unwrap_or_else(|| panic!("no {kind} event for /hijack in {out}"))
    };
    assert_eq!(n(hijack("client"), "status"), 200);
    assert_eq!(n(hijack("client"), "content_length"), 3);
    assert_eq!(hijack("server")["hijacked"], true, "{}", hijack("server"));
    assert_eq!(n(hijack("server"), "status"), 0);
    assert!(s(hijack("server"), "remote_addr").starts_with("127.0.0.1:"));
    // The client's span covers the server's.
    let dur = |kind: &str| {
        n(
            events
                .iter()
                .find(|e| s(e, "kind") == kind && s(e, "path") == "/slow")
                .unwrap(),
            "duration_ns",
        )
    };
    assert!(dur("client") >= dur("server"));
    let failed = events
        .iter()
        .find(|e| s(e, "path") == "/refused")
        .expect("failed request reported");
    assert_eq!(s(failed, "kind"), "client");
    assert_eq!(n(failed, "status"), 0);
    assert_eq!(s(failed, "error"), "dial tcp: connection refused");
    assert_eq!(s(failed, "error_type"), "connection_refused");
    assert_eq!(s(failed, "url"), format!("http://127.0.0.1:{dead}/refused"));
    assert!((1_000..2_000_000_000).contains(&n(failed, "duration_ns")));
    drop(server);
}

#[test]
fn go119_fields() {
    check_fields(Go::Old, Build::Normal);
}

#[test]
fn go119_stripped_fields() {
    check_fields(Go::Old, Build::Stripped);
}

#[test]
fn go127_fields() {
    check_fields(Go::New, Build::Normal);
}

#[test]
fn go127_stripped_pie_fields() {
    check_fields(Go::New, Build::StrippedPie);
}

#[test]
fn inspect_reports_symbol_and_offset_sources() {
    for (go, build, pie, stripped) in [
        (Go::Old, Build::Normal, false, false),
        (Go::Old, Build::Stripped, false, true),
        (Go::New, Build::Normal, false, false),
        (Go::New, Build::StrippedPie, true, true),
    ] {
        let bin = go_build(go, build, false);
        let out = Command::new(EBPFCTL)
            .args(["observe", "--inspect"])
            .arg(&bin)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["pie"], pie, "{v}");
        assert_eq!(v["stripped"], stripped, "{v}");
        assert_eq!(
            v["functions_from"],
            if stripped { "pclntab" } else { "symtab" }
        );
        assert_eq!(v["offsets_from"], if stripped { "table" } else { "dwarf" });
        let want = if go == Go::Old { "go1.19" } else { "go1.27.3" };
        assert!(s(&v, "go_version").starts_with(want), "{v}");
        // Found by content, stripped or not.
        assert!(s(&v, "pclntab").starts_with("0x"), "{v}");
        assert!(s(&v, "moduledata").starts_with("0x"), "{v}");
        assert!(v["error_types"].as_u64().unwrap() > 20, "{v}");
        for f in [
            "client",
            "server",
            "finish_request",
            "hijack",
            "h2_handler_done",
            "h2_new_request",
            "server_recover",
            "h2_recover",
        ] {
            assert!(
                v[f]["ret_offsets"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty()),
                "{f}: {v}"
            );
            // Every entry probe sits on the stack check's jump, which the kernel emulates.
            assert_eq!(v[f]["entry_emulated"], true, "{f}: {v}");
        }
        // Go >= 1.23: roundTrip's returns through its deferred closure need no RET probe;
        // before, its success is seen at its error check and that RET needs none.
        let exit = &v["client_exit"];
        let rets = v["client"]["ret_offsets"].as_array().unwrap();
        let success = &v["client_success"];
        if go == Go::Old {
            assert!(exit.is_null(), "{v}");
            assert!(rets.contains(&success["covered_ret"]), "{v}");
            assert!(s(success, "probe_offset").starts_with("0x"), "{v}");
        } else {
            assert!(success.is_null(), "{v}");
            assert_eq!(exit["closure"]["entry_emulated"], true, "{v}");
            let covered = exit["covered_rets"].as_array().unwrap();
            assert!(!covered.is_empty(), "{v}");
            assert_eq!(covered.len(), exit["returns"].as_array().unwrap().len());
            assert!(covered.iter().all(|c| rets.contains(c)), "{v}");
            assert!(
                covered.len() < rets.len(),
                "early returns keep RET probes: {v}"
            );
        }
    }
}

/// For every toolchain: the built-in table (used for stripped binaries) agrees with DWARF,
/// the stripped PIE build's pclntab (found by content) gives the same functions as the
/// symbol table, and the layouts observe reads (error types, runtime.moduledata) agree with
/// DWARF; the module data found by scanning names the same error types as the symbol's.
#[test]
fn table_and_pclntab_agree_with_dwarf_and_symtab() {
    use ebpfctl_tools::observe::{analyse, goerror, moduledata, offsets, OffsetSource, Target};
    use std::collections::BTreeSet;
    for go in ALL_GO {
        let normal = go_build(go, Build::Normal, false);
        let t = analyse(&normal).unwrap();
        assert_eq!(t.offset_source, OffsetSource::Dwarf);
        assert_eq!(
            offsets::from_table(t.binary.version),
            Some(t.offsets),
            "{go:?}"
        );
        let st = analyse(&go_build(go, Build::StrippedPie, false))
            .unwrap_or_else(|e| panic!("{go:?} stripped PIE: {e}"));
        assert_eq!(st.offset_source, OffsetSource::Table, "{go:?}");
        for (a, b) in [
            (&t.binary.round_trip, &st.binary.round_trip),
            (&t.binary.serve_http, &st.binary.serve_http),
            (&t.binary.finish_request, &st.binary.finish_request),
            (&t.binary.hijack, &st.binary.hijack),
            (&t.binary.h2_handler_done, &st.binary.h2_handler_done),
            (&t.binary.h2_new_request, &st.binary.h2_new_request),
            (&t.binary.server_recover, &st.binary.server_recover),
            (&t.binary.h2_recover, &st.binary.h2_recover),
        ] {
            let (a, b) = (
                a.as_ref()
                    .unwrap_or_else(|| panic!("{go:?}: missing in {t:?}")),
                b.as_ref()
                    .unwrap_or_else(|| panic!("{go:?}: missing in {st:?}")),
            );
            assert_eq!(a.name, b.name);
            assert!(
                b.size >= a.size,
                "{} pclntab size {} < symtab {}",
                a.name,
                b.size,
                a.size
            );
            assert_eq!(a.ret_offsets.len(), b.ret_offsets.len(), "{}", a.name);
        }
        // The deferred-closure analysis does not depend on the symbol table.
        let exit = |t: &Target| {
            t.binary
                .client_exit
                .as_ref()
                .map(|x| (x.closure.name.clone(), x.returns.len()))
        };
        assert_eq!(exit(&t), exit(&st), "{go:?}");
        assert_eq!(exit(&t).is_some(), go.minor() >= 23, "{go:?}");
        // Nor does the success check (Go < 1.23).
        let success = |t: &Target| {
            let rt = t.binary.round_trip.as_ref().unwrap();
            t.binary.client_success.as_ref().map(|x| {
                (
                    x.probe_offset - rt.entry_offset,
                    x.covered_ret - rt.entry_offset,
                )
            })
        };
        assert_eq!(success(&t), success(&st), "{go:?}");
        assert_eq!(success(&t).is_some(), go.minor() < 23, "{go:?}");
        // Layouts against DWARF.
        let data = std::fs::read(&normal).unwrap();
        let file = object::File::parse(&*data).unwrap();
        let layouts = goerror::layouts(t.binary.version);
        let mut structs: Vec<&str> = layouts.iter().filter_map(|l| l.dwarf).collect();
        structs.push("runtime.moduledata");
        let members = offsets::dwarf_members(&file, &structs).unwrap();
        let mut checked = 0;
        for l in &layouts {
            let Some(d) = l.dwarf else { continue };
            if !members.keys().any(|(s, _)| s == d) {
                continue; // not in this binary (e.g. HTTP/2's package before 1.27)
            }
            let fields = l
                .strs
                .iter()
                .map(|(f, o)| (*f, *o))
                .chain(l.next)
                .chain(l.num.map(|(f, o, _)| (f, o)));
            for (f, off) in fields {
                assert_eq!(
                    members.get(&(d.to_string(), f.to_string())),
                    Some(&(off as u64)),
                    "{go:?}: {d}.{f}"
                );
                checked += 1;
            }
        }
        assert!(checked > 20, "{go:?}: only {checked} fields checked");
        for (f, off) in moduledata::layout_offsets(t.binary.version) {
            assert_eq!(
                members.get(&("runtime.moduledata".to_string(), f.to_string())),
                Some(&off),
                "{go:?}: runtime.moduledata.{f}"
            );
        }
        // The error types: through runtime.firstmoduledata, and found by content.
        let names = |t: &Target| -> BTreeSet<String> {
            let types = t.binary.types.as_ref().expect("module data found");
            types.errors.iter().map(|(_, n)| n.clone()).collect()
        };
        assert_eq!(names(&t), names(&st), "{go:?}");
        for n in [
            "*net.OpError",
            "*os.SyscallError",
            "syscall.Errno",
            "*net.DNSError",
            "*url.Error",
            "context.deadlineExceededError",
            "*errors.errorString",
            "x509.UnknownAuthorityError",
        ] {
            assert!(
                names(&t).contains(n),
                "{go:?}: {n} not among {:?}",
                names(&t)
            );
        }
    }
}

/// A copy of `src` without section headers (as `sstrip` leaves binaries): the pclntab and
/// the module data can only be found by their content.
fn without_section_headers(src: &Path, name: &str) -> TempCopy {
    let copy = private_copy(src, name);
    let mut data = std::fs::read(&*copy).unwrap();
    assert_eq!(&data[..4], b"\x7fELF");
    // Elf64_Ehdr: e_shoff at 0x28 (8 bytes), e_shnum at 0x3c, e_shstrndx at 0x3e.
    data[0x28..0x30].fill(0);
    data[0x3c..0x40].fill(0);
    std::fs::write(&*copy, &data).unwrap();
    copy
}

/// Stripped PIE binaries of every Go here (1.19 to 1.25 keep the pclntab in
/// `.data.rel.ro.gopclntab`), and one without any section headers: functions from the
/// pclntab found by content, error types through the module data, live requests read.
#[test]
fn stripped_pie_every_go_version() {
    let _live = live_lock();
    for go in ALL_GO {
        let built = go_build(go, Build::StrippedPie, false);
        let name = format!("obs-spie-1{}", go.minor());
        stripped_live(go, &private_copy(&built, &name), &name);
    }
    let built = go_build(Go::V22, Build::StrippedPie, false);
    let bare = without_section_headers(&built, "obs-noshdr");
    stripped_live(Go::V22, &bare, "obs-noshdr");
}

fn stripped_live(go: Go, bin: &Path, name: &str) {
    let out = Command::new(EBPFCTL)
        .args(["observe", "--inspect"])
        .arg(bin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{go:?} {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["stripped"], true, "{v}");
    assert_eq!(v["pie"], true, "{v}");
    assert_eq!(v["functions_from"], "pclntab", "{v}");
    assert!(v["error_types"].as_u64().unwrap_or(0) > 20, "{v}");
    // /ok, a refused connection, a handler's panic: 3 client and 2 server events.
    let obs = Observer::start(&[
        bin.to_str().unwrap(),
        "-o",
        "json",
        "--count",
        "5",
        "--poll-ms",
        "50",
    ]);
    let server = Server::start(bin, &[]);
    let base = format!("http://127.0.0.1:{}", server.port);
    let dead = free_port();
    client(
        bin,
        &[
            format!("{base}/ok"),
            format!("http://127.0.0.1:{dead}/refused"),
            format!("{base}/panic"),
        ],
        &[],
    );
    let (out, diag) = obs.finish(false, Duration::from_secs(20));
    let events = parse_events(&out);
    assert_eq!(events.len(), 5, "{go:?} {name}: {out} {diag:?}");
    let find = |kind: &str, path: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind && e["path"] == path)
            .unwrap_or_else(|| panic!("{go:?} {name}: no {kind} {path} in {out}"))
    };
    for kind in ["client", "server"] {
        let e = find(kind, "/ok");
        assert_eq!(n(e, "status"), 200, "{e}");
        assert_eq!(s(e, "proto"), "HTTP/1.1", "{e}");
    }
    let refused = find("client", "/refused");
    assert_eq!(
        s(refused, "error"),
        "dial tcp: connection refused",
        "{refused}"
    );
    assert_eq!(s(refused, "error_type"), "connection_refused", "{refused}");
    let panicked = find("server", "/panic");
    assert_eq!(n(panicked, "status"), 500, "{panicked}");
    assert_eq!(s(panicked, "error"), "panic: boom", "{panicked}");
    assert_eq!(s(panicked, "error_type"), "panic", "{panicked}");
    drop(server);
}

/// Client errors read from the error value itself (by type, through the binary's types):
/// a refused connection, a DNS failure, the client's timeout, an untrusted certificate, a
/// 404, a reverse proxy's failed dial; and a handler's panic on the server side.
#[test]
fn client_errors_and_panics() {
    let _live = live_lock();
    for (go, build) in [
        (Go::Old, Build::Normal),
        (Go::Mid, Build::Stripped),
        (Go::New, Build::Normal),
        (Go::New, Build::StrippedPie),
    ] {
        let name = format!("obs-err-{go:?}-{build:?}").to_lowercase();
        let bin = private_copy(&go_build(go, build, false), &name);
        errors_on(go, &bin);
    }
}

fn errors_on(go: Go, bin: &Path) {
    let dead = free_port();
    // 8 client events (one is the reverse proxy's) and 4 server events.
    let obs = Observer::start(&[
        bin.to_str().unwrap(),
        "-o",
        "json",
        "--count",
        "12",
        "--poll-ms",
        "50",
    ]);
    let proxy_to = format!("http://127.0.0.1:{dead}");
    // Each request's limit: /sleep (3 s) runs out, the others fail or answer at once; both
    // scale with the harness's patience.
    let timeout = patient(Duration::from_millis(1500));
    let sleep = patient(Duration::from_millis(3000));
    let sleep_ms = sleep.as_millis().to_string();
    let server = Server::start(bin, &[("PROXY_TO", &proxy_to), ("SLEEP_MS", &sleep_ms)]);
    let tls = Server::start_mode(bin, "serve-tls", &[]);
    let base = format!("http://127.0.0.1:{}", server.port);
    let asked = Instant::now();
    let (_, said) = client(
        bin,
        &[
            format!("http://127.0.0.1:{dead}/refused"),
            "http://nonexistent.test/dns".to_string(),
            // First on its connection: net/http does not retry it.
            format!("{base}/panic"),
            format!("{base}/sleep"),
            format!("{base}/missing"),
            format!("{base}/proxy/x"),
        ],
        &[
            ("CLIENT_TIMEOUT_MS", &timeout.as_millis().to_string()),
            ("DNS_NXDOMAIN", "1"),
        ],
    );
    assert_eq!(said.len(), 6, "{go:?}: {said:?}");
    // Without a timeout: the handshake fails on the certificate, however long it takes (over
    // 9 s for Go 1.19 in a TCG guest beside two others).
    let (_, said) = client(bin, &[format!("https://127.0.0.1:{}/x509", tls.port)], &[]);
    assert_eq!(said.len(), 1, "{go:?}: {said:?}");
    // The server's /sleep handler returns `sleep` after the request came: its event too.
    std::thread::sleep(
        (asked + sleep + Duration::from_millis(300)).saturating_duration_since(Instant::now()),
    );
    let (out, diag) = obs.finish(false, Duration::from_secs(30));
    let events = parse_events(&out);
    assert_eq!(events.len(), 12, "{go:?}: {out} {diag:?}");
    let find = |kind: &str, path: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind && e["path"] == path && e["pid"] != server.pid())
            .unwrap_or_else(|| panic!("{go:?}: no {kind} {path} in {out}"))
    };
    let error = |path: &str| {
        let e = find("client", path);
        assert_eq!(n(e, "status"), 0, "{e}");
        (s(e, "error").to_string(), s(e, "error_type").to_string())
    };
    assert_eq!(
        error("/refused"),
        (
            "dial tcp: connection refused".into(),
            "connection_refused".into()
        )
    );
    let (msg, kind) = error("/dns");
    assert!(
        msg.starts_with("dial tcp: lookup nonexistent.test") && msg.ends_with(": no such host"),
        "{go:?}: {msg}"
    );
    assert_eq!(kind, "dns");
    assert_eq!(
        error("/sleep"),
        ("context deadline exceeded".into(), "timeout".into()),
        "{go:?}"
    );
    let (msg, kind) = error("/x509");
    assert!(
        msg.contains("x509: certificate signed by unknown authority"),
        "{go:?}: {msg}"
    );
    assert_eq!(kind, "tls");
    // The handler panicked: the connection was closed without a response.
    assert_eq!(error("/panic"), ("EOF".into(), "connection_closed".into()));
    let missing = find("client", "/missing");
    assert_eq!(
        (n(missing, "status"), s(missing, "error_type")),
        (404, "404")
    );
    assert!(missing["error"].is_null(), "{missing}");
    let proxied = find("client", "/proxy/x");
    assert_eq!(
        (n(proxied, "status"), s(proxied, "error_type")),
        (502, "502")
    );
    // The reverse proxy's own request (in the server's process) failed to dial.
    let upstream = events
        .iter()
        .find(|e| e["kind"] == "client" && e["pid"] == server.pid())
        .unwrap_or_else(|| panic!("{go:?}: no request of the proxy in {out}"));
    assert_eq!(
        s(upstream, "url"),
        format!("{proxy_to}/proxy/x"),
        "{upstream}"
    );
    assert_eq!(
        s(upstream, "error"),
        "dial tcp: connection refused",
        "{upstream}"
    );
    assert_eq!(
        s(upstream, "error_type"),
        "connection_refused",
        "{upstream}"
    );
    // Server side.
    let server_event = |path: &str| {
        events
            .iter()
            .find(|e| e["kind"] == "server" && e["path"] == path)
            .unwrap_or_else(|| panic!("{go:?}: no server {path} in {out}"))
    };
    let panicked = server_event("/panic");
    assert_eq!(n(panicked, "status"), 500, "{panicked}");
    assert_eq!(s(panicked, "error"), "panic: boom", "{panicked}");
    assert_eq!(s(panicked, "error_type"), "panic", "{panicked}");
    let p502 = server_event("/proxy/x");
    assert_eq!((n(p502, "status"), s(p502, "error_type")), (502, "502"));
    assert!(p502["error"].is_null(), "{p502}");
    let s404 = server_event("/missing");
    assert!(
        s404["error_type"].is_null() && s404["error"].is_null(),
        "{s404}"
    );
    assert_eq!(n(server_event("/sleep"), "status"), 200);
    drop(server);
    drop(tls);
}

#[test]
fn pid_filter() {
    let _live = live_lock();
    let bin = private_copy(&go_build(Go::New, Build::Normal, false), "obs-pidfilter");
    let a = Server::start(&bin, &[]);
    let b = Server::start(&bin, &[]);
    let pid = a.pid().to_string();
    // Only A: B's requests (sent first) and the client's must never arrive.
    let obs = Observer::start(&[
        "--pid",
        &pid,
        "-o",
        "json",
        "--count",
        "2",
        "--poll-ms",
        "50",
    ]);
    let url = |s: &Server, p: &str| format!("http://127.0.0.1:{}{p}", s.port);
    client(
        &bin,
        &[
            url(&b, "/ok"),
            url(&b, "/missing"),
            url(&a, "/ok"),
            url(&b, "/ok"),
            url(&a, "/missing"),
        ],
        &[],
    );
    let (out, _) = obs.finish(false, Duration::from_secs(20));
    let events = parse_events(&out);
    assert_eq!(events.len(), 2, "{out}");
    for (e, path) in events.iter().zip(["/ok", "/missing"]) {
        assert_eq!(s(e, "kind"), "server");
        assert_eq!(n(e, "pid"), a.pid() as i64);
        assert_eq!(s(e, "path"), path);
    }
}

/// The owner word (`pid << 32 | goroutine`, 0: free) of slot 0 of the observer's map `name`
/// (client_slots or server_slots), read with bpftool.
fn slot0_owner(obs: &Observer, name: &str) -> u64 {
    for &id in &obs.held.maps {
        let show = common::bpf::describe(common::bpf::Kind::Map, id);
        let Ok(v) = serde_json::from_str::<Value>(&show) else {
            continue;
        };
        if v["name"] != name {
            continue;
        }
        let o = Command::new("bpftool")
            .args([
                "-j",
                "map",
                "lookup",
                "id",
                &id.to_string(),
                "key",
                "0",
                "0",
                "0",
                "0",
            ])
            .output()
            .expect("bpftool (apt-get install bpftool) is needed by this test");
        assert!(o.status.success(), "bpftool map lookup {id}: {o:?}");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let bytes: Vec<u8> = v["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no value bytes in {v}"))
            .iter()
            .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
            .collect();
        return u64::from_ne_bytes(bytes[..8].try_into().unwrap());
    }
    panic!("the observer holds no map {name}: {:?}", obs.held.maps);
}

/// With one in-flight slot per side (EBPFCTL_OBSERVE_SLOTS=1), requests in flight together
/// share it with the LRU hashes behind it: each is reported once, with its own path and
/// query. A client killed while its request holds the slot leaves it taken until the
/// observer's sweep (every 10 s) frees it; the killed request is never reported.
#[test]
fn requests_in_flight_together_and_a_killed_client() {
    let _live = live_lock();
    let bin = private_copy(&go_build(Go::New, Build::Normal, false), "obs-slots");
    let server = Server::start(&bin, &[("SLEEP_MS", "30000")]);
    let obs = Observer::start_env(
        &[bin.0.to_str().unwrap(), "-o", "json", "--poll-ms", "50"],
        &[("EBPFCTL_OBSERVE_SLOTS", "1")],
    );
    let url = |p: &str| format!("http://127.0.0.1:{}{p}", server.port);
    // 8 clients at once, 5 requests of 50 ms each: up to 8 in flight on each side.
    std::thread::scope(|sc| {
        for i in 0..8 {
            let urls: Vec<String> = (0..5).map(|j| url(&format!("/slow?c={i}&j={j}"))).collect();
            let bin = &bin.0;
            sc.spawn(move || client(bin, &urls, &[]));
        }
    });
    // A client that holds the slot, killed while it waits.
    let mut held = Command::new(&bin.0)
        .args(["get", &url("/sleep")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = held.id() as u64;
    let deadline = Instant::now() + patient(Duration::from_secs(10));
    while slot0_owner(&obs, "client_slots") >> 32 != pid {
        assert!(Instant::now() < deadline, "client {pid} never took slot 0");
        std::thread::sleep(Duration::from_millis(50));
    }
    held.kill().unwrap();
    held.wait().unwrap();
    let deadline = Instant::now() + patient(Duration::from_secs(25));
    while slot0_owner(&obs, "client_slots") != 0 {
        assert!(
            Instant::now() < deadline,
            "slot 0 of the killed client {pid} was not freed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    client(&bin, &[url("/ok?after=1")], &[]);
    let (out, _) = obs.finish(true, patient(Duration::from_secs(20)));
    let events = parse_events(&out);
    for side in ["client", "server"] {
        let mut seen: Vec<String> = events
            .iter()
            .filter(|e| s(e, "kind") == side && s(e, "path") == "/slow")
            .map(|e| {
                assert_eq!(n(e, "status"), 201, "{e}");
                s(e, "query").to_owned()
            })
            .collect();
        seen.sort();
        let mut want: Vec<String> = (0..8)
            .flat_map(|i| (0..5).map(move |j| format!("c={i}&j={j}")))
            .collect();
        want.sort();
        assert_eq!(seen, want, "{side} events of /slow");
        assert!(
            events.iter().any(|e| s(e, "kind") == side
                && s(e, "path") == "/ok"
                && s(e, "query") == "after=1"),
            "no {side} event of /ok after the sweep: {out}"
        );
    }
    assert!(
        !events
            .iter()
            .any(|e| s(e, "kind") == "client" && s(e, "path") == "/sleep"),
        "the killed client's request was reported: {out}"
    );
}

#[test]
fn log_lines_metrics_and_graph() {
    let _live = live_lock();
    let bin = private_copy(&go_build(Go::Old, Build::Normal, false), "obs-metrics");
    let bin_s = bin.to_str().unwrap();
    let mut obs = Observer::start(&[
        bin_s,
        "--metrics-addr",
        "127.0.0.1:0",
        "--graph",
        "dot",
        "--poll-ms",
        "50",
    ]);
    let line = obs.wait_diag("observe: metrics on ", Duration::from_secs(5));
    let metrics_url = line.rsplit(' ').next().unwrap().to_string();
    let server = Server::start(&bin, &[("NAME", "backend")]);
    let base = format!("http://127.0.0.1:{}", server.port);
    client(
        &bin,
        &[format!("{base}/ok"), format!("{base}/missing")],
        &[("NAME", "frontend")],
    );
    std::thread::sleep(Duration::from_millis(400));
    let scrape = http_get(&metrics_url);
    let (out, _) = obs.finish(true, Duration::from_secs(20));
    let comm = "obs-metrics";
    // Log lines.
    let lines: Vec<&str> = out.lines().collect();
    let client_ok = format!("{comm}@frontend -[GET HTTP/1.1]-> {base}/ok [200 OK, 5 B, ");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&client_ok) && (l.ends_with(" ms]") || l.ends_with(" µs]"))),
        "{out}"
    );
    let server_404 =
        format!("-[GET HTTP/1.1]-> {comm}@backend {base}/missing [404 Not Found, 4 B, ");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("127.0.0.1:") && l.contains(&server_404)),
        "{out}"
    );
    // Metrics, OpenTelemetry semantic-convention labels.
    assert!(
        scrape.contains("# TYPE http_client_request_duration_seconds histogram"),
        "{scrape}"
    );
    assert!(
        scrape.contains("# TYPE http_server_request_duration_seconds histogram"),
        "{scrape}"
    );
    let series = scrape
        .lines()
        .find(|l| {
            l.starts_with("http_client_request_duration_seconds_count{")
                && l.contains("http_response_status_code=\"404\"")
        })
        .unwrap_or_else(|| panic!("{scrape}"));
    for label in [
        "http_request_method=\"GET\"",
        "server_address=\"127.0.0.1\"",
        &format!("server_port=\"{}\"", server.port),
        "url_scheme=\"http\"",
        "network_protocol_version=\"1.1\"",
        &format!("service_name=\"{comm}@frontend\""),
    ] {
        assert!(series.contains(label), "{label} not in {series}");
    }
    assert!(series.ends_with(" 1"), "{series}");
    assert!(
        scrape.contains("ebpfctl_observe_lost_events_total 0"),
        "{scrape}"
    );
    promtool_check(&scrape);
    // The graph: caller → the server resolved from its Host header.
    let dot = &out[out
        .find("digraph services")
        .unwrap_or_else(|| panic!("no graph in {out}"))..];
    assert!(
        dot.contains(&format!(
            "\"{comm}@frontend\" -> \"{comm}@backend\" [label=\"2 calls, 0 errors"
        )),
        "{dot}"
    );
}

/// `promtool check metrics` accepts the exposition (promtool from scripts/setup.sh --test).
fn promtool_check(scrape: &str) {
    use std::io::Write;
    let body = scrape
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or(scrape);
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool missing: run scripts/setup.sh --test");
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool check metrics: {text}");
}

/// `ebpfctl observe ARGS` must fail with exactly one line on stderr containing `want`.
fn bad_input(args: &[&str], want: &str) {
    bad_input_env(args, &[], want)
}

fn bad_input_env(args: &[&str], env: &[(&str, &str)], want: &str) {
    let out = Command::new(EBPFCTL)
        .arg("observe")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded on {args:?}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "want one line, got: {err}");
    assert!(err.contains(want), "{want:?} not in {err:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_not_elf() {
    let p = cache_dir().join("not-an-elf.sh");
    std::fs::write(&p, "#!/bin/sh\necho hi\n").unwrap();
    bad_input(&[p.to_str().unwrap()], "not an ELF executable");
}

#[test]
fn bad_input_not_go() {
    bad_input(&["/bin/true"], "not a Go program");
}

#[test]
fn bad_input_go_too_old() {
    // Go 1.16 cannot be installed here: fake it by rewriting the version in the build info
    // of a 1.19 binary ("go1.19.x" → "go1.16.x", same length).
    let src = go_build(Go::Old, Build::Normal, false);
    let mut data = std::fs::read(&src).unwrap();
    let magic = b"\xff Go buildinf:";
    let at = data
        .windows(magic.len())
        .position(|w| w == magic)
        .expect("build info");
    let v = data[at..at + 64]
        .windows(6)
        .position(|w| w == b"go1.19")
        .expect("version in build info")
        + at;
    data[v..v + 6].copy_from_slice(b"go1.16");
    let p = cache_dir().join("go116-fake");
    std::fs::write(&p, &data).unwrap();
    bad_input(&[p.to_str().unwrap()], "observe needs Go 1.17 or newer");
}

#[test]
fn bad_input_no_net_http() {
    let bin = go_build(Go::New, Build::Normal, true);
    bad_input(&[bin.to_str().unwrap()], "does not use net/http");
}

#[test]
fn bad_input_other_architecture() {
    let bin = go_build(Go::New, Build::Arm64, true);
    bad_input(
        &[bin.to_str().unwrap()],
        "built for arm64; this ebpfctl observes amd64 programs",
    );
}

#[test]
fn bad_input_slot_count() {
    let bin = go_build(Go::New, Build::Normal, false);
    let bin = bin.to_str().unwrap();
    for bad in ["3", "8192", "0", "many"] {
        bad_input_env(
            &[bin],
            &[("EBPFCTL_OBSERVE_SLOTS", bad)],
            &format!("EBPFCTL_OBSERVE_SLOTS={bad}: not a power of two from 1 to 4096"),
        );
    }
}

#[test]
fn bad_input_no_such_pid() {
    let mut pid = 4_000_000u32;
    while Path::new(&format!("/proc/{pid}")).exists() {
        pid += 1;
    }
    bad_input(
        &["--pid", &pid.to_string()],
        &format!("process {pid} does not exist"),
    );
}

#[test]
fn bad_input_missing_file() {
    bad_input(
        &["/nonexistent/ebpfctl-observe-test"],
        "/nonexistent/ebpfctl-observe-test: cannot read",
    );
}

/// A fake OTLP/HTTP collector: records the body of every POST, answers 200.
/// (request line, body) of every request the fake collector received.
type Received = std::sync::Arc<Mutex<Vec<(String, Vec<u8>)>>>;

fn fake_collector() -> (u16, Received) {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = std::sync::Arc::new(Mutex::new(Vec::new()));
    let got2 = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let got = got2.clone();
            std::thread::spawn(move || loop {
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut first = String::new();
                if r.read_line(&mut first).unwrap_or(0) == 0 {
                    return;
                }
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                got.lock().unwrap().push((first.trim().to_string(), body));
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n");
            });
        }
    });
    (port, got)
}

/// (resource attributes, span) of every span a fake collector received, decoded.
type Decoded = Vec<(
    std::collections::HashMap<String, String>,
    opentelemetry_proto::tonic::trace::v1::Span,
)>;

fn decode_spans(got: &[(String, Vec<u8>)]) -> Decoded {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let mut out = Vec::new();
    for (_, body) in got {
        let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        for rs in req.resource_spans {
            let res = attrs(&rs.resource.map(|r| r.attributes).unwrap_or_default());
            for ss in rs.scope_spans {
                for span in ss.spans {
                    out.push((res.clone(), span));
                }
            }
        }
    }
    out
}

/// OTLP attributes as strings (`Int` values printed).
fn attrs(
    kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> std::collections::HashMap<String, String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(V::StringValue(s)) => s.clone(),
                Some(V::IntValue(i)) => i.to_string(),
                Some(V::BoolValue(b)) => b.to_string(),
                Some(V::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

/// Spans reach an OTLP/HTTP collector, each process its own resource (service.name from
/// the process's OTEL_SERVICE_NAME, else its NAME, else the executable's name;
/// process.pid, process.executable.path, telemetry.sdk.*); the server span joins the
/// caller's trace from the incoming traceparent header and carries url.query.
#[test]
fn otlp_export_links_traceparent() {
    let _live = live_lock();
    let (cport, got) = fake_collector();
    let bin = private_copy(&go_build(Go::New, Build::Normal, false), "obs-otlp");
    let endpoint = format!("http://127.0.0.1:{cport}");
    let obs = Observer::start(&[
        bin.to_str().unwrap(),
        "-o",
        "none",
        "--otlp-endpoint",
        &endpoint,
        "--count",
        "4",
    ]);
    let server = Server::start(
        &bin,
        &[("NAME", "backend"), ("OTEL_SERVICE_NAME", "orders")],
    );
    let url = format!("http://127.0.0.1:{}/ok?x=1", server.port);
    let (named, _) = client(
        &bin,
        std::slice::from_ref(&url),
        &[("NAME", "frontend"), ("TRACEPARENT", TRACEPARENT)],
    );
    let (anonymous, _) = client(&bin, &[url], &[]);
    let _ = obs.finish(false, Duration::from_secs(30));
    let got = got.lock().unwrap();
    assert!(!got.is_empty(), "no OTLP request received");
    assert!(
        got.iter().all(|(l, _)| l.starts_with("POST /v1/traces ")),
        "{:?}",
        got.iter().map(|g| &g.0).collect::<Vec<_>>()
    );
    let spans = decode_spans(&got);
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let exe = std::fs::canonicalize(&*bin).unwrap().display().to_string();
    for (res, span) in &spans {
        assert_eq!(res["process.executable.path"], exe, "{res:?}");
        assert_eq!(res["process.executable.name"], "obs-otlp", "{res:?}");
        assert_eq!(res["telemetry.sdk.name"], "opentelemetry", "{res:?}");
        assert_eq!(res["telemetry.sdk.language"], "rust", "{res:?}");
        assert!(!res["telemetry.sdk.version"].is_empty(), "{res:?}");
        let a = attrs(&span.attributes);
        assert_eq!(a["http.request.method"], "GET", "{a:?}");
        assert_eq!(a["http.response.status_code"], "200", "{a:?}");
        assert_eq!(a["server.address"], "127.0.0.1", "{a:?}");
        assert_eq!(a["network.protocol.version"], "1.1", "{a:?}");
    }
    let by_pid = |pid: u32| {
        spans
            .iter()
            .filter(|(res, _)| res["process.pid"] == pid.to_string())
            .collect::<Vec<_>>()
    };
    // The server: OTEL_SERVICE_NAME wins over NAME; two server spans, with url.query.
    let srv = by_pid(server.pid());
    assert_eq!(srv.len(), 2, "{spans:#?}");
    for (res, span) in &srv {
        assert_eq!(res["service.name"], "orders", "{res:?}");
        let a = attrs(&span.attributes);
        assert_eq!(a["url.path"], "/ok", "{a:?}");
        assert_eq!(a["url.query"], "x=1", "{a:?}");
        assert_eq!(span.kind, 2, "SERVER"); // SPAN_KIND_SERVER
    }
    let (_, child) = srv
        .iter()
        .find(|(_, sp)| !sp.parent_span_id.is_empty())
        .expect("a server span with a parent");
    let hex = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    assert_eq!(
        child.trace_id,
        hex("0af7651916cd43dd8448eb211c80319c"),
        "caller's trace"
    );
    assert_eq!(
        child.parent_span_id,
        hex("b7ad6b7169203331"),
        "caller's span"
    );
    // Clients: NAME, else the executable's name.
    for (pid, service) in [(named, "frontend"), (anonymous, "obs-otlp")] {
        let c = by_pid(pid);
        assert_eq!(c.len(), 1, "{spans:#?}");
        assert_eq!(c[0].0["service.name"], service, "{:?}", c[0].0);
        let a = attrs(&c[0].1.attributes);
        assert!(a["url.full"].ends_with("/ok?x=1"), "{a:?}");
        assert_eq!(c[0].1.kind, 3, "CLIENT"); // SPAN_KIND_CLIENT
    }
    drop(server);
}

/// Run counts of one observer's programs by name (BPF statistics must be on).
fn probe_run_counts(obs: &Observer) -> std::collections::HashMap<String, u64> {
    let mut counts = std::collections::HashMap::new();
    for p in obs
        .held
        .progs
        .iter()
        .filter_map(|&id| common::bpf::prog_info(id))
    {
        if let Some(name) = p["name"].as_str() {
            *counts.entry(name.to_owned()).or_default() += p["run_cnt"].as_u64().unwrap_or(0);
        }
    }
    counts
}

/// Stopping is quick: with four executables observed (their uprobes on uprobe-multi links,
/// released at once), ebpfctl is gone well within 5 s of SIGINT (it took 8.4 s with one
/// perf-event uprobe per site released one by one). A regression guard, not a benchmark:
/// bench/README.md has the figures.
#[test]
fn stops_quickly_with_four_executables() {
    let _live = live_lock();
    let built = go_build(Go::New, Build::Normal, false);
    let copies: Vec<TempCopy> = (0..4)
        .map(|i| private_copy(&built, &format!("obs-stop-{i}")))
        .collect();
    let mut args: Vec<&str> = copies.iter().map(|c| c.to_str().unwrap()).collect();
    args.extend(["-o", "none"]);
    let obs = Observer::start(&args);
    // uprobe-multi links came in 6.6: before, one perf-event uprobe per site, each released
    // after its own grace period (1.5 s for one executable, 5.7 s for four on this machine).
    let multi = common::kernel_version() >= (6, 6);
    let kind = if multi {
        "uprobe-multi links"
    } else {
        "perf-event uprobes"
    };
    assert_eq!(
        obs.diag.iter().filter(|l| l.contains(kind)).count(),
        4,
        "{:#?}",
        obs.diag
    );
    let t0 = Instant::now();
    let _ = obs.finish(true, patient(Duration::from_secs(60)));
    let took = t0.elapsed();
    eprintln!("observe stopped in {took:?} (4 executables)");
    if multi {
        assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    } else {
        eprintln!(
            "KERNEL MATRIX: kernel {:?} has no uprobe-multi links (6.6+): perf-event uprobes, stopped in {took:?}",
            common::kernel_version()
        );
        assert!(
            took < patient(Duration::from_secs(20)),
            "stopping took {took:?}"
        );
    }
}

/// Kernels without uprobe-multi links (before 6.6) get one perf-event uprobe per site: the
/// same events (forced here with EBPFCTL_UPROBE_MULTI=0).
#[test]
fn perf_event_uprobes_without_uprobe_multi() {
    let _live = live_lock();
    let bin = private_copy(&go_build(Go::New, Build::Normal, false), "obs-perfev");
    let obs = Observer::start_env(
        &[
            bin.to_str().unwrap(),
            "-o",
            "json",
            "--count",
            "4",
            "--poll-ms",
            "50",
        ],
        &[("EBPFCTL_UPROBE_MULTI", "0")],
    );
    assert!(
        obs.diag.iter().any(|l| l.contains("perf-event uprobes")),
        "{:#?}",
        obs.diag
    );
    let server = Server::start(&bin, &[]);
    let base = format!("http://127.0.0.1:{}", server.port);
    client(
        &bin,
        &[format!("{base}/ok"), format!("{base}/missing")],
        &[],
    );
    let (out, _) = obs.finish(false, Duration::from_secs(30));
    let events = parse_events(&out);
    assert_eq!(events.len(), 4, "{out}");
    for (path, status) in [("/ok", 200), ("/missing", 404)] {
        for kind in ["client", "server"] {
            assert!(
                events
                    .iter()
                    .any(|e| e["kind"] == kind && e["path"] == path && e["status"] == status),
                "no {kind} {path} {status} in {out}"
            );
        }
    }
    drop(server);
}

/// Successful requests end at emulated probes: the client's at roundTrip's deferred
/// closure (Go >= 1.23) or its error check (before), the server's at finishRequest. No RET
/// probe runs on that path.
#[test]
fn success_path_takes_no_ret_probe() {
    let _live = live_lock();
    let _stats = ebpfctl_core::inspect::top::StatsGuard::enable().expect("BPF statistics");
    for go in [Go::Old, Go::New] {
        success_path_on(go);
    }
}

fn success_path_on(go: Go) {
    let end = if go == Go::New {
        "client_deferred"
    } else {
        "client_success"
    };
    let bin = private_copy(&go_build(go, Build::Normal, false), "obs-noret");
    let obs = Observer::start(&[bin.to_str().unwrap(), "-o", "json", "--poll-ms", "50"]);
    let server = Server::start(&bin, &[]);
    let url = format!("http://127.0.0.1:{}/ok", server.port);
    let (_, said) = client(&bin, &[url.clone(), url.clone(), url], &[]);
    assert_eq!(said, ["200 5", "200 5", "200 5"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let counts = loop {
        let c = probe_run_counts(&obs);
        if c.get(end).copied().unwrap_or(0) >= 3 || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, diag) = obs.finish(true, Duration::from_secs(20));
    let events = parse_events(&out);
    assert_eq!(events.len(), 6, "{go:?} {out} {diag:?} {counts:?}");
    for e in &events {
        assert_eq!(e["status"], 200, "{e}");
    }
    let get = |k: &str| counts.get(k).copied().unwrap_or(0);
    assert_eq!(get("client_enter"), 3, "{go:?} {counts:?}");
    // The deferred closure also runs for roundTrip's other returns; the check once per call.
    assert!(get(end) >= 3, "{go:?} {counts:?}");
    assert_eq!(get("client_return"), 0, "{go:?} {counts:?}");
    assert_eq!(get("server_finish"), 3, "{counts:?}");
    assert_eq!(get("server_return"), 0, "{counts:?}");
    drop(server);
}

/// HTTP/2 over TLS: the server's request ends at runHandler's deferred closure (status and
/// bytes from the HTTP/2 writer's state), with the caller's traceparent from the decoded
/// header block; a handler's panic (the stream is reset) is reported too. The client's
/// requests go through the same roundTrip probes as HTTP/1, their protocol read from the
/// response (HTTP/2.0, also after a redirect). The oldest and newest Go (whose HTTP/2 moved
/// to net/http/internal/http2), stripped too.
#[test]
fn http2_over_tls_client_and_server() {
    let _live = live_lock();
    for (go, build) in [
        (Go::Old, Build::Normal),
        (Go::Old, Build::Stripped),
        (Go::New, Build::Normal),
        (Go::New, Build::StrippedPie),
    ] {
        let name = format!("obs-h2-{go:?}-{build:?}").to_lowercase();
        let bin = private_copy(&go_build(go, build, false), &name);
        // 5 client requests (the redirect's follow-up included), 5 server requests. No
        // --count: the observer must still serve metrics after the last request.
        let mut obs = Observer::start(&[
            bin.to_str().unwrap(),
            "-o",
            "json",
            "--poll-ms",
            "50",
            "--metrics-addr",
            "127.0.0.1:0",
        ]);
        let line = obs.wait_diag("observe: metrics on ", Duration::from_secs(5));
        let metrics_url = line.rsplit(' ').next().unwrap().to_string();
        let server = Server::start_mode(&bin, "serve-tls", &[]);
        let base = format!("https://127.0.0.1:{}", server.port);
        let urls = [
            format!("{base}/ok"),
            format!("{base}/missing"),
            format!("{base}/redirect"),
            format!("{base}/panic"),
        ];
        let (_, said) = client(
            &bin,
            &urls,
            &[("INSECURE", "1"), ("TRACEPARENT", TRACEPARENT)],
        );
        assert_eq!(
            &said[..3],
            ["200 5 HTTP/2.0", "404 4 HTTP/2.0", "200 5 HTTP/2.0"],
            "{go:?} {build:?}"
        );
        assert!(said[3].starts_with("ERR "), "{go:?} {build:?}: {said:?}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let scrape = loop {
            let scrape = http_get(&metrics_url);
            // Every event was in the ring before the client exited; the scrape waits for
            // the observer to have read the last ones.
            let done = scrape.contains("status_code=\"302\"")
                && scrape.contains("error_type=\"panic\"")
                && scrape.contains("error_type=\"http2\"");
            if done || Instant::now() > deadline {
                break scrape;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let (out, diag) = obs.finish(true, Duration::from_secs(20));
        let events = parse_events(&out);
        assert_eq!(events.len(), 10, "{go:?} {build:?}: {out} {diag:?}");
        for (path, status, len) in [
            ("/ok", 200, 5),
            ("/missing", 404, 4),
            ("/redirect", 302, -2),
        ] {
            for kind in ["client", "server"] {
                let e = events
                    .iter()
                    .find(|e| e["kind"] == kind && e["path"] == path)
                    .unwrap_or_else(|| panic!("{go:?} {build:?}: no {kind} {path} in {out}"));
                assert_eq!(n(e, "status"), status, "{e}");
                assert_eq!(s(e, "method"), "GET", "{e}");
                assert_eq!(s(e, "scheme"), "https", "{e}");
                assert_eq!(s(e, "host"), format!("127.0.0.1:{}", server.port), "{e}");
                assert_eq!(s(e, "url"), format!("{base}{path}"), "{e}");
                // The protocol spoken, on both sides.
                assert_eq!(s(e, "proto"), "HTTP/2.0", "{e}");
                if kind == "server" {
                    // From the decoded HTTP/2 header block (server_h2_hdrs).
                    assert_eq!(s(e, "traceparent"), TRACEPARENT, "{e}");
                    if len >= 0 {
                        // Bytes the handler wrote; the client's Response.ContentLength
                        // is -1 (no Content-Length for these small bodies) or the size.
                        assert_eq!(n(e, "content_length"), len, "{e}");
                    }
                    assert_eq!(n(e, "pid"), server.pid() as i64, "{e}");
                }
                let d = n(e, "duration_ns");
                assert!(d > 0 && d < 10_000_000_000, "{e}");
            }
        }
        // The redirect's follow-up: a second /ok on each side, same protocol.
        let oks: Vec<&Value> = events.iter().filter(|e| e["path"] == "/ok").collect();
        assert_eq!(oks.len(), 4, "{go:?} {build:?}: {out}");
        assert!(oks.iter().all(|e| e["proto"] == "HTTP/2.0"), "{out}");
        // The panic: the server resets the stream; the client's request fails.
        let panicked = events
            .iter()
            .find(|e| e["kind"] == "server" && e["path"] == "/panic")
            .unwrap_or_else(|| panic!("{go:?} {build:?}: no server /panic in {out}"));
        assert_eq!(n(panicked, "status"), 500, "{panicked}");
        assert_eq!(s(panicked, "error"), "panic: boom", "{panicked}");
        assert_eq!(s(panicked, "error_type"), "panic", "{panicked}");
        assert_eq!(s(panicked, "proto"), "HTTP/2.0", "{panicked}");
        let failed = events
            .iter()
            .find(|e| e["kind"] == "client" && e["path"] == "/panic")
            .unwrap_or_else(|| panic!("{go:?} {build:?}: no client /panic in {out}"));
        assert_eq!(n(failed, "status"), 0, "{failed}");
        assert!(
            s(failed, "error").contains("INTERNAL_ERROR"),
            "{go:?} {build:?}: {failed}"
        );
        assert_eq!(s(failed, "error_type"), "http2", "{failed}");
        // Metrics label the protocol spoken too.
        let series = scrape
            .lines()
            .find(|l| {
                l.starts_with("http_client_request_duration_seconds_count{")
                    && l.contains("http_response_status_code=\"302\"")
            })
            .unwrap_or_else(|| panic!("{go:?} {build:?}: {scrape}"));
        assert!(
            series.contains("network_protocol_version=\"2\""),
            "{series}"
        );
        drop(server);
    }
}
