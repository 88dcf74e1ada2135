//! `ebpfctl image tag SRC DST`: another name for an image of the store.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  ebpfctl image tag 127.0.0.1:5000/probe:v1 ghcr.io/acme/probes/execs:v1
  ebpfctl image push ghcr.io/acme/probes/execs:v1")]
pub struct Args {
    /// A name in the store.
    source: String,
    /// The new name (registry/repository[:tag]).
    target: String,
    #[command(flatten)]
    store: crate::cmd::registry::StoreArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let store = a.store.open()?;
    let to = ebpfctl_oci::tag(&store, &a.source, &a.target)?;
    eprintln!("ebpfctl: tagged {to}");
    Ok(0)
}
