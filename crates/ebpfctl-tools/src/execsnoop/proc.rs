//! The processes already running when tracing starts, read from /proc.
use std::fs;
use std::path::Path;

/// PF_KTHREAD in /proc/<pid>/stat's flags: kernel threads have no executable or arguments.
const PF_KTHREAD: u64 = 0x0020_0000;

/// One running process as /proc describes it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: String,
    /// Wall-clock start, Unix ns (tick resolution: /proc counts in clock ticks).
    pub start_unix_ns: i128,
    pub exe: String,
    pub args: Vec<String>,
    pub args_truncated: bool,
    /// cgroup v2 path relative to the hierarchy root ("/user.slice/..."), if any.
    pub cgroup: Option<String>,
}

/// Fields of /proc/<pid>/stat we use.
struct Stat {
    comm: String,
    ppid: u32,
    flags: u64,
    start_ticks: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // Fields after the comm, numbered from 3 (state) as in proc(5).
    let rest: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    Some(Stat {
        comm,
        ppid: field(4)?.parse().ok()?,
        flags: field(9)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

/// Real uid and gid from /proc/<pid>/status.
fn parse_ids(status: &str) -> Option<(u32, u32)> {
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some((get("Uid:")?, get("Gid:")?))
}

/// Splits /proc/<pid>/cmdline into at most `max_args` arguments of at most `arg_len`
/// bytes each; the flag says whether anything was cut.
pub fn split_cmdline(raw: &[u8], max_args: usize, arg_len: usize) -> (Vec<String>, bool) {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return (Vec::new(), false);
    }
    let mut truncated = false;
    let mut args = Vec::new();
    for (i, a) in raw.split(|&c| c == 0).enumerate() {
        if i >= max_args {
            truncated = true;
            break;
        }
        let a = if a.len() > arg_len {
            truncated = true;
            &a[..arg_len]
        } else {
            a
        };
        args.push(String::from_utf8_lossy(a).into_owned());
    }
    (args, truncated)
}

/// Nanoseconds to add to a CLOCK_BOOTTIME instant to get Unix time.
fn boot_to_unix_ns() -> i128 {
    let now = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes only into the timespec we own.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
    };
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_BOOTTIME)
}

fn clock_ticks() -> i128 {
    // SAFETY: sysconf has no pointer arguments.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        i128::from(t)
    } else {
        100
    }
}

/// Reads one process; `None` when it vanished meanwhile or is a kernel thread.
pub fn read_process(pid: u32, max_args: usize, arg_len: usize) -> Option<ProcInfo> {
    read_process_with(pid, max_args, arg_len, boot_to_unix_ns(), clock_ticks())
}

fn read_process_with(
    pid: u32,
    max_args: usize,
    arg_len: usize,
    boot_to_unix: i128,
    ticks: i128,
) -> Option<ProcInfo> {
    let dir = Path::new("/proc").join(pid.to_string());
    let stat = parse_stat(&fs::read_to_string(dir.join("stat")).ok()?)?;
    if stat.flags & PF_KTHREAD != 0 {
        return None;
    }
    let (uid, gid) = parse_ids(&fs::read_to_string(dir.join("status")).ok()?)?;
    let (args, args_truncated) = split_cmdline(
        &fs::read(dir.join("cmdline")).unwrap_or_default(),
        max_args,
        arg_len,
    );
    let exe = fs::read_link(dir.join("exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cgroup = fs::read_to_string(dir.join("cgroup")).ok().and_then(|c| {
        c.lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(str::to_string)
    });
    Some(ProcInfo {
        pid,
        ppid: stat.ppid,
        uid,
        gid,
        comm: stat.comm,
        start_unix_ns: boot_to_unix + i128::from(stat.start_ticks) * 1_000_000_000 / ticks,
        exe,
        args,
        args_truncated,
        cgroup,
    })
}

/// Every user process running now, oldest pid first.
pub fn snapshot(max_args: usize, arg_len: usize) -> Vec<ProcInfo> {
    let boot_to_unix = boot_to_unix_ns();
    let ticks = clock_ticks();
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter()
        .filter_map(|p| read_process_with(p, max_args, arg_len, boot_to_unix, ticks))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let s = "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5678 1000 10";
        let st = parse_stat(s).unwrap();
        assert_eq!(st.comm, "a b) c)");
        assert_eq!(st.ppid, 1);
        assert_eq!(st.flags, 4_194_560);
        assert_eq!(st.start_ticks, 5678);
    }

    #[test]
    fn cmdline_limits() {
        assert_eq!(
            split_cmdline(b"a\0bb\0", 20, 128),
            (vec!["a".into(), "bb".into()], false)
        );
        assert_eq!(
            split_cmdline(b"a\0bbbb\0c\0", 2, 2),
            (vec!["a".into(), "bb".into()], true)
        );
        assert_eq!(split_cmdline(b"", 20, 128), (vec![], false));
    }

    #[test]
    fn reads_self() {
        let me = read_process(std::process::id(), 20, 128).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(!me.args.is_empty());
        assert!(me.exe.starts_with('/'));
        let now = ebpfctl_core::decode::time::ktime_to_unix_ns(
            ebpfctl_core::decode::time::monotonic_now_ns(),
        );
        assert!(me.start_unix_ns <= now + 20_000_000 && me.start_unix_ns > now - 3_600_000_000_000);
    }
}
