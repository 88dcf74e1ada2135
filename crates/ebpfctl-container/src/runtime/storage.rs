//! containers/storage (podman, CRI-O): `overlay-containers/containers.json` lists every
//! container with its names; `overlay-containers/<id>/userdata/config.json` is its OCI spec,
//! whose annotations carry the Kubernetes fields (CRI-O).
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::SystemTime;

use super::Meta;
use crate::Runtime;

#[derive(serde::Deserialize)]
struct Entry {
    id: String,
    #[serde(default)]
    names: Vec<String>,
}

/// containers.json of each root, re-read when it changes.
pub struct Storage {
    roots: Vec<PathBuf>,
    cache: HashMap<PathBuf, (SystemTime, HashMap<String, Vec<String>>)>,
}

impl Storage {
    pub fn new(roots: Vec<PathBuf>) -> Storage {
        Storage {
            roots,
            cache: HashMap::new(),
        }
    }

    fn names(&mut self, id: &str) -> Option<Vec<String>> {
        for root in &self.roots {
            let file = root.join("overlay-containers/containers.json");
            let Ok(mtime) = std::fs::metadata(&file).and_then(|m| m.modified()) else {
                continue;
            };
            let fresh = self.cache.get(&file).is_some_and(|(t, _)| *t == mtime);
            if !fresh {
                let list: Vec<Entry> = std::fs::read(&file)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                let map = list.into_iter().map(|e| (e.id, e.names)).collect();
                self.cache.insert(file.clone(), (mtime, map));
            }
            if let Some(n) = self.cache.get(&file).and_then(|(_, m)| m.get(id)) {
                return Some(n.clone());
            }
        }
        None
    }

    /// The OCI annotations of a container, from the first root that has its config.json.
    fn annotations(&self, id: &str) -> Option<HashMap<String, String>> {
        #[derive(serde::Deserialize)]
        struct Spec {
            #[serde(default)]
            annotations: HashMap<String, String>,
        }
        self.roots.iter().find_map(|root| {
            let f = root
                .join("overlay-containers")
                .join(id)
                .join("userdata/config.json");
            let b = std::fs::read(f).ok()?;
            serde_json::from_slice::<Spec>(&b)
                .ok()
                .map(|s| s.annotations)
        })
    }

    /// A podman or CRI-O container: its first name and, from its annotations, the
    /// Kubernetes fields.
    pub fn get(&mut self, id: &str, runtime: Option<Runtime>) -> Option<Meta> {
        let names = self.names(id);
        let ann = self.annotations(id);
        if names.is_none() && ann.is_none() {
            return None;
        }
        let mut m = Meta {
            runtime,
            name: names.and_then(|n| n.into_iter().next()),
            ..Meta::default()
        };
        if let Some(a) = &ann {
            m.kubernetes_from(a);
            // CRI-O also keeps the CRI labels as one JSON annotation.
            if let Some(labels) = a
                .get("io.kubernetes.cri-o.Labels")
                .and_then(|l| serde_json::from_str::<HashMap<String, String>>(l).ok())
            {
                m.kubernetes_from(&labels);
            }
        }
        if m.container.is_some() {
            m.name = m.container.clone();
        }
        Some(m)
    }
}
