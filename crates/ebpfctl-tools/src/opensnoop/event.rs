//! Typed view of `struct osnp_event` (opensnoop.h), decoded from ring buffer bytes.
use crate::common::fmt::cstr;

/// `offsetof(struct osnp_event, path)`.
pub const HEAD: usize = 64;

pub const FILTER_PID: u32 = 0x01;
pub const FILTER_TID: u32 = 0x02;
pub const FILTER_UID: u32 = 0x04;
pub const FILTER_FAILED: u32 = 0x08;
pub const FILTER_CONTAINER: u32 = 0x10;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("opensnoop record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("opensnoop record path length exceeds its size ({0} bytes)")]
    Length(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    Open,
    Openat,
    Openat2,
}

impl Syscall {
    pub fn name(self) -> &'static str {
        match self {
            Syscall::Open => "open",
            Syscall::Openat => "openat",
            Syscall::Openat2 => "openat2",
        }
    }
}

/// One open call that returned.
#[derive(Debug, Clone)]
pub struct Open<'a> {
    pub syscall: Syscall,
    /// `bpf_ktime_get_ns()` when the call returned.
    pub time_ns: u64,
    pub flags: u64,
    pub mode: u64,
    /// The fd, or -errno.
    pub ret: i64,
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    pub dfd: i32,
    pub path_truncated: bool,
    /// The caller's cgroup v2 id.
    pub cgroup_id: u64,
    pub comm: &'a [u8],
    pub path: &'a [u8],
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_ne_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

impl<'a> Open<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Open<'a>, DecodeError> {
        if b.len() < HEAD {
            return Err(DecodeError::Short(b.len()));
        }
        let path_len = usize::from(u16_at(b, 42));
        if HEAD + path_len > b.len() {
            return Err(DecodeError::Length(b.len()));
        }
        Ok(Open {
            syscall: match b[44] {
                0 => Syscall::Open,
                2 => Syscall::Openat2,
                _ => Syscall::Openat,
            },
            time_ns: u64_at(b, 0),
            cgroup_id: u64_at(b, 8),
            ret: i64::from(u32_at(b, 16) as i32),
            flags: u64::from(u32_at(b, 20)),
            pid: u32_at(b, 24),
            tid: u32_at(b, 28),
            uid: u32_at(b, 32),
            dfd: u32_at(b, 36) as i32,
            mode: u64::from(u16_at(b, 40)),
            path_truncated: b[45] != 0,
            comm: &b[48..64],
            path: &b[HEAD..HEAD + path_len],
        })
    }

    pub fn path(&self) -> std::borrow::Cow<'a, str> {
        cstr(self.path)
    }

    pub fn comm(&self) -> std::borrow::Cow<'a, str> {
        cstr(self.comm)
    }

    /// The fd, or -1 on failure (the classic tools' FD column).
    pub fn fd(&self) -> i64 {
        if self.ret >= 0 {
            self.ret
        } else {
            -1
        }
    }

    /// The positive errno, 0 on success.
    pub fn errno(&self) -> i64 {
        if self.ret < 0 {
            -self.ret
        } else {
            0
        }
    }
}

/// `O_*` flag names of open(2) (x86-64 values), for tables.
pub fn flag_names(flags: u64) -> String {
    const NAMES: &[(u64, &str)] = &[
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o10000, "O_DSYNC"),
        (0o20000, "O_ASYNC"),
        (0o40000, "O_DIRECT"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o1000000, "O_NOATIME"),
        (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
        (0o20000000, "O_TMPFILE"),
    ];
    let mut parts = vec![match flags & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    }];
    for (bit, name) in NAMES {
        // O_TMPFILE includes O_DIRECTORY; O_SYNC includes O_DSYNC.
        if flags & bit == *bit {
            parts.push(name);
        }
    }
    if flags & 0o4010000 == 0o4010000 {
        parts.push("O_SYNC");
    }
    parts.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_probe() {
        let (o, _) = crate::common::layout::struct_layout(super::super::OBJECT, "osnp_event");
        let want = [
            ("time_ns", 0),
            ("cgroup_id", 8),
            ("ret", 16),
            ("flags", 20),
            ("pid", 24),
            ("tid", 28),
            ("uid", 32),
            ("dfd", 36),
            ("mode", 40),
            ("path_len", 42),
            ("syscall", 44),
            ("path_trunc", 45),
            ("comm", 48),
            ("path", HEAD),
        ];
        for (name, off) in want {
            assert_eq!(o[name], off, "osnp_event.{name}");
        }
    }

    #[test]
    fn record() {
        let mut b = vec![0u8; HEAD];
        b[8..16].copy_from_slice(&77u64.to_ne_bytes());
        b[16..20].copy_from_slice(&(-2i32).to_ne_bytes());
        b[20..24].copy_from_slice(&0o2000101u32.to_ne_bytes());
        b[24..28].copy_from_slice(&7u32.to_ne_bytes());
        b[36..40].copy_from_slice(&(-100i32).to_ne_bytes());
        b[40..42].copy_from_slice(&0o644u16.to_ne_bytes());
        b[42..44].copy_from_slice(&5u16.to_ne_bytes());
        b[44] = 2;
        b[48..52].copy_from_slice(b"cat\0");
        b.extend_from_slice(b"/etc\0");
        let o = Open::parse(&b).unwrap();
        assert_eq!(o.cgroup_id, 77);
        assert_eq!(o.syscall, Syscall::Openat2);
        assert_eq!(o.path(), "/etc");
        assert_eq!(o.comm(), "cat");
        assert_eq!((o.fd(), o.errno()), (-1, 2));
        assert_eq!(o.dfd, -100);
        assert_eq!((o.pid, o.mode, o.ret), (7, 0o644, -2));
        assert_eq!(flag_names(o.flags), "O_WRONLY|O_CREAT|O_CLOEXEC");
        b[42..44].copy_from_slice(&50u16.to_ne_bytes());
        assert!(Open::parse(&b).is_err());
    }
}
