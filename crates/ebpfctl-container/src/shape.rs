//! Container runtime and ids from the well-known shapes of cgroup paths.
//!
//! | runtime (driver)        | the container's cgroup                                          |
//! |-------------------------|-----------------------------------------------------------------|
//! | docker (systemd)        | `/system.slice/docker-<id>.scope`                               |
//! | docker (cgroupfs)       | `/docker/<id>`                                                  |
//! | containerd CRI (systemd)| `…/kubepods-<qos>-pod<uid_>.slice/cri-containerd-<id>.scope`     |
//! | containerd `ctr`        | `/<namespace>/<id>` (confirmed by containerd: see [`Shape::needs_confirmation`]) |
//! | CRI-O (systemd)         | `…/crio-<id>.scope`, its monitor `…/crio-conmon-<id>.scope`      |
//! | podman (systemd)        | `…/libpod-<id>.scope`, its monitor `…/libpod-conmon-<id>.scope`  |
//! | podman (cgroupfs)       | `/libpod_parent/libpod-<id>`                                    |
//! | kubelet (cgroupfs)      | `/kubepods/<qos>/pod<uid>/<id>` (runtime unknown from the path)  |
//!
//! A cgroup below a container's (a container that manages cgroups of its own) belongs to
//! that container: components are tried from the leaf up.
use crate::Runtime;

/// What a cgroup path says about its container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// `None` for the kubelet's cgroupfs layout, where only the runtime itself can say.
    pub runtime: Option<Runtime>,
    pub id: String,
    /// Kubernetes pod uid (with dashes), when the path is under kubepods.
    pub pod_uid: Option<String>,
    /// `/<namespace>/<id>`: containerd's default for `ctr run`, a container only if
    /// containerd has it in that namespace.
    pub ctr_namespace: Option<String>,
    /// conmon (the runtime's monitor), not the container's own processes.
    pub monitor: bool,
    /// The container's own cgroup: the path up to the component that named it.
    pub cgroup: String,
}

impl Shape {
    /// True when only the runtime can confirm this is a container (`/<namespace>/<id>`).
    pub fn needs_confirmation(&self) -> bool {
        self.ctr_namespace.is_some()
    }

    /// Whether the path put it in a Kubernetes pod.
    pub fn kubernetes(&self) -> bool {
        self.pod_uid.is_some()
    }
}

/// True for a 64-digit lowercase hex id (docker, podman, CRI-O, CRI containerd).
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The runtime prefixes of scope names (systemd driver) and of podman's cgroupfs names.
const PREFIXES: &[(&str, Runtime, bool)] = &[
    ("docker-", Runtime::Docker, false),
    ("cri-containerd-", Runtime::Containerd, false),
    ("crio-conmon-", Runtime::Crio, true),
    ("crio-", Runtime::Crio, false),
    ("libpod-conmon-", Runtime::Podman, true),
    ("libpod-", Runtime::Podman, false),
];

/// One component naming a container: (runtime, id, monitor).
fn component(
    name: &str,
    parent: Option<&str>,
    in_pod: bool,
) -> Option<(Option<Runtime>, String, bool)> {
    let base = name.strip_suffix(".scope").unwrap_or(name);
    for (prefix, rt, monitor) in PREFIXES {
        if let Some(id) = base.strip_prefix(prefix) {
            if is_full_id(id) {
                return Some((Some(*rt), id.to_string(), *monitor));
            }
        }
    }
    if is_full_id(name) {
        if parent == Some("docker") {
            return Some((Some(Runtime::Docker), name.to_string(), false));
        }
        if in_pod {
            return Some((None, name.to_string(), false));
        }
    }
    None
}

/// The pod uid of a kubepods component: `pod<uid>` (cgroupfs) or
/// `kubepods[-<qos>]-pod<uid with _>.slice` (systemd).
fn pod_uid(name: &str) -> Option<String> {
    if let Some(uid) = name.strip_prefix("pod") {
        return (!uid.is_empty() && !uid.contains('.')).then(|| uid.to_string());
    }
    let base = name.strip_suffix(".slice")?;
    if !base.starts_with("kubepods") {
        return None;
    }
    let (_, uid) = base.rsplit_once("-pod")?;
    (!uid.is_empty()).then(|| uid.replace('_', "-"))
}

/// A containerd identifier (`ctr` ids and namespaces): letters, digits and `._-` inside.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 76
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// Systemd unit suffixes: a component ending so is a unit, never a `ctr` container.
fn is_unit(s: &str) -> bool {
    [".slice", ".scope", ".service", ".mount", ".socket", ".swap"]
        .iter()
        .any(|u| s.ends_with(u))
}

