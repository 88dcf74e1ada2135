//! The cgroup v2 hierarchy: where it is mounted, a cgroup's id (its directory's inode number,
//! what `bpf_get_current_cgroup_id()` returns) and the way back from an id to a path.
//!
//! Two ways back, measured in docs/containers.md:
//! - [`CgroupFs::path_by_handle`]: `open_by_handle_at(2)` with a kernfs file handle (the id
//!   is the handle) and `readlink` of the fd: a few microseconds whatever the tree's size
//!   (needs CAP_DAC_READ_SEARCH);
//! - [`CgroupFs::walk`]: every directory of the tree, inode by inode: grows with the tree;
//!   the fallback when handles are refused.
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// `FILEID_KERNFS` (include/linux/exportfs.h): a kernfs node by its 64-bit id.
const FILEID_KERNFS: i32 = 0xfe;

/// `struct file_handle` with room for a kernfs id.
#[repr(C)]
struct KernfsHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; 8],
}

/// A cgroup v2 mount.
#[derive(Debug)]
pub struct CgroupFs {
    root: PathBuf,
    /// An fd of the mount's root: the `mount_fd` of `open_by_handle_at`.
    dir: File,
}

/// The mount point of the first cgroup2 line of a mountinfo text.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        left.split_whitespace()
            .nth(4)
            .map(|p| PathBuf::from(crate::mounts::unescape(p)))
    })
}

impl CgroupFs {
    /// The cgroup v2 hierarchy this process sees (/sys/fs/cgroup, or /sys/fs/cgroup/unified
    /// on a hybrid host).
    pub fn open() -> Result<CgroupFs, Error> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| Error::Io {
            path: "/proc/self/mountinfo".into(),
            source,
        })?;
        let root = cgroup2_mount(&info).ok_or(Error::NoCgroup2)?;
        CgroupFs::at(&root)
    }

    /// The hierarchy mounted at `root`.
    pub fn at(root: &Path) -> Result<CgroupFs, Error> {
        let dir = File::open(root).map_err(|source| Error::Io {
            path: root.display().to_string(),
            source,
        })?;
        Ok(CgroupFs {
            root: root.to_path_buf(),
            dir,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a cgroup given by its path in the hierarchy ("/a/b").
    pub fn dir_of(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// The id of the cgroup at `rel` ("/a/b", "/" for the root).
    pub fn id_of(&self, rel: &str) -> io::Result<u64> {
        Ok(std::fs::metadata(self.dir_of(rel))?.ino())
    }

    /// The cgroup path of an id, through a kernfs file handle. `Ok(None)`: no such cgroup
    /// (it is gone, or never was).
    pub fn path_by_handle(&self, id: u64) -> io::Result<Option<String>> {
        let mut h = KernfsHandle {
            handle_bytes: 8,
            handle_type: FILEID_KERNFS,
            f_handle: id.to_ne_bytes(),
        };
        // SAFETY: `h` is a valid struct file_handle of handle_bytes = 8 that lives across the
        // call; the mount fd is open; the kernel only reads the handle.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_by_handle_at,
                self.dir.as_raw_fd(),
                &mut h as *mut KernfsHandle,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ESTALE) | Some(libc::ENOENT) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: the syscall returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        Ok(Some(self.relative(&link)))
    }

    /// "/sys/fs/cgroup/a/b" → "/a/b".
    fn relative(&self, abs: &Path) -> String {
        match abs.strip_prefix(&self.root) {
            Ok(r) if r.as_os_str().is_empty() => "/".to_string(),
            Ok(r) => format!("/{}", r.display()),
            // A mount of a sub-tree (a cgroup namespace): what the kernel printed.
            Err(_) => abs.display().to_string(),
        }
    }

    /// Whether `open_by_handle_at` works here (CAP_DAC_READ_SEARCH, kernfs export support).
    pub fn handles_work(&self) -> bool {
        self.id_of("/")
            .and_then(|id| self.path_by_handle(id))
            .is_ok_and(|p| p.as_deref() == Some("/"))
    }

    /// Every cgroup of the hierarchy: id → path. Cgroups that vanish meanwhile are skipped.
    pub fn walk(&self) -> HashMap<u64, String> {
        let mut out = HashMap::new();
        let mut stack = vec![(self.root.clone(), "/".to_string())];
        while let Some((dir, rel)) = stack.pop() {
            let Ok(md) = std::fs::metadata(&dir) else {
                continue;
            };
            out.insert(md.ino(), rel.clone());
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                // Cgroups are directories; every file of a cgroup is a regular file.
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let name = e.file_name();
                let child = if rel == "/" {
                    format!("/{}", name.to_string_lossy())
                } else {
                    format!("{rel}/{}", name.to_string_lossy())
                };
                stack.push((e.path(), child));
            }
        }
        out
    }

    /// The cgroup path of an id and the kernel's own handle type for it, by
    /// `name_to_handle_at` (tests: the handle of a cgroup is its id).
    pub fn handle_of(&self, rel: &str) -> io::Result<(i32, u64)> {
        let path = CString::new(self.dir_of(rel).as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut h = KernfsHandle {
            handle_bytes: 8,
            handle_type: 0,
            f_handle: [0; 8],
        };
        let mut mount_id: libc::c_int = 0;
        // SAFETY: `path` is NUL-terminated; `h` has room for the 8 bytes we announce; the
        // kernel writes the handle and the mount id into memory we own.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_name_to_handle_at,
                libc::AT_FDCWD,
                path.as_ptr(),
                &mut h as *mut KernfsHandle,
                &mut mount_id as *mut libc::c_int,
                0,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((h.handle_type, u64::from_ne_bytes(h.f_handle)))
    }

    /// The pids of the processes directly in a cgroup (its `cgroup.procs`).
    pub fn procs(&self, rel: &str) -> Vec<u32> {
        std::fs::read_to_string(self.dir_of(rel).join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }
}

/// The cgroup v2 path of a process, from `/proc/PID/cgroup` ("0::/a/b").
pub fn proc_cgroup(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_from_mountinfo() {
        let info = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(info),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_mount("1 2 0:1 / / rw - ext4 /dev/x rw\n"), None);
    }

    /// Root only: real cgroups, their handles and the walk agree.
    #[test]
    fn ids_handles_and_walk_agree() {
        // SAFETY: geteuid has no arguments and cannot fail.
        assert!(unsafe { libc::geteuid() } == 0, "run as root");
        let fs = CgroupFs::open().expect("a cgroup v2 mount");
        let guard = crate::testing::Tree::new(&fs, &["a", "a/b c"]);
        let rel = guard.rel("a/b c");
        let id = fs.id_of(&rel).unwrap();
        let (kind, handle) = fs.handle_of(&rel).unwrap();
        assert_eq!(kind, FILEID_KERNFS, "cgroup file handles are kernfs ids");
        assert_eq!(handle, id, "a cgroup's handle is its id (the inode number)");
        assert!(fs.handles_work());
        assert_eq!(
            fs.path_by_handle(id).unwrap().as_deref(),
            Some(rel.as_str())
        );
        let all = fs.walk();
        assert_eq!(all.get(&id), Some(&rel));
        assert_eq!(
            all.get(&fs.id_of("/").unwrap()).map(String::as_str),
            Some("/")
        );
        drop(guard);
        assert_eq!(
            fs.path_by_handle(id).unwrap(),
            None,
            "a removed cgroup has no path"
        );
    }
}
