//! What the image commands, `run REF` and `inspect REF` share on the command line: the
//! store (`--store`), how to reach the registry (`--plain-http`, `--tls-no-verify`) and,
//! for push, pull and login, the credentials.
use std::io::Read;
use std::path::{Path, PathBuf};

/// The local image store.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// Image store, an OCI image layout [default: $XDG_DATA_HOME/ebpfctl/store, else
    /// ~/.local/share/ebpfctl/store, else /var/lib/ebpfctl/store for root].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    pub fn open(&self) -> anyhow::Result<ebpfctl_oci::Store> {
        Ok(ebpfctl_oci::Store::open(self.store.as_deref())?)
    }
}

/// How to reach the registry (nothing falls back from one transport to another), and the
/// store images go through.
#[derive(clap::Args)]
pub struct RegistryArgs {
    #[command(flatten)]
    pub transport: TransportArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// How to reach the registry; nothing falls back from one transport to another.
#[derive(clap::Args)]
pub struct TransportArgs {
    /// Plain HTTP, no TLS [default: only for localhost, 127.0.0.0/8 and [::1]];
    /// --plain-http=false forces HTTPS for those too.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    plain_http: Option<bool>,
    /// HTTPS without checking the registry's certificate (a self-signed registry).
    #[arg(long, conflicts_with = "plain_http")]
    tls_no_verify: bool,
    /// Removed: it meant both of the above at once; say which one you mean.
    #[arg(long, hide = true, alias = "insecure-registry")]
    insecure: bool,
}

impl RegistryArgs {
    pub fn connection(&self, auth: ebpfctl_oci::Auth) -> anyhow::Result<ebpfctl_oci::Connection> {
        self.transport.connection(auth)
    }

    pub fn store_dir(&self) -> Option<&Path> {
        self.store.store.as_deref()
    }
}

impl TransportArgs {
    /// The connection settings with `auth`; credentials about to cross plain HTTP get a
    /// line on stderr.
    pub fn connection(&self, auth: ebpfctl_oci::Auth) -> anyhow::Result<ebpfctl_oci::Connection> {
        if self.insecure {
            anyhow::bail!(
                "--insecure (and run's --insecure-registry) was split in two: --plain-http for a registry without TLS (the default for loopback registries), --tls-no-verify for HTTPS with a certificate that cannot be checked"
            );
        }
        Ok(ebpfctl_oci::Connection {
            plain_http: self.plain_http,
            tls_no_verify: self.tls_no_verify,
            auth,
            warn: Some(|msg| eprintln!("ebpfctl: warning: {msg}")),
        })
    }
}

/// For `run OBJECT` and `inspect OBJECT`: a file is itself; a name in the store is its object
/// for this machine; a registry reference is pulled into the store (credentials from the
/// environment or a saved login).
pub fn resolve(object: &Path, registry: &RegistryArgs) -> anyhow::Result<PathBuf> {
    let connection = registry.connection(ebpfctl_oci::Auth::new(None, None))?;
    Ok(ebpfctl_oci::resolve_object(
        object,
        &connection,
        registry.store_dir(),
    )?)
}

/// Registry credentials (push, pull, login; `run REF` reads the environment and saved logins).
#[derive(clap::Args)]
pub struct CredentialArgs {
    /// Registry user [default: $EBPFCTL_REGISTRY_USER, else a saved login].
    #[arg(long, short = 'u')]
    username: Option<String>,
    /// Registry password or token (visible to other users in `ps`: prefer --password-stdin)
    /// [default: $EBPFCTL_REGISTRY_PASSWORD].
    #[arg(long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password or token from stdin (one line).
    #[arg(long)]
    password_stdin: bool,
    /// `-p` was the password before it meant a PID everywhere; refused with a pointer.
    #[arg(short = 'p', hide = true, value_name = "PASSWORD", value_parser = old_password_flag)]
    old_p: Option<String>,
}

/// `-p PASSWORD` is refused by the flag parser (a usage error, exit 2), with a pointer.
fn old_password_flag(_: &str) -> Result<String, String> {
    Err("-p is no longer the registry password (-p is a PID in every ebpfctl command): use --password-stdin or $EBPFCTL_REGISTRY_PASSWORD".into())
}

impl CredentialArgs {
    pub fn username(&self) -> Option<String> {
        self.username.clone()
    }

    /// The password from the flag or stdin.
    pub fn password(&self) -> anyhow::Result<Option<String>> {
        if !self.password_stdin {
            return Ok(self.password.clone());
        }
        let mut s = String::new();
        std::io::stdin()
            .lock()
            .take(64 << 10)
            .read_to_string(&mut s)
            .map_err(|e| anyhow::anyhow!("--password-stdin: cannot read stdin: {e}"))?;
        let s = s.strip_suffix('\n').unwrap_or(&s);
        let s = s.strip_suffix('\r').unwrap_or(s);
        if s.is_empty() {
            anyhow::bail!("--password-stdin: stdin held no password");
        }
        Ok(Some(s.to_string()))
    }

    pub fn auth(&self) -> anyhow::Result<ebpfctl_oci::Auth> {
        Ok(ebpfctl_oci::Auth::new(
            self.username.clone(),
            self.password()?,
        ))
    }
}
