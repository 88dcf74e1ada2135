//! The shared command-line vocabulary (docs/cli.md): one duration syntax, `-o
//! json|table|none|log`, `-p` a PID, `--out FILE`, `--password-stdin`.
mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Runs `ebpfctl ARGS` to its end (it must stop by itself within `limit`).
fn finishes(args: &[&str], limit: Duration) -> (Output, Duration) {
    let t = Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "ebpfctl {args:?} still running after {limit:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    (o, t.elapsed())
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A failure whose stderr (however clap or we format it) says `want`, without a panic.
fn refused(o: &Output, want: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected a failure: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(err.contains(want), "expected {want:?} in: {err}");
}

#[test]
fn every_duration_flag_takes_units_and_bare_seconds() {
    let me = std::process::id().to_string();
    // The tools stop by themselves after -d, whatever its spelling.
    for (tool, d) in [
        ("execsnoop", "1s"),
        ("opensnoop", "500ms"),
        ("execsnoop", "1"),
    ] {
        let (o, took) = finishes(
            &[tool, "-o", "json", "-p", &me, "-d", d],
            Duration::from_secs(20),
        );
        ok(&o, &format!("{tool} -d {d}"));
        assert!(
            took >= Duration::from_millis(500),
            "{tool} -d {d}: {took:?}"
        );
    }
    // top: --interval with units; two samples 200 ms apart.
    let (o, took) = finishes(
        &["top", "-o", "json", "--interval", "200ms", "--count", "2"],
        Duration::from_secs(20),
    );
    ok(&o, "top --interval 200ms");
    assert_eq!(parse_lines(&o.stdout).len(), 2);
    assert!(took >= Duration::from_millis(400), "{took:?}");
    // run: --interval and --duration.
    let obj = example("syscall_counter");
    let (o, _) = finishes(
        &[
            "run",
            obj.to_str().unwrap(),
            "-o",
            "none",
            "--no-metrics",
            "--interval",
            "100ms",
            "--duration",
            "0.5",
        ],
        Duration::from_secs(20),
    );
    ok(&o, "run --duration 0.5");
    // One message for a bad duration, whichever command.
    for args in [
        &["execsnoop", "-d", "soon"][..],
        &["opensnoop", "--duration", "1parsec"][..],
        &["top", "--interval", "fast"][..],
        &["observe", "/nonexistent/go", "--duration", "x"][..],
        &["observe", "/nonexistent/go", "--poll-interval", "1y"][..],
        &["run", "/nonexistent.o", "--interval=-1s"][..],
    ] {
        refused(&ebpfctl(args), "expected a duration like 2s, 500ms or 1m");
    }
    // Zero or out of range: one line naming the flag.
    assert_one_line_error(
        &ebpfctl(&["top", "--interval", "10ms"]),
        "--interval 10ms is too short",
    );
    assert_one_line_error(
        &ebpfctl(&["observe", "/nonexistent/go", "--poll-interval", "20s"]),
        "--poll-interval",
    );
    assert_one_line_error(&ebpfctl(&["execsnoop", "-d", "0ms"]), "--duration 0");
}

#[test]
fn output_vocabulary_is_the_same_everywhere() {
    // top: -o json, and the older --json.
    for args in [
        &["top", "-o", "json", "--interval", "100ms", "--count", "1"][..],
        &["top", "--json", "--interval", "100ms", "--count", "1"][..],
    ] {
        let (o, _) = finishes(args, Duration::from_secs(20));
        ok(&o, &format!("{args:?}"));
        let lines = parse_lines(&o.stdout);
        assert_eq!(lines.len(), 1, "{args:?}");
        assert!(lines[0]["programs"].is_array(), "{:?}", lines[0]);
    }
    // Introspection: table (human kept as an older name) and json. `feature` reports
    // whether bpffs is mounted, which other tests running at the same time may change on a
    // fresh machine: mounted first, so both reports see the same machine.
    ebpfctl_core::mounts::ensure(&ebpfctl_core::mounts::BPFFS).expect("bpffs");
    let table = ebpfctl(&["feature", "-o", "table"]);
    ok(&table, "feature -o table");
    let human = ebpfctl(&["feature", "-o", "human"]);
    ok(&human, "feature -o human");
    assert_eq!(table.stdout, human.stdout);
    let json = ebpfctl(&["feature", "-o", "json"]);
    ok(&json, "feature -o json");
    serde_json::from_slice::<Value>(&json.stdout).unwrap();
    // Values a command does not have are refused, listing the ones it has.
    refused(&ebpfctl(&["prog", "-o", "yaml"]), "table");
    refused(&ebpfctl(&["prog", "-o", "none"]), "json");
    refused(&ebpfctl(&["execsnoop", "-o", "log"]), "none");
    // -o none: the tool runs, nothing on stdout.
    let me = std::process::id().to_string();
    let (o, _) = finishes(
        &["opensnoop", "-o", "none", "-p", &me, "-d", "500ms"],
        Duration::from_secs(20),
    );
    ok(&o, "opensnoop -o none");
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn execsnoop_p_is_a_pid_and_ppid_is_the_parent() {
    // A shell that waits for a line, then execs /bin/true with a marker: its pid is known
    // before the exec.
    let mark = format!("ebpfctl-cli-p-{}", std::process::id());
    let other = format!("{mark}-other");
    let mut sh = Command::new("/bin/sh")
        .args(["-c", &format!("read x; exec /bin/true {mark}")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_n = sh.id();
    let pid = pid_n.to_string();
    let t = Tool::start("execsnoop", &["-o", "json", "--no-snapshot", "-p", &pid]);
    // Another process's exec with the marker: filtered out.
    Command::new("/bin/true").arg(&other).status().unwrap();
    sh.stdin.take().unwrap().write_all(b"go\n").unwrap();
    sh.wait().unwrap();
    let (ev, err) = t.stop();
    let with = |m: &str| -> Vec<&Value> {
        ev.iter()
            .filter(|e| {
                e["type"] == "started"
                    && e["args"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == m))
            })
            .collect()
    };
    let mine = with(&mark);
    assert_eq!(mine.len(), 1, "{ev:?} {err:?}");
    assert_eq!(mine[0]["pid"], pid_n);
    assert!(with(&other).is_empty(), "{ev:?}");
    assert!(ev.iter().all(|e| e["pid"] == pid_n), "{ev:?}");
    // --ppid exists (libbpf-tools' -p), and the help says so.
    let help = String::from_utf8_lossy(&ebpfctl(&["execsnoop", "--help"]).stdout).into_owned();
    assert!(help.contains("--ppid <PPID>"), "{help}");
    assert!(help.contains("-p, --pid <PID>"), "{help}");
}

#[test]
fn files_are_out_and_passwords_come_from_stdin() {
    // build: --out FILE (and -o FILE); an output format given as a file is refused.
    let dir = tempfile::tempdir().unwrap();
    let src = repo().join("examples/syscall_counter.bpf.c");
    let out = dir.path().join("x.o");
    let o = ebpfctl(&[
        "build",
        src.to_str().unwrap(),
        "-I",
        repo().join("examples").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    ok(&o, "build --out");
    assert!(out.is_file());
    refused(
        &ebpfctl(&["build", src.to_str().unwrap(), "-o", "json"]),
        "--out FILE",
    );
    refused(
        &ebpfctl(&["pull", "127.0.0.1:1/p:v1", "-o", "table"]),
        "--out FILE",
    );
    // push/pull: -p is no longer a password; --password-stdin reads one.
    for cmd in ["push", "pull"] {
        let mut args = vec![cmd];
        if cmd == "push" {
            args.push(out.to_str().unwrap());
        }
        args.push("127.0.0.1:1/p:v1");
        let mut with_p = args.clone();
        with_p.extend(["-u", "alice", "-p", "secret"]);
        assert_one_line_error(&ebpfctl(&with_p), "--password-stdin");
        // Empty stdin: said so, before any connection.
        let mut stdin = args.clone();
        stdin.extend(["-u", "alice", "--password-stdin"]);
        assert_one_line_error(&ebpfctl(&stdin), "stdin held no password");
        // A password on stdin reaches the connection (nothing listens on port 1).
        let mut child = Command::new(bin())
            .args(&stdin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(!err.contains("stdin held no password"), "{err}");
        assert!(
            !err.contains("s3cret"),
            "the password is never printed: {err}"
        );
    }
}

/// Every top-level command's name, from `ebpfctl --help`.
fn commands() -> Vec<String> {
    let help = String::from_utf8(ebpfctl(&["--help"]).stdout).unwrap();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn every_command_has_examples_in_its_help() {
    let cmds = commands();
    assert!(cmds.len() >= 18, "{cmds:?}");
    for c in &cmds {
        let o = ebpfctl(&[c, "--help"]);
        ok(&o, &format!("{c} --help"));
        let help = String::from_utf8_lossy(&o.stdout);
        let ex = help
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{c} --help has no Examples: block:\n{help}"));
        assert!(
            ex.lines().next().is_some_and(|l| l.contains("ebpfctl ")),
            "{c}: {help}"
        );
    }
    let top = String::from_utf8_lossy(&ebpfctl(&["--help"]).stdout).into_owned();
    assert!(top.contains("Examples:"), "{top}");
}

#[test]
fn completions_for_each_shell_name_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let o = ebpfctl(&["completions", shell]);
        ok(&o, &format!("completions {shell}"));
        let script = String::from_utf8(o.stdout).unwrap();
        assert!(script.len() > 1000, "{shell}: {script}");
        for word in [
            "execsnoop",
            "opensnoop",
            "prog",
            "completions",
            "interval",
            "ppid",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    // bash -n: the bash script parses.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ebpfctl.bash");
    std::fs::write(&f, ebpfctl(&["completions", "bash"]).stdout).unwrap();
    let o = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    ok(&o, "bash -n on the completion script");
    refused(&ebpfctl(&["completions", "tcsh"]), "tcsh");
}

#[test]
fn man_pages_render() {
    // stdout: ebpfctl(1).
    let o = ebpfctl(&["man"]);
    ok(&o, "man");
    let page = String::from_utf8(o.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH ebpfctl 1"),
        "{page}"
    );
    assert!(page.contains(".TH ebpfctl 1"), "{page}");
    // --out DIR: one page per command and subcommand.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let o = ebpfctl(&["man", "--out", out.to_str().unwrap()]);
    ok(&o, "man --out");
    for c in commands() {
        let p = out.join(format!("ebpfctl-{c}.1"));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(text.contains(&format!(".TH ebpfctl-{c} 1")), "{c}: {text}");
    }
    assert!(out.join("ebpfctl.1").is_file());
    assert!(out.join("ebpfctl-prog-show.1").is_file());
    assert!(!out.join("ebpfctl-help.1").exists());
    // groff renders them without a warning.
    for page in ["ebpfctl.1", "ebpfctl-run.1", "ebpfctl-prog-show.1"] {
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww"])
            .arg(out.join(page))
            .output()
            .expect("groff (apt-get install groff-base) renders the man pages");
        ok(&o, &format!("groff {page}"));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("ebpfctl"), "{page}: {text}");
        let warn = String::from_utf8_lossy(&o.stderr);
        assert!(warn.trim().is_empty(), "groff {page}: {warn}");
    }
    let run = Command::new("groff")
        .args(["-man", "-Tutf8"])
        .arg(out.join("ebpfctl-run.1"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("--duration"), "{text}");
    // A symlink at a page's path is not written through.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    std::fs::remove_file(out.join("ebpfctl-top.1")).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("ebpfctl-top.1")).unwrap();
    let o = ebpfctl(&["man", "--out", out.to_str().unwrap()]);
    assert_one_line_error(&o, "ebpfctl-top.1");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
}

#[test]
fn version_has_the_commit_libbpf_and_features() {
    let o = ebpfctl(&["--version"]);
    ok(&o, "--version");
    let v = String::from_utf8(o.stdout).unwrap();
    assert!(
        v.starts_with(&format!("ebpfctl {}", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    let commit = String::from_utf8(commit.stdout).unwrap();
    assert!(
        v.contains(&format!("commit: {}", commit.trim())),
        "{v} (HEAD {commit})"
    );
    let libbpf = v
        .lines()
        .find_map(|l| l.strip_prefix("libbpf: "))
        .unwrap_or_else(|| panic!("{v}"));
    assert!(libbpf.starts_with("v1."), "{v}");
    // The binary is built with the live terminal views (ebpfctl-core's `tui` feature).
    assert!(v.lines().any(|l| l == "features: tui"), "{v}");
    // -V: the short form.
    let o = ebpfctl(&["-V"]);
    assert_eq!(
        String::from_utf8(o.stdout).unwrap().trim(),
        format!("ebpfctl {}", env!("CARGO_PKG_VERSION"))
    );
}

/// `ebpfctl run exec_print -o table` with `extra` flags and environment, stdout a pipe; one
/// exec of ours happens while it runs. Returns stdout.
fn table_to_pipe(extra: &[&str], env: &[(&str, String)]) -> Vec<u8> {
    let obj = example("exec_print");
    let mut args = vec![
        "run",
        obj.to_str().unwrap(),
        "-o",
        "table",
        "--interval",
        "100ms",
    ];
    args.extend_from_slice(extra);
    let r = Run::start_with_env(&args, env);
    Command::new("/bin/true")
        .arg("ebpfctl-cli-table")
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let (status, out, err) = r.stop();
    assert!(status.success(), "{status}: {err:?}");
    out
}

#[test]
fn tables_to_a_pipe_carry_no_escape_codes() {
    let out = table_to_pipe(&[], &[]);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("execs  events"), "{text}");
    assert!(
        !out.contains(&0x1b),
        "escape codes in a piped table: {text:?}"
    );
    // --color always: bold, and still no screen control.
    let out = table_to_pipe(&["--color", "always"], &[]);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("\x1b[1mexecs\x1b[0m"), "{text:?}");
    assert!(!text.contains("\x1b[2J"), "{text:?}");
    // NO_COLOR with --color never / auto: none.
    let out = table_to_pipe(&["--color", "never"], &[("NO_COLOR", "1".into())]);
    assert!(!out.contains(&0x1b));
    // Bad --color value.
    refused(&ebpfctl(&["--color", "sometimes", "feature"]), "sometimes");
}

#[test]
fn tables_on_a_terminal_redraw_and_honour_no_color() {
    let obj = example("exec_print");
    // script(1) gives ebpfctl a pseudo-terminal as stdout; -e returns its exit code.
    let term = |env: &[(&str, &str)], color: &str| -> String {
        // One exec while it runs, so that there is a table (and a bold map name) to draw.
        let cmd = format!(
            "{} run {} -o table --interval 100ms --duration 2s {color} & sleep 1; /bin/true; wait $!",
            bin(),
            obj.display()
        );
        let mut c = Command::new("script");
        c.args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .stdin(Stdio::null())
            .env_remove("NO_COLOR");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().expect("script(1) from util-linux");
        ok(&o, &format!("script -c {cmd}"));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // The live view (docs/tui.md): the alternate screen, left at the end; bold map names.
    let auto = term(&[], "");
    assert!(auto.contains("\x1b[?1049h"), "{auto:?}");
    assert!(auto.contains("\x1b[?1049l"), "{auto:?}");
    assert!(
        auto.contains("\x1b[1m") && auto.contains("execs"),
        "{auto:?}"
    );
    let never = term(&[], "--color never");
    assert!(
        never.contains("\x1b[?1049h") && !never.contains("\x1b[1m"),
        "{never:?}"
    );
    let no_color = term(&[("NO_COLOR", "1")], "");
    assert!(
        no_color.contains("\x1b[?1049h") && !no_color.contains("\x1b[1m"),
        "{no_color:?}"
    );
}

/// `ebpfctl ARGS -o json` as JSON.
fn json_of(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let o = ebpfctl(&all);
    ok(&o, &format!("{all:?}"));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn prog_map_link_select_like_bpftool_and_loaded_at_is_stable() {
    let obj = example("exec_print");
    let r = Run::start(&["run", obj.to_str().unwrap(), "-o", "json"]);
    let held = r.held().clone();
    let prog = *held.progs.iter().next().unwrap();
    let map = *held.maps.iter().next().unwrap();
    let link = *held.links.iter().next().unwrap();
    let id = prog.to_string();
    // By id, both spellings; loaded_at the same in every call.
    let a = json_of(&["prog", "show", &id]);
    let b = json_of(&["prog", "show", "id", &id]);
    assert_eq!(a, b);
    let p = &a[0];
    assert_eq!(p["id"], prog);
    for _ in 0..3 {
        assert_eq!(
            json_of(&["prog", "show", &id])[0]["loaded_at"],
            p["loaded_at"]
        );
    }
    // By name and tag: ours is among the matches, and every match has that name / tag
    // (other processes may load the same example at the same time).
    let name = p["name"].as_str().unwrap();
    let tag = p["tag"].as_str().unwrap();
    for (k, v, field) in [("name", name, "name"), ("tag", tag, "tag")] {
        let all = json_of(&["prog", "show", k, v]);
        let all = all.as_array().unwrap();
        assert!(all.iter().any(|x| x["id"] == prog), "{k} {v}: {all:?}");
        assert!(all.iter().all(|x| x[field] == v), "{all:?}");
    }
    // dump by id works; by a name shared with nothing else it works too, else it names the ids.
    let d = ebpfctl(&["prog", "dump", "id", &id]);
    ok(&d, "prog dump id");
    // Pinned: pin our program, map and link with bpftool, select them, unpin.
    // A fresh machine has no bpffs at /sys/fs/bpf until something mounts it.
    ebpfctl_core::mounts::ensure(&ebpfctl_core::mounts::BPFFS).expect("bpffs");
    let dir = tempfile::Builder::new()
        .prefix("ebpfctl-cli-")
        .tempdir_in("/sys/fs/bpf")
        .unwrap();
    let pin = |kind: &str, id: u32| {
        let path = dir.path().join(kind);
        let o = Command::new("bpftool")
            .args([kind, "pin", "id", &id.to_string()])
            .arg(&path)
            .output()
            .unwrap();
        ok(&o, &format!("bpftool {kind} pin"));
        path
    };
    let pp = pin("prog", prog);
    let mp = pin("map", map);
    let lp = pin("link", link);
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    assert_eq!(json_of(&["prog", "show", "pinned", &s(&pp)])[0]["id"], prog);
    assert_eq!(json_of(&["map", "show", "pinned", &s(&mp)])[0]["id"], map);
    assert_eq!(json_of(&["link", "show", "pinned", &s(&lp)])[0]["id"], link);
    assert_eq!(json_of(&["map", "show", &map.to_string()])[0]["id"], map);
    let mname = json_of(&["map", "show", &map.to_string()])[0]["name"].clone();
    let by_name = json_of(&["map", "show", "name", mname.as_str().unwrap()]);
    assert!(by_name.as_array().unwrap().iter().any(|m| m["id"] == map));
    // A pin of the wrong kind, selectors a kind does not have, nothing matching.
    assert_one_line_error(
        &ebpfctl(&["prog", "show", "pinned", &s(&mp)]),
        "is a BPF map, not a BPF program",
    );
    assert_one_line_error(&ebpfctl(&["link", "show", "name", "x"]), "id|pinned");
    assert_one_line_error(
        &ebpfctl(&["map", "show", "tag", "0123456789abcdef"]),
        "id|name|pinned",
    );
    assert_one_line_error(&ebpfctl(&["prog", "show", "tag", "xyz"]), "16 hex digits");
    assert_one_line_error(
        &ebpfctl(&["prog", "show", "name", "ebpfctl_no_such_prog"]),
        "no BPF program with name ebpfctl_no_such_prog",
    );
    for p in [&pp, &mp, &lp] {
        std::fs::remove_file(p).unwrap();
    }
    drop(dir);
    let (status, _, err) = r.stop();
    assert!(status.success(), "{err:?}");
}
