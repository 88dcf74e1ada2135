//! `ebpfctl image rm REF...`: remove names from the store.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  ebpfctl image rm 127.0.0.1:5000/probe:v1")]
pub struct Args {
    /// Names in the store.
    #[arg(required = true)]
    references: Vec<String>,
    #[command(flatten)]
    store: crate::cmd::registry::StoreArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let store = a.store.open()?;
    for r in &a.references {
        let name = ebpfctl_oci::remove(&store, r)?;
        eprintln!("ebpfctl: removed {name}");
    }
    Ok(0)
}
