//! Command-line definition and dispatch. Each command lives in its own file and exposes
//! `Args` (its flags) and `run(Args) -> anyhow::Result<i32>` (the exit code).
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod btf;
mod build;
mod completions;
mod containers;
mod execsnoop;
mod feature;
mod flags;
mod image;
mod init;
mod inspect;
mod link;
mod man;
mod map;
mod net;
mod observe;
mod opensnoop;
mod prog;
mod progress;
mod pull;
mod push;
mod registry;
mod run;
mod snoop;
mod top;

#[derive(Parser)]
#[command(
    name = "ebpfctl",
    version,
    about = "Run eBPF probes with zero user-space code; trace; inspect BPF state",
    after_help = "Examples:\n  \
ebpfctl build probe.bpf.c && sudo ebpfctl run probe.bpf.o\n  \
sudo ebpfctl execsnoop -o json -d 10s\n  \
sudo ebpfctl prog show name my_prog -o json\n  \
ebpfctl completions bash > /etc/bash_completion.d/ebpfctl\n\n\
Durations are 500ms, 2s, 1m or bare seconds; -o is json|table|none (log where a tool has one); \
-p is a PID; a file to write is --out FILE. See docs/cli.md."
)]
pub(crate) struct Cli {
    /// Colours and bold in tables: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    color: flags::ColorWhen,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `ebpfctl --version`: the version, the commit, libbpf's version and the compiled features.
fn long_version() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        // The binary's own cargo features and its libraries' (the live views: core's `tui`).
        let mut features: Vec<&str> = env!("EBPFCTL_FEATURES")
            .split(',')
            .filter(|f| !f.is_empty())
            .chain(ebpfctl_core::FEATURES.iter().copied())
            .collect();
        features.sort_unstable();
        features.dedup();
        format!(
            "{}\ncommit: {}\nlibbpf: {}\nfeatures: {}\nprofile: {}",
            env!("CARGO_PKG_VERSION"),
            env!("EBPFCTL_GIT_COMMIT"),
            ebpfctl_core::libbpf_version(),
            if features.is_empty() {
                "none".to_string()
            } else {
                features.join(",")
            },
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        )
    })
}

/// The whole command line: what parses the flags, and what completions and man pages are
/// generated from.
pub(crate) fn command() -> clap::Command {
    Cli::command().long_version(long_version())
}

// Deferred: parsing builds the flags of the command that runs only, not of all 19 (each
// command's flag definitions are code spread over the binary, and every page of it the
// start-up touches is resident; bench/README.md "snoop").
#[derive(Subcommand)]
#[command(defer = true)]
enum Cmd {
    /// Load a compiled BPF object, attach its programs and turn its maps into output.
    Run(run::Args),
    /// Compile a probe (.bpf.c) into a BPF object with this kernel's vmlinux.h.
    Build(build::Args),
    /// Write a starter probe to a new directory.
    Init(init::Args),
    /// Package compiled probes as an OCI artifact and push them to a registry (= image push).
    Push(push::Args),
    /// Pull a probe from a registry into the store (= image pull).
    Pull(pull::Args),
    /// Probes as OCI images: push, pull, list, describe, tag, rm, login, logout.
    Image(image::Args),
    /// Trace process execution: started / exited / error events.
    Execsnoop(execsnoop::Args),
    /// Trace open, openat and openat2.
    Opensnoop(opensnoop::Args),
    /// Trace HTTP requests of Go programs (net/http) with uprobes.
    Observe(observe::Args),
    /// BPF programs loaded in the kernel.
    #[command(after_help = "Examples:\n  \
sudo ebpfctl prog\n  \
sudo ebpfctl prog show 42 -o json\n  \
sudo ebpfctl prog show name on_exec\n  \
sudo ebpfctl prog show pinned /sys/fs/bpf/my_prog\n  \
sudo ebpfctl prog dump tag 1a2b3c4d5e6f7a8b --linum")]
    Prog(prog::Args),
    /// BPF maps in the kernel.
    #[command(after_help = "Examples:\n  \
sudo ebpfctl map\n  \
sudo ebpfctl map show name counter_exec_calls\n  \
sudo ebpfctl map dump 7 -o json")]
    Map(map::Args),
    /// BPF links in the kernel.
    #[command(after_help = "Examples:\n  \
sudo ebpfctl link\n  \
sudo ebpfctl link show 3 -o json\n  \
sudo ebpfctl link show pinned /sys/fs/bpf/my_link")]
    Link(link::Args),
    /// BPF programs and tc filters on network interfaces; remove filters ebpfctl left behind.
    #[command(after_help = "Examples:\n  \
sudo ebpfctl net\n  \
sudo ebpfctl net list --iface eth0 -o json\n  \
sudo ebpfctl net detach --dry-run")]
    Net(net::Args),
    /// BTF: dump the kernel's, a file's or a loaded object's types.
    #[command(after_help = "Examples:\n  \
ebpfctl btf\n  \
ebpfctl btf dump vmlinux --format c --out vmlinux.h\n  \
ebpfctl btf dump file probe.bpf.o -o json")]
    Btf(btf::Args),
    /// One view of a BPF object file: sections, programs, maps, parameters, problems.
    Inspect(inspect::Args),
    /// What this kernel supports for BPF, each with its consequence.
    Feature(feature::Args),
    /// Live per-program view of BPF run time (turns BPF statistics on while running).
    Top(top::Args),
    /// A shell completion script (bash, zsh, fish, ...) on stdout.
    Completions(completions::Args),
    /// Man pages: ebpfctl(1) on stdout, or one page per command into a directory.
    Man(man::Args),
}

