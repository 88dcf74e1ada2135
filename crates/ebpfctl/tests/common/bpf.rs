//! What a test's own processes hold in the kernel, and whether it is gone.
//!
//! Other BPF tools (another ebpfctl, bpftrace, libbpf-tools, a second copy of this suite) may
//! run on the machine at the same time, with programs of the same names. So a test never looks
//! programs up by name across the kernel: it takes the ids of the programs, links and maps that
//! its child holds (from the child's fds, while it runs) and checks that exactly those are
//! gone after it stopped. For a command that exits by itself before anything can be sampled,
//! [`Mark`] finds the objects created since a point in time that no process holds any more
//! (what a leak is: kept by a pin, a tc filter or an attachment, not by a file descriptor).
use super::patient;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

const BPF_PROG_GET_NEXT_ID: i64 = 11;
const BPF_MAP_GET_NEXT_ID: i64 = 12;
const BPF_PROG_GET_FD_BY_ID: i64 = 13;
const BPF_MAP_GET_FD_BY_ID: i64 = 14;
const BPF_LINK_GET_FD_BY_ID: i64 = 30;
const BPF_LINK_GET_NEXT_ID: i64 = 31;

/// A kind of kernel BPF object with an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Prog,
    Map,
    Link,
}

impl Kind {
    fn get_fd_cmd(self) -> i64 {
        match self {
            Kind::Prog => BPF_PROG_GET_FD_BY_ID,
            Kind::Map => BPF_MAP_GET_FD_BY_ID,
            Kind::Link => BPF_LINK_GET_FD_BY_ID,
        }
    }

    fn next_id_cmd(self) -> i64 {
        match self {
            Kind::Prog => BPF_PROG_GET_NEXT_ID,
            Kind::Map => BPF_MAP_GET_NEXT_ID,
            Kind::Link => BPF_LINK_GET_NEXT_ID,
        }
    }

    fn bpftool(self) -> &'static str {
        match self {
            Kind::Prog => "prog",
            Kind::Map => "map",
            Kind::Link => "link",
        }
    }
}

/// bpf(2) with a zeroed 16-byte attribute whose first two words are `a` and `b`.
fn bpf(cmd: i64, a: u32, b: u32) -> Result<i64, i32> {
    let mut attr = [0u32; 4];
    attr[0] = a;
    attr[1] = b;
    // SAFETY: the attribute is a valid, initialised buffer of the size we pass; the kernel
    // reads at most that many bytes and writes only into it (next_id).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    if cmd == BPF_PROG_GET_NEXT_ID || cmd == BPF_MAP_GET_NEXT_ID || cmd == BPF_LINK_GET_NEXT_ID {
        return Ok(i64::from(attr[1]));
    }
    Ok(rc)
}

/// True while the kernel still has the object with this id.
pub fn exists(kind: Kind, id: u32) -> bool {
    match bpf(kind.get_fd_cmd(), id, 0) {
        Ok(fd) => {
            // SAFETY: fd is a descriptor the kernel just gave us; closed once.
            unsafe { libc::close(fd as i32) };
            true
        }
        // ENOENT: gone. Anything else (EPERM) means we cannot tell: treat as present.
        Err(e) => e != libc::ENOENT,
    }
}

/// Every id of `kind` in the kernel now.
pub fn all_ids(kind: Kind) -> Vec<u32> {
    let mut ids = Vec::new();
    let mut id = 0u32;
    while let Ok(next) = bpf(kind.next_id_cmd(), id, 0) {
        id = next as u32;
        ids.push(id);
    }
    ids
}

/// The BPF objects a process holds through its file descriptors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub progs: BTreeSet<u32>,
    pub maps: BTreeSet<u32>,
    pub links: BTreeSet<u32>,
}

fn fdinfo_id(text: &str, key: &str) -> Option<u32> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

impl Held {
    /// Reads `/proc/PID/fdinfo`: `link_id:` marks a link (its `prog_id:` is the program it
    /// holds), `prog_id:` alone a program, `map_id:` a map.
    pub fn of(pid: u32) -> Held {
        let mut held = Held::default();
        held.add(pid);
        held
    }

