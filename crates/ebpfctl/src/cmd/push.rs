//! `ebpfctl push OBJECT REF`: package a compiled probe as an OCI artifact (docs/oci.md) and push it.
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
ebpfctl push probe.bpf.o 127.0.0.1:5000/probes/execs:v1\n  \
echo \"$TOKEN\" | ebpfctl push probe.bpf.o ghcr.io/acme/execs:v1 -u acme --password-stdin --source probe.bpf.c")]
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
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    #[command(flatten)]
    credentials: super::registry::CredentialArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let opts = ebpfctl_oci::PushOptions {
        connection: a.registry.connection(a.credentials.auth()?)?,
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
