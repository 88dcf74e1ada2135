//! Image operations over the store and a registry: package, push, pull, list, describe,
//! tag, remove (docs/oci.md).
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ebpfctl_core::object::ObjectSpec;
use serde::Serialize;

use crate::format::*;
use crate::registry::{self, Ref, Session};
use crate::store::Store;
use crate::{
    created, read, verify, write_atomic, Connection, Flavor, Input, OciError, PackageOptions,
    Progress, PullOptions, PushOptions, MAX_BLOB,
};

/// Largest config blob `describe` and `list` read (ours are a few hundred bytes).
const MAX_CONFIG: u64 = 1 << 20;

/// What [`push`] did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The full reference pushed to (registry/repository:tag).
    pub reference: String,
    /// Digest of the manifest, or of the index for a multi-architecture image:
    /// `REPO@DIGEST` pulls exactly this.
    pub digest: String,
    pub media_type: String,
    /// One per manifest (per architecture), when readable.
    pub configs: Vec<ProbeConfig>,
    /// Blobs sent, and blobs the registry already had.
    pub uploaded: usize,
    pub skipped: usize,
}

/// What [`pull`] did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name it has in the store (the full reference).
    pub reference: String,
    /// The object: in the store (`blobs/sha256/<hex>`), or the file asked for.
    pub path: PathBuf,
    /// Digest of what the reference names (an index for a multi-architecture image).
    pub manifest_digest: String,
    /// Digest of the manifest used (this machine's, from an index).
    pub platform_digest: String,
    pub platform: Option<Platform>,
    pub object_digest: String,
    /// The probe's description, when the artifact carries ours (bumblebee's own have none).
    pub config: Option<ProbeConfig>,
    /// Everything was already in the store: nothing downloaded but the manifest.
    pub cached: bool,
    /// Things worth a line on stderr (built for another architecture, ...).
    pub notes: Vec<String>,
}

/// One name in the store, for `image list`.
#[derive(Debug, Clone, Serialize)]
pub struct ListEntry {
    pub reference: String,
    pub digest: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Probe name from the config, when readable.
    pub name: Option<String>,
    /// OCI architecture names (several for an index).
    pub architectures: Vec<String>,
    /// Bytes of every blob the name reaches (manifests, configs, layers).
    pub size: u64,
    pub created: Option<String>,
    /// `ebpfctl`, `bumblebee` or `other`.
    pub format: String,
}

/// What `image describe` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Described {
    pub reference: String,
    /// `store` or `registry`.
    pub source: String,
    pub digest: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub annotations: BTreeMap<String, String>,
    /// One, or one per platform of an index.
    pub manifests: Vec<DescribedManifest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DescribedManifest {
    pub digest: String,
    pub platform: Option<Platform>,
    #[serde(rename = "artifactType")]
    pub artifact_type: Option<String>,
    pub format: String,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "configMediaType")]
    pub config_media_type: Option<String>,
    pub layers: Vec<Descriptor>,
    /// Our description of the probe (programs, maps and their keywords, parameters).
    pub config: Option<ProbeConfig>,
}

/// A probe manifest's parts.
struct Parts {
    object: Descriptor,
    config: Option<Descriptor>,
    flavor: &'static str,
}

/// Checks that `m` is a probe (ours or bumblebee's) and finds its object layer.
fn probe_parts(whole: &str, m: &Manifest) -> Result<Parts, OciError> {
    let config_type = m.config.as_ref().map(|c| c.media_type.as_str());
    let artifact_type = m.artifact_type.as_deref();
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
            reference: whole.to_string(),
            why,
        });
    }
    let object = m
        .layers
        .iter()
        .find(|l| {
            l.media_type == OBJECT_MEDIA_TYPE
                || BEE_OBJECT_MEDIA_TYPES.contains(&l.media_type.as_str())
        })
        .ok_or_else(|| OciError::NotAProbe {
            reference: whole.to_string(),
            why: format!("no layer of media type {OBJECT_MEDIA_TYPE}"),
        })?
        .clone();
    for l in m.config.iter().chain(m.layers.iter()) {
        if l.size > MAX_BLOB {
            return Err(OciError::NotAProbe {
                reference: whole.to_string(),
                why: format!("a layer is {} bytes, too large", l.size),
            });
        }
    }
    let config = m
        .config
        .clone()
        .filter(|c| c.media_type == CONFIG_MEDIA_TYPE || c.media_type == BEE_CONFIG_MEDIA_TYPE);
    Ok(Parts {
        object,
        config,
        flavor: if bee { "bumblebee" } else { "ebpfctl" },
    })
}

