//! `ebpfctl image login REGISTRY`: check credentials with the registry and save them.
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  echo \"$TOKEN\" | ebpfctl image login ghcr.io -u alice --password-stdin
  ebpfctl image login 127.0.0.1:5000 -u alice --password-stdin --authfile ./auth.json < pw.txt")]
pub struct Args {
    /// The registry: host[:port].
    registry: String,
    #[command(flatten)]
    credentials: crate::cmd::registry::CredentialArgs,
    /// Credentials file (containers auth.json format) [default: $REGISTRY_AUTH_FILE, else
    /// $XDG_CONFIG_HOME/containers/auth.json or ~/.config/containers/auth.json].
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    #[command(flatten)]
    transport: crate::cmd::registry::TransportArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let Some(user) = a.credentials.username() else {
        anyhow::bail!(
            "no user name: pass --username USER (and the password with --password-stdin)"
        );
    };
    let Some(password) = a.credentials.password()? else {
        anyhow::bail!("no password: pass it on stdin with --password-stdin");
    };
    let connection = a.transport.connection(ebpfctl_oci::Auth::Anonymous)?;
    let l = ebpfctl_oci::login(
        &a.registry,
        &user,
        &password,
        &connection,
        a.authfile.as_deref(),
    )?;
    let checked = if l.verified {
        ""
    } else {
        " (the registry asks for no credentials: not checked)"
    };
    match &l.helper {
        Some(h) => eprintln!(
            "ebpfctl: logged in to {}{checked}: secret in docker-credential-{h}, noted in {}",
            l.registry,
            l.file.display()
        ),
        None => eprintln!(
            "ebpfctl: logged in to {}{checked}: saved in {}",
            l.registry,
            l.file.display()
        ),
    }
    Ok(0)
}
