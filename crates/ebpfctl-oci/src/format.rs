//! The artifact format (docs/oci.md): media types, the manifest we write and read, and the
//! config blob describing a probe before anyone runs it.
use std::collections::BTreeMap;

use ebpfctl_core::object::{params, ObjectSpec};
use serde::{Deserialize, Serialize};

/// `artifactType` of an ebpfctl probe manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.ebpfctl.probe.v1";
/// Media type of the config blob ([`ProbeConfig`] as JSON).
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.ebpfctl.probe.config.v1+json";
/// Media type of the layer holding the compiled object, bytes unchanged.
pub const OBJECT_MEDIA_TYPE: &str = "application/vnd.ebpfctl.probe.object.v1+elf";
/// Media type of the optional layer holding the probe's C source.
pub const SOURCE_MEDIA_TYPE: &str = "application/vnd.ebpfctl.probe.source.v1+c";

/// OCI image manifest media type (what we push).
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index: a multi-architecture probe (one manifest per platform).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest and list: container images, refused on pull with a clear message.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Config media type of bumblebee (`bee`) probe images, accepted on pull.
pub const BEE_CONFIG_MEDIA_TYPE: &str = "application/ebpf.oci.image.config.v1+json";
/// Object layer media types of bumblebee probe images (current and older spellings).
pub const BEE_OBJECT_MEDIA_TYPES: &[&str] = &[BEE_OBJECT_MEDIA_TYPE, "binary/ebpf.solo.io.v1"];
/// The object layer media type `bee` writes and reads.
pub const BEE_OBJECT_MEDIA_TYPE: &str = "application/ebpf.oci.image.program.v1+binary";
/// `bee` finds the object and the config by these `org.opencontainers.image.title`s.
pub const BEE_OBJECT_TITLE: &str = "program.o";
pub const BEE_CONFIG_TITLE: &str = "config.json";

/// Annotation of an `index.json` entry naming it (the full reference, as `bee` does).
pub const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const ANN_AUTHORS: &str = "org.opencontainers.image.authors";

pub const ANN_TITLE: &str = "org.opencontainers.image.title";
pub const ANN_CREATED: &str = "org.opencontainers.image.created";
pub const ANN_VERSION: &str = "org.opencontainers.image.version";
pub const ANN_LICENSES: &str = "org.opencontainers.image.licenses";
pub const ANN_DESCRIPTION: &str = "org.opencontainers.image.description";

/// An OCI content descriptor (the fields we use).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI platform (of an index entry).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn linux(architecture: &str) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: "linux".to_string(),
            variant: None,
        }
    }
}

/// An OCI image index (`index.json` of a layout, or a multi-architecture probe).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The OCI architecture name for `x86_64`, `aarch64`, ... (anything `ebpfctl build --arch`
/// takes), or `None` for a name we do not know.
pub fn oci_arch(name: &str) -> Option<&'static str> {
    ebpfctl_build::target_arch_named(name)
        .ok()
        .map(|(_, oci)| oci)
}

impl Descriptor {
    pub fn of(media_type: &str, data: &[u8], title: Option<&str>) -> Descriptor {
        let mut annotations = BTreeMap::new();
        if let Some(t) = title {
            annotations.insert(ANN_TITLE.to_string(), t.to_string());
        }
        Descriptor {
            media_type: media_type.to_string(),
            digest: sha256_digest(data),
            size: data.len() as u64,
            artifact_type: None,
            platform: None,
            annotations,
        }
    }
}

/// An OCI image manifest, or on pull anything with a `mediaType` (indexes have `manifests`
/// instead of `layers`; both default to empty so a wrong kind reads cleanly).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The config blob: what a user wants to know about a probe before running it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProbeConfig {
    pub name: String,
    #[serde(default)]
    pub ebpfctl_version: String,
    /// OCI architecture name of the machine it was built for (`amd64`, `arm64`): tracing
    /// macros (PT_REGS) and vmlinux.h depend on it.
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    /// BPF byte order of the object: `little` or `big`.
    #[serde(default)]
    pub endianness: String,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub programs: Vec<ProgramInfo>,
    #[serde(default)]
    pub maps: Vec<MapInfo>,
    #[serde(default)]
    pub parameters: Vec<ParamInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProgramInfo {
    pub name: String,
    pub section: String,
    /// Attach kind from the section name (`tracepoint`, `uprobe`, `xdp`...).
    pub attach: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MapInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub map_type: String,
    /// Output keyword (`print`, `counter`, `gauge`, `hist`), if any.
    #[serde(default)]
    pub keyword: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ParamInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    /// The default as `--list-params` shows it (and `--param` accepts it).
    pub default: String,
}

/// The OCI architecture name of this machine.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

impl ProbeConfig {
    /// Describes a parsed object. `bytes` is the object file (for its ELF byte order).
    pub fn describe(name: &str, spec: &ObjectSpec, bytes: &[u8]) -> ProbeConfig {
        let endianness = match bytes.get(5) {
            Some(2) => "big",
            _ => "little",
        };
        ProbeConfig {
            name: name.to_string(),
            ebpfctl_version: env!("CARGO_PKG_VERSION").to_string(),
            architecture: host_architecture().to_string(),
            os: "linux".to_string(),
            endianness: endianness.to_string(),
            license: spec.license.clone(),
            programs: spec
                .programs
                .iter()
                .map(|p| ProgramInfo {
                    name: p.name.clone(),
                    section: p.section.clone(),
                    attach: p.attach.kind().to_string(),
                })
                .collect(),
            maps: spec
                .maps
                .iter()
                .map(|m| MapInfo {
                    name: m.name.clone(),
                    map_type: m.type_name(),
                    keyword: m.keyword.map(|k| k.to_string()),
                })
                .collect(),
            parameters: match &spec.btf {
                Some(btf) => spec
                    .params
                    .iter()
                    .map(|p| ParamInfo {
                        name: p.name.clone(),
                        type_name: p.type_name.clone(),
                        default: params::render(btf, p, &p.default),
                    })
                    .collect(),
                None => Vec::new(),
            },
        }
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    use sha2::Digest;
    let sum = sha2::Sha256::digest(data);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in sum.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The probe name for an object path: file name without `.o` / `.bpf.o`.
pub fn probe_name(path: &std::path::Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "probe".to_string());
    let stem = file
        .strip_suffix(".o")
        .or_else(|| file.strip_suffix(".elf"))
        .unwrap_or(&file);
    let stem = stem.strip_suffix(".bpf").unwrap_or(stem);
    if stem.is_empty() {
        "probe".to_string()
    } else {
        stem.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn names() {
        use std::path::Path;
        assert_eq!(probe_name(Path::new("/x/exec_print.bpf.o")), "exec_print");
        assert_eq!(probe_name(Path::new("p.o")), "p");
        assert_eq!(probe_name(Path::new("obj")), "obj");
    }

    #[test]
    fn manifest_roundtrip_keeps_artifact_type() {
        let m = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: Some(ARTIFACT_TYPE.into()),
            config: Some(Descriptor::of(CONFIG_MEDIA_TYPE, b"{}", None)),
            layers: vec![Descriptor::of(OBJECT_MEDIA_TYPE, b"x", Some("x.o"))],
            annotations: BTreeMap::new(),
        };
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"artifactType\":\"application/vnd.ebpfctl.probe.v1\""));
        assert!(json.contains("\"schemaVersion\":2"));
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.layers, m.layers);
    }
}
