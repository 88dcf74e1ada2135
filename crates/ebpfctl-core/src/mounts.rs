//! The pseudo-filesystems BPF needs (tracefs for tracepoints and uprobes, bpffs for pins),
//! mounted when missing: a fresh machine has neither.
use std::ffi::CString;
use std::io;
use std::path::Path;

/// A filesystem the kernel exposes and BPF tooling relies on.
#[derive(Debug, Clone, Copy)]
pub struct PseudoFs {
    pub fstype: &'static str,
    pub target: &'static str,
    pub magic: i64,
    /// What needs it, for messages.
    pub used_for: &'static str,
    /// Mount options ebpfctl passes when it mounts it ("" for none).
    pub options: &'static str,
}

pub const TRACEFS: PseudoFs = PseudoFs {
    fstype: "tracefs",
    target: "/sys/kernel/tracing",
    magic: 0x7472_6163,
    used_for: "tracepoints and uprobes",
    options: "",
};
pub const DEBUGFS: PseudoFs = PseudoFs {
    fstype: "debugfs",
    target: "/sys/kernel/debug",
    magic: 0x6462_6720,
    used_for: "legacy tracing paths",
    options: "",
};
pub const BPFFS: PseudoFs = PseudoFs {
    fstype: "bpf",
    target: "/sys/fs/bpf",
    magic: 0xcafe_4a11,
    used_for: "pinning BPF objects",
    // Root's only, as systemd mounts it: bpffs defaults to 1777, where any user could plant
    // directories or symlinks at the names libbpf pins maps by.
    options: "mode=0700",
};

#[derive(Debug, thiserror::Error)]
#[error("{fs} is not mounted at {target} (needed for {used_for}) and mounting it failed: {source}; run: mount -t {fs} {fs} {target}")]
pub struct MountError {
    pub fs: &'static str,
    pub target: &'static str,
    pub used_for: &'static str,
    pub source: io::Error,
}

/// True when `fs` is mounted at its usual place.
pub fn is_mounted(fs: &PseudoFs) -> bool {
    let Ok(path) = CString::new(fs.target) else {
        return false;
    };
    // SAFETY: statfs only writes into the zeroed struct we own; `path` is NUL-terminated.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(path.as_ptr(), &mut st) == 0 && st.f_type as i64 == fs.magic
    }
}

/// Mounts `fs` unless it is already there. Returns whether it mounted anything.
pub fn ensure(fs: &PseudoFs) -> Result<bool, MountError> {
    if is_mounted(fs) {
        return Ok(false);
    }
    let err = |source| MountError {
        fs: fs.fstype,
        target: fs.target,
        used_for: fs.used_for,
        source,
    };
    if !Path::new(fs.target).is_dir() {
        std::fs::create_dir_all(fs.target).map_err(err)?;
    }
    let c = |s: &str| CString::new(s).expect("static strings have no NUL");
    let (src, target, fstype) = (c(fs.fstype), c(fs.target), c(fs.fstype));
    let options = c(fs.options);
    // SAFETY: all pointers are valid NUL-terminated strings (data is a text option string
    // for these filesystems, or null).
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            if fs.options.is_empty() {
                std::ptr::null()
            } else {
                options.as_ptr().cast()
            },
        )
    };
    if rc != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    Ok(true)
}

/// Mounts what tracing programs need: tracefs (and debugfs, where libbpf also looks).
pub fn ensure_tracing() -> Result<(), MountError> {
    ensure(&TRACEFS)?;
    // debugfs is a fallback path only; failing to mount it is not fatal when tracefs works.
    let _ = ensure(&DEBUGFS);
    Ok(())
}
