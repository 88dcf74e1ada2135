//! `ebpfctl pull` (not built yet).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<i32> {
    anyhow::bail!("`ebpfctl pull` is not available in this build")
}
