//! `ebpfctl init DIR`: a starter probe that builds and runs as is with `ebpfctl run`.
//!
//! The probe is one program (its kind: tracepoint, kprobe, uprobe, XDP, TC or LSM) feeding one
//! map (a ring buffer or a hash map) with one keyword (print, counter, gauge or hist). On a
//! terminal, what the flags leave open is asked; otherwise it takes the defaults (a tracepoint
//! on exec printing each event, as `init` always wrote). docs/conventions.md, "Starting a probe".
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
ebpfctl init myprobe                                  # ask on a terminal, else the defaults\n  \
ebpfctl init myprobe --yes                            # tracepoint on exec, ring buffer, print\n  \
ebpfctl init myprobe --kind uprobe --target bash:readline --map ringbuf --keyword print\n  \
ebpfctl init myprobe --kind xdp --map hash --keyword counter --name udp\n  \
ebpfctl init myprobe --kind lsm --map hash --keyword hist && ebpfctl build myprobe/probe.bpf.c")]
pub struct Args {
    /// Directory to create (or an existing one: NAME.bpf.c must not exist in it).
    dir: PathBuf,
    /// Name of the probe file (NAME.bpf.c).
    #[arg(long, default_value = "probe")]
    name: String,
    /// Program kind [asked on a terminal; default: tracepoint].
    #[arg(long, value_enum)]
    kind: Option<Kind>,
    /// What the program hooks: tracepoint CATEGORY/NAME, kprobe FUNCTION, uprobe
    /// BINARY:SYMBOL (a bare binary is looked up on $PATH at run time), lsm HOOK; none for
    /// xdp and tc (the interface is `ebpfctl run --iface`) [asked; default: per kind].
    #[arg(long, value_name = "WHAT")]
    target: Option<String>,
    /// Map kind [asked on a terminal; default: ringbuf].
    #[arg(long, value_enum)]
    map: Option<MapKind>,
    /// The map's keyword: what `ebpfctl run` makes of it [asked; default: print]. gauge needs
    /// --map hash.
    #[arg(long, value_enum)]
    keyword: Option<Keyword>,
    /// The map's name after its keyword prefix (`print_NAME`); outputs show NAME [default:
    /// per kind: execs, sleeps, calls, packets, opens].
    #[arg(long, value_name = "NAME")]
    map_name: Option<String>,
    /// Ask nothing, even on a terminal: the defaults for whatever the flags leave open.
    #[arg(short, long)]
    yes: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A kernel tracepoint (stable, cheap): sched/sched_process_exec.
    Tracepoint,
    /// Any kernel function (needs CONFIG_KPROBES): hrtimer_nanosleep.
    Kprobe,
    /// A function in a user-space binary: bash:readline.
    Uprobe,
    /// Every packet arriving on an interface, before the stack (`run --iface`).
    Xdp,
    /// Packets in the stack's ingress (tcx, or a tc filter before 6.6; `run --iface`).
    Tc,
    /// A BPF LSM hook (needs CONFIG_BPF_LSM and `bpf` in lsm=): file_open.
    Lsm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MapKind {
    /// A ring buffer: one record per event, read as they come.
    Ringbuf,
    /// A hash map: state per key, read every --interval.
    Hash,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Keyword {
    /// Print: a JSON line / table row per event (ring buffer) or per entry (hash).
    Print,
    /// A Prometheus counter (per event or per key).
    Counter,
    /// A Prometheus gauge per key (hash only).
    Gauge,
    /// A Prometheus histogram.
    Hist,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Tracepoint,
        Kind::Kprobe,
        Kind::Uprobe,
        Kind::Xdp,
        Kind::Tc,
        Kind::Lsm,
    ];
    fn name(self) -> &'static str {
        match self {
            Kind::Tracepoint => "tracepoint",
            Kind::Kprobe => "kprobe",
            Kind::Uprobe => "uprobe",
            Kind::Xdp => "xdp",
            Kind::Tc => "tc",
            Kind::Lsm => "lsm",
        }
    }
    fn about(self) -> &'static str {
        match self {
            Kind::Tracepoint => "a kernel tracepoint (stable, cheap)",
            Kind::Kprobe => "any kernel function (needs CONFIG_KPROBES)",
            Kind::Uprobe => "a function in a user-space binary",
            Kind::Xdp => "packets arriving on an interface, before the stack",
            Kind::Tc => "packets in the stack's ingress (tcx / tc)",
            Kind::Lsm => "a BPF LSM hook (needs the bpf LSM)",
        }
    }
    fn network(self) -> bool {
        matches!(self, Kind::Xdp | Kind::Tc)
    }
    fn default_target(self) -> Option<&'static str> {
        match self {
            Kind::Tracepoint => Some(EXEC_TP),
            Kind::Kprobe => Some("hrtimer_nanosleep"),
            Kind::Uprobe => Some("bash:readline"),
            Kind::Lsm => Some("file_open"),
            Kind::Xdp | Kind::Tc => None,
        }
    }
    fn target_form(self) -> &'static str {
        match self {
            Kind::Tracepoint => "CATEGORY/NAME (see /sys/kernel/tracing/events)",
            Kind::Kprobe => "a kernel FUNCTION (see /proc/kallsyms)",
            Kind::Uprobe => "BINARY:SYMBOL (a bare binary is looked up on $PATH)",
            Kind::Lsm => "an LSM HOOK (include/linux/lsm_hook_defs.h)",
            Kind::Xdp | Kind::Tc => "",
        }
    }
    fn default_map_name(self) -> &'static str {
        match self {
            Kind::Tracepoint => "execs",
            Kind::Kprobe => "sleeps",
            Kind::Lsm => "opens",
            Kind::Uprobe => "calls",
            Kind::Xdp | Kind::Tc => "packets",
        }
    }
}

