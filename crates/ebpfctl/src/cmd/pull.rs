//! `ebpfctl pull REF`: fetch a probe artifact (docs/oci.md), verify it, write the object.
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
ebpfctl pull 127.0.0.1:5000/probes/execs:v1\n  \
ebpfctl pull ghcr.io/acme/execs:v1 --out execs.bpf.o -u acme --password-stdin < token.txt")]
pub struct Args {
    /// What to pull: registry/repository[:tag|@digest].
    reference: String,
    /// Write the object here [default: the cache, $XDG_CACHE_HOME/ebpfctl/oci/<sha256>.o, see docs/oci.md].
    #[arg(short = 'o', long = "out", alias = "output", value_name = "FILE", value_parser = super::flags::out_file)]
    output: Option<PathBuf>,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    #[command(flatten)]
    credentials: super::registry::CredentialArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let opts = ebpfctl_oci::PullOptions {
        connection: a.registry.connection(a.credentials.auth()?)?,
        output: a.output,
    };
    let pulled = ebpfctl_oci::pull(&a.reference, &opts).context("pull")?;
    for n in &pulled.notes {
        eprintln!("ebpfctl: {n}");
    }
    if let Some(c) = &pulled.config {
        eprintln!(
            "ebpfctl: {} {} (ebpfctl {}, {}, license {}){}",
            c.name,
            pulled.manifest_digest,
            c.ebpfctl_version,
            c.architecture,
            c.license.as_deref().unwrap_or("none"),
            if pulled.cached {
                ", from the cache"
            } else {
                ""
            }
        );
    }
    println!("{}", pulled.path.display());
    Ok(0)
}
