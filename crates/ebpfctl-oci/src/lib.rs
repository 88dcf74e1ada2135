//! Probes as OCI artifacts (docs/oci.md): a local [`store::Store`] in the OCI image-layout
//! format; [`package`] compiled objects into it (one per architecture: an image index),
//! [`push`] them to a registry, [`pull`] them back, [`list`], [`describe`], [`tag`],
//! [`remove`]; [`login`] / [`logout`] (auth.json and credential helpers); and
//! [`resolve_object`] for `ebpfctl run REF` and `inspect REF`. Synchronous API; a
//! current-thread tokio runtime runs oci-client inside each call. Never prints (progress goes
//! through [`Progress`]); typed errors.

mod authfile;
pub mod format;
mod image;
mod login;
mod registry;
pub mod store;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ebpfctl_core::object::ObjectError;
pub use format::ProbeConfig;
use format::*;
pub use image::{
    check_manifest, describe, list, package, pull, push, read_config, remove, tag, Described,
    DescribedManifest, ListEntry, Pulled, Pushed,
};
pub use login::{login, logout, LoggedIn, LoggedOut};
pub use store::Store;

/// Largest blob we accept on pull (a BPF object or its source; configs are far smaller).
const MAX_BLOB: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid image reference {reference:?}: {msg}")]
    BadReference { reference: String, msg: String },
    #[error("{path}: not a valid BPF object: {source}")]
    BadObject { path: String, source: ObjectError },
    #[error("{reference}: the object in this artifact is not a valid BPF object: {source}")]
    BadPulledObject {
        reference: String,
        source: ObjectError,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Cache(#[from] ebpfctl_build::cache::CacheError),
    #[error("store {path}: {msg}")]
    Store { path: String, msg: String },
    #[error("{reference}: not in the store {store}")]
    NotInStore { reference: String, store: String },
    #[error("{reference}: not in the store {store}, and it names no registry: spell one out (docker.io/library/NAME:TAG, HOST:PORT/REPO:TAG) to look there")]
    NotInStoreNoRegistry { reference: String, store: String },
    #[error("{reference} has no image for {want} (it has: {have}); pick one with --arch")]
    NoPlatform {
        reference: String,
        want: String,
        have: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("credential helper docker-credential-{helper}: {msg}")]
    Helper { helper: String, msg: String },
    #[error("{reference}: not found in the registry")]
    NotFound { reference: String },
    #[error("{reference}: access denied by the registry (log in with `ebpfctl image login`, or give credentials with --username and --password-stdin, or EBPFCTL_REGISTRY_USER/EBPFCTL_REGISTRY_PASSWORD)")]
    Unauthorized { reference: String },
    #[error("cannot connect to registry {registry}: {cause}{hint}")]
    Unreachable {
        registry: String,
        cause: String,
        hint: &'static str,
    },
    #[error("{reference}: registry error: {msg}")]
    Registry { reference: String, msg: String },
    #[error("{reference} is not an ebpfctl probe: {why}")]
    NotAProbe { reference: String, why: String },
    #[error("{reference}: {what} digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        reference: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(std::io::Error),
}

/// Registry credentials.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// None given: a login saved by docker / podman / skopeo for the registry if there is one
    /// (`REGISTRY_AUTH_FILE`, `containers/auth.json`, `~/.docker/config.json`), else anonymous.
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
}

impl Auth {
    /// Explicit values win; otherwise `EBPFCTL_REGISTRY_USER` / `EBPFCTL_REGISTRY_PASSWORD`.
    pub fn new(username: Option<String>, password: Option<String>) -> Auth {
        let username = username.or_else(|| std::env::var("EBPFCTL_REGISTRY_USER").ok());
        let password = password.or_else(|| std::env::var("EBPFCTL_REGISTRY_PASSWORD").ok());
        match username {
            Some(username) if !username.is_empty() => Auth::Basic {
                username,
                password: password.unwrap_or_default(),
            },
            _ => Auth::Anonymous,
        }
    }
}