/// Our description in a config blob (ours, or one of ours in bumblebee's media type);
/// `None` for bumblebee's own (`{}`).
fn parse_config(data: &[u8]) -> Option<ProbeConfig> {
    serde_json::from_slice(data).ok()
}

/// What `pull` reads of a registry's answer before verifying any digest (the fuzz target
/// `oci_manifest`): a manifest must be a probe's, an index must have an entry for this
/// machine; the error says why not.
pub fn check_manifest(whole: &str, raw: &[u8]) -> Result<(), OciError> {
    match read_top(whole, raw)? {
        Top::Manifest(m) => probe_parts(whole, &m).map(|_| ()),
        Top::Index(i) => choose(whole, &i, None).map(|_| ()),
    }
}

/// A probe config blob as `pull` reads it (`None`: not ours, or unreadable).
pub fn read_config(data: &[u8]) -> Option<ProbeConfig> {
    parse_config(data)
}

/// A manifest or an index, from its bytes.
enum Top {
    Manifest(Manifest),
    Index(Index),
}

fn read_top(whole: &str, raw: &[u8]) -> Result<Top, OciError> {
    let not_probe = |why: String| OciError::NotAProbe {
        reference: whole.to_string(),
        why,
    };
    let v: serde_json::Value =
        serde_json::from_slice(raw).map_err(|e| not_probe(format!("unreadable manifest: {e}")))?;
    let media_type = v.get("mediaType").and_then(|m| m.as_str());
    let is_index =
        media_type == Some(OCI_INDEX) || (media_type.is_none() && v.get("manifests").is_some());
    if is_index {
        let i: Index = serde_json::from_value(v)
            .map_err(|e| not_probe(format!("unreadable image index: {e}")))?;
        return Ok(Top::Index(i));
    }
    Ok(Top::Manifest(crate::read_manifest(whole, raw)?))
}

/// The entry of `index` for `arch` (an `ebpfctl build --arch` name) or this machine.
fn choose(whole: &str, index: &Index, arch: Option<&str>) -> Result<Descriptor, OciError> {
    let want = match arch {
        Some(a) => oci_arch(a).ok_or_else(|| {
            OciError::Usage(format!(
                "--arch {a}: unknown architecture (give one of {})",
                ebpfctl_build::ARCH_NAMES
            ))
        })?,
        None => host_architecture(),
    };
    index
        .manifests
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.architecture == want && (p.os == "linux" || p.os.is_empty()))
        })
        .cloned()
        .ok_or_else(|| OciError::NoPlatform {
            reference: whole.to_string(),
            want: want.to_string(),
            have: platforms(index),
        })
}

fn platforms(index: &Index) -> String {
    let v: Vec<String> = index
        .manifests
        .iter()
        .map(|d| match &d.platform {
            Some(p) => format!("{}/{}", p.os, p.architecture),
            None => "no platform".to_string(),
        })
        .collect();
    if v.is_empty() {
        "nothing".to_string()
    } else {
        v.join(", ")
    }
}

/// What was packaged.
pub struct Packaged {
    pub reference: String,
    pub descriptor: Descriptor,
    pub configs: Vec<ProbeConfig>,
}

