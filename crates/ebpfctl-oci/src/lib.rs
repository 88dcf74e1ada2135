//! Probes as OCI artifacts (docs/oci.md): [`push`] a compiled BPF object (and optionally its C
//! source) to a registry, [`pull`] it back into a file or the local cache, and
//! [`resolve_object`] for `ebpfctl run REF`. Synchronous API; a current-thread tokio runtime
//! runs oci-client inside each call. Never prints; typed errors.

mod authfile;
pub mod format;
mod registry;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ebpfctl_core::object::{ObjectError, ObjectSpec};
pub use format::ProbeConfig;
use format::*;
use registry::Session;

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
    #[error("{0} (or pass -o FILE)")]
    Cache(#[from] ebpfctl_build::cache::CacheError),
    #[error("{reference}: not found in the registry")]
    NotFound { reference: String },
    #[error("{reference}: access denied by the registry (give credentials with --username/--password, EBPFCTL_REGISTRY_USER/EBPFCTL_REGISTRY_PASSWORD, or a saved login)")]
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

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub connection: Connection,
    /// The probe's C source, pushed as a second layer.
    pub source: Option<PathBuf>,
    /// Probe name in the config and title annotation [default: the object's file name stem].
    pub name: Option<String>,
}

/// What [`push`] did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The full reference pushed to (registry/repository:tag).
    pub reference: String,
    /// Digest of the manifest: `REPO@DIGEST` pulls exactly this.
    pub digest: String,
    pub config: ProbeConfig,
}

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub connection: Connection,
    /// Where to write the object [default: the cache, see [`cache_dir`]].
    pub output: Option<PathBuf>,
}

/// What [`pull`] did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub path: PathBuf,
    pub manifest_digest: String,
    pub object_digest: String,
    /// The probe's description, when the artifact is ours (bumblebee images have none).
    pub config: Option<ProbeConfig>,
    /// Served from the cache without downloading the object again.
    pub cached: bool,
    /// Things worth a line on stderr (built for another architecture, ...).
    pub notes: Vec<String>,
}

/// Validates `object`, packages it (docs/oci.md) and pushes it to `reference`.
pub fn push(object: &Path, reference: &str, opts: &PushOptions) -> Result<Pushed, OciError> {
    let bytes = read(object)?;
    let spec = ObjectSpec::parse(&bytes).map_err(|source| OciError::BadObject {
        path: object.display().to_string(),
        source,
    })?;
    let source = match &opts.source {
        Some(p) => Some((p, read(p)?)),
        None => None,
    };
    let parsed = registry::parse_reference(reference)?;
    if parsed.digest().is_some() {
        return Err(OciError::BadReference {
            reference: reference.to_string(),
            msg: "push to a tag (repo:tag), not a digest: the digest is what push computes"
                .to_string(),
        });
    }
    let reference = parsed;

    let name = opts.name.clone().unwrap_or_else(|| probe_name(object));
    let config = ProbeConfig::describe(&name, &spec, &bytes);
    let config_json = serde_json::to_vec(&config).expect("config serialises");

    let file_title = object
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{name}.o"));
    let mut layers = vec![(
        Descriptor::of(OBJECT_MEDIA_TYPE, &bytes, Some(&file_title)),
        bytes,
    )];
    if let Some((path, data)) = source {
        let title = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{name}.bpf.c"));
        layers.push((Descriptor::of(SOURCE_MEDIA_TYPE, &data, Some(&title)), data));
    }

    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert(ANN_TITLE.to_string(), name.clone());
    annotations.insert(ANN_CREATED.to_string(), created());
    annotations.insert(
        ANN_DESCRIPTION.to_string(),
        format!("eBPF probe {name} for ebpfctl"),
    );
    if let Some(tag) = reference.tag() {
        annotations.insert(ANN_VERSION.to_string(), tag.to_string());
    }
    if let Some(l) = &spec.license {
        annotations.insert(ANN_LICENSES.to_string(), l.clone());
    }
    let config_desc = Descriptor::of(CONFIG_MEDIA_TYPE, &config_json, None);
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        artifact_type: Some(ARTIFACT_TYPE.to_string()),
        config: Some(config_desc.clone()),
        layers: layers.iter().map(|(d, _)| d.clone()).collect(),
        annotations,
    };
    let manifest_json = serde_json::to_vec(&manifest).expect("manifest serialises");
    let digest = sha256_digest(&manifest_json);

    let mut session = Session::new(&reference, &opts.connection)?;
    session.auth(oci_client::RegistryOperation::Push)?;
    for (desc, data) in layers {
        session.push_blob(data, &desc.digest)?;
    }
    session.push_blob(config_json, &config_desc.digest)?;
    session.push_manifest(manifest_json, OCI_MANIFEST)?;
    Ok(Pushed {
        reference: reference.whole(),
        digest,
        config,
    })
}

