//! `ebpfctl image list`: the images in the store.
use std::io::Write;

use super::{human_bytes, short_digest, Format};
use crate::cmd::prog::{done, stdout};

#[derive(clap::Args)]
#[command(after_help = "Examples:
  ebpfctl image list
  ebpfctl image list -o json --store ./store")]
pub struct Args {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    store: crate::cmd::registry::StoreArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let store = a.store.open()?;
    let entries = ebpfctl_oci::list(&store)?;
    let mut w = stdout();
    let r = match a.output {
        Format::Json => serde_json::to_writer_pretty(&mut w, &entries)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(w)),
        Format::Table => table(&mut w, &entries),
    };
    done(r.and_then(|()| w.flush()))
}

fn table(w: &mut impl Write, entries: &[ebpfctl_oci::ListEntry]) -> std::io::Result<()> {
    let width = entries
        .iter()
        .map(|e| e.reference.len())
        .max()
        .unwrap_or(0)
        .max(9);
    writeln!(
        w,
        "{:<width$}  {:<12}  {:<13}  {:>9}  {:<10}  CREATED",
        "REFERENCE", "DIGEST", "ARCH", "SIZE", "FORMAT"
    )?;
    for e in entries {
        let arch = if e.architectures.is_empty() {
            "-".to_string()
        } else {
            e.architectures.join(",")
        };
        writeln!(
            w,
            "{:<width$}  {:<12}  {:<13}  {:>9}  {:<10}  {}",
            e.reference,
            short_digest(&e.digest),
            arch,
            human_bytes(e.size),
            e.format,
            e.created.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}