/// Validates each object, packages them (docs/oci.md) into the store and names the result
/// `reference`: one manifest for an input without an architecture, else an image index with
/// one manifest per architecture.
pub fn package(
    store: &Store,
    reference: &str,
    inputs: &[Input],
    opts: &PackageOptions,
) -> Result<Packaged, OciError> {
    let parsed = tag_reference(reference)?;
    let whole = parsed.whole();
    let Some(first) = inputs.first() else {
        return Err(OciError::Usage("no object to package".to_string()));
    };
    let with_arch = inputs.iter().filter(|i| i.arch.is_some()).count();
    if with_arch != 0 && with_arch != inputs.len() || with_arch == 0 && inputs.len() > 1 {
        return Err(OciError::Usage(
            "give one object, or one --arch ARCH=FILE per architecture".to_string(),
        ));
    }
    let source = match &opts.source {
        Some(p) => Some((p.clone(), read(p)?)),
        None => None,
    };
    let name = opts.name.clone().unwrap_or_else(|| probe_name(&first.path));
    let when = created();
    let mut descs = Vec::new();
    let mut configs = Vec::new();
    let mut seen = BTreeSet::new();
    // Written with the name, under the store's lock (Store::commit).
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    for input in inputs {
        let arch = match &input.arch {
            Some(a) => oci_arch(a).ok_or_else(|| {
                OciError::Usage(format!(
                    "--arch {a}={}: unknown architecture (give one of {})",
                    input.path.display(),
                    ebpfctl_build::ARCH_NAMES
                ))
            })?,
            None => host_architecture(),
        };
        if !seen.insert(arch) {
            return Err(OciError::Usage(format!(
                "--arch {arch} given twice: one object per architecture"
            )));
        }
        let bytes = read(&input.path)?;
        let spec = ObjectSpec::parse(&bytes).map_err(|source| OciError::BadObject {
            path: input.path.display().to_string(),
            source,
        })?;
        let mut config = ProbeConfig::describe(&name, &spec, &bytes);
        config.architecture = arch.to_string();
        let config_json = serde_json::to_vec(&config).expect("config serialises");
        let file_title = input
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{name}.o"));
        let bee = opts.flavor == Flavor::Bumblebee;
        let (config_desc, object_desc) = if bee {
            (
                Descriptor::of(BEE_CONFIG_MEDIA_TYPE, &config_json, Some(BEE_CONFIG_TITLE)),
                Descriptor::of(BEE_OBJECT_MEDIA_TYPE, &bytes, Some(BEE_OBJECT_TITLE)),
            )
        } else {
            (
                Descriptor::of(CONFIG_MEDIA_TYPE, &config_json, None),
                Descriptor::of(OBJECT_MEDIA_TYPE, &bytes, Some(&file_title)),
            )
        };
        let mut layers = vec![object_desc];
        if let Some((path, data)) = &source {
            let title = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("{name}.bpf.c"));
            layers.push(Descriptor::of(SOURCE_MEDIA_TYPE, data, Some(&title)));
            blobs.push(data.clone());
        }
        let mut annotations = BTreeMap::new();
        annotations.insert(ANN_TITLE.to_string(), name.clone());
        annotations.insert(ANN_CREATED.to_string(), when.clone());
        annotations.insert(
            ANN_DESCRIPTION.to_string(),
            opts.description
                .clone()
                .unwrap_or_else(|| format!("eBPF probe {name} for ebpfctl")),
        );
        if let Some(a) = &opts.authors {
            annotations.insert(ANN_AUTHORS.to_string(), a.clone());
        }
        if let Some(tag) = parsed.tag() {
            annotations.insert(ANN_VERSION.to_string(), tag.to_string());
        }
        if let Some(l) = &spec.license {
            annotations.insert(ANN_LICENSES.to_string(), l.clone());
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_string()),
            artifact_type: (!bee).then(|| ARTIFACT_TYPE.to_string()),
            config: Some(config_desc),
            layers,
            annotations,
        };
        let manifest_json = serde_json::to_vec(&manifest).expect("manifest serialises");
        let mut desc = Descriptor::of(OCI_MANIFEST, &manifest_json, None);
        blobs.extend([bytes, config_json, manifest_json]);
        desc.platform = Some(Platform::linux(arch));
        descs.push(desc);
        configs.push(config);
    }
    let top = if with_arch == 0 {
        descs.remove(0)
    } else {
        let mut annotations = BTreeMap::new();
        annotations.insert(ANN_TITLE.to_string(), name.clone());
        annotations.insert(ANN_CREATED.to_string(), when);
        if let Some(tag) = parsed.tag() {
            annotations.insert(ANN_VERSION.to_string(), tag.to_string());
        }
        let index = Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            artifact_type: (opts.flavor == Flavor::Ebpfctl).then(|| ARTIFACT_TYPE.to_string()),
            manifests: descs,
            annotations,
        };
        let json = serde_json::to_vec(&index).expect("index serialises");
        let desc = Descriptor::of(OCI_INDEX, &json, None);
        blobs.push(json);
        desc
    };
    store.commit(&whole, top.clone(), &blobs)?;
    Ok(Packaged {
        reference: whole,
        descriptor: top,
        configs,
    })
}

