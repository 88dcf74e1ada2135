//! `ebpfctl image describe REF`: an image's manifests and the probe its config describes.
use std::io::Write;

use super::{human_bytes, Format};
use crate::cmd::prog::{done, stdout};

#[derive(clap::Args)]
#[command(after_help = "Examples:
  ebpfctl image describe ghcr.io/acme/probes/execs:v1
  ebpfctl image describe 127.0.0.1:5000/probe:v1 -o json")]
pub struct Args {
    /// The image: a name in the store, else fetched from its registry (not stored).
    reference: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    registry: crate::cmd::registry::RegistryArgs,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let connection = a.registry.connection(ebpfctl_oci::Auth::new(None, None))?;
    let d = ebpfctl_oci::describe(&a.reference, &connection, a.registry.store_dir())?;
    let mut w = stdout();
    let r = match a.output {
        Format::Json => serde_json::to_writer_pretty(&mut w, &d)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(w)),
        Format::Table => text(&mut w, &d),
    };
    done(r.and_then(|()| w.flush()))
}

fn text(w: &mut impl Write, d: &ebpfctl_oci::Described) -> std::io::Result<()> {
    writeln!(w, "{} (from the {})", d.reference, d.source)?;
    writeln!(w, "  digest      {}", d.digest)?;
    writeln!(w, "  media type  {}", d.media_type)?;
    for (k, v) in &d.annotations {
        writeln!(w, "  {k}: {v}")?;
    }
    for m in &d.manifests {
        writeln!(w)?;
        let platform = m
            .platform
            .as_ref()
            .map(|p| format!("{}/{}", p.os, p.architecture))
            .unwrap_or_else(|| "unknown platform".to_string());
        writeln!(w, "manifest {} ({platform}, {} format)", m.digest, m.format)?;
        if let Some(t) = &m.artifact_type {
            writeln!(w, "  artifact type  {t}")?;
        }
        if let Some(t) = &m.config_media_type {
            writeln!(w, "  config         {t}")?;
        }
        for l in &m.layers {
            let title = l
                .annotations
                .get(ebpfctl_oci::format::ANN_TITLE)
                .map(|t| format!(" {t}"))
                .unwrap_or_default();
            writeln!(
                w,
                "  layer          {}{title} ({}, {})",
                l.media_type,
                human_bytes(l.size),
                l.digest
            )?;
        }
        for (k, v) in &m.annotations {
            writeln!(w, "  {k}: {v}")?;
        }
        let Some(c) = &m.config else {
            writeln!(w, "  (no probe description: not pushed by ebpfctl)")?;
            continue;
        };
        writeln!(
            w,
            "  probe {} (ebpfctl {}, {}/{}, {} endian, license {})",
            c.name,
            c.ebpfctl_version,
            c.os,
            c.architecture,
            c.endianness,
            c.license.as_deref().unwrap_or("none")
        )?;
        writeln!(w, "  programs:")?;
        for p in &c.programs {
            writeln!(w, "    {:<24} {:<12} {}", p.name, p.attach, p.section)?;
        }
        writeln!(w, "  maps:")?;
        for m in &c.maps {
            let kw = m
                .keyword
                .as_deref()
                .map(|k| format!("{k}: {}", keyword_meaning(k)))
                .unwrap_or_else(|| "no keyword: not printed".to_string());
            writeln!(w, "    {:<24} {:<12} {kw}", m.name, m.map_type)?;
        }
        if !c.parameters.is_empty() {
            writeln!(w, "  parameters (--param NAME=VALUE):")?;
            for p in &c.parameters {
                writeln!(
                    w,
                    "    {:<24} {:<12} default {}",
                    p.name, p.type_name, p.default
                )?;
            }
        }
    }
    Ok(())
}

/// What a map keyword makes `ebpfctl run` do with the map (docs/conventions.md).
fn keyword_meaning(k: &str) -> &'static str {
    match k {
        "print" => "each event (or entry) printed",
        "counter" => "a Prometheus counter per key",
        "gauge" => "a Prometheus gauge per key",
        "hist" => "a Prometheus histogram",
        _ => "see docs/conventions.md",
    }
}
