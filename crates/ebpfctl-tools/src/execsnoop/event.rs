//! Typed views of the records in `execsnoop.h`, decoded from ring buffer bytes.
use crate::common::fmt::cstr;

pub const KIND_EXEC: u32 = 1;
pub const KIND_EXIT: u32 = 2;

pub const F_EXECVEAT: u8 = 0x01;
pub const F_ARGS_TRUNC: u8 = 0x02;
pub const F_ARG_TRUNC: u8 = 0x04;
pub const F_FILENAME_TRUNC: u8 = 0x08;
pub const F_EXE_TRUNC: u8 = 0x10;

pub const FILTER_UID: u32 = 0x01;
pub const FILTER_PPID: u32 = 0x02;
pub const FILTER_CGROUP: u32 = 0x04;
pub const FILTER_FAILED: u32 = 0x08;
pub const FILTER_CONTAINER: u32 = 0x10;

/// `ESNP_MAX_ARGS_CAP` and `ESNP_ARG_LEN_CAP - 1`.
pub const MAX_ARGS_CAP: u32 = 60;
pub const ARG_LEN_CAP: u32 = 4095;

/// `offsetof(struct esnp_exec, data)` and `sizeof(struct esnp_exit)`.
pub const EXEC_HEAD: usize = 100;
pub const EXIT_SIZE: usize = 88;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("execsnoop record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("execsnoop record kind {0} is unknown")]
    Kind(u32),
    #[error("execsnoop record lengths exceed its size ({0} bytes)")]
    Lengths(usize),
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

/// An execve/execveat that returned.
#[derive(Debug, Clone)]
pub struct Exec<'a> {
    pub enter_ns: u64,
    pub exit_ns: u64,
    pub cgroup_id: u64,
    pub ret: i32,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub argc: u32,
    pub flags: u8,
    pub comm: &'a [u8],
    pub parent_comm: &'a [u8],
    pub filename: &'a [u8],
    args: &'a [u8],
    exe: &'a [u8],
}

/// The end of a process (its last thread).
#[derive(Debug, Clone)]
pub struct Exit<'a> {
    pub exit_ns: u64,
    pub start_ns: u64,
    pub cgroup_id: u64,
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Wait status: exit status << 8 | terminating signal.
    pub exit_code: i32,
    pub comm: &'a [u8],
    pub parent_comm: &'a [u8],
}

#[derive(Debug, Clone)]
pub enum Record<'a> {
    Exec(Exec<'a>),
    Exit(Exit<'a>),
}

impl<'a> Record<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Record<'a>, DecodeError> {
        if b.len() < 8 {
            return Err(DecodeError::Short(b.len()));
        }
        match u32_at(b, 0) {
            KIND_EXEC => Exec::parse(b).map(Record::Exec),
            KIND_EXIT => Exit::parse(b).map(Record::Exit),
            k => Err(DecodeError::Kind(k)),
        }
    }
}

impl<'a> Exec<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Exec<'a>, DecodeError> {
        if b.len() < EXEC_HEAD {
            return Err(DecodeError::Short(b.len()));
        }
        let fl = usize::from(u16_at(b, 60));
        let al = usize::from(u16_at(b, 62));
        let el = usize::from(u16_at(b, 64));
        let data = &b[EXEC_HEAD..];
        if fl + al + el > data.len() {
            return Err(DecodeError::Lengths(b.len()));
        }
        Ok(Exec {
            enter_ns: u64_at(b, 8),
            exit_ns: u64_at(b, 16),
            cgroup_id: u64_at(b, 24),
            ret: u32_at(b, 32) as i32,
            pid: u32_at(b, 36),
            tid: u32_at(b, 40),
            ppid: u32_at(b, 44),
            uid: u32_at(b, 48),
            gid: u32_at(b, 52),
            argc: u32_at(b, 56),
            flags: b[66],
            comm: &b[68..84],
            parent_comm: &b[84..100],
            filename: &data[..fl],
            args: &data[fl..fl + al],
            exe: &data[fl + al..fl + al + el],
        })
    }

    /// The arguments as passed (argv[0] first).
    pub fn args(&self) -> impl Iterator<Item = std::borrow::Cow<'a, str>> + 'a {
        let args = self.args;
        let args = args.strip_suffix(b"\0").unwrap_or(args);
        args.split(|&c| c == 0)
            .take(self.argc as usize)
            .map(String::from_utf8_lossy)
    }

    /// The path given to the call.
    pub fn filename(&self) -> std::borrow::Cow<'a, str> {
        cstr(self.filename)
    }

    /// The executable the process now runs, resolved by the kernel (successful execs);
    /// `None` when nothing was resolved.
    pub fn exe(&self) -> Option<String> {
        if self.exe.is_empty() {
            return None;
        }
        let parts: Vec<&[u8]> = self
            .exe
            .strip_suffix(b"\0")
            .unwrap_or(self.exe)
            .split(|&c| c == 0)
            .collect();
        let mut s = String::new();
        for p in parts.iter().rev() {
            s.push('/');
            s.push_str(&String::from_utf8_lossy(p));
        }
        Some(s)
    }

    pub fn truncated(&self) -> bool {
        self.flags & (F_ARGS_TRUNC | F_ARG_TRUNC) != 0
    }
}

