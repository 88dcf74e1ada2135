//! Runs `ebpfctl` to completion and records every BPF program, map and link it created,
//! by id, so a test can check that none of them outlives the process, whatever else runs
//! on the machine at the same time.
//!
//! How: the child is ptrace'd with a seccomp filter that stops it at each `bpf(2)` call
//! (`SECCOMP_RET_TRACE`); at the call's return, the new file descriptor's
//! `/proc/PID/fdinfo` names the object's id. Only `bpf()` stops the child, so it runs at
//! full speed otherwise. The child gets its own process group so that waiting for its
//! threads never reaps another test's children.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `bpf(2)` commands that create an object and return its fd.
const BPF_MAP_CREATE: u64 = 0;
const BPF_PROG_LOAD: u64 = 5;
const BPF_RAW_TRACEPOINT_OPEN: u64 = 17;
const BPF_BTF_LOAD: u64 = 18;
const BPF_LINK_CREATE: u64 = 28;
const BPF_PROG_GET_FD_BY_ID: u32 = 13;
const BPF_MAP_GET_FD_BY_ID: u32 = 14;
const BPF_LINK_GET_FD_BY_ID: u32 = 30;

/// How the process ended and what it created.
#[derive(Debug, Default)]
pub struct Traced {
    /// Exit code, or `None` when a signal ended it (see `signal`).
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub progs: Vec<u32>,
    pub maps: Vec<u32>,
    pub links: Vec<u32>,
    /// Killed after the time limit.
    pub timed_out: bool,
}

impl Traced {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Ids of the programs, maps and links that still exist (after waiting up to 3 s: the
    /// kernel frees an object shortly after its last reference goes).
    pub fn survivors(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let left: Vec<String> = [
                ("prog", BPF_PROG_GET_FD_BY_ID, &self.progs),
                ("map", BPF_MAP_GET_FD_BY_ID, &self.maps),
                ("link", BPF_LINK_GET_FD_BY_ID, &self.links),
            ]
            .into_iter()
            .flat_map(|(kind, cmd, ids)| {
                ids.iter()
                    .filter(move |&&id| exists(cmd, id))
                    .map(move |id| format!("{kind} {id}"))
            })
            .collect();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether a BPF object with this id exists (its fd can be had by id).
fn exists(cmd: u32, id: u32) -> bool {
    // union bpf_attr for *_GET_FD_BY_ID: the id, next_id, open_flags.
    let attr: [u32; 4] = [id, 0, 0, 0];
    // SAFETY: bpf() reads `attr` (16 bytes we own) and returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_ptr(),
            std::mem::size_of_val(&attr) as u32,
        )
    };
    if fd >= 0 {
        // SAFETY: we own the fd bpf() just returned.
        unsafe { libc::close(fd as i32) };
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT)
}

/// The seccomp filter: stop at `bpf(2)`, allow everything else.
fn filter() -> Vec<libc::sock_filter> {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        // A = seccomp_data.nr
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_bpf as u32,
        },
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_TRACE),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

fn syscall_info(tid: i32) -> Option<libc::ptrace_syscall_info> {
    // SAFETY: a zeroed ptrace_syscall_info is valid (plain integers and a union of them).
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most size_of(info) bytes into `info`.
    let n = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            tid,
            std::mem::size_of_val(&info),
            &mut info as *mut _,
        )
    };
    (n > 0).then_some(info)
}

/// The id `/proc/PID/fdinfo/FD` gives for a BPF fd, by kind.
fn fd_id(pid: u32, fd: i64) -> Option<(&'static str, u32)> {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    info.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        let kind = match k {
            "prog_id" => "prog",
            "map_id" => "map",
            "link_id" => "link",
            _ => return None,
        };
        Some((kind, v.trim().parse().ok()?))
    })
}