impl MapKind {
    const ALL: [MapKind; 2] = [MapKind::Ringbuf, MapKind::Hash];
    fn name(self) -> &'static str {
        match self {
            MapKind::Ringbuf => "ringbuf",
            MapKind::Hash => "hash",
        }
    }
    fn about(self) -> &'static str {
        match self {
            MapKind::Ringbuf => "one record per event, read as they come",
            MapKind::Hash => "state per key, read every --interval",
        }
    }
}

impl Keyword {
    const ALL: [Keyword; 4] = [
        Keyword::Print,
        Keyword::Counter,
        Keyword::Gauge,
        Keyword::Hist,
    ];
    fn name(self) -> &'static str {
        match self {
            Keyword::Print => "print",
            Keyword::Counter => "counter",
            Keyword::Gauge => "gauge",
            Keyword::Hist => "hist",
        }
    }
    fn about(self, map: MapKind) -> &'static str {
        match (self, map) {
            (Keyword::Print, MapKind::Ringbuf) => "a JSON line / table row per event",
            (Keyword::Print, MapKind::Hash) => "a snapshot of every entry each --interval",
            (Keyword::Counter, MapKind::Ringbuf) => "a Prometheus counter, +1 per event",
            (Keyword::Counter, MapKind::Hash) => "a Prometheus counter per key",
            (Keyword::Gauge, _) => "a Prometheus gauge per key",
            (Keyword::Hist, MapKind::Ringbuf) => "a Prometheus histogram of a member",
            (Keyword::Hist, MapKind::Hash) => "a Prometheus histogram from log2 slots",
        }
    }
    fn fits(self, map: MapKind) -> bool {
        !(self == Keyword::Gauge && map == MapKind::Ringbuf)
    }
}

const EXEC_TP: &str = "sched/sched_process_exec";

