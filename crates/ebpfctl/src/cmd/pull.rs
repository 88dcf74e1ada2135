//! `ebpfctl image pull REF` (and `ebpfctl pull`): fetch a probe (docs/oci.md) into the
//! store, verify it, print the object's path.
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  ebpfctl pull ghcr.io/acme/probes/execs:v1                # into the store; prints the object's path
  ebpfctl image pull ghcr.io/acme/probes/execs:v1 --out execs.bpf.o
  ebpfctl image pull ghcr.io/acme/probes/execs:v1 --arch arm64")]
pub struct Args {
    /// What to pull: registry/repository[:tag|@digest].
    reference: String,
    /// Also write the object to FILE (through a fresh temporary file renamed into place).
    #[arg(long = "out", short = 'o', alias = "output", value_name = "FILE", value_parser = super::flags::out_file)]
    out: Option<PathBuf>,
    /// The platform to take from a multi-architecture image [default: this machine's].
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    #[command(flatten)]
    credentials: super::registry::CredentialArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let opts = ebpfctl_oci::PullOptions {
        connection: a.registry.connection(a.credentials.auth()?)?,
        store: a.registry.store.store.clone(),
        output: a.out,
        arch: a.arch,
        progress: super::progress::bars("pull"),
    };
    let pulled = ebpfctl_oci::pull(&a.reference, &opts).context("pull")?;
    for n in &pulled.notes {
        eprintln!("ebpfctl: {n}");
    }
    let platform = pulled
        .platform
        .as_ref()
        .map(|p| format!(" ({}/{} from the index)", p.os, p.architecture))
        .unwrap_or_default();
    let from_store = if pulled.cached {
        ", already in the store"
    } else {
        ""
    };
    match &pulled.config {
        Some(c) => eprintln!(
            "ebpfctl: {} {} {}{platform} (ebpfctl {}, {}, license {}){from_store}",
            pulled.reference,
            c.name,
            pulled.manifest_digest,
            c.ebpfctl_version,
            c.architecture,
            c.license.as_deref().unwrap_or("none"),
        ),
        None => eprintln!(
            "ebpfctl: {} {}{platform}{from_store}",
            pulled.reference, pulled.manifest_digest
        ),
    }
    println!("{}", pulled.path.display());
    Ok(0)
}
