//! `ebpfctl completions SHELL`: a completion script generated from the flag definitions.
use clap_complete::Shell;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
ebpfctl completions bash > /etc/bash_completion.d/ebpfctl\n  \
ebpfctl completions zsh > \"${fpath[1]}/_ebpfctl\"\n  \
ebpfctl completions fish > ~/.config/fish/completions/ebpfctl.fish")]
pub struct Args {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let mut cmd = super::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "ebpfctl", &mut out);
    super::prog::done(std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        &out,
    ))
}
