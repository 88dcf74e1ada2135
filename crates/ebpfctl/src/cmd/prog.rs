//! `ebpfctl prog`: BPF programs loaded in the kernel.
use std::io::{self, BufWriter, Write};

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use ebpfctl_core::inspect::print::Format;
use ebpfctl_core::inspect::select::Selector;
use ebpfctl_core::inspect::{prog, InspectError, ObjKind};

/// `-o table|json`, shared by the introspection commands (`human` is an older name of `table`).
#[derive(ClapArgs, Debug, Clone, Copy)]
pub(crate) struct Output {
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, default_value = "table", value_parser = parse_format())]
    pub output: Format,
}

/// An introspection command: a subcommand (listing everything when absent) and `-o`.
#[derive(ClapArgs)]
pub struct InspectArgs<C: Subcommand> {
    #[command(subcommand)]
    pub(crate) cmd: Option<C>,
    #[command(flatten)]
    pub(crate) out: Output,
}

fn parse_format() -> impl clap::builder::TypedValueParser<Value = Format> {
    use super::flags::{outputs, Output as O};
    use clap::builder::TypedValueParser as _;
    outputs(&[O::Table, O::Json]).map(|o| match o {
        O::Json => Format::Json,
        _ => Format::Human,
    })
}

/// Buffered stdout.
pub(crate) fn stdout() -> BufWriter<io::StdoutLock<'static>> {
    BufWriter::with_capacity(64 * 1024, io::stdout().lock())
}

/// Turns a finished write into an exit code: a closed pipe (`| head`) is not an error.
pub(crate) fn done(r: io::Result<()>) -> anyhow::Result<i32> {
    match r {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e).context("writing output"),
    }
}

/// Like [`done`] for library calls that write as they go.
pub(crate) fn done_lib<T>(r: Result<T, InspectError>) -> anyhow::Result<i32> {
    match r {
        Ok(_) => Ok(0),
        Err(InspectError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// The words naming objects after `show` / `dump`, as bpftool takes them.
#[derive(ClapArgs, Debug, Clone)]
pub(crate) struct Target {
    /// `ID`, `id ID`, `name NAME`, `tag TAG` (16 hex digits) or `pinned PATH`; the kinds
    /// without names or tags take only ids and pins.
    #[arg(num_args = 1..=2, required = true, value_names = ["ID|KEYWORD", "VALUE"])]
    words: Vec<String>,
}

impl Target {
    pub(crate) fn selector(&self, kind: ObjKind) -> anyhow::Result<Selector> {
        Selector::parse(kind, &self.words).map_err(|e| super::UsageError(e).into())
    }
}

/// Exactly one object for commands that act on one (`dump`).
pub(crate) fn one<T>(sel: &Selector, mut v: Vec<T>, id: impl Fn(&T) -> u32) -> anyhow::Result<T> {
    if v.len() > 1 {
        let ids: Vec<String> = v.iter().map(|x| id(x).to_string()).collect();
        anyhow::bail!(
            "{sel} matches {} objects (ids {}): pick one by id",
            v.len(),
            ids.join(", ")
        );
    }
    Ok(v.remove(0))
}

pub type Args = InspectArgs<Cmd>;

#[derive(Subcommand)]
pub enum Cmd {
    /// Every loaded program (the default).
    #[command(alias = "ls")]
    List,
    /// Programs by id, name, tag or pin: `show 42`, `show name on_exec`, `show tag
    /// 1a2b3c4d5e6f7a8b`, `show pinned /sys/fs/bpf/p`.
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// A program's translated instructions, with the C source line above each group
    /// (`dump 42`, `dump name on_exec`, ...: one program).
    Dump {
        #[command(flatten)]
        target: Target,
        /// Show file:line:column with each source line.
        #[arg(long)]
        linum: bool,
        /// Show the raw bytes of each instruction.
        #[arg(long)]
        opcodes: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let f = args.out.output;
    let mut w = stdout();
    match args.cmd.unwrap_or(Cmd::List) {
        Cmd::List => {
            let progs = prog::list()?;
            done(prog::print_list(&mut w, &progs, f).and_then(|()| w.flush()))
        }
        Cmd::Show { target } => {
            let progs = prog::select(&target.selector(ObjKind::Prog)?)?;
            done(prog::print_list(&mut w, &progs, f).and_then(|()| w.flush()))
        }
        Cmd::Dump {
            target,
            linum,
            opcodes,
        } => {
            let sel = target.selector(ObjKind::Prog)?;
            let p = one(&sel, prog::select(&sel)?, |p| p.id)?;
            let d = prog::dump(p.id)?;
            done(prog::print_dump(&mut w, &d, f, linum, opcodes).and_then(|()| w.flush()))
        }
    }
}
