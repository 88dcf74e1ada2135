//! `ebpfctl image logout REGISTRY`: remove saved credentials.
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  ebpfctl image logout ghcr.io")]
pub struct Args {
    /// The registry: host[:port].
    registry: String,
    /// Credentials file [default: as for login].
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let l = ebpfctl_oci::logout(&a.registry, a.authfile.as_deref())?;
    match &l.helper {
        Some(h) => eprintln!(
            "ebpfctl: logged out of {} (erased from docker-credential-{h}, {})",
            l.registry,
            l.file.display()
        ),
        None => eprintln!(
            "ebpfctl: logged out of {} ({})",
            l.registry,
            l.file.display()
        ),
    }
    Ok(0)
}
