//! Names and Kubernetes labels from the runtimes, for a container the cgroup path named.
//!
//! What each runtime stores, and where we read it (checked on podman 4.3, containerd 1.6;
//! docker and CRI-O from their documented state layouts, see docs/containers.md):
//! - containerd: its gRPC API (`Containers.Get` in the container's namespace; `k8s.io` for
//!   CRI containers): the labels, among them the `io.kubernetes.*` ones a kubelet sets;
//! - podman and CRI-O: containers/storage's `overlay-containers/containers.json` (names), and
//!   the OCI `config.json` of the container (`io.kubernetes.*` annotations, CRI-O);
//! - docker: `containers/<id>/config.v2.json` (`Name`, `Config.Labels`).
mod containerd;
mod docker;
mod storage;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::shape::Shape;
use crate::Runtime;

pub use containerd::Containerd;

/// The Kubernetes labels (CRI sets them on every container of a pod).
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// What a runtime said about a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub runtime: Option<Runtime>,
    pub name: Option<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
    pub pod_uid: Option<String>,
    pub container: Option<String>,
}

impl Meta {
    /// Fills the Kubernetes fields from a label (or annotation) map.
    pub fn kubernetes_from(&mut self, labels: &HashMap<String, String>) {
        let get = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
        self.pod = self.pod.take().or_else(|| get(LABEL_POD_NAME));
        self.namespace = self.namespace.take().or_else(|| get(LABEL_POD_NAMESPACE));
        self.pod_uid = self.pod_uid.take().or_else(|| get(LABEL_POD_UID));
        self.container = self.container.take().or_else(|| get(LABEL_CONTAINER_NAME));
    }
}

/// Where the runtimes keep their state; defaults are the runtimes' own defaults.
#[derive(Debug, Clone)]
pub struct Paths {
    /// containerd's gRPC socket (`CONTAINERD_ADDRESS`, as for `ctr`; else
    /// /run/containerd/containerd.sock).
    pub containerd: PathBuf,
    /// containers/storage graph roots and run roots (podman, CRI-O).
    pub storage: Vec<PathBuf>,
    /// docker's data root.
    pub docker: PathBuf,
    /// How long one runtime call may take.
    pub timeout: Duration,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            containerd: std::env::var_os("CONTAINERD_ADDRESS")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/run/containerd/containerd.sock")),
            storage: vec![
                PathBuf::from("/var/lib/containers/storage"),
                PathBuf::from("/run/containers/storage"),
            ],
            docker: PathBuf::from("/var/lib/docker"),
            timeout: Duration::from_secs(1),
        }
    }
}

/// The runtimes of this host. Used from one thread (the resolver's).
pub struct Runtimes {
    paths: Paths,
    containerd: Containerd,
    storage: storage::Storage,
}

impl Runtimes {
    pub fn new(paths: Paths) -> Runtimes {
        Runtimes {
            containerd: Containerd::new(paths.containerd.clone(), paths.timeout),
            storage: storage::Storage::new(paths.storage.clone()),
            paths,
        }
    }

    /// What the runtimes know of the container of `shape`; `None` when none knows it.
    /// For `/<namespace>/<id>`, `None` means it is no container at all.
    pub fn lookup(&mut self, shape: &Shape) -> Option<Meta> {
        if let Some(ns) = &shape.ctr_namespace {
            return self.containerd.get(ns, &shape.id);
        }
        match shape.runtime {
            Some(Runtime::Containerd) => self.containerd.get("k8s.io", &shape.id),
            Some(Runtime::Podman) | Some(Runtime::Crio) => {
                self.storage.get(&shape.id, shape.runtime)
            }
            Some(Runtime::Docker) => docker::get(&self.paths.docker, &shape.id),
            // The kubelet's cgroupfs layout: whoever has it.
            None => self
                .containerd
                .get("k8s.io", &shape.id)
                .or_else(|| self.storage.get(&shape.id, Some(Runtime::Crio)))
                .or_else(|| docker::get(&self.paths.docker, &shape.id)),
        }
    }
}
