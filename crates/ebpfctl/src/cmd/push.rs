//! `ebpfctl push OBJECT REF`: package a compiled probe as an OCI artifact (docs/oci.md) and push it.
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// The compiled BPF object (.o); validated before anything is sent.
    object: PathBuf,
    /// Where to push: registry/repository[:tag], e.g. ghcr.io/acme/probes/execs:v1.
    reference: String,
    /// Also push the probe's C source as a second layer.
    #[arg(long, value_name = "FILE")]
    source: Option<PathBuf>,
    /// Probe name in the artifact [default: the object's file name without .bpf.o].
    #[arg(long)]
    name: Option<String>,
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
    let opts = ebpfctl_oci::PushOptions {
        connection: ebpfctl_oci::Connection {
            insecure: a.insecure,
            auth: ebpfctl_oci::Auth::new(a.username, a.password),
        },
        source: a.source,
        name: a.name,
    };
    let pushed = ebpfctl_oci::push(&a.object, &a.reference, &opts).context("push")?;
    eprintln!(
        "ebpfctl: pushed {} ({} programs, {} maps, {} parameters) to {}",
        pushed.config.name,
        pushed.config.programs.len(),
        pushed.config.maps.len(),
        pushed.config.parameters.len(),
        pushed.reference
    );
    println!("{}", pushed.digest);
    Ok(0)
}