/// A reference to push to or name in the store: a tag, not a digest.
fn tag_reference(reference: &str) -> Result<Ref, OciError> {
    let parsed = registry::parse_reference(reference)?;
    if parsed.digest().is_some() {
        return Err(OciError::BadReference {
            reference: reference.to_string(),
            msg: "push to a tag (repo:tag), not a digest: the digest is what push computes"
                .to_string(),
        });
    }
    Ok(parsed)
}

/// Packages `opts.inputs` into the store under `reference` (when given) and pushes what
/// the store has under `reference` to the registry: blobs first, then each manifest of an
/// index by digest, then the manifest or index under the tag.
pub fn push(reference: &str, opts: &PushOptions) -> Result<Pushed, OciError> {
    let parsed = tag_reference(reference)?;
    let whole = parsed.whole();
    let store = Store::open(opts.store.as_deref())?;
    let top = if opts.inputs.is_empty() {
        store
            .resolve(reference, Some(&whole))?
            .ok_or_else(|| OciError::NotInStore {
                reference: whole.clone(),
                store: store.dir().display().to_string(),
            })?
    } else {
        package(&store, reference, &opts.inputs, &opts.package)?.descriptor
    };
    let progress = opts.progress.as_deref();
    let mut session = Session::new(&parsed, &opts.connection)?;
    session.auth(oci_client::RegistryOperation::Push)?;
    let mut pushed = Pushed {
        reference: whole.clone(),
        digest: top.digest.clone(),
        media_type: top.media_type.clone(),
        configs: Vec::new(),
        uploaded: 0,
        skipped: 0,
    };
    let raw = store.read_blob(&top)?;
    match read_top(&whole, &raw)? {
        Top::Index(index) => {
            for child in &index.manifests {
                let at = parsed.at_digest(&child.digest);
                upload_manifest(&session, &store, child, Some(&at), progress, &mut pushed)?;
            }
            session.push_manifest(raw, OCI_INDEX, None)?;
        }
        Top::Manifest(_) => {
            upload_manifest(&session, &store, &top, None, progress, &mut pushed)?;
        }
    }
    Ok(pushed)
}

fn upload_manifest(
    session: &Session,
    store: &Store,
    desc: &Descriptor,
    at: Option<&Ref>,
    progress: Option<&dyn Progress>,
    pushed: &mut Pushed,
) -> Result<(), OciError> {
    let raw = store.read_blob(desc)?;
    let m: Manifest = serde_json::from_slice(&raw).map_err(|e| OciError::Store {
        path: store.dir().display().to_string(),
        msg: format!("unreadable manifest {}: {e}", desc.digest),
    })?;
    let arch = desc
        .platform
        .as_ref()
        .map(|p| format!(" ({})", p.architecture))
        .unwrap_or_default();
    for d in m.layers.iter().chain(m.config.iter()) {
        let data = store.read_blob(d)?;
        if m.config.as_ref() == Some(d) {
            if let Some(c) = parse_config(&data) {
                pushed.configs.push(c);
            }
        }
        let label = format!("{}{arch}", label_of(d));
        if session.push_blob(data, &d.digest, &label, progress)? {
            pushed.uploaded += 1;
        } else {
            pushed.skipped += 1;
        }
    }
    let media_type = m.media_type.as_deref().unwrap_or(OCI_MANIFEST);
    session.push_manifest(raw, media_type, at)
}

/// A blob's name on a progress bar: its title, else `config`, else its short digest.
fn label_of(d: &Descriptor) -> String {
    if let Some(t) = d.annotations.get(ANN_TITLE) {
        return t.clone();
    }
    if d.media_type == CONFIG_MEDIA_TYPE || d.media_type == BEE_CONFIG_MEDIA_TYPE {
        return "config".to_string();
    }
    d.digest.chars().take(7 + 12).collect()
}

