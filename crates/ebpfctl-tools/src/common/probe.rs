//! A tool's embedded probe, loaded and attached through the runner's loader
//! (`ebpfctl_core::load`): parameters into `.rodata`, the ring buffer sized, everything
//! detached and unloaded on drop.
use std::os::fd::AsRawFd;

use ebpfctl_core::consume::LossSource;
use ebpfctl_core::load::{LoadOptions, Loaded};
use ebpfctl_core::object::ObjectSpec;
use libbpf_rs::{Map, MapCore, MapFlags, MapHandle};

use super::ToolError;

/// The ring buffer every tool probe declares.
pub const EVENTS_MAP: &str = "events";

pub struct Probe {
    pub tool: &'static str,
    lost_offset: Option<usize>,
    // Dropping `Loaded` detaches every link, then closes the object.
    loaded: Loaded,
}

impl Probe {
    /// Loads `object` with its `const volatile` u32 settings `params` (name, value) and a
    /// ring buffer of `ring_bytes`, and attaches every program by its section. Programs this
    /// kernel lacks (e.g. `open` on architectures without it) are skipped with one line on
    /// stderr.
    pub fn load(
        tool: &'static str,
        object: &[u8],
        params: &[(&str, u32)],
        ring_bytes: u32,
    ) -> Result<Probe, ToolError> {
        let spec =
            ObjectSpec::parse(object).map_err(|source| ToolError::Object { tool, source })?;
        let lost_offset = spec.map(EVENTS_MAP).and_then(|m| m.lost_counter);
        // Settings travel as `--param` does: typed through BTF into `.rodata` before load.
        let opts = LoadOptions {
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ringbuf_bytes: Some(ring_bytes),
            ..Default::default()
        };
        // Before libbpf's load, whose kernel-BTF index (~0.5 MiB) is the peak of resident
        // memory: what start-up freed so far goes back first.
        release_free_heap();
        let loaded = Loaded::load(&spec, &opts).map_err(|source| {
            // Several programs skipped: one line each, then the error counts them.
            for s in source.skipped() {
                eprintln!("{tool}: {s}");
            }
            ToolError::Load { tool, source }
        })?;
        for s in &loaded.skipped {
            eprintln!("{tool}: {s}");
        }
        drop(spec);
        release_free_heap();
        Ok(Probe {
            tool,
            lost_offset,
            loaded,
        })
    }

    /// A map of the loaded object.
    pub fn map(&self, name: &'static str) -> Result<Map<'_>, ToolError> {
        self.loaded.map(name).ok_or(ToolError::MissingMap {
            tool: self.tool,
            map: name,
        })
    }

    /// Where the lost-record count of the ring buffer is read.
    pub fn loss_source(&self) -> Result<LossSource, ToolError> {
        let (Some(offset), Some(bss)) = (self.lost_offset, self.loaded.bss()) else {
            return Ok(LossSource::Unknown);
        };
        let bss = MapHandle::try_from(&bss).map_err(|source| ToolError::Map {
            what: format!("{}: opening .bss", self.tool),
            source,
        })?;
        Ok(LossSource::BssCounter { bss, offset })
    }

    /// Names of the attached programs.
    pub fn attached(&self) -> Vec<String> {
        self.loaded
            .attachments
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Puts the cgroup at `path` into slot 0 of the cgroup array `map`, for
    /// `bpf_current_task_under_cgroup`.
    pub fn set_cgroup(&self, map: &'static str, path: &std::path::Path) -> Result<(), ToolError> {
        let dir = std::fs::File::open(path).map_err(|source| {
            ToolError::BadInput(format!("--cgroup {}: {source}", path.display()))
        })?;
        let m = self.map(map)?;
        let fd = dir.as_raw_fd() as u32;
        m.update(&0u32.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| ToolError::Map {
                what: format!("--cgroup {}: not a cgroup v2 directory?", path.display()),
                source,
            })
    }
}

/// Checks that `path` is a directory of the cgroup v2 hierarchy; returns its cgroup id
/// (the directory's inode number).
pub fn cgroup_id(path: &std::path::Path) -> Result<u64, ToolError> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path)
        .map_err(|e| ToolError::BadInput(format!("--cgroup {}: {e}", path.display())))?;
    if !md.is_dir() {
        return Err(ToolError::BadInput(format!(
            "--cgroup {}: not a directory (expected a cgroup v2 directory like /sys/fs/cgroup/system.slice)",
            path.display()
        )));
    }
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| ToolError::BadInput(format!("--cgroup {}: bad path", path.display())))?;
    // SAFETY: statfs writes only into the zeroed struct we own; `c` is NUL-terminated.
    let magic = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut st) != 0 {
            return Err(ToolError::BadInput(format!(
                "--cgroup {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        st.f_type as i64
    };
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    if magic != CGROUP2_SUPER_MAGIC {
        return Err(ToolError::BadInput(format!(
            "--cgroup {}: not on a cgroup v2 filesystem (mounted at /sys/fs/cgroup?)",
            path.display()
        )));
    }
    Ok(md.ino())
}

/// Hands the allocator's free pages back to the kernel, before and after the probe's load:
/// start-up (the container resolver's walk, parsing the object) and libbpf's load leave free
/// heap behind that the event loop does not reuse (resident until then: peak RSS is what a
/// tracer on every node is judged by).
fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks glibc's own arenas, under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