/// A probe name becomes a file name in DIR: letters, digits, `_`, `-` and `.` only, so it
/// cannot leave DIR or hide.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !ok {
        anyhow::bail!(
            "--name {name:?}: use letters, digits, `_`, `-` and `.` (not first), e.g. --name my_probe"
        );
    }
    Ok(())
}

/// A map name is a C identifier (it is one in the source).
fn check_map_name(name: &str) -> anyhow::Result<()> {
    let ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.len() <= 15 - "counter_".len()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        anyhow::bail!(
            "--map-name {name:?}: use a C identifier of at most 7 characters (letters, digits, \
             `_`; the kernel keeps 15 of `KEYWORD_NAME`), e.g. --map-name execs"
        );
    }
    Ok(())
}

/// What a section target may contain: it goes into `SEC("...")` and a comment.
fn check_target(kind: Kind, target: &str) -> anyhow::Result<()> {
    let ok = !target.is_empty()
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:+".contains(&b))
        && match kind {
            Kind::Tracepoint => target.split('/').count() == 2 && !target.contains(':'),
            Kind::Uprobe => target
                .rsplit_once(':')
                .is_some_and(|(b, s)| !b.is_empty() && !s.is_empty() && !s.contains('/')),
            Kind::Kprobe | Kind::Lsm => !target.contains(['/', ':']),
            Kind::Xdp | Kind::Tc => false,
        };
    if !ok {
        anyhow::bail!(
            "--target {target:?} for a {} probe: give {}, e.g. --target {}",
            kind.name(),
            kind.target_form(),
            kind.default_target().unwrap_or("")
        );
    }
    Ok(())
}

/// Every choice made: what [`source`] writes.
#[derive(Clone, Debug)]
pub struct Choice {
    pub kind: Kind,
    pub target: Option<String>,
    pub map: MapKind,
    pub keyword: Keyword,
    pub map_name: String,
}

/// Reads answers from stdin, asks on stderr.
struct Prompt<'a> {
    input: std::io::StdinLock<'a>,
}

impl Prompt<'_> {
    /// A numbered menu; an empty answer is the default (the first entry). Takes the number or
    /// the name.
    fn choose<T: Copy>(
        &mut self,
        what: &str,
        options: &[(T, &str, &str)],
        default: usize,
    ) -> anyhow::Result<T> {
        // Each prompt goes out in one write: typed-ahead answers echoed by the terminal then
        // land between prompts, not inside one.
        let mut menu = format!("{what}:\n");
        for (i, (_, name, about)) in options.iter().enumerate() {
            menu += &format!("  {}) {name:<11} {about}\n", i + 1);
        }
        let ask = format!("choice [{}]: ", options[default].1);
        menu += &ask;
        let mut say = menu;
        for _ in 0..3 {
            say_it(&say)?;
            let line = self.line()?;
            let a = line.trim();
            if a.is_empty() {
                return Ok(options[default].0);
            }
            if let Some(t) = a
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| options.get(i))
                .or_else(|| options.iter().find(|o| o.1.eq_ignore_ascii_case(a)))
            {
                return Ok(t.0);
            }
            say = format!("  {a:?}: answer 1-{} or a name\n{ask}", options.len());
        }
        anyhow::bail!("no valid {what} given; pass it as a flag (ebpfctl init --help)")
    }

    /// Free text; empty is `default`.
    fn text(&mut self, what: &str, default: &str) -> anyhow::Result<String> {
        say_it(&format!("{what} [{default}]: "))?;
        let line = self.line()?;
        let a = line.trim();
        Ok(if a.is_empty() { default } else { a }.to_string())
    }

    fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            anyhow::bail!(
                "stdin closed before every question was answered; pass --kind, --map and \
                 --keyword (or --yes for the defaults)"
            );
        }
        Ok(line)
    }
}

/// A prompt on stderr, in one write.
fn say_it(text: &str) -> std::io::Result<()> {
    let mut err = std::io::stderr().lock();
    err.write_all(text.as_bytes())?;
    err.flush()
}