    /// Adds what `pid` holds now (nothing once it is gone).
    pub fn add(&mut self, pid: u32) {
        let held = self;
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
            return;
        };
        for e in dir.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            if let Some(id) = fdinfo_id(&text, "link_id:") {
                held.links.insert(id);
                if let Some(p) = fdinfo_id(&text, "prog_id:") {
                    held.progs.insert(p);
                }
            } else if let Some(id) = fdinfo_id(&text, "prog_id:") {
                held.progs.insert(id);
            } else if let Some(id) = fdinfo_id(&text, "map_id:") {
                held.maps.insert(id);
            }
        }
    }

    /// What every process on the machine holds (for telling leaks from live objects).
    pub fn by_anyone() -> Held {
        let mut all = Held::default();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let h = Held::of(pid);
            all.progs.extend(h.progs);
            all.maps.extend(h.maps);
            all.links.extend(h.links);
        }
        all
    }

    pub fn is_empty(&self) -> bool {
        self.progs.is_empty() && self.maps.is_empty() && self.links.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (Kind, u32)> + '_ {
        self.progs
            .iter()
            .map(|&i| (Kind::Prog, i))
            .chain(self.maps.iter().map(|&i| (Kind::Map, i)))
            .chain(self.links.iter().map(|&i| (Kind::Link, i)))
    }

    /// The objects of this set the kernel still has.
    pub fn still_there(&self) -> Vec<(Kind, u32)> {
        self.iter().filter(|&(k, i)| exists(k, i)).collect()
    }

    /// Waits up to 5 s (the kernel frees programs after an RCU grace period, maps and links
    /// with them) for every object of this set to be gone; fails naming what stays, with
    /// bpftool's view of it. A pinned object would stay: this also proves nothing was pinned.
    pub fn assert_gone(&self, what: &str) {
        let deadline = Instant::now() + patient(Duration::from_secs(5));
        loop {
            let left = self.still_there();
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let shown: Vec<String> = left.iter().map(|&(k, i)| describe(k, i)).collect();
                panic!("{what} left BPF objects behind:\n{}", shown.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// bpftool's JSON for one object, or its id when bpftool cannot show it.
pub fn describe(kind: Kind, id: u32) -> String {
    Command::new("bpftool")
        .args(["-j", kind.bpftool(), "show", "id", &id.to_string()])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| format!("{kind:?} {id}"))
}

/// bpftool's JSON for one program (name, run_cnt, ...), when it still exists.
pub fn prog_info(id: u32) -> Option<serde_json::Value> {
    let o = Command::new("bpftool")
        .args(["-j", "prog", "show", "id", &id.to_string()])
        .output()
        .expect("bpftool (apt-get install bpftool) is needed by this test");
    if !o.status.success() {
        return None;
    }
    serde_json::from_slice(&o.stdout).ok()
}

/// The highest ids in the kernel at one moment: ids only grow, so what has a higher id was
/// created after it.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    prog: u32,
}

impl Mark {
    pub fn now() -> Mark {
        Mark {
            prog: all_ids(Kind::Prog).into_iter().max().unwrap_or(0),
        }
    }

    /// Programs named in `names` created since the mark that no process holds: what a
    /// command that has exited left behind (pinned, or kept by an attachment such as a tc
    /// filter). Programs of other tools running now are held by their processes and do not
    /// count, nor do other tests' programs (other names). Waits up to 3 s for the kernel to
    /// free what was released.
    pub fn assert_nothing_left(&self, what: &str, names: &[&str]) {
        let shorts: Vec<String> = names.iter().map(|n| n.chars().take(15).collect()).collect();
        let deadline = Instant::now() + patient(Duration::from_secs(3));
        loop {
            let held = Held::by_anyone();
            let left: Vec<serde_json::Value> = all_ids(Kind::Prog)
                .into_iter()
                .filter(|id| *id > self.prog && !held.progs.contains(id))
                .filter_map(prog_info)
                .filter(|p| shorts.iter().any(|s| p["name"].as_str() == Some(s)))
                .collect();
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let shown: Vec<String> = left.iter().map(|v| v.to_string()).collect();
                panic!("{what} left BPF programs behind:\n{}", shown.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