/// Pulls the probe at `reference`: checks it is a probe, verifies the object's digest and
/// that it parses, and writes it to `opts.output` or the cache.
pub fn pull(reference: &str, opts: &PullOptions) -> Result<Pulled, OciError> {
    let reference = registry::parse_reference(reference)?;
    let whole = reference.whole();
    let mut session = Session::new(&reference, &opts.connection)?;
    let (raw, manifest_digest) = session.pull_manifest()?;
    let manifest = read_manifest(&whole, &raw)?;

    let config_desc = manifest.config.clone();
    let config_type = config_desc.as_ref().map(|c| c.media_type.as_str());
    let artifact_type = manifest.artifact_type.as_deref();
    let ours = artifact_type == Some(ARTIFACT_TYPE)
        || (artifact_type.is_none() && config_type == Some(CONFIG_MEDIA_TYPE));
    let bee = config_type == Some(BEE_CONFIG_MEDIA_TYPE);
    if !ours && !bee {
        let why = match (artifact_type, config_type) {
            (Some(a), _) => format!("artifact type {a} (want {ARTIFACT_TYPE})"),
            (None, Some(c)) => format!("config media type {c} (want {CONFIG_MEDIA_TYPE})"),
            (None, None) => "the manifest has no config and no artifact type".to_string(),
        };
        return Err(OciError::NotAProbe {
            reference: whole,
            why,
        });
    }
    let layer = manifest
        .layers
        .iter()
        .find(|l| {
            l.media_type == OBJECT_MEDIA_TYPE
                || BEE_OBJECT_MEDIA_TYPES.contains(&l.media_type.as_str())
        })
        .ok_or_else(|| OciError::NotAProbe {
            reference: whole.clone(),
            why: format!("no layer of media type {OBJECT_MEDIA_TYPE}"),
        })?
        .clone();
    if layer.size > MAX_BLOB {
        return Err(OciError::NotAProbe {
            reference: whole,
            why: format!("the object layer is {} bytes, too large", layer.size),
        });
    }

    let mut notes = Vec::new();
    let config = match &config_desc {
        Some(c) if ours && c.media_type == CONFIG_MEDIA_TYPE && c.size <= MAX_BLOB => {
            let data = session.pull_blob(c)?;
            verify(&whole, "config", c, &data)?;
            let config: Option<ProbeConfig> = serde_json::from_slice(&data).ok();
            if config.is_none() {
                notes.push(format!("{whole}: unreadable probe config, ignored"));
            }
            config
        }
        _ => None,
    };
    if let Some(c) = &config {
        let host = host_architecture();
        if !c.architecture.is_empty() && c.architecture != host {
            notes.push(format!(
                "{} was built for {}, this machine is {host}: tracing programs may read the wrong registers",
                c.name, c.architecture
            ));
        }
    }

    let (path, cached) = match &opts.output {
        Some(p) => (p.clone(), false),
        None => {
            let hex = layer.digest.split_once(':').map_or("", |(_, h)| h);
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(OciError::NotAProbe {
                    reference: whole,
                    why: format!("bad layer digest {:?}", layer.digest),
                });
            }
            // Private to its owner and checked (ebpfctl_build::cache): `run` loads what it
            // finds here, after checking its hash.
            let dir = cache_dir()?;
            let p = dir.join(format!("{hex}.o"));
            let hit = std::fs::read(&p)
                .map(|d| sha256_digest(&d) == layer.digest)
                .unwrap_or(false);
            (p, hit)
        }
    };
    if !cached {
        let data = session.pull_blob(&layer)?;
        verify(&whole, "object layer", &layer, &data)?;
        ObjectSpec::parse(&data).map_err(|source| OciError::BadPulledObject {
            reference: whole.clone(),
            source,
        })?;
        write_atomic(&path, &data)?;
    }
    Ok(Pulled {
        path,
        manifest_digest,
        object_digest: layer.digest,
        config,
        cached,
        notes,
    })
}

/// For `ebpfctl run ARG`: an existing file is itself; an image reference naming its registry
/// (`host[:port]/repo[:tag|@digest]`, the host with a dot or a port, or `localhost`) is
/// pulled into the cache and its path returned; anything else is returned unchanged for the
/// runner to report.
pub fn resolve_object(arg: &Path, connection: &Connection) -> Result<PathBuf, OciError> {
    if arg.exists() {
        return Ok(arg.to_path_buf());
    }
    let Some(s) = arg.to_str() else {
        return Ok(arg.to_path_buf());
    };
    if !looks_like_reference(s) {
        return Ok(arg.to_path_buf());
    }
    let opts = PullOptions {
        connection: connection.clone(),
        output: None,
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

/// `ebpfctl/oci` in the user's own cache directory (`$XDG_CACHE_HOME`, `~/.cache`, or
/// `/var/cache` for root; see `ebpfctl_build::cache`), created private and refused when
/// another user could change it.
pub fn cache_dir() -> Result<PathBuf, OciError> {
    Ok(ebpfctl_build::cache::dir("oci")?)
}

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
