//! The local image store: an OCI image layout (image-spec `image-layout.md`) that any OCI
//! tool reads (`skopeo copy oci:DIR:REF ...`) and `bee` reads as its own store.
//!
//! ```text
//! DIR/oci-layout          {"imageLayoutVersion":"1.0.0"}
//! DIR/index.json          an image index; one entry per name, annotated
//!                         org.opencontainers.image.ref.name = the full reference
//! DIR/blobs/sha256/<hex>  manifests, indexes, configs, objects, sources
//! ```
//!
//! Directories are created 0700 and checked (ebpfctl_build::cache), files written 0600
//! through a fresh temporary file renamed into place. Changes to `index.json` hold an
//! exclusive lock on the store directory; readers see the old index or the new one.
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ebpfctl_build::cache::{self, Base};

use crate::format::{
    sha256_digest, Descriptor, Index, Manifest, ANN_REF_NAME, DOCKER_LIST, OCI_INDEX,
};
use crate::OciError;

/// The store's base: `$XDG_DATA_HOME/ebpfctl/store`, else `~/.local/share/ebpfctl/store`
/// (HOME of the user's own), else root's `/var/lib/ebpfctl/store`.
pub const STORE_BASE: Base = Base {
    what: "store",
    env: "XDG_DATA_HOME",
    home: ".local/share",
    root: "/var/lib",
    or_else: ", or pass --store DIR",
};

const LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// An opened store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An exclusive hold on the store's index (released on drop).
struct Lock(#[allow(dead_code)] std::fs::File);

impl Store {
    /// Opens (creating if needed) the store at `dir`, or the default one.
    pub fn open(dir: Option<&Path>) -> Result<Store, OciError> {
        let root = match dir {
            Some(d) => {
                cache::named_dir(&STORE_BASE, d)?;
                d.to_path_buf()
            }
            None => cache::dir_in(&STORE_BASE, "store")?,
        };
        for sub in ["blobs", "blobs/sha256"] {
            cache::private_dir_of(&STORE_BASE, &root.join(sub))?;
        }
        let store = Store { root };
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            store.write_file(&layout, LAYOUT)?;
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> Result<Lock, OciError> {
        let f = std::fs::File::open(&self.root).map_err(|source| OciError::Write {
            path: self.root.display().to_string(),
            source,
        })?;
        f.lock().map_err(|source| OciError::Write {
            path: self.root.display().to_string(),
            source,
        })?;
        Ok(Lock(f))
    }

    /// Where the blob of `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, OciError> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| OciError::Store {
                path: self.root.display().to_string(),
                msg: format!("unsupported digest {digest:?} (want sha256:<64 hex digits>)"),
            })?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    /// True when the blob is there and still hashes to its name.
    pub fn has_blob(&self, d: &Descriptor) -> bool {
        self.read_blob(d).is_ok()
    }

    /// Stores `data` (a no-op when it is already there) and returns its digest.
    pub fn put_blob(&self, data: &[u8]) -> Result<String, OciError> {
        let digest = sha256_digest(data);
        let path = self.blob_path(&digest)?;
        let intact = std::fs::read(&path).is_ok_and(|d| sha256_digest(&d) == digest);
        if !intact {
            self.write_file(&path, data)?;
        }
        Ok(digest)
    }

    /// The blob `d` names, checked against its digest and size.
    pub fn read_blob(&self, d: &Descriptor) -> Result<Vec<u8>, OciError> {
        let path = self.blob_path(&d.digest)?;
        let data = std::fs::read(&path).map_err(|source| OciError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let actual = sha256_digest(&data);
        if actual != d.digest || data.len() as u64 != d.size {
            return Err(OciError::DigestMismatch {
                reference: self.root.display().to_string(),
                what: "stored blob",
                expected: format!("{} ({} bytes)", d.digest, d.size),
                actual: format!("{actual} ({} bytes)", data.len()),
            });
        }
        Ok(data)
    }

    /// `index.json`, or an empty index when the store is new.
    pub fn index(&self) -> Result<Index, OciError> {
        let path = self.root.join("index.json");
        match std::fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| OciError::Store {
                path: path.display().to_string(),
                msg: format!("unreadable index.json: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(empty_index()),
            Err(source) => Err(OciError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    fn write_index(&self, index: &Index) -> Result<(), OciError> {
        let json = serde_json::to_vec_pretty(index).expect("index serialises");
        self.write_file(&self.root.join("index.json"), &json)
    }

    /// The entry named `name`: tried as given, then as `normalised` (the full reference).
    pub fn resolve(
        &self,
        name: &str,
        normalised: Option<&str>,
    ) -> Result<Option<Descriptor>, OciError> {
        let index = self.index()?;
        let find = |n: &str| {
            index
                .manifests
                .iter()
                .find(|d| d.annotations.get(ANN_REF_NAME).map(String::as_str) == Some(n))
                .cloned()
        };
        Ok(find(name).or_else(|| normalised.and_then(find)))
    }

    /// Names `desc` `name`, replacing what had that name. Its blobs must already be stored.
    pub fn set_ref(&self, name: &str, desc: Descriptor) -> Result<(), OciError> {
        self.commit(name, desc, &[])
    }

    /// Stores `blobs` and names `desc` `name`, under the lock: a concurrent `rm` cannot
    /// collect the blobs of an image between their writing and its naming.
    pub fn commit(
        &self,
        name: &str,
        mut desc: Descriptor,
        blobs: &[Vec<u8>],
    ) -> Result<(), OciError> {
        let _lock = self.lock()?;
        for b in blobs {
            self.put_blob(b)?;
        }
        let mut index = self.index()?;
        index
            .manifests
            .retain(|d| d.annotations.get(ANN_REF_NAME).map(String::as_str) != Some(name));
        desc.annotations
            .insert(ANN_REF_NAME.to_string(), name.to_string());
        index.manifests.push(desc);
        self.write_index(&index)
    }

    /// Removes the name `name` (and the blobs nothing else uses); the entry it had, if any.
    pub fn remove_ref(&self, name: &str) -> Result<Option<Descriptor>, OciError> {
        let _lock = self.lock()?;
        let mut index = self.index()?;
        let pos = index
            .manifests
            .iter()
            .position(|d| d.annotations.get(ANN_REF_NAME).map(String::as_str) == Some(name));
        let Some(pos) = pos else {
            return Ok(None);
        };
        let removed = index.manifests.remove(pos);
        self.write_index(&index)?;
        self.collect_garbage(&index)?;
        Ok(Some(removed))
    }

    /// Deletes blobs no entry of `index` reaches (under the lock).
    fn collect_garbage(&self, index: &Index) -> Result<(), OciError> {
        let mut keep = BTreeSet::new();
        for d in &index.manifests {
            self.reach(d, &mut keep, 0);
        }
        let dir = self.root.join("blobs/sha256");
        let entries = std::fs::read_dir(&dir).map_err(|source| OciError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || keep.contains(&format!("sha256:{name}")) {
                continue;
            }
            let _ = std::fs::remove_file(e.path());
        }
        Ok(())
    }

    /// Adds `d` and every blob under it to `keep`.
    fn reach(&self, d: &Descriptor, keep: &mut BTreeSet<String>, depth: u32) {
        if !keep.insert(d.digest.clone()) || depth > 4 {
            return;
        }
        let Ok(data) = self.read_blob(d) else {
            return;
        };
        if d.media_type == OCI_INDEX || d.media_type == DOCKER_LIST {
            if let Ok(i) = serde_json::from_slice::<Index>(&data) {
                for m in &i.manifests {
                    self.reach(m, keep, depth + 1);
                }
            }
        } else if let Ok(m) = serde_json::from_slice::<Manifest>(&data) {
            for l in m.config.iter().chain(m.layers.iter()) {
                keep.insert(l.digest.clone());
            }
        }
    }

    /// Writes `path` (in the store) 0600 through a fresh temporary file renamed into place.
    fn write_file(&self, path: &Path, data: &[u8]) -> Result<(), OciError> {
        let err = |source| OciError::Write {
            path: path.display().to_string(),
            source,
        };
        let dir = path.parent().unwrap_or(&self.root);
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(err)?;
        tmp.write_all(data).map_err(err)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

fn empty_index() -> Index {
    Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_string()),
        artifact_type: None,
        manifests: Vec::new(),
        annotations: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::OCI_MANIFEST;

    #[test]
    fn names_blobs_and_garbage() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(Some(&d.path().join("s"))).unwrap();
        let layer = store.put_blob(b"object").unwrap();
        let m = serde_json::to_vec(&Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: None,
            config: None,
            layers: vec![Descriptor::of("x", b"object", None)],
            annotations: Default::default(),
        })
        .unwrap();
        store.put_blob(&m).unwrap();
        let desc = Descriptor::of(OCI_MANIFEST, &m, None);
        store.set_ref("reg/a:v1", desc.clone()).unwrap();
        store.set_ref("reg/b:v1", desc.clone()).unwrap();
        store.set_ref("reg/a:v1", desc.clone()).unwrap();
        assert_eq!(store.index().unwrap().manifests.len(), 2);
        assert!(store.resolve("nope", Some("reg/b:v1")).unwrap().is_some());
        let mode = std::fs::metadata(store.dir().join("index.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        store.remove_ref("reg/a:v1").unwrap();
        assert!(store.blob_path(&layer).unwrap().exists(), "still named b");
        store.remove_ref("reg/b:v1").unwrap();
        assert!(!store.blob_path(&layer).unwrap().exists(), "collected");
        assert!(store.remove_ref("reg/b:v1").unwrap().is_none());
    }
}
