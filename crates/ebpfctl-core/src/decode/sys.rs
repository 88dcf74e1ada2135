//! System typedefs: `errno`, `signal`, `syscall` numbers printed by name.
use super::names::{ERRNOS, SIGNALS, SYSCALLS_X86_64};

fn lookup(table: &'static [&'static str], n: u64) -> Option<&'static str> {
    table
        .get(usize::try_from(n).ok()?)
        .copied()
        .filter(|s| !s.is_empty())
}

/// "ENOENT" for 2, "-ENOENT" for -2; None for 0 and unknown numbers.
pub fn errno_name(v: i64) -> Option<String> {
    let name = lookup(&ERRNOS, v.unsigned_abs())?;
    Some(if v < 0 {
        format!("-{name}")
    } else {
        name.to_string()
    })
}

/// "SIGKILL" for 9.
pub fn signal_name(v: i64) -> Option<&'static str> {
    lookup(&SIGNALS, u64::try_from(v).ok()?)
}

/// "openat" for 257 on x86-64.
pub fn syscall_name(v: i64) -> Option<&'static str> {
    if cfg!(target_arch = "x86_64") {
        lookup(&SYSCALLS_X86_64, u64::try_from(v).ok()?)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(errno_name(-13).as_deref(), Some("-EACCES"));
        assert_eq!(errno_name(2).as_deref(), Some("ENOENT"));
        assert_eq!(errno_name(0), None);
        assert_eq!(signal_name(9), Some("SIGKILL"));
        assert_eq!(syscall_name(257), Some("openat"));
        assert_eq!(syscall_name(59), Some("execve"));
    }
}