/// Parses flags, runs one command, prints a failure as one line on stderr.
pub fn run() -> i32 {
    let cli = match command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map_err(|e| e.format(&mut command())))
    {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            error_line(&usage_error_line(&e));
            return 2;
        }
    };
    // EBPFCTL_CHECK_ARGS=1: stop once the flags parse. The deploy tests run every command
    // line of deploy/kubernetes/ through it so the manifests cannot drift from the flags.
    if std::env::var_os("EBPFCTL_CHECK_ARGS").is_some_and(|v| v == "1") {
        eprintln!("ebpfctl: arguments accepted");
        return 0;
    }
    flags::set_color(cli.color);
    let result = match cli.cmd {
        Cmd::Run(a) => run::run(a),
        Cmd::Build(a) => build::run(a),
        Cmd::Init(a) => init::run(a),
        Cmd::Push(a) => push::run(a),
        Cmd::Pull(a) => pull::run(a),
        Cmd::Image(a) => image::run(a),
        Cmd::Execsnoop(a) => execsnoop::run(a),
        Cmd::Opensnoop(a) => opensnoop::run(a),
        Cmd::Observe(a) => observe::run(a),
        Cmd::Prog(a) => prog::run(a),
        Cmd::Map(a) => map::run(a),
        Cmd::Link(a) => link::run(a),
        Cmd::Net(a) => net::run(a),
        Cmd::Btf(a) => btf::run(a),
        Cmd::Inspect(a) => inspect::run(a),
        Cmd::Feature(a) => feature::run(a),
        Cmd::Top(a) => top::run(a),
        Cmd::Completions(a) => completions::run(a),
        Cmd::Man(a) => man::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            error_line(&one_line(&e));
            if e.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            }
        }
    }
}

/// A command line clap accepted but a command found malformed (e.g. a selector `map show
/// twelve`): exits 2, as clap's own usage errors do.
#[derive(Debug)]
pub(crate) struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Writes `ebpfctl: error: MSG` to stderr; a stderr that cannot be written (closed pipe)
/// must not turn the failure into a panic.
fn error_line(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "ebpfctl: error: {msg}");
}

/// A flag error as one line: clap's message (its first line, without the "error: " it starts
/// with), the offending arguments clap lists below it, and where to read more.
fn usage_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ");
    let mut out = first.trim_end_matches(':').to_string();
    // "the following required arguments were not provided:" lists them on the next lines.
    let rest: Vec<&str> = lines
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect();
    let (tips, listed): (Vec<&str>, Vec<&str>) = rest.iter().partition(|l| l.starts_with("tip:"));
    if !listed.is_empty() {
        out.push_str(": ");
        out.push_str(&listed.join(", "));
    }
    for t in tips {
        out.push_str("; ");
        out.push_str(t);
    }
    out.push_str("; see --help");
    out
}

/// The whole error chain on one line ("what failed: why: root cause"), skipping causes a
/// message already spells out (typed errors often embed their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if out.contains(msg.as_str()) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}
