//! `ebpfctl image ...`: probes as OCI images in the local store and in registries
//! (docs/oci.md). `push` and `pull` are also top-level commands.
use clap::Subcommand;

mod describe;
mod list;
mod login;
mod logout;
mod rm;
mod tag;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  ebpfctl image push probe.bpf.o ghcr.io/acme/probes/execs:v1
  ebpfctl image list
  ebpfctl image describe ghcr.io/acme/probes/execs:v1
  echo \"$TOKEN\" | ebpfctl image login ghcr.io -u acme --password-stdin")]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Package compiled probes into the store and push them to a registry.
    Push(super::push::Args),
    /// Pull a probe from a registry into the store.
    Pull(super::pull::Args),
    /// The images in the store.
    #[command(alias = "ls")]
    List(list::Args),
    /// An image's manifests and what its probe holds (programs, maps, parameters).
    Describe(describe::Args),
    /// Give an image of the store another name.
    Tag(tag::Args),
    /// Remove a name from the store (and the blobs nothing else uses).
    #[command(alias = "remove")]
    Rm(rm::Args),
    /// Check and save credentials for a registry.
    Login(login::Args),
    /// Remove saved credentials for a registry.
    Logout(logout::Args),
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    match a.cmd {
        Cmd::Push(a) => super::push::run(a),
        Cmd::Pull(a) => super::pull::run(a),
        Cmd::List(a) => list::run(a),
        Cmd::Describe(a) => describe::run(a),
        Cmd::Tag(a) => tag::run(a),
        Cmd::Rm(a) => rm::run(a),
        Cmd::Login(a) => login::run(a),
        Cmd::Logout(a) => logout::run(a),
    }
}

/// `-o table|json` of the image commands.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// 1536 → "1.5 KiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `sha256:0123456789abcdef...` → `0123456789ab`.
pub fn short_digest(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    &hex[..hex.len().min(12)]
}
