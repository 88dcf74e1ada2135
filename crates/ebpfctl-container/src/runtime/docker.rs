//! docker's state: `<root>/containers/<id>/config.v2.json` (`Name` with a leading `/`,
//! `Config.Labels`, which hold the `io.kubernetes.*` labels under cri-dockerd).
use std::collections::HashMap;
use std::path::Path;

use super::Meta;
use crate::Runtime;

#[derive(serde::Deserialize)]
struct ConfigV2 {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Config", default)]
    config: Option<Config>,
}

#[derive(serde::Deserialize)]
struct Config {
    #[serde(rename = "Labels", default)]
    labels: Option<HashMap<String, String>>,
}

pub fn get(root: &Path, id: &str) -> Option<Meta> {
    let b = std::fs::read(root.join("containers").join(id).join("config.v2.json")).ok()?;
    let c: ConfigV2 = serde_json::from_slice(&b).ok()?;
    let mut m = Meta {
        runtime: Some(Runtime::Docker),
        name: Some(c.name.trim_start_matches('/').to_string()).filter(|n| !n.is_empty()),
        ..Meta::default()
    };
    if let Some(labels) = c.config.and_then(|c| c.labels) {
        m.kubernetes_from(&labels);
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_v2() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let id = "a".repeat(64);
        let c = dir.join("containers").join(&id);
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(
            c.join("config.v2.json"),
            r#"{"ID":"x","Name":"/web","Config":{"Labels":{"io.kubernetes.pod.name":"p","io.kubernetes.pod.namespace":"ns"}}}"#,
        )
        .unwrap();
        let m = get(dir, &id).unwrap();
        assert_eq!(m.name.as_deref(), Some("web"));
        assert_eq!(m.pod.as_deref(), Some("p"));
        assert_eq!(m.namespace.as_deref(), Some("ns"));
        assert_eq!(get(Path::new("/nonexistent"), &id), None);
    }
}
