//! `ebpfctl man [--out DIR]`: man pages generated from the flag definitions, one per command.
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
ebpfctl man | man -l -\n  \
ebpfctl man --out /usr/local/share/man/man1 && mandb")]
pub struct Args {
    /// Write ebpfctl.1 and ebpfctl-COMMAND.1 for every command into this directory
    /// (created if missing) [default: ebpfctl.1 on stdout].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// `cmd` and its subcommands (built: clap names them `ebpfctl-prog-show`, the page's title
/// and file name), `help` left out.
fn pages(cmd: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        pages(sub, out);
    }
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    out.push((name.to_string(), cmd.clone()));
}

fn render(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    Ok(buf)
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let mut root = super::command();
    root.build();
    let Some(dir) = a.out else {
        let page = render(root)?;
        return super::prog::done(std::io::stdout().lock().write_all(&page));
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut all = Vec::new();
    pages(&root, &mut all);
    for (name, cmd) in all {
        let path = dir.join(format!("{name}.1"));
        let page = render(cmd)?;
        // O_NOFOLLOW: a symlink planted at the page's path is refused, never written through.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o644)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        f.write_all(&page)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!("ebpfctl: man pages written to {}", dir.display());
    Ok(0)
}