impl<'a> Exit<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Exit<'a>, DecodeError> {
        if b.len() < EXIT_SIZE {
            return Err(DecodeError::Short(b.len()));
        }
        Ok(Exit {
            exit_ns: u64_at(b, 8),
            start_ns: u64_at(b, 16),
            cgroup_id: u64_at(b, 24),
            pid: u32_at(b, 32),
            ppid: u32_at(b, 36),
            uid: u32_at(b, 40),
            gid: u32_at(b, 44),
            exit_code: u32_at(b, 48) as i32,
            comm: &b[56..72],
            parent_comm: &b[72..88],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_bytes(filename: &[u8], args: &[u8], exe: &[u8]) -> Vec<u8> {
        let argc = args.iter().filter(|&&c| c == 0).count() as u32;
        let mut b = vec![0u8; EXEC_HEAD];
        b[0..4].copy_from_slice(&KIND_EXEC.to_ne_bytes());
        b[32..36].copy_from_slice(&(-13i32).to_ne_bytes());
        b[36..40].copy_from_slice(&42u32.to_ne_bytes());
        b[56..60].copy_from_slice(&argc.to_ne_bytes());
        b[60..62].copy_from_slice(&(filename.len() as u16).to_ne_bytes());
        b[62..64].copy_from_slice(&(args.len() as u16).to_ne_bytes());
        b[64..66].copy_from_slice(&(exe.len() as u16).to_ne_bytes());
        b[66] = F_ARG_TRUNC;
        b[68..72].copy_from_slice(b"true");
        b.extend_from_slice(filename);
        b.extend_from_slice(args);
        b.extend_from_slice(exe);
        let n = b.len() as u32;
        b[4..8].copy_from_slice(&n.to_ne_bytes());
        b
    }

    #[test]
    fn offsets_match_the_probe() {
        let (o, _) = crate::common::layout::struct_layout(super::super::OBJECT, "esnp_exec");
        let want = [
            ("enter_ns", 8),
            ("exit_ns", 16),
            ("cgroup_id", 24),
            ("ret", 32),
            ("pid", 36),
            ("tid", 40),
            ("ppid", 44),
            ("uid", 48),
            ("gid", 52),
            ("argc", 56),
            ("filename_len", 60),
            ("args_len", 62),
            ("exe_len", 64),
            ("flags", 66),
            ("comm", 68),
            ("parent_comm", 84),
            ("data", EXEC_HEAD),
        ];
        for (name, off) in want {
            assert_eq!(o[name], off, "esnp_exec.{name}");
        }
        // struct esnp_exit has no BTF of its own (only reached through a pointer); the
        // integration tests check its fields (pid, exit_code, times) on real exits.
    }

    #[test]
    fn exec_record() {
        let b = exec_bytes(b"/bin/true\0", b"true\0a\0b c\0", b"true\0bin\0usr\0");
        let Record::Exec(e) = Record::parse(&b).unwrap() else {
            panic!("not an exec")
        };
        assert_eq!(e.ret, -13);
        assert_eq!(e.pid, 42);
        assert_eq!(cstr(e.comm), "true");
        assert_eq!(e.filename(), "/bin/true");
        assert_eq!(e.args().collect::<Vec<_>>(), ["true", "a", "b c"]);
        assert_eq!(e.exe().as_deref(), Some("/usr/bin/true"));
        assert!(e.truncated());
    }

    #[test]
    fn empty_argv_and_bad_lengths() {
        let b = exec_bytes(b"/x\0", b"", b"");
        let e = Exec::parse(&b).unwrap();
        assert_eq!(e.args().count(), 0);
        assert_eq!(e.exe(), None);
        let mut bad = b.clone();
        bad[62..64].copy_from_slice(&500u16.to_ne_bytes());
        assert_eq!(
            Exec::parse(&bad).unwrap_err(),
            DecodeError::Lengths(bad.len())
        );
        assert!(matches!(Record::parse(&[0; 4]), Err(DecodeError::Short(4))));
    }
}