/// How to talk to the registry. Nothing falls back: the transport is decided before the
/// first request, from these settings and the registry's name alone (see [`Transport`]).
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// `Some(true)`: plain HTTP. `Some(false)`: HTTPS, loopback registries included.
    /// `None`: HTTPS, except plain HTTP for a loopback registry (`localhost`, `127.0.0.0/8`,
    /// `[::1]`), as registries and their clients commonly do.
    pub plain_http: Option<bool>,
    /// HTTPS without certificate verification (a self-signed registry). Implies HTTPS.
    pub tls_no_verify: bool,
    pub auth: Auth,
    /// Called, before any request, with a line saying that credentials will travel over
    /// plain HTTP (the library prints nothing itself).
    pub warn: Option<fn(&str)>,
}

/// What a [`Connection`] uses for a given registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS, certificates verified against the system's roots.
    Https,
    /// HTTPS without certificate verification (`--tls-no-verify`).
    HttpsNoVerify,
    /// Plain HTTP (`--plain-http`, or a loopback registry by default).
    PlainHttp,
}

impl Connection {
    /// The transport for `registry` (`host[:port]`).
    pub fn transport(&self, registry: &str) -> Transport {
        match (self.plain_http, self.tls_no_verify) {
            (Some(true), _) => Transport::PlainHttp,
            (_, true) => Transport::HttpsNoVerify,
            (Some(false), false) => Transport::Https,
            (None, false) if is_loopback(registry) => Transport::PlainHttp,
            (None, false) => Transport::Https,
        }
    }
}

/// True for `localhost`, `127.x.y.z` and `[::1]`, with or without a port: names that reach
/// this machine without resolving anything (a name resolved to a loopback address is not).
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Progress of transfers, for a caller that shows it (the library prints nothing).
pub trait Progress: Send + Sync {
    /// A transfer of `total` bytes called `label` (a blob: file name or digest) begins.
    fn begin(&self, label: &str, total: u64) -> Arc<dyn Transfer>;
}

/// One transfer under way.
pub trait Transfer: Send + Sync {
    fn advance(&self, bytes: u64);
    /// Finished (all bytes sent or received).
    fn done(&self);
    /// Not needed: the other side already had it.
    fn skipped(&self);
}

/// How objects are packaged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flavor {
    /// Our media types (docs/oci.md): config describing the probe, `artifactType`.
    #[default]
    Ebpfctl,
    /// bumblebee's media types and file names, so `bee pull/run/describe` read it; the config
    /// blob still holds our description (bee ignores its content).
    Bumblebee,
}

/// One object to package: for `arch` (an `ebpfctl build --arch` name) or, with `None`, for
/// this machine as a single manifest.
#[derive(Debug, Clone)]
pub struct Input {
    pub arch: Option<String>,
    pub path: PathBuf,
}

#[derive(Clone, Default)]
pub struct PackageOptions {
    /// The probe's C source, a layer of every manifest.
    pub source: Option<PathBuf>,
    /// Probe name in the config and title annotation [default: the first object's file stem].
    pub name: Option<String>,
    pub flavor: Flavor,
    /// `org.opencontainers.image.description` [default: "eBPF probe NAME for ebpfctl"].
    pub description: Option<String>,
    /// `org.opencontainers.image.authors`.
    pub authors: Option<String>,
}

#[derive(Clone, Default)]
pub struct PushOptions {
    pub connection: Connection,
    /// The store; `None`: the default one ([`store::STORE_BASE`]).
    pub store: Option<PathBuf>,
    /// Objects to package first (under the same reference in the store); empty: push what the
    /// store has under the reference.
    pub inputs: Vec<Input>,
    pub package: PackageOptions,
    pub progress: Option<Arc<dyn Progress>>,
}

