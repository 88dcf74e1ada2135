//! What `push`, `pull` and `run REF` share on the command line: how to reach the registry
//! (`--plain-http`, `--tls-no-verify`) and, for push and pull, the credentials.

/// How to reach the registry; nothing falls back from one transport to another.
#[derive(clap::Args)]
pub struct RegistryArgs {
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

/// Registry credentials (push, pull; `run REF` reads the environment and saved logins).
#[derive(clap::Args)]
pub struct CredentialArgs {
    /// Registry user [default: $EBPFCTL_REGISTRY_USER, else a saved docker/podman login].
    #[arg(long, short = 'u')]
    username: Option<String>,
    /// Read the registry password or token from stdin (one line) [default:
    /// $EBPFCTL_REGISTRY_PASSWORD].
    #[arg(long, conflicts_with = "password")]
    password_stdin: bool,
    /// The password on the command line (visible to every user in `ps`: prefer
    /// --password-stdin or the environment).
    #[arg(long, hide = true)]
    password: Option<String>,
    /// `-p` was the password before it meant a PID everywhere; refused with a pointer.
    #[arg(short = 'p', hide = true, value_name = "PASSWORD")]
    old_p: Option<String>,
}

impl CredentialArgs {
    pub fn auth(self) -> anyhow::Result<ebpfctl_oci::Auth> {
        if self.old_p.is_some() {
            anyhow::bail!(
                "-p is no longer the registry password (-p is a PID in every ebpfctl command): use --password-stdin or $EBPFCTL_REGISTRY_PASSWORD"
            );
        }
        let password = if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| anyhow::anyhow!("--password-stdin: reading stdin: {e}"))?;
            let p = line.trim_end_matches(['\n', '\r']).to_string();
            if p.is_empty() {
                anyhow::bail!("--password-stdin: stdin gave no password (pipe it in, e.g. `echo \"$TOKEN\" | ebpfctl push ... --password-stdin`)");
            }
            Some(p)
        } else {
            self.password
        };
        Ok(ebpfctl_oci::Auth::new(self.username, password))
    }
}
