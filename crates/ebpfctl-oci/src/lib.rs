//! Probes as OCI artifacts (docs/oci.md): [`push`] a compiled BPF object (and optionally its C
//! source) to a registry, [`pull`] it back into a file or the local cache, and
//! [`resolve_object`] for `ebpfctl run REF`. Synchronous API; a current-thread tokio runtime
//! runs oci-client inside each call. Never prints; typed errors.

mod authfile;
pub mod format;
mod registry;

use std::os::unix::fs::DirBuilderExt;
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
    #[error("no cache directory: set XDG_CACHE_HOME or HOME, or pass -o FILE")]
    NoCacheDir,
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

/// How to talk to the registry.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// HTTPS without certificate checks, or plain HTTP when the registry has no TLS (a local
    /// or test registry).
    pub insecure: bool,
    pub auth: Auth,
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
    let ProbeLayers {
        object: layer,
        config: config_desc,
        ours,
    } = probe_layers(&whole, &manifest)?;

    let mut notes = Vec::new();
    let config = match &config_desc {
        Some(c) if ours && c.media_type == CONFIG_MEDIA_TYPE && c.size <= MAX_BLOB => {
            let data = session.pull_blob(c)?;
            verify(&whole, "config", c, &data)?;
            let config = read_config(&data);
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
            let dir = cache_dir()?;
            // Private to its owner: `run` loads what it finds here (after checking its hash).
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|source| OciError::Write {
                    path: dir.display().to_string(),
                    source,
                })?;
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
/// runner to report. Credentials come from `EBPFCTL_REGISTRY_USER` / `_PASSWORD`.
pub fn resolve_object(arg: &Path, insecure: bool) -> Result<PathBuf, OciError> {
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
        connection: Connection {
            insecure,
            auth: Auth::new(None, None),
        },
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

/// `$XDG_CACHE_HOME/ebpfctl/oci`, else `~/.cache/ebpfctl/oci`.
pub fn cache_dir() -> Result<PathBuf, OciError> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".cache"))
        })
        .ok_or(OciError::NoCacheDir)?;
    Ok(base.join("ebpfctl").join("oci"))
}

/// The layers of a probe artifact: the object and, when present, the probe config.
#[derive(Debug, Clone)]
pub struct ProbeLayers {
    pub object: Descriptor,
    pub config: Option<Descriptor>,
    /// An artifact of ours (else a bumblebee image, whose config we do not read).
    pub ours: bool,
}

/// Finds the probe's layers in a manifest (see [`read_manifest`]); the error says why the
/// manifest is not a probe.
pub fn probe_layers(reference: &str, manifest: &Manifest) -> Result<ProbeLayers, OciError> {
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
            reference: reference.to_string(),
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
            reference: reference.to_string(),
            why: format!("no layer of media type {OBJECT_MEDIA_TYPE}"),
        })?
        .clone();
    if layer.size > MAX_BLOB {
        return Err(OciError::NotAProbe {
            reference: reference.to_string(),
            why: format!("the object layer is {} bytes, too large", layer.size),
        });
    }

    Ok(ProbeLayers {
        object: layer,
        config: config_desc,
        ours,
    })
}

/// Reads a probe config blob (`None` when unreadable: it is only informative).
pub fn read_config(data: &[u8]) -> Option<ProbeConfig> {
    serde_json::from_slice(data).ok()
}

/// Reads a pulled manifest; the error says why it is not a probe's.
pub fn read_manifest(reference: &str, raw: &[u8]) -> Result<Manifest, OciError> {
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

/// Writes through a temporary file in the same directory and renames it into place, so a
/// concurrent `run` never sees half an object.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), OciError> {
    let err = |source| OciError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, data).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
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
    fn manifests_of_other_kinds_are_refused() {
        let idx = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let e = read_manifest("r", idx).unwrap_err().to_string();
        assert!(e.contains("image index"), "{e}");
        assert!(read_manifest("r", b"nope").is_err());
    }

    #[test]
    fn atomic_write_creates_dirs() {
        let d = std::env::temp_dir().join(format!("ebpfctl-oci-test-{}", std::process::id()));
        let p = d.join("a/b.o");
        write_atomic(&p, b"abc").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