/// Reads a cgroup v2 path ("/a/b/c").
pub fn parse(path: &str) -> Option<Shape> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let in_pod_at = parts.iter().position(|p| p.starts_with("kubepods"));
    for i in (0..parts.len()).rev() {
        let parent = i.checked_sub(1).map(|j| parts[j]);
        let in_pod =
            in_pod_at.is_some_and(|k| k < i) && parts[..i].iter().any(|p| pod_uid(p).is_some());
        if let Some((runtime, id, monitor)) = component(parts[i], parent, in_pod) {
            let pod = in_pod_at
                .is_some_and(|k| k < i)
                .then(|| parts[..i].iter().rev().find_map(|p| pod_uid(p)))
                .flatten();
            return Some(Shape {
                runtime,
                id,
                pod_uid: pod,
                ctr_namespace: None,
                monitor,
                cgroup: format!("/{}", parts[..=i].join("/")),
            });
        }
    }
    if let [ns, id] = parts[..] {
        if is_identifier(ns) && is_identifier(id) && !is_unit(ns) && !is_unit(id) {
            return Some(Shape {
                runtime: Some(Runtime::Containerd),
                id: id.to_string(),
                pod_uid: None,
                ctr_namespace: Some(ns.to_string()),
                monitor: false,
                cgroup: path.to_string(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f8a3bd9c2e1f0a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3";

    fn p(s: &str) -> Shape {
        parse(s).unwrap_or_else(|| panic!("{s}: no container"))
    }

    #[test]
    fn docker() {
        let s = p(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(
            (s.runtime, s.id.as_str(), s.pod_uid),
            (Some(Runtime::Docker), ID, None)
        );
        let s = p(&format!("/docker/{ID}"));
        assert_eq!(s.runtime, Some(Runtime::Docker));
        assert_eq!(s.cgroup, format!("/docker/{ID}"));
        // Below the container's cgroup (cgroups of its own): still the container.
        let s = p(&format!("/docker/{ID}/init.scope"));
        assert_eq!(
            (s.id.as_str(), s.cgroup.as_str()),
            (ID, &*format!("/docker/{ID}"))
        );
    }

    #[test]
    fn podman_and_crio() {
        let s = p(&format!("/libpod_parent/libpod-{ID}"));
        assert_eq!((s.runtime, s.monitor), (Some(Runtime::Podman), false));
        let s = p(&format!("/machine.slice/libpod-conmon-{ID}.scope"));
        assert_eq!((s.runtime, s.monitor), (Some(Runtime::Podman), true));
        let s = p(&format!("/machine.slice/libpod-{ID}.scope/container"));
        assert_eq!((s.runtime, s.id.as_str()), (Some(Runtime::Podman), ID));
        let s = p(&format!("/system.slice/crio-conmon-{ID}.scope"));
        assert_eq!((s.runtime, s.monitor), (Some(Runtime::Crio), true));
    }

    #[test]
    fn kubepods_systemd() {
        let path = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b7c5d2e_8f1a_4c3b_9d6e_2a1f0e9d8c7b.slice/cri-containerd-{ID}.scope"
        );
        let s = p(&path);
        assert_eq!(s.runtime, Some(Runtime::Containerd));
        assert_eq!(
            s.pod_uid.as_deref(),
            Some("0b7c5d2e-8f1a-4c3b-9d6e-2a1f0e9d8c7b")
        );
        // Guaranteed QoS has no QoS slice.
        let s = p(&format!(
            "/kubepods.slice/kubepods-pod0b7c5d2e_8f1a_4c3b_9d6e_2a1f0e9d8c7b.slice/crio-{ID}.scope"
        ));
        assert_eq!(s.runtime, Some(Runtime::Crio));
        assert_eq!(
            s.pod_uid.as_deref(),
            Some("0b7c5d2e-8f1a-4c3b-9d6e-2a1f0e9d8c7b")
        );
    }

    #[test]
    fn kubepods_cgroupfs() {
        let s = p(&format!(
            "/kubepods/besteffort/pod0b7c5d2e-8f1a-4c3b-9d6e-2a1f0e9d8c7b/{ID}"
        ));
        assert_eq!(s.runtime, None, "only the runtime knows");
        assert_eq!(
            s.pod_uid.as_deref(),
            Some("0b7c5d2e-8f1a-4c3b-9d6e-2a1f0e9d8c7b")
        );
        let s = p(&format!(
            "/kubepods/pod0b7c5d2e-8f1a-4c3b-9d6e-2a1f0e9d8c7b/crio-{ID}"
        ));
        assert_eq!(s.runtime, Some(Runtime::Crio));
        // The pod's own cgroup holds no container.
        assert_eq!(
            parse("/kubepods/burstable/pod0b7c5d2e-8f1a-4c3b-9d6e-2a1f0e9d8c7b"),
            None
        );
    }

    #[test]
    fn ctr_needs_confirmation() {
        let s = p("/k8s.io/mytest");
        assert!(s.needs_confirmation());
        assert_eq!(s.ctr_namespace.as_deref(), Some("k8s.io"));
        assert_eq!(s.id, "mytest");
        // systemd units and deeper paths are not ctr's shape.
        assert_eq!(parse("/system.slice/cron.service"), None);
        assert_eq!(parse("/user.slice/user-0.slice/session-1.scope"), None);
        assert_eq!(parse("/a/b/c"), None);
        assert_eq!(parse("/"), None);
        assert_eq!(parse("/init.scope"), None);
    }

    #[test]
    fn not_ids() {
        assert_eq!(parse("/system.slice/docker-abc.scope"), None);
        assert_eq!(
            parse(&format!("/x/y/{ID}")),
            None,
            "a bare id outside docker/kubepods"
        );
        assert!(!is_full_id(&ID.to_uppercase()));
    }
}
