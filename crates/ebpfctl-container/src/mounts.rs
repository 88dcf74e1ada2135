//! Paths as a container sees them and as the host sees them.
//!
//! A process in a container has its own mount namespace: `/bin/sh` for it is, for the host,
//! some directory of the runtime (`/var/lib/containers/storage/overlay/<layer>/merged/bin/sh`,
//! a `--rootfs` directory, ...). Its `/` is a mount whose source is (device, root directory);
//! the host has a mount of the same device; the host path is that mount point plus what
//! separates the two roots. Both mountinfo files say it all: no guessing by runtime.
use std::path::{Path, PathBuf};

/// One line of /proc/PID/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// "major:minor" of the filesystem.
    pub dev: String,
    /// The directory of the filesystem that is mounted ("/" for all of it).
    pub root: String,
    /// Where it is mounted.
    pub point: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let _id = f.next()?;
            let _parent = f.next()?;
            let dev = f.next()?.to_string();
            let root = unescape(f.next()?);
            let point = unescape(f.next()?);
            Some(Mount { dev, root, point })
        })
        .collect()
}

/// How a container's `/` maps to a host directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootMap {
    /// The host directory that is the container's `/`.
    pub host_root: PathBuf,
}

impl RootMap {
    /// From the container's mountinfo and the host's: the mount at the container's `/`
    /// (the last one: later mounts shadow earlier ones) found among the host's mounts of the
    /// same device whose root contains it.
    pub fn from_mountinfo(container: &str, host: &str) -> Option<RootMap> {
        let cm = parse_mountinfo(container);
        let root = cm.iter().rev().find(|m| m.point == "/")?;
        let hm = parse_mountinfo(host);
        // The host mount with the longest root that contains the container's root.
        let best = hm
            .iter()
            .filter(|h| h.dev == root.dev)
            .filter_map(|h| {
                let rest = strip_dir(&root.root, &h.root)?;
                Some((h.root.len(), h, rest))
            })
            .max_by_key(|(n, _, _)| *n)?;
        let (_, h, rest) = best;
        let mut host_root = PathBuf::from(&h.point);
        if !rest.is_empty() {
            host_root.push(rest);
        }
        Some(RootMap { host_root })
    }

    /// Of a running process (reads /proc/PID/mountinfo and /proc/self/mountinfo).
    pub fn of_pid(pid: u32) -> Option<RootMap> {
        let c = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
        let h = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        RootMap::from_mountinfo(&c, &h)
    }

    /// The host path of an absolute path of the container.
    pub fn host_path(&self, container_path: &str) -> Option<String> {
        let rel = container_path.strip_prefix('/')?;
        let p = if rel.is_empty() {
            self.host_root.clone()
        } else {
            self.host_root.join(rel)
        };
        Some(p.display().to_string())
    }
}

/// `path` below `dir` (both absolute): the remainder without a leading '/'.
fn strip_dir<'a>(path: &'a str, dir: &str) -> Option<&'a str> {
    if dir == "/" {
        return Some(path.trim_start_matches('/'));
    }
    let rest = path.strip_prefix(dir)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

/// True when `pid` lives in another mount namespace than this process.
pub fn other_mount_ns(pid: u32) -> bool {
    let ns = |p: &Path| std::fs::read_link(p).ok();
    match (
        ns(Path::new("/proc/self/ns/mnt")),
        ns(&PathBuf::from(format!("/proc/{pid}/ns/mnt"))),
    ) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// True when `pid`'s root directory is another than this process's (a container after its
/// runtime switched roots; the runtime itself, before that, still has the host's).
pub fn other_root(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &str| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    match (id("/"), id(&format!("/proc/{pid}/root/"))) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// The pid of a process in its own (innermost) pid namespace, from /proc/PID/status's NSpid.
pub fn ns_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape(r"/x\\"), r"/x\\");
    }

    #[test]
    fn rootfs_directory() {
        // podman --rootfs /tmp/r: the container's / is a bind of /tmp/r of the root disk.
        let c = "27 1 254:0 /tmp/r / rw,relatime - ext4 /dev/vda rw\n\
                 28 27 0:5 / /proc rw - proc proc rw\n";
        let h = "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
        let m = RootMap::from_mountinfo(c, h).unwrap();
        assert_eq!(m.host_root, PathBuf::from("/tmp/r"));
        assert_eq!(m.host_path("/bin/sh").as_deref(), Some("/tmp/r/bin/sh"));
        assert_eq!(m.host_path("relative"), None);
    }

    #[test]
    fn overlay_and_nested_host_mounts() {
        // An overlay mounted by the runtime on the host, and a device mounted below /.
        let c = "900 800 0:123 / / rw - overlay overlay rw,lowerdir=/l\n";
        let h = "22 1 254:0 / / rw - ext4 /dev/vda rw\n\
                 40 22 0:123 / /var/lib/x/merged rw - overlay overlay rw\n";
        let m = RootMap::from_mountinfo(c, h).unwrap();
        assert_eq!(
            m.host_path("/app/server").as_deref(),
            Some("/var/lib/x/merged/app/server")
        );
        // The container's root is a sub-directory of a host mount with a root of its own.
        let c = "9 8 8:1 /data/c1/rootfs / rw - ext4 /dev/sdb rw\n";
        let h = "5 1 8:1 /data /srv rw - ext4 /dev/sdb rw\n";
        let m = RootMap::from_mountinfo(c, h).unwrap();
        assert_eq!(m.host_root, PathBuf::from("/srv/c1/rootfs"));
        // No host mount of that device: unknown.
        let h = "5 1 8:2 / / rw - ext4 /dev/sdc rw\n";
        assert_eq!(RootMap::from_mountinfo(c, h), None);
    }

    #[test]
    fn this_process() {
        assert!(!other_mount_ns(std::process::id()));
        assert!(!other_root(std::process::id()));
        assert_eq!(ns_pid(std::process::id()).map(|_| ()), Some(()));
    }
}
