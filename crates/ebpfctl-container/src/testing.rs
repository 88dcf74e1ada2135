//! Test support: real cgroups of given shapes, removed on drop (even when a test fails).
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cgroupfs::CgroupFs;

/// A private tree of cgroups under the cgroup v2 root, `/<top>/...`, removed on drop
/// (processes left in them are moved to the root first).
pub struct Tree {
    root: PathBuf,
    top: String,
    made: Vec<String>,
}

impl Tree {
    /// Creates `/<unique top>/<each path>` (parents first). Paths may be several levels deep.
    pub fn new(fs: &CgroupFs, paths: &[&str]) -> Tree {
        let top = format!("ebpfctl-test-{}-{:08x}", std::process::id(), rand_u32());
        let mut t = Tree {
            root: fs.root().to_path_buf(),
            top: top.clone(),
            made: Vec::new(),
        };
        t.mkdir(&top);
        for p in paths {
            let mut acc = top.clone();
            for part in p.split('/').filter(|s| !s.is_empty()) {
                acc = format!("{acc}/{part}");
                if !t.made.contains(&acc) {
                    t.mkdir(&acc);
                }
            }
        }
        t
    }

    fn mkdir(&mut self, rel: &str) {
        std::fs::create_dir(self.root.join(rel))
            .unwrap_or_else(|e| panic!("mkdir cgroup {rel}: {e}"));
        self.made.push(rel.to_string());
    }

    /// The cgroup path ("/top/a/b") of `p` given to [`Tree::new`].
    pub fn rel(&self, p: &str) -> String {
        format!("/{}/{}", self.top, p.trim_matches('/'))
    }

    /// Its directory.
    pub fn dir(&self, p: &str) -> PathBuf {
        self.root.join(self.rel(p).trim_start_matches('/'))
    }

    /// Moves process `pid` into cgroup `p`.
    pub fn enter(&self, p: &str, pid: u32) {
        std::fs::write(self.dir(p).join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", self.rel(p)));
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom writes at most 4 bytes into the buffer we own.
    unsafe { libc::getrandom(b.as_mut_ptr().cast(), 4, 0) };
    u32::from_ne_bytes(b)
}

impl Drop for Tree {
    fn drop(&mut self) {
        for rel in self.made.iter().rev() {
            let dir = self.root.join(rel);
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                // Processes still inside go back to the root cgroup.
                if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                    for pid in procs.lines() {
                        let _ = std::fs::write(self.root.join("cgroup.procs"), pid);
                    }
                }
                match std::fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => {
                        eprintln!("cannot remove test cgroup {}: {e}", dir.display());
                        break;
                    }
                }
            }
        }
    }
}
