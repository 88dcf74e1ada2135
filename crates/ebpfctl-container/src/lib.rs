//! Which container, and which Kubernetes pod, a task belongs to.
//!
//! The path of a lookup (docs/containers.md):
//!
//! ```text
//! cgroup id (bpf_get_current_cgroup_id in the probe)
//!   ── cgroupfs: open_by_handle_at on the cgroup v2 mount (or a walk by inode) ──► cgroup path
//!   ── shape: docker-<id>.scope, /docker/<id>, cri-containerd-<id>.scope, crio-<id>.scope,
//!             libpod-<id>(.scope), kubepods…pod<uid>…/<id>, /<namespace>/<id> (ctr) ──► runtime, id, pod uid
//!   ── runtime: containerd's gRPC API, containers/storage's containers.json, docker's
//!             config.v2.json, the OCI bundle's annotations ──► name, pod, namespace, container
//! ```
//!
//! [`Resolver`] caches every answer per cgroup id and does the slow part (the runtimes) on a
//! thread of its own: a tool asks it on the event path and never waits for a runtime.
pub mod cgroupfs;
pub mod json;
pub mod mounts;
pub mod resolver;
pub mod runtime;
pub mod select;
pub mod shape;
pub mod testing;

use std::fmt;

pub use cgroupfs::CgroupFs;
pub use resolver::{Resolver, ResolverOptions};
pub use select::Selector;
pub use shape::Shape;

/// A container runtime, as named in the JSON `runtime` field and the `runtime` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Runtime {
    #[serde(rename = "docker")]
    Docker,
    #[serde(rename = "containerd")]
    Containerd,
    #[serde(rename = "cri-o")]
    Crio,
    #[serde(rename = "podman")]
    Podman,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Crio => "cri-o",
            Runtime::Podman => "podman",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known of one container. Fields the runtime did not (yet) give are `None`; the
/// JSON object leaves them out.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Container {
    /// `None` while only the path is known and its shape does not say (kubepods with the
    /// cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// The full container id (64 hex digits for docker, podman, CRI-O and CRI containerd; a
    /// user-chosen id for `ctr`).
    pub id: String,
    /// The runtime's name for it: podman's and docker's names, the Kubernetes container name
    /// for containers of a pod, the id for plain containerd containers (which have no names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Kubernetes: pod name, namespace, pod uid, container name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The runtime's monitor process for this container (conmon), not the container itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub monitor: bool,
    /// The runtime was asked (or there is nothing to ask): what is here is all there is.
    #[serde(skip)]
    pub resolved: bool,
}

impl Container {
    /// The short id (12 hex digits), as `docker ps` and `podman ps` show it.
    pub fn short_id(&self) -> &str {
        let n = self.id.len().min(12);
        self.id.get(..n).unwrap_or(&self.id)
    }

    /// The name for a table column or a metric label: the Kubernetes container name, else
    /// the runtime's name, else the short id.
    pub fn display_name(&self) -> &str {
        self.container
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or_else(|| self.short_id())
    }
}

/// Errors of setting up container resolution.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no cgroup v2 hierarchy is mounted (looked for a cgroup2 line in /proc/self/mountinfo); containers are found by their cgroup v2 ids: mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`")]
    NoCgroup2,
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}