fn decide(a: &Args) -> anyhow::Result<Choice> {
    let stdin = std::io::stdin();
    let ask = !a.yes && stdin.is_terminal();
    let mut p = Prompt {
        input: stdin.lock(),
    };
    let kind = match a.kind {
        Some(k) => k,
        None if ask => p.choose(
            "program kind",
            &Kind::ALL.map(|k| (k, k.name(), k.about())),
            0,
        )?,
        None => Kind::Tracepoint,
    };
    let target = match (kind.default_target(), &a.target) {
        (None, Some(t)) => anyhow::bail!(
            "--target {t:?}: a {} program hooks an interface, chosen at run time with \
             `ebpfctl run --iface NAME`; drop --target",
            kind.name()
        ),
        (None, None) => None,
        (Some(_), Some(t)) => Some(t.clone()),
        (Some(d), None) if ask => Some(p.text(
            &format!("{} to hook, {}", kind.name(), kind.target_form()),
            d,
        )?),
        (Some(d), None) => Some(d.to_string()),
    };
    if let Some(t) = &target {
        check_target(kind, t)?;
    }
    let map = match a.map {
        Some(m) => m,
        None if ask => p.choose(
            "map kind",
            &MapKind::ALL.map(|m| (m, m.name(), m.about())),
            0,
        )?,
        None => MapKind::Ringbuf,
    };
    let keyword = match a.keyword {
        Some(k) => k,
        None if ask => {
            let fits: Vec<_> = Keyword::ALL
                .into_iter()
                .filter(|k| k.fits(map))
                .map(|k| (k, k.name(), k.about(map)))
                .collect();
            p.choose("keyword", &fits, 0)?
        }
        None => Keyword::Print,
    };
    if !keyword.fits(map) {
        anyhow::bail!(
            "--keyword gauge needs --map hash: a gauge is a value per key, and a ring buffer \
             has events, not keys (with --map ringbuf use print, counter or hist)"
        );
    }
    let map_name = match &a.map_name {
        Some(n) => n.clone(),
        None if ask => p.text("map name", kind.default_map_name())?,
        None => kind.default_map_name().to_string(),
    };
    check_map_name(&map_name)?;
    Ok(Choice {
        kind,
        target,
        map,
        keyword,
        map_name,
    })
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    check_name(&a.name)?;
    let src = a.dir.join(format!("{}.bpf.c", a.name));
    if src.symlink_metadata().is_ok() {
        anyhow::bail!(
            "{} already exists; pick another directory or --name",
            src.display()
        );
    }
    let c = decide(&a)?;
    let text = source(&c, &a.name);
    std::fs::create_dir_all(&a.dir).with_context(|| format!("create {}", a.dir.display()))?;
    // O_CREAT|O_EXCL: never follows a symlink or replaces a file that appeared meanwhile.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&src)
        .with_context(|| format!("create {}", src.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {}", src.display()))?;
    let obj = src.with_extension("o");
    let run_args = if c.kind.network() { " --iface lo" } else { "" };
    println!(
        "wrote {} ({} {}, {} {}_{})\nnext:\n  ebpfctl build {}\n  sudo ebpfctl run {}{run_args}",
        src.display(),
        c.kind.name(),
        c.target.as_deref().unwrap_or("program"),
        c.map.name(),
        c.keyword.name(),
        c.map_name,
        src.display(),
        obj.display()
    );
    Ok(0)
}

// ---- the source ------------------------------------------------------------------------------

/// The probe's C source for `c`; `file` is the NAME of NAME.bpf.c.
pub fn source(c: &Choice, file: &str) -> String {
    let mut s = String::new();
    let map = format!("{}_{}", c.keyword.name(), c.map_name);
    let shown = &c.map_name;
    let net = c.kind.network();
    let exec_tp = c.kind == Kind::Tracepoint && c.target.as_deref() == Some(EXEC_TP);
    let run_args = if net { " --iface lo" } else { "" };
    s += &format!(
        "// {file}.bpf.c: a {kind} probe feeding a {mk} `{kw}` map, written by `ebpfctl init`.\n\
         //   ebpfctl build {file}.bpf.c            (clang; writes {file}.bpf.o)\n\
         //   sudo ebpfctl run {file}.bpf.o{run_args}   (-o json|table|none, --metrics-addr, --help)\n\
         // No user-space code: `ebpfctl run` attaches each program by its SEC() name and turns\n\
         // each map into output by its keyword (docs/conventions.md).\n",
        kind = c.kind.name(),
        mk = c.map.name(),
        kw = c.keyword.name(),
    );
    s += "#include \"vmlinux.h\"           /* every kernel type, from the kernel's BTF (`ebpfctl build` makes it) */\n\
          #include <bpf/bpf_helpers.h>    /* SEC(), bpf_map_* and the other helpers */\n";
    if net {
        s += "#include <bpf/bpf_endian.h>     /* bpf_htons / bpf_ntohs */\n";
    } else {
        s += "#include <bpf/bpf_core_read.h>  /* BPF_CORE_READ: kernel fields at this kernel's offsets */\n";
    }
    s += "#include \"ebpfctl.h\"           /* typedefs the decoder understands, EBPFCTL_PARAM, lost counter */\n\n";

    // Parameters.
    if net {
        s += "#define ETH_P_IP 0x0800\n";
        if c.kind == Kind::Tc {
            s += "#define TC_ACT_OK 0 /* let the packet through (as tcx: TCX_PASS) */\n";
        }
        s += "\n/* A parameter (`const volatile`, set before load): ebpfctl run ... --param target_port=53\n\
              * (0: every port). `ebpfctl run OBJ --list-params` lists them. */\n\
              EBPFCTL_PARAM(__u16, target_port, 0);\n\n";
    } else {
        s += "/* A parameter (`const volatile`, set before load): ebpfctl run ... --param target_uid=1000\n\
              * (-1: everyone). `ebpfctl run OBJ --list-params` lists them. */\n\
              EBPFCTL_PARAM(__s64, target_uid, -1);\n\n";
    }

    // The label (who / where) and the value (how much) every map kind is built from.
    let (label_decl, value_ty, value_name, value_doc) = if net {
        (
            "l4_endpoint dst; /* printed \"127.0.0.1:53/udp\" */",
            "__u64",
            if c.map == MapKind::Ringbuf && c.keyword == Keyword::Hist {
                "value"
            } else {
                "bytes"
            },
            "the packet's length in bytes",
        )
    } else {
        (
            "comm comm;       /* the command name: a string */",
            "duration",
            "age",
            "how long the process had lived (ns; typedef `duration`: tables print 1.3ms, metrics seconds)",
        )
    };

    // Types and the map.
    let stream = c.map == MapKind::Ringbuf;
    match (c.map, c.keyword) {
        (MapKind::Ringbuf, Keyword::Print) => {
            s += "/* One record per event. Members of these typedefs (pid, uid, comm, duration,\n\
                  * l4_endpoint, ...: include/ebpfctl.h) are decoded by name. */\nstruct event {\n";
            if net {
                s += &format!("\t{label_decl}\n\t{value_ty} {value_name}; /* {value_doc} */\n");
            } else {
                s += &format!(
                    "\tpid pid;\n\tuid uid;\n\t{label_decl}\n\t{value_ty} {value_name}; /* {value_doc} */\n"
                );
                if exec_tp {
                    s += "\tchar filename[128];\n";
                }
            }
            s += "};\n\n";
        }
        (MapKind::Ringbuf, Keyword::Counter) => {
            s += &format!(
                "/* A `counter` ring buffer: each event adds 1 to the counter of its members' values,\n\
                 * so every member is a label: keep them few-valued (no pids, no times). */\n\
                 struct event {{\n\t{label_decl}\n}};\n\n"
            );
        }
        (MapKind::Ringbuf, Keyword::Hist) => {
            let which = if net {
                "the member named `value`"
            } else {
                "the first `duration` member"
            };
            s += &format!(
                "/* A `hist` ring buffer: each event is observed in a histogram. It observes {which}\n\
                 * (`run --hist-key NAME` picks another); the other members are labels. */\n\
                 struct event {{\n\t{label_decl}\n\t{value_ty} {value_name}; /* {value_doc} */\n}};\n\n"
            );
        }
        (MapKind::Ringbuf, Keyword::Gauge) => unreachable!("refused in decide()"),
        (MapKind::Hash, kw) => {
            s += &format!(
                "/* The key: its members are the labels of the metric / the columns of a snapshot. */\n\
                 struct {shown}_key {{ /* named after the map: vmlinux.h has a `struct key` */\n\t{label_decl}\n"
            );
            if kw == Keyword::Hist {
                s += "\t__u32 slot; /* `hist` on a hash map: the member named slot is the bucket */\n";
            }
            s += "};\n\n";
            if kw == Keyword::Print {
                s += &format!(
                    "/* A struct value: a snapshot prints each member. */\n\
                     struct {shown}_stats {{\n\t__u64 count;\n\t{value_ty} last_{value_name}; /* {value_doc} */\n}};\n\n"
                );
            }
        }
    }
    let (section_doc, map_decl) = match c.map {
        MapKind::Ringbuf => (
            "A ring buffer",
            "\t__uint(type, BPF_MAP_TYPE_RINGBUF);\n\
             \t__uint(max_entries, 1 << 20); /* bytes */\n\
             \t__type(value, struct event);  /* for the decoder: ebpfctl removes it before loading */\n"
                .to_string(),
        ),
        MapKind::Hash => (
            "A hash map",
            format!(
                "\t__uint(type, BPF_MAP_TYPE_HASH);\n\
                 \t__uint(max_entries, 10240);\n\
                 \t__type(key, struct {shown}_key);\n\
                 \t__type(value, {});\n",
                match c.keyword {
                    Keyword::Print => format!("struct {shown}_stats"),
                    Keyword::Gauge => value_ty.to_string(),
                    _ => "__u64".to_string(),
                }
            ),
        ),
    };
    let kw_doc = match c.keyword {
        Keyword::Print => "print: JSON lines (-o json) or a table",
        Keyword::Counter => "counter: `ebpfctl_NAME_total` on --metrics-addr",
        Keyword::Gauge => "gauge: `ebpfctl_NAME` on --metrics-addr",
        Keyword::Hist => "hist: `ebpfctl_NAME_bucket`... on --metrics-addr",
    };
    s += &format!(
        "/* {section_doc}. Its keyword comes from the name's prefix `{kw}_` ({kw_doc});\n\
         * outputs name it `{shown}`. The section spelling `SEC(\".maps.{kw}\")` does the same. */\n\
         struct {{\n{map_decl}}} {map} SEC(\".maps\");\n",
        kw = c.keyword.name(),
    );
    if stream {
        s += &format!(
            "/* Reservations that fail (a full ring) are counted here; the runner reports them as lost. */\n\
             EBPFCTL_LOST_COUNTER({map});\n"
        );
    }
    s += "\n";

    // The program.
    let t = c.target.as_deref().unwrap_or("");
    let (sec, head, ret) = match c.kind {
        Kind::Tracepoint if exec_tp => (
            format!("tracepoint/{t}"),
            "int on_exec(struct trace_event_raw_sched_process_exec *ctx)".to_string(),
            "0",
        ),
        Kind::Tracepoint => (
            format!("tracepoint/{t}"),
            "int on_event(void *ctx) /* the tracepoint's fields: /sys/kernel/tracing/events/.../format */"
                .to_string(),
            "0",
        ),
        Kind::Kprobe => (
            format!("kprobe/{t}"),
            "int on_call(struct pt_regs *ctx) /* PT_REGS_PARM1(ctx)...: the arguments (bpf_tracing.h) */"
                .to_string(),
            "0",
        ),
        Kind::Uprobe => (
            format!("uprobe/{t}"),
            "int on_call(struct pt_regs *ctx) /* PT_REGS_PARM1(ctx)...: the arguments (bpf_tracing.h) */"
                .to_string(),
            "0",
        ),
        Kind::Lsm => (
            format!("lsm/{t}"),
            "int on_hook(unsigned long long *ctx) /* ctx[0]...: the hook's arguments; bpf_tracing.h's\n\
             \x20  BPF_PROG(on_hook, struct file *file) names them */"
                .to_string(),
            "0; /* an LSM program's verdict: 0 allows, -EPERM denies */",
        ),
        Kind::Xdp => (
            "xdp".to_string(),
            "int on_packet(struct xdp_md *ctx)".to_string(),
            "XDP_PASS; /* the verdict: XDP_PASS, XDP_DROP, XDP_TX, XDP_REDIRECT */",
        ),
        Kind::Tc => (
            "tc/ingress".to_string(),
            "int on_packet(struct __sk_buff *ctx)".to_string(),
            "TC_ACT_OK; /* the verdict: TC_ACT_OK, TC_ACT_SHOT (drop), ... */",
        ),
    };
    let attach_doc = match c.kind {
        Kind::Tracepoint => "a tracepoint",
        Kind::Kprobe => "a kprobe on a kernel function",
        Kind::Uprobe => "a uprobe on BINARY:SYMBOL",
        Kind::Lsm => "the BPF LSM hook",
        Kind::Xdp => "an XDP link on `run --iface NAME`",
        Kind::Tc => "a tcx link (a tc filter before Linux 6.6) on `run --iface NAME`",
    };
    s += &format!(
        "/* The section name says where `ebpfctl run` attaches the program: {attach_doc}. */\n\
         SEC(\"{sec}\")\n{head}\n{{\n"
    );
    let bail = if net {
        format!("\t\treturn {};\n", ret.split(';').next().unwrap_or("0"))
    } else {
        "\t\treturn 0;\n".to_string()
    };
    if net {
        s += &format!(
            "\tvoid *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;\n\
             \t/* The verifier wants every access checked against the end of the packet. */\n\
             \tstruct ethhdr *eth = data;\n\
             \tif ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))\n{bail}\
             \tstruct iphdr *ip = (void *)(eth + 1);\n\
             \tif ((void *)(ip + 1) > end || ip->ihl != 5 ||\n\
             \t    (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP))\n{bail}\
             \tstruct udphdr *l4 = (void *)(ip + 1); /* TCP's ports sit at the same offsets */\n\
             \tif ((void *)(l4 + 1) > end)\n{bail}\
             \tif (target_port && bpf_ntohs(l4->dest) != target_port)\n{bail}\
             \tl4_endpoint dst = {{}};\n\
             \t__builtin_memcpy(dst.addr, &ip->daddr, 4);\n\
             \tdst.port = bpf_ntohs(l4->dest);\n\
             \tdst.family = 2; /* AF_INET */\n\
             \tdst.proto = ip->protocol;\n\
             \t__u64 {value_name} = {};\n",
            if c.kind == Kind::Xdp {
                "end - data"
            } else {
                "ctx->len"
            }
        );
    } else {
        s += &format!(
            "\t__u64 ug = bpf_get_current_uid_gid();\n\
             \tif (target_uid >= 0 && (__u32)ug != target_uid)\n{bail}\
             \t/* CO-RE: BPF_CORE_READ follows kernel pointers at this kernel's field offsets. */\n\
             \tstruct task_struct *task = (void *)bpf_get_current_task();\n\
             \t{value_ty} {value_name} = bpf_ktime_get_ns() - BPF_CORE_READ(task, group_leader, start_time);\n"
        );
    }
    let label_fill = |var: &str| -> String {
        if net {
            format!("\t{var}.dst = dst;\n")
        } else {
            format!("\tbpf_get_current_comm({var}.comm, sizeof({var}.comm));\n")
        }
    };
    match (c.map, c.keyword) {
        (MapKind::Ringbuf, kw) => {
            s += &format!(
                "\t/* Reserve through ebpfctl_reserve: a failure is counted as lost. */\n\
                 \tstruct event *e = ebpfctl_reserve({map}, struct event);\n\
                 \tif (!e)\n{bail}"
            );
            s += &label_fill("(*e)").replace("(*e).", "e->");
            if kw != Keyword::Counter {
                s += &format!("\te->{value_name} = {value_name};\n");
            }
            if kw == Keyword::Print && !net {
                s += "\te->pid = bpf_get_current_pid_tgid() >> 32;\n\te->uid = (__u32)ug;\n";
                if exec_tp {
                    s += "\tunsigned off = ctx->__data_loc_filename & 0xffff; /* a __data_loc string */\n\
                          \tbpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);\n";
                }
            }
            if kw == Keyword::Counter {
                s += &format!("\t(void){value_name}; /* a counter needs no value */\n");
            }
            s += "\tbpf_ringbuf_submit(e, 0); /* e is gone after this */\n";
        }
        (MapKind::Hash, kw) => {
            s += &format!(
                "\tstruct {shown}_key k = {{}}; /* zeroed: padding is part of the key */\n"
            );
            s += &label_fill("k");
            match kw {
                Keyword::Print => s += &format!(
                    "\tstruct {shown}_stats *v = bpf_map_lookup_elem(&{map}, &k);\n\
                     \tif (v) {{\n\
                     \t\t__sync_fetch_and_add(&v->count, 1);\n\
                     \t\tv->last_{value_name} = {value_name};\n\
                     \t}} else {{\n\
                     \t\tstruct {shown}_stats init = {{ .count = 1, .last_{value_name} = {value_name} }};\n\
                     \t\tbpf_map_update_elem(&{map}, &k, &init, BPF_NOEXIST);\n\
                     \t}}\n"
                ),
                Keyword::Gauge => s += &format!(
                    "\t/* A gauge holds the latest value per key. */\n\
                     \tbpf_map_update_elem(&{map}, &k, &{value_name}, BPF_ANY);\n"
                ),
                Keyword::Counter | Keyword::Hist => {
                    if kw == Keyword::Hist {
                        s += &format!(
                            "\tk.slot = ebpfctl_log2({value_name}); /* slot s counts values in [2^s, 2^(s+1)) */\n"
                        );
                    } else {
                        s += &format!("\t(void){value_name}; /* a counter needs no value */\n");
                    }
                    s += &format!(
                        "\t__u64 one = 1, *n = bpf_map_lookup_elem(&{map}, &k);\n\
                         \tif (n)\n\
                         \t\t__sync_fetch_and_add(n, 1);\n\
                         \telse\n\
                         \t\tbpf_map_update_elem(&{map}, &k, &one, BPF_NOEXIST);\n"
                    );
                }
            }
        }
    }
    let ret = if ret.contains(';') {
        ret.to_string()
    } else {
        format!("{ret};")
    };
    s += &format!("\treturn {ret}\n}}\n\n");
    s += "/* GPL: most helpers (bpf_probe_read_*, bpf_get_current_task) are GPL-only. */\n\
          char LICENSE[] SEC(\"license\") = \"GPL\";\n";
    // Comment continuation lines are written flush left above (string continuations drop
    // leading blanks): indent them as C comments usually are.
    s.replace("\n* ", "\n * ")
}