#[derive(Clone, Default)]
pub struct PullOptions {
    pub connection: Connection,
    pub store: Option<PathBuf>,
    /// Also write the object here.
    pub output: Option<PathBuf>,
    /// The platform to pick from an index [default: this machine's].
    pub arch: Option<String>,
    pub progress: Option<Arc<dyn Progress>>,
}

/// For `ebpfctl run ARG` and `inspect ARG`: an existing file is itself; a name in the store
/// (as given, or as the full reference it parses to) is the stored object for this machine;
/// a reference naming its registry (`host[:port]/repo[:tag|@digest]`, the host with a dot or
/// a port, or `localhost`) is pulled into the store; anything else is returned unchanged
/// for the caller to report.
pub fn resolve_object(
    arg: &Path,
    connection: &Connection,
    store: Option<&Path>,
) -> Result<PathBuf, OciError> {
    if arg.exists() {
        return Ok(arg.to_path_buf());
    }
    let Some(s) = arg.to_str() else {
        return Ok(arg.to_path_buf());
    };
    let remote = looks_like_reference(s);
    // Clearly a file name: say it is missing rather than look (and create) a store.
    let path_like = s.ends_with(".o") || s.starts_with(['.', '/']);
    if path_like && !remote {
        return Ok(arg.to_path_buf());
    }
    let Ok(parsed) = registry::parse_reference(s) else {
        return Ok(arg.to_path_buf());
    };
    let opened = match Store::open(store) {
        Ok(st) => st,
        // Not a reference: let the caller say the file is missing.
        Err(_) if !remote && store.is_none() => return Ok(arg.to_path_buf()),
        Err(e) => return Err(e),
    };
    if let Some(desc) = opened.resolve(s, Some(&parsed.whole()))? {
        let local = image::load_local(&opened, &parsed.whole(), &desc, None)?;
        return opened.blob_path(&local.object.digest);
    }
    if !remote {
        return Ok(arg.to_path_buf());
    }
    let opts = PullOptions {
        connection: connection.clone(),
        store: store.map(Path::to_path_buf),
        ..Default::default()
    };
    Ok(pull(s, &opts)?.path)
}

/// True for `host[:port]/repo...` references whose first component is clearly a registry.
pub fn looks_like_reference(s: &str) -> bool {
    let Some((host, rest)) = s.split_once('/') else {
        return false;
    };
    if rest.is_empty() || s.ends_with(".o") {
        return false;
    }
    let registry_like = host == "localhost" || host.contains('.') || host.contains(':');
    registry_like
        && !host.starts_with('.')
        && registry::parse_reference(s).is_ok_and(|r| r.registry_is(host))
}

/// The full reference `s` names (`registry/repository:tag` or `@digest`).
pub fn normalise_reference(s: &str) -> Result<String, OciError> {
    Ok(registry::parse_reference(s)?.whole())
}

/// Reads a pulled manifest; the error says why it is not a probe's.
fn read_manifest(reference: &str, raw: &[u8]) -> Result<Manifest, OciError> {
    let not_probe = |why: String| OciError::NotAProbe {
        reference: reference.to_string(),
        why,
    };
    let m: Manifest =
        serde_json::from_slice(raw).map_err(|e| not_probe(format!("unreadable manifest: {e}")))?;
    match m.media_type.as_deref() {
        Some(OCI_INDEX) | Some(DOCKER_LIST) => Err(not_probe(
            "it is an image index (a multi-platform container image)".to_string(),
        )),
        Some(DOCKER_MANIFEST) => Err(not_probe("it is a Docker container image".to_string())),
        Some(OCI_MANIFEST) | None if m.schema_version == 2 => Ok(m),
        Some(other) => Err(not_probe(format!("manifest media type {other}"))),
        None => Err(not_probe(format!("schema version {}", m.schema_version))),
    }
}