/// Pulls the probe at `reference` into the store (this machine's manifest of an index, or
/// `opts.arch`'s): checks it is a probe, verifies every blob against the manifest and that
/// the object parses, names it `reference` in the store, and writes the object to
/// `opts.output` if asked.
pub fn pull(reference: &str, opts: &PullOptions) -> Result<Pulled, OciError> {
    let parsed = registry::parse_reference(reference)?;
    let whole = parsed.whole();
    let store = Store::open(opts.store.as_deref())?;
    let mut session = Session::new(&parsed, &opts.connection)?;
    let (raw, top_digest) = session.pull_manifest()?;
    let (raw, digest, platform) = match read_top(&whole, &raw)? {
        Top::Manifest(_) => (raw, top_digest.clone(), None),
        Top::Index(index) => {
            let child = choose(&whole, &index, opts.arch.as_deref())?;
            let r = session.pull_manifest_at(&child.digest)?;
            verify(&whole, "manifest", &child, &r)?;
            (r, child.digest.clone(), child.platform.clone())
        }
    };
    let manifest = crate::read_manifest(&whole, &raw)?;
    let parts = probe_parts(&whole, &manifest)?;

    let progress = opts.progress.as_deref();
    let mut cached = true;
    let mut fetched: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for d in manifest.config.iter().chain(manifest.layers.iter()) {
        if let Ok(data) = store.read_blob(d) {
            fetched.insert(d.digest.clone(), data);
            continue;
        }
        cached = false;
        let label = (Some(d) != manifest.config.as_ref()).then(|| label_of(d));
        let data = session.pull_blob(d, label.as_deref(), progress)?;
        verify(&whole, "blob", d, &data)?;
        fetched.insert(d.digest.clone(), data);
    }
    let object = &fetched[&parts.object.digest];
    ObjectSpec::parse(object).map_err(|source| OciError::BadPulledObject {
        reference: whole.clone(),
        source,
    })?;
    let mut notes = Vec::new();
    let config = match &parts.config {
        Some(c) => {
            let config = parse_config(&fetched[&c.digest]);
            if config.is_none() && parts.flavor == "ebpfctl" {
                notes.push(format!("{whole}: unreadable probe config, ignored"));
            }
            config
        }
        None => None,
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
    let mut desc = Descriptor::of(
        manifest.media_type.as_deref().unwrap_or(OCI_MANIFEST),
        &raw,
        None,
    );
    desc.platform = platform.clone().or_else(|| {
        config
            .as_ref()
            .filter(|c| !c.architecture.is_empty())
            .map(|c| Platform::linux(&c.architecture))
    });
    let previous = store.resolve(&whole, None)?;
    cached &= previous.is_some_and(|p| p.digest == desc.digest);
    let mut blobs: Vec<Vec<u8>> = fetched.values().cloned().collect();
    blobs.push(raw.clone());
    store.commit(&whole, desc, &blobs)?;
    let path = match &opts.output {
        Some(p) => {
            write_atomic(p, object)?;
            p.clone()
        }
        None => store.blob_path(&parts.object.digest)?,
    };
    Ok(Pulled {
        reference: whole,
        path,
        manifest_digest: top_digest,
        platform_digest: digest,
        platform,
        object_digest: parts.object.digest,
        config,
        cached,
        notes,
    })
}

/// A stored probe for one platform.
pub(crate) struct Local {
    pub object: Descriptor,
}

/// The probe `desc` (a stored name's entry) holds for `arch` or this machine, its object
/// checked against its digest.
pub(crate) fn load_local(
    store: &Store,
    whole: &str,
    desc: &Descriptor,
    arch: Option<&str>,
) -> Result<Local, OciError> {
    let raw = store.read_blob(desc)?;
    let raw = match read_top(whole, &raw)? {
        Top::Index(index) => {
            let child = choose(whole, &index, arch)?;
            store.read_blob(&child)?
        }
        Top::Manifest(_) => raw,
    };
    let manifest = crate::read_manifest(whole, &raw)?;
    let parts = probe_parts(whole, &manifest)?;
    store.read_blob(&parts.object)?;
    Ok(Local {
        object: parts.object,
    })
}

/// Every name in the store.
pub fn list(store: &Store) -> Result<Vec<ListEntry>, OciError> {
    let index = store.index()?;
    let mut out = Vec::new();
    for d in &index.manifests {
        let reference = d.annotations.get(ANN_REF_NAME).cloned().unwrap_or_default();
        let mut size = d.size;
        let mut architectures = Vec::new();
        let mut name = None;
        let mut created = None;
        let mut format = "other".to_string();
        let mut seen = BTreeSet::new();
        let mut manifests = Vec::new();
        if let Ok(raw) = store.read_blob(d) {
            match read_top(&reference, &raw) {
                Ok(Top::Index(i)) => {
                    created = i.annotations.get(ANN_CREATED).cloned();
                    for c in i.manifests {
                        if let Ok(r) = store.read_blob(&c) {
                            size += c.size;
                            manifests.push((c.platform.clone(), r));
                        }
                    }
                }
                Ok(Top::Manifest(_)) => manifests.push((d.platform.clone(), raw)),
                Err(_) => {}
            }
        }
        for (platform, raw) in manifests {
            let Ok(m) = serde_json::from_slice::<Manifest>(&raw) else {
                continue;
            };
            created = created.or_else(|| m.annotations.get(ANN_CREATED).cloned());
            if let Ok(parts) = probe_parts(&reference, &m) {
                format = parts.flavor.to_string();
            }
            let config = m
                .config
                .as_ref()
                .filter(|c| c.size <= MAX_CONFIG)
                .and_then(|c| store.read_blob(c).ok())
                .and_then(|data| parse_config(&data));
            let arch = platform
                .map(|p| p.architecture)
                .or_else(|| config.as_ref().map(|c| c.architecture.clone()))
                .filter(|a| !a.is_empty());
            architectures.extend(arch);
            if name.is_none() {
                name = config.map(|c| c.name);
            }
            for l in m.config.iter().chain(m.layers.iter()) {
                if seen.insert(l.digest.clone()) {
                    size += l.size;
                }
            }
        }
        out.push(ListEntry {
            reference,
            digest: d.digest.clone(),
            media_type: d.media_type.clone(),
            name,
            architectures,
            size,
            created,
            format,
        });
    }
    out.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(out)
}

/// Describes `reference`: from the store when it has the name, else from the registry
/// (manifests and configs only; nothing is stored).
pub fn describe(
    reference: &str,
    connection: &Connection,
    store_dir: Option<&std::path::Path>,
) -> Result<Described, OciError> {
    let parsed = registry::parse_reference(reference)?;
    let whole = parsed.whole();
    let store = Store::open(store_dir)?;
    if let Some(desc) = store.resolve(reference, Some(&whole))? {
        let name = desc.annotations.get(ANN_REF_NAME).cloned().unwrap_or(whole);
        let raw = store.read_blob(&desc)?;
        return describe_from(
            &name,
            "store",
            &desc.digest,
            &raw,
            desc.platform.clone(),
            &mut |d| store.read_blob(d),
        );
    }
    // Like `run` and `inspect`: a mistyped name never turns into a request to Docker Hub.
    if !crate::looks_like_reference(reference) {
        return Err(OciError::NotInStoreNoRegistry {
            reference: reference.to_string(),
            store: store.dir().display().to_string(),
        });
    }
    let mut session = Session::new(&parsed, connection)?;
    let (raw, digest) = session.pull_manifest()?;
    let mut fetch = |d: &Descriptor| -> Result<Vec<u8>, OciError> {
        let data = if d.media_type == OCI_MANIFEST || d.media_type == OCI_INDEX {
            session.pull_manifest_at(&d.digest)?
        } else {
            session.pull_blob(d, None, None)?
        };
        verify(&whole, "blob", d, &data)?;
        Ok(data)
    };
    describe_from(&whole, "registry", &digest, &raw, None, &mut fetch)
}

fn describe_from(
    whole: &str,
    source: &str,
    digest: &str,
    raw: &[u8],
    platform: Option<Platform>,
    fetch: &mut dyn FnMut(&Descriptor) -> Result<Vec<u8>, OciError>,
) -> Result<Described, OciError> {
    let (media_type, annotations, members) = match read_top(whole, raw)? {
        Top::Index(i) => {
            let mut members = Vec::new();
            for c in &i.manifests {
                let r = fetch(c)?;
                members.push((c.digest.clone(), c.platform.clone(), r));
            }
            (OCI_INDEX.to_string(), i.annotations, members)
        }
        Top::Manifest(m) => (
            m.media_type
                .clone()
                .unwrap_or_else(|| OCI_MANIFEST.to_string()),
            BTreeMap::new(),
            vec![(digest.to_string(), platform, raw.to_vec())],
        ),
    };
    let mut manifests = Vec::new();
    for (digest, platform, r) in members {
        let m = crate::read_manifest(whole, &r)?;
        let parts = probe_parts(whole, &m).ok();
        let config = match m.config.as_ref().filter(|c| c.size <= MAX_CONFIG) {
            Some(c) if parts.is_some() => fetch(c).ok().and_then(|d| parse_config(&d)),
            _ => None,
        };
        let platform = platform.or_else(|| {
            config
                .as_ref()
                .filter(|c| !c.architecture.is_empty())
                .map(|c| Platform::linux(&c.architecture))
        });
        manifests.push(DescribedManifest {
            digest,
            platform,
            artifact_type: m.artifact_type.clone(),
            format: parts.map_or("other", |p| p.flavor).to_string(),
            annotations: m.annotations.clone(),
            config_media_type: m.config.as_ref().map(|c| c.media_type.clone()),
            layers: m.layers.clone(),
            config,
        });
    }
    Ok(Described {
        reference: whole.to_string(),
        source: source.to_string(),
        digest: digest_of(raw, digest),
        media_type,
        annotations,
        manifests,
    })
}

fn digest_of(raw: &[u8], given: &str) -> String {
    if given.is_empty() {
        sha256_digest(raw)
    } else {
        given.to_string()
    }
}

/// Names what the store has as `src` also `dst`; returns the full name given.
pub fn tag(store: &Store, src: &str, dst: &str) -> Result<String, OciError> {
    let from = store_name(store, src)?;
    let desc = store.resolve(&from, None)?.expect("store_name found it");
    let to = tag_reference(dst)?.whole();
    store.set_ref(&to, desc)?;
    Ok(to)
}

/// Removes a name from the store, and the blobs nothing else uses; returns the name removed.
pub fn remove(store: &Store, reference: &str) -> Result<String, OciError> {
    let name = store_name(store, reference)?;
    store.remove_ref(&name)?;
    Ok(name)
}

/// The name in the store that `reference` means (as given, or as its full reference).
fn store_name(store: &Store, reference: &str) -> Result<String, OciError> {
    let whole = registry::parse_reference(reference).map(|r| r.whole()).ok();
    match store.resolve(reference, whole.as_deref())? {
        Some(d) => Ok(d
            .annotations
            .get(ANN_REF_NAME)
            .cloned()
            .unwrap_or_else(|| reference.to_string())),
        None => Err(OciError::NotInStore {
            reference: whole.unwrap_or_else(|| reference.to_string()),
            store: store.dir().display().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(archs: &[&str]) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            artifact_type: None,
            manifests: archs
                .iter()
                .map(|a| {
                    let mut d = Descriptor::of(OCI_MANIFEST, a.as_bytes(), None);
                    d.platform = Some(Platform::linux(a));
                    d
                })
                .collect(),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn platform_choice() {
        let i = index(&["amd64", "arm64"]);
        let arm = choose("r", &i, Some("aarch64")).unwrap();
        assert_eq!(arm.platform.unwrap().architecture, "arm64");
        let host = choose("r", &i, None).unwrap();
        assert_eq!(host.platform.unwrap().architecture, host_architecture());
        let e = choose("r", &i, Some("s390x")).unwrap_err().to_string();
        assert_eq!(
            e,
            "r has no image for s390x (it has: linux/amd64, linux/arm64); pick one with --arch"
        );
        assert!(choose("r", &i, Some("sparc")).is_err());
    }

    #[test]
    fn indexes_and_manifests_told_apart() {
        let i = serde_json::to_vec(&index(&["amd64"])).unwrap();
        assert!(matches!(read_top("r", &i), Ok(Top::Index(_))));
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
        assert!(matches!(read_top("r", m), Ok(Top::Manifest(_))));
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
        assert!(read_top("r", docker).is_err());
    }

    /// Bad input is refused before anything is stored.
    #[test]
    fn package_refuses_bad_input_before_storing() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(Some(&d.path().join("s"))).unwrap();
        let obj = d.path().join("x.o");
        // Not a BPF object: refused before anything is stored.
        std::fs::write(&obj, b"nope").unwrap();
        let opts = PackageOptions {
            flavor: Flavor::Bumblebee,
            ..Default::default()
        };
        let input = [Input {
            arch: None,
            path: obj.clone(),
        }];
        assert!(package(&store, "localhost:5000/x:v1", &input, &opts).is_err());
        assert!(store.index().unwrap().manifests.is_empty());
        // Two objects without --arch, or an unknown one: refused.
        let two = [input[0].clone(), input[0].clone()];
        assert!(package(&store, "localhost:5000/x:v1", &two, &opts).is_err());
        assert!(package(&store, "localhost:5000/x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", &input, &opts).is_err());
    }
}