/// Runs `bin ARGS` (stdin from `stdin`, or /dev/null) to completion, at most `limit`.
pub fn run(bin: &str, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Traced {
    let prog = filter();
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: only async-signal-safe calls (prctl, ptrace, seccomp) between fork and exec,
    // no allocation; `fprog` points into `prog`, which the closure owns.
    unsafe {
        cmd.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                || libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &fprog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawning ebpfctl");
    let pid = child.id() as i32;
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|mut r| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    })
    .collect();
    // A watchdog: SIGKILL ends a traced process too.
    let done = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    {
        let (done, timed_out) = (Arc::clone(&done), Arc::clone(&timed_out));
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            while !done.load(Ordering::Relaxed) {
                if Instant::now() > deadline {
                    timed_out.store(true, Ordering::Relaxed);
                    // SAFETY: kill on our own child's process group.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }

    let mut out = Traced::default();
    let mut pending: std::collections::HashMap<i32, u64> = Default::default();
    let mut first = true;
    loop {
        let mut st = 0;
        // SAFETY: waits for a member of the child's own process group (its traced threads).
        let tid = unsafe { libc::waitpid(-pid, &mut st, libc::__WALL) };
        if tid < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            panic!("waitpid: {e}");
        }
        if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
            if tid == pid {
                if libc::WIFEXITED(st) {
                    out.code = Some(libc::WEXITSTATUS(st));
                } else {
                    out.signal = Some(libc::WTERMSIG(st));
                }
                break;
            }
            continue;
        }
        if !libc::WIFSTOPPED(st) {
            continue;
        }
        let sig = libc::WSTOPSIG(st);
        let event = st >> 16;
        let mut inject = 0;
        if first && tid == pid && sig == libc::SIGTRAP {
            first = false;
            let opts = libc::PTRACE_O_TRACESECCOMP
                | libc::PTRACE_O_TRACECLONE
                | libc::PTRACE_O_EXITKILL
                | libc::PTRACE_O_TRACESYSGOOD;
            // SAFETY: `tid` is a stopped tracee of this thread; options are plain flags.
            unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, tid, 0, opts) };
        } else if event == libc::PTRACE_EVENT_SECCOMP {
            if let Some(info) = syscall_info(tid) {
                // SAFETY: op SECCOMP fills the `seccomp` member.
                let cmd = unsafe { info.u.seccomp.args[0] };
                pending.insert(tid, cmd);
                // SAFETY: `tid` is a stopped tracee of this thread.
                unsafe { libc::ptrace(libc::PTRACE_SYSCALL, tid, 0, 0) };
                continue;
            }
        } else if sig == (libc::SIGTRAP | 0x80) {
            // The return of a bpf() call stopped at above.
            if let (Some(cmd), Some(info)) = (pending.remove(&tid), syscall_info(tid)) {
                // SAFETY: at a syscall-exit stop the kernel fills the `exit` member.
                let (rval, is_error) = unsafe { (info.u.exit.sval, info.u.exit.is_error) };
                let creates = [
                    BPF_MAP_CREATE,
                    BPF_PROG_LOAD,
                    BPF_RAW_TRACEPOINT_OPEN,
                    BPF_BTF_LOAD,
                    BPF_LINK_CREATE,
                ];
                if is_error == 0 && rval >= 0 && creates.contains(&cmd) {
                    match fd_id(pid as u32, rval) {
                        Some(("prog", id)) => out.progs.push(id),
                        Some(("map", id)) => out.maps.push(id),
                        Some(("link", id)) => out.links.push(id),
                        _ => {}
                    }
                }
            }
        } else if event != 0 || sig == libc::SIGSTOP || sig == libc::SIGTRAP {
            // Clone events, a new thread's first stop: nothing to deliver.
        } else {
            inject = sig;
        }
        // SAFETY: `tid` is a stopped tracee of this thread; `inject` is 0 or its signal.
        unsafe { libc::ptrace(libc::PTRACE_CONT, tid, 0, inject) };
    }
    done.store(true, Ordering::Relaxed);
    // The std handle must not wait again for the pid we reaped.
    std::mem::forget(child);
    let mut r = readers.into_iter().map(|h| h.join().unwrap_or_default());
    out.stdout = r.next().unwrap_or_default();
    out.stderr = r.next().unwrap_or_default();
    out.timed_out = timed_out.load(Ordering::Relaxed);
    out
}
