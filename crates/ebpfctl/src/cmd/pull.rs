//! `ebpfctl pull REF`: fetch a probe artifact (docs/oci.md), verify it, write the object.
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// What to pull: registry/repository[:tag|@digest].
    reference: String,
    /// Write the object here [default: the cache, $XDG_CACHE_HOME/ebpfctl/oci/<sha256>.o, see docs/oci.md].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Skip TLS certificate checks, or use plain HTTP if the registry has no TLS (local/test registries).
    #[arg(long)]
    insecure: bool,
    /// Registry user [default: $EBPFCTL_REGISTRY_USER, else a saved docker/podman login].
    #[arg(long, short = 'u')]
    username: Option<String>,
    /// Registry password or token [default: $EBPFCTL_REGISTRY_PASSWORD].
    #[arg(long, short = 'p')]
    password: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let opts = ebpfctl_oci::PullOptions {
        connection: ebpfctl_oci::Connection {
            insecure: a.insecure,
            auth: ebpfctl_oci::Auth::new(a.username, a.password),
        },
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
