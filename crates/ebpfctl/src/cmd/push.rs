//! `ebpfctl image push [OBJECT] REF` (and `ebpfctl push`): package compiled probes into the
//! store as an OCI artifact (docs/oci.md), one per architecture for an image index, and
//! push what the store has under REF.
use std::path::PathBuf;

use anyhow::Context;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Our media types: the config describes the probe (docs/oci.md).
    Ebpfctl,
    /// bumblebee's media types and file names: `bee pull/run/describe` read it.
    Bumblebee,
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  ebpfctl push probe.bpf.o ghcr.io/acme/probes/execs:v1 --source probe.bpf.c
  ebpfctl image push ghcr.io/acme/probes/execs:v1              # what the store has under it
  ebpfctl image push ghcr.io/acme/probes/execs:v1 --arch x86_64=probe.o --arch arm64=probe-arm64.o
  ebpfctl image push ghcr.io/acme/probes/execs:bee --file probe.o --format bumblebee")]
pub struct Args {
    /// [OBJECT] REF: the compiled BPF object to package (validated before anything is sent),
    /// and where to push (registry/repository[:tag]). Without OBJECT, --file or --arch, REF is
    /// pushed as the store has it.
    #[arg(value_name = "[OBJECT] REF", num_args = 1..=2, required = true)]
    operands: Vec<String>,
    /// The compiled object to package (the positional OBJECT, spelled as a flag).
    #[arg(long, value_name = "FILE", conflicts_with = "arch")]
    file: Option<PathBuf>,
    /// One object per architecture, ARCH=FILE (repeatable; x86_64, arm64, ...): pushed as an
    /// image index whose platforms `run` and `pull` choose from.
    #[arg(long, value_name = "ARCH=FILE", value_parser = parse_arch)]
    arch: Vec<(String, PathBuf)>,
    /// Also push the probe's C source as a layer.
    #[arg(long, value_name = "FILE")]
    source: Option<PathBuf>,
    /// Probe name in the artifact [default: the object's file name without .bpf.o].
    #[arg(long)]
    name: Option<String>,
    /// Media types to write.
    #[arg(long, value_enum, default_value = "ebpfctl")]
    format: Format,
    /// org.opencontainers.image.description [default: "eBPF probe NAME for ebpfctl"].
    #[arg(long)]
    description: Option<String>,
    /// org.opencontainers.image.authors.
    #[arg(long)]
    authors: Option<String>,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    #[command(flatten)]
    credentials: super::registry::CredentialArgs,
}

fn parse_arch(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((a, f)) if !a.is_empty() && !f.is_empty() => Ok((a.to_string(), PathBuf::from(f))),
        _ => Err(format!(
            "expected ARCH=FILE (e.g. arm64=probe-arm64.o), got {s:?}"
        )),
    }
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let (object, reference) = match a.operands.as_slice() {
        [object, reference] => (Some(PathBuf::from(object)), reference.clone()),
        [reference]
            if a.file.is_none()
                && a.arch.is_empty()
                && std::path::Path::new(reference).is_file() =>
        {
            anyhow::bail!("{reference} is a file: say where to push it too (ebpfctl image push {reference} REGISTRY/REPO:TAG)")
        }
        [reference] => (None, reference.clone()),
        _ => unreachable!("clap takes one or two operands"),
    };
    if object.is_some() && (a.file.is_some() || !a.arch.is_empty()) {
        anyhow::bail!("give the object once: as OBJECT, --file FILE or --arch ARCH=FILE");
    }
    let mut inputs: Vec<ebpfctl_oci::Input> = object
        .or(a.file)
        .map(|path| ebpfctl_oci::Input { arch: None, path })
        .into_iter()
        .collect();
    inputs.extend(a.arch.into_iter().map(|(arch, path)| ebpfctl_oci::Input {
        arch: Some(arch),
        path,
    }));
    let opts = ebpfctl_oci::PushOptions {
        connection: a.registry.connection(a.credentials.auth()?)?,
        store: a.registry.store.store.clone(),
        inputs,
        package: ebpfctl_oci::PackageOptions {
            source: a.source,
            name: a.name,
            flavor: match a.format {
                Format::Ebpfctl => ebpfctl_oci::Flavor::Ebpfctl,
                Format::Bumblebee => ebpfctl_oci::Flavor::Bumblebee,
            },
            description: a.description,
            authors: a.authors,
        },
        progress: super::progress::bars("push"),
    };
    let pushed = ebpfctl_oci::push(&reference, &opts).context("push")?;
    let archs: Vec<&str> = pushed
        .configs
        .iter()
        .map(|c| c.architecture.as_str())
        .collect();
    match pushed.configs.first() {
        Some(c) => eprintln!(
            "ebpfctl: pushed {} ({} programs, {} maps, {} parameters; {}) to {}",
            c.name,
            c.programs.len(),
            c.maps.len(),
            c.parameters.len(),
            archs.join(", "),
            pushed.reference
        ),
        None => eprintln!("ebpfctl: pushed {}", pushed.reference),
    }
    println!("{}", pushed.digest);
    Ok(0)
}
