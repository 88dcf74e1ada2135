//! `perf_event` programs: a CPU-clock sampling event on every online CPU.
use libbpf_rs::ProgramMut as Program;

use super::{describe, Attachment};

fn online_cpus() -> Vec<i32> {
    let text =
        std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_else(|_| "0".into());
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    cpus.extend(a..=b);
                }
            }
            None => cpus.extend(part.parse::<i32>()),
        }
    }
    cpus
}

pub fn attach(prog: &Program<'_>, freq: u64) -> Result<Attachment, String> {
    let mut links = Vec::new();
    for cpu in online_cpus() {
        // SAFETY: perf_event_attr is plain data; zeroed is a valid starting point.
        let mut attr: libbpf_sys::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.type_ = libbpf_sys::PERF_TYPE_SOFTWARE;
        attr.size = std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32;
        attr.config = u64::from(libbpf_sys::PERF_COUNT_SW_CPU_CLOCK);
        attr.__bindgen_anon_1.sample_freq = freq.max(1);
        attr.set_freq(1);
        // SAFETY: attr is initialised and outlives the syscall; pid -1 with a cpu means all tasks on it.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const _,
                -1i32,
                cpu,
                -1i32,
                8u64, /* PERF_FLAG_FD_CLOEXEC */
            )
        } as i32;
        if fd < 0 {
            return Err(format!(
                "perf_event_open on CPU {cpu}: {}",
                std::io::Error::last_os_error()
            ));
        }
        // libbpf's perf-event link owns the fd from here and closes it on detach.
        match prog.attach_perf_event(fd) {
            Ok(l) => links.push(l),
            Err(e) => {
                // SAFETY: fd is ours and was not taken by a link.
                unsafe { libc::close(fd) };
                return Err(describe(&e));
            }
        }
    }
    Ok(Attachment::Links(links))
}