fn verify(
    reference: &str,
    what: &'static str,
    d: &Descriptor,
    data: &[u8],
) -> Result<(), OciError> {
    let actual = sha256_digest(data);
    if !d.digest.starts_with("sha256:") {
        return Err(OciError::NotAProbe {
            reference: reference.to_string(),
            why: format!("unsupported digest algorithm in {}", d.digest),
        });
    }
    if actual != d.digest || data.len() as u64 != d.size {
        return Err(OciError::DigestMismatch {
            reference: reference.to_string(),
            what,
            expected: format!("{} ({} bytes)", d.digest, d.size),
            actual: format!("{actual} ({} bytes)", data.len()),
        });
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, OciError> {
    std::fs::read(path).map_err(|source| OciError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Writes through a fresh temporary file in the same directory (random name, O_EXCL) and
/// renames it into place, so a concurrent `run` never sees half an object and a symlink at
/// (or beside) `path` is replaced, never written through.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), OciError> {
    use std::io::Write;
    let err = |source| OciError::Write {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(err)?;
            dir
        }
        None => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".ebpfctl-pull-")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(data).map_err(err)?;
    // Objects are not secrets: readable like any file the user would have written.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Now in RFC 3339, or `SOURCE_DATE_EPOCH` for reproducible pushes.
fn created() -> String {
    use time::format_description::well_known::Rfc3339;
    let at = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    at.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_for_run() {
        assert!(looks_like_reference("127.0.0.1:5000/probe:v1"));
        assert!(looks_like_reference("localhost/probe"));
        assert!(looks_like_reference("ghcr.io/acme/probes/exec@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        assert!(!looks_like_reference("probe.o"));
        assert!(!looks_like_reference("build/probe.bpf.o"));
        assert!(!looks_like_reference("myprobe/probe"));
        assert!(!looks_like_reference("./x/y"));
        assert!(!looks_like_reference("ghcr.io/Bad Name"));
    }

    #[test]
    fn loopback_registries_default_to_plain_http_and_nothing_else_does() {
        for r in [
            "localhost",
            "localhost:5000",
            "LOCALHOST:1",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "ghcr.io",
            "10.0.0.1:5000",
            "192.0.2.2:5000",
            "[2001:db8::1]:5000",
            "localhost.example.com:5000",
            "127.0.0.1.nip.io",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
        let t = |plain_http, tls_no_verify, r| {
            Connection {
                plain_http,
                tls_no_verify,
                ..Default::default()
            }
            .transport(r)
        };
        assert_eq!(t(None, false, "localhost:5000"), Transport::PlainHttp);
        assert_eq!(t(None, false, "ghcr.io"), Transport::Https);
        assert_eq!(t(Some(false), false, "localhost:5000"), Transport::Https);
        assert_eq!(t(None, true, "localhost:5000"), Transport::HttpsNoVerify);
        assert_eq!(t(None, true, "ghcr.io"), Transport::HttpsNoVerify);
        assert_eq!(t(Some(true), false, "ghcr.io"), Transport::PlainHttp);
    }

    #[test]
    fn manifests_of_other_kinds_are_refused() {
        let idx = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let e = read_manifest("r", idx).unwrap_err().to_string();
        assert!(e.contains("image index"), "{e}");
        assert!(read_manifest("r", b"nope").is_err());
    }

    #[test]
    fn atomic_write_creates_dirs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b.o");
        write_atomic(&p, b"abc").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");
    }

    /// `pull -o FILE` used to write `FILE.tmp<pid>` first, following a symlink planted there.
    #[test]
    fn atomic_write_follows_no_planted_symlink() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let p = d.path().join("probe.o");
        let mut old_tmp = p.as_os_str().to_owned();
        old_tmp.push(format!(".tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old_tmp).unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join("other.o")).unwrap();
        write_atomic(&p, b"object").unwrap();
        write_atomic(&d.path().join("other.o"), b"object").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&p).unwrap(), b"object");
        assert!(!std::fs::symlink_metadata(d.path().join("other.o"))
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
