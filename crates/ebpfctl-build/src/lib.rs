//! Compiling BPF C probes: find clang, produce `vmlinux.h` from kernel BTF, supply libbpf's
//! BPF-side headers and `ebpfctl.h`, run clang with the BPF target flags.
//!
//! This is the code behind `ebpfctl build` and behind this project's own build scripts, which
//! compile the probes of the bundled tools.

// Linked for the btf_dump shim, which calls into libbpf.
extern crate libbpf_sys;

pub mod cache;

use std::ffi::{c_void, CString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs, io};

/// Where the kernel publishes its own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// clang versions tried, newest first, after `$EBPFCTL_CLANG` and `$CLANG`.
const CLANG_NAMES: &[&str] = &[
    "clang", "clang-21", "clang-20", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15",
    "clang-14",
];

/// Headers bundled into the binary: libbpf's BPF-side headers and ours.
const HEADERS: &[(&str, &[u8])] = &[
    (
        "bpf/bpf_helpers.h",
        include_bytes!(concat!(env!("OUT_DIR"), "/headers/bpf/bpf_helpers.h")),
    ),
    (
        "bpf/bpf_helper_defs.h",
        include_bytes!(concat!(env!("OUT_DIR"), "/headers/bpf/bpf_helper_defs.h")),
    ),
    (
        "bpf/bpf_tracing.h",
        include_bytes!(concat!(env!("OUT_DIR"), "/headers/bpf/bpf_tracing.h")),
    ),
    (
        "bpf/bpf_core_read.h",
        include_bytes!(concat!(env!("OUT_DIR"), "/headers/bpf/bpf_core_read.h")),
    ),
    (
        "bpf/bpf_endian.h",
        include_bytes!(concat!(env!("OUT_DIR"), "/headers/bpf/bpf_endian.h")),
    ),
    (
        "bpf/usdt.bpf.h",
        include_bytes!(concat!(env!("OUT_DIR"), "/headers/bpf/usdt.bpf.h")),
    ),
    (
        "ebpfctl.h",
        include_bytes!(concat!(env!("OUT_DIR"), "/headers/ebpfctl.h")),
    ),
    // Bumblebee's name for the same typedefs (`#include "solo_types.h"`).
    (
        "solo_types.h",
        include_bytes!(concat!(env!("OUT_DIR"), "/headers/solo_types.h")),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("no clang found (tried $EBPFCTL_CLANG, $CLANG, {tried}); install one: apt-get install clang-19")]
    ClangNotFound { tried: String },
    #[error("clang failed on {src}:\n{stderr}")]
    CompileFailed { src: PathBuf, stderr: String },
    #[error("cannot read BTF from {what}: {source}")]
    Btf { what: String, source: io::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("writing the header: {0}")]
    Write(io::Error),
    #[error("architecture {0} has no BPF target macro here (supported: x86_64, aarch64)")]
    Arch(String),
    #[error("unknown target architecture {0:?}: give one of {ARCH_NAMES}")]
    UnknownArch(String),
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BuildError {
    let what = what.into();
    move |source| BuildError::Io { what, source }
}

/// Finds a clang able to target BPF: `$EBPFCTL_CLANG`, `$CLANG`, then `clang[-N]` on `$PATH`.
pub fn find_clang() -> Result<PathBuf, BuildError> {
    for var in ["EBPFCTL_CLANG", "CLANG"] {
        if let Some(p) = env::var_os(var).filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(p));
        }
    }
    let path = env::var_os("PATH").unwrap_or_default();
    for name in CLANG_NAMES {
        for dir in env::split_paths(&path) {
            let cand = dir.join(name);
            if cand.is_file() {
                return Ok(cand);
            }
        }
    }
    Err(BuildError::ClangNotFound {
        tried: CLANG_NAMES.join(", "),
    })
}

/// Where a BTF blob comes from, for [`dump_c`] and [`dump_c_header`].
#[derive(Debug, Clone)]
pub enum BtfSource<'a> {
    /// Raw BTF in memory. libbpf's dumper trusts it: validate it first
    /// (`ebpfctl_core::btf::Btf::parse`), as it crashes on malformed BTF.
    Raw(&'a [u8]),
    /// A raw BTF file or an ELF object with a `.BTF` section that libbpf reads itself; `base`
    /// for split BTF. Only for trusted files, such as the kernel's own.
    File {
        path: &'a Path,
        base: Option<&'a Path>,
    },
    /// A BTF object loaded in the kernel, by id; `base` for split (module) BTF.
    KernelId { id: u32, base: Option<&'a Path> },
}

type WriteFn = unsafe extern "C" fn(ctx: *mut c_void, buf: *const libc_char, len: usize) -> i32;

extern "C" {
    fn ebpfctl_btf_dump_c(
        data: *const c_void,
        size: usize,
        path: *const libc_char,
        id: u32,
        base_path: *const libc_char,
        write: WriteFn,
        ctx: *mut c_void,
    ) -> i32;
}
#[allow(non_camel_case_types)]
type libc_char = std::ffi::c_char;

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| CString::new("?").unwrap())
}

/// Where the dumper's text goes, and the first write error.
struct Sink<'w> {
    w: &'w mut dyn Write,
    err: Option<io::Error>,
}

/// Called by the shim with each chunk of the header; non-zero stops the dump.
///
/// # Safety
/// `ctx` is the `Sink` passed to `ebpfctl_btf_dump_c`; `buf` points to `len` bytes.
unsafe extern "C" fn write_chunk(ctx: *mut c_void, buf: *const libc_char, len: usize) -> i32 {
    // SAFETY: the shim hands back the pointer to the `Sink` that `dump_c` keeps alive (and
    // does not otherwise touch) for the whole call.
    let sink = unsafe { &mut *ctx.cast::<Sink<'_>>() };
    // SAFETY: the shim's buffer holds `len` bytes until we return.
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
    // A panic must not unwind into C.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.w.write_all(bytes))) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            sink.err = Some(e);
            1
        }
        Err(_) => {
            sink.err = Some(io::Error::other("panic while writing the header"));
            1
        }
    }
}

/// Writes a C header declaring every type of a BTF blob to `w`, as libbpf's `btf_dump`
/// prints them, wrapped for CO-RE (`preserve_access_index`), suitable as `vmlinux.h`.
/// A write error stops the dump and is returned as [`BuildError::Write`].
pub fn dump_c(src: &BtfSource<'_>, w: &mut dyn Write) -> Result<(), BuildError> {
    let (data, path, id, base, what) = match src {
        BtfSource::Raw(d) => (Some(*d), None, 0, None, "BTF in memory".to_string()),
        BtfSource::File { path, base } => (
            None,
            Some(cpath(path)),
            0,
            base.map(cpath),
            path.display().to_string(),
        ),
        BtfSource::KernelId { id, base } => {
            (None, None, *id, base.map(cpath), format!("BTF id {id}"))
        }
    };
    let mut sink = Sink { w, err: None };
    // SAFETY: every pointer is null or valid for the call: `data` for `size` bytes, the paths
    // NUL-terminated; the shim only reads them. `write_chunk` gets `sink` back as `ctx`, and
    // nothing else uses `sink` until the call returns.
    let rc = unsafe {
        ebpfctl_btf_dump_c(
            data.map_or(std::ptr::null(), |d| d.as_ptr().cast()),
            data.map_or(0, <[u8]>::len),
            path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            id,
            base.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            write_chunk,
            (&raw mut sink).cast(),
        )
    };
    if let Some(e) = sink.err {
        return Err(BuildError::Write(e));
    }
    if rc != 0 {
        return Err(BuildError::Btf {
            what,
            source: io::Error::from_raw_os_error(-rc),
        });
    }
    Ok(())
}

/// As [`dump_c`], into a new file at `out`.
pub fn dump_c_header(src: &BtfSource<'_>, out: &Path) -> Result<(), BuildError> {
    let f = fs::File::create(out).map_err(io_err(format!("create {}", out.display())))?;
    let mut w = io::BufWriter::new(f);
    dump_c(src, &mut w)?;
    w.flush()
        .map_err(io_err(format!("write {}", out.display())))
}

/// A small content hash for cache keys (FNV-1a, 64 bit).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Replaces `path` with `data` through a fresh temporary file in the same directory renamed
/// over it: never writes through whatever `path` was (a symlink stays unfollowed), and a
/// concurrent reader sees the old file or the new one, never half of it.
fn write_replacing(path: &Path, data: &[u8]) -> Result<(), BuildError> {
    let what = || format!("write {}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err(what()))?;
    tmp.write_all(data).map_err(io_err(what()))?;
    tmp.persist(path).map_err(|e| io_err(what())(e.error))?;
    Ok(())
}

/// Writes the bundled headers and this kernel's `vmlinux.h` under `dir` (created 0700 if
/// needed) and returns the include directory. `vmlinux.h` is regenerated only when the
/// kernel's BTF changes. `dir` must be the caller's own: [`default_include_dir`] checks that.
pub fn prepare_include_dir(dir: &Path) -> Result<PathBuf, BuildError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(format!("create {}", dir.display())))?;
    cache::private_dir(&dir.join("bpf"))?;
    for (name, data) in HEADERS {
        let p = dir.join(name);
        if fs::read(&p).ok().as_deref() != Some(*data) {
            write_replacing(&p, data)?;
        }
    }
    let btf = fs::read(VMLINUX_BTF).map_err(|source| BuildError::Btf {
        what: format!("{VMLINUX_BTF} (kernel built without CONFIG_DEBUG_INFO_BTF?)"),
        source,
    })?;
    let key = format!("{:016x}", fnv1a(&btf));
    let stamp = dir.join("vmlinux.h.key");
    let header = dir.join("vmlinux.h");
    if !header.exists() || fs::read_to_string(&stamp).ok().as_deref() != Some(key.as_str()) {
        // A fresh file per call (builds may prepare the same directory concurrently), renamed
        // into place once complete; removed if the dump fails.
        let what = || format!("write {}", header.display());
        let tmp = tempfile::Builder::new()
            .prefix("vmlinux.h.")
            .tempfile_in(dir)
            .map_err(io_err(what()))?;
        dump_c_header(
            &BtfSource::File {
                path: Path::new(VMLINUX_BTF),
                base: None,
            },
            tmp.path(),
        )?;
        tmp.persist(&header).map_err(|e| io_err(what())(e.error))?;
        write_replacing(&stamp, key.as_bytes())?;
    }
    Ok(dir.to_path_buf())
}

/// The default include cache, `ebpfctl/include` under the user's own cache directory (see
/// [`cache`]: `$XDG_CACHE_HOME`, `~/.cache`, or `/var/cache` for root), created private and
/// refused when another user could change it.
pub fn default_include_dir() -> Result<PathBuf, BuildError> {
    Ok(cache::dir("include")?)
}

/// The `__TARGET_ARCH_*` name libbpf's tracing macros expect for this machine.
pub fn target_arch() -> Result<&'static str, BuildError> {
    match env::consts::ARCH {
        "x86_64" => Ok("x86"),
        "aarch64" => Ok("arm64"),
        other => Err(BuildError::Arch(other.to_string())),
    }
}

/// What `--arch` accepts, for messages.
pub const ARCH_NAMES: &str = "x86_64 (amd64), arm64 (aarch64), riscv64, s390x, ppc64le, arm";

/// The `__TARGET_ARCH_*` name and the OCI architecture name for a target named the way
/// `uname -m`, Rust or OCI spell it (`x86_64`/`amd64`, `aarch64`/`arm64`, ...).
pub fn target_arch_named(name: &str) -> Result<(&'static str, &'static str), BuildError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "x86_64" | "amd64" | "x86" => ("x86", "amd64"),
        "aarch64" | "arm64" => ("arm64", "arm64"),
        "riscv64" | "riscv" => ("riscv", "riscv64"),
        "s390x" | "s390" => ("s390", "s390x"),
        "ppc64le" | "powerpc64le" | "powerpc" => ("powerpc", "ppc64le"),
        "arm" | "armv7" | "armhf" => ("arm", "arm"),
        _ => return Err(BuildError::UnknownArch(name.to_string())),
    })
}

/// One probe to compile.
#[derive(Debug, Clone)]
pub struct Compile {
    pub src: PathBuf,
    pub out: PathBuf,
    /// Include directory from [`prepare_include_dir`].
    pub include_dir: PathBuf,
    /// More `-I` directories (the source's own directory is always searched).
    pub extra_includes: Vec<PathBuf>,
    /// More flags, e.g. `-DDEBUG`.
    pub cflags: Vec<String>,
}

impl Compile {
    /// Runs clang for this machine's architecture; on failure returns its diagnostics.
    pub fn run(&self) -> Result<(), BuildError> {
        self.run_as(target_arch()?)
    }

    /// Runs clang for another architecture (`arm64`, `x86_64`, ... see [`target_arch_named`]):
    /// `-D__TARGET_ARCH_*` selects libbpf's register layout for PT_REGS / BPF_KPROBE macros.
    /// `vmlinux.h` stays this machine's: CO-RE relocations fix field offsets at load time on
    /// the target, but a probe using types only the target's headers declare (arm64's
    /// `struct user_pt_regs` behind PT_REGS_PARM*) does not compile (docs/oci.md).
    pub fn run_for(&self, arch: &str) -> Result<(), BuildError> {
        self.run_as(target_arch_named(arch)?.0)
    }

    fn run_as(&self, arch: &str) -> Result<(), BuildError> {
        let clang = find_clang()?;
        let src_dir = self.src.parent().unwrap_or(Path::new("."));
        let mut cmd = Command::new(&clang);
        cmd.args([
            "-g",
            "-O2",
            "-target",
            "bpf",
            "-Wall",
            "-Wno-unused-function",
        ])
        .arg(format!("-D__TARGET_ARCH_{arch}"))
        .arg("-I")
        .arg(&self.include_dir)
        .arg("-I")
        .arg(src_dir);
        for inc in &self.extra_includes {
            cmd.arg("-I").arg(inc);
        }
        // The target's own system headers last (as libbpf-tools' build does): libbpf's
        // usdt.bpf.h includes <linux/errno.h>, which needs <asm/errno.h> from the multiarch
        // directory that `-target bpf` does not search.
        let multiarch = Path::new("/usr/include").join(format!("{}-linux-gnu", env::consts::ARCH));
        if multiarch.is_dir() {
            cmd.arg("-idirafter").arg(multiarch);
        }
        cmd.args(&self.cflags)
            .arg("-c")
            .arg(&self.src)
            .arg("-o")
            .arg(&self.out);
        let output = cmd
            .output()
            .map_err(io_err(format!("run {}", clang.display())))?;
        if !output.status.success() {
            return Err(BuildError::CompileFailed {
                src: self.src.clone(),
                stderr: String::from_utf8_lossy(&output.stderr)
                    .trim_end()
                    .to_string(),
            });
        }
        Ok(())
    }
}

/// For build scripts: compiles `src` into `$OUT_DIR/<stem>.o` with the bundled headers and
/// this kernel's `vmlinux.h`, printing the `rerun-if-changed` lines. Returns the object path.
pub fn compile_for_build_script(
    src: &Path,
    extra_includes: &[PathBuf],
) -> Result<PathBuf, BuildError> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("called from a build script"));
    let include_dir = prepare_include_dir(&out_dir.join("bpf-include"))?;
    let stem = src
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("probe")
        .trim_end_matches(".c");
    let out = out_dir.join(format!("{stem}.o"));
    println!("cargo:rerun-if-changed={}", src.display());
    if let Some(dir) = src.parent() {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|e| e == "h") {
                println!("cargo:rerun-if-changed={}", entry.path().display());
            }
        }
    }
    Compile {
        src: src.to_path_buf(),
        out: out.clone(),
        include_dir,
        extra_includes: extra_includes.to_vec(),
        cflags: vec![],
    }
    .run()?;
    strip_dwarf(&out)?;
    Ok(out)
}

/// Removes DWARF from an object, keeping `.BTF` and `.BTF.ext` (types, line info): what a
/// shipped probe needs. Embedded in the binary, the DWARF of vmlinux types would be 20× the
/// probe and be paged in at every load.
pub fn strip_dwarf(obj: &Path) -> Result<(), BuildError> {
    let clang = find_clang()?;
    // llvm-strip sits beside clang with the same version suffix (clang-19 → llvm-strip-19).
    let name = clang
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("clang");
    let strip = clang.with_file_name(name.replacen("clang", "llvm-strip", 1));
    let strip = if strip.is_file() {
        strip
    } else {
        PathBuf::from("llvm-strip")
    };
    let output = Command::new(&strip)
        .arg("--strip-debug")
        .arg(obj)
        .output()
        .map_err(io_err(format!(
            "run {} (apt-get install llvm-19)",
            strip.display()
        )))?;
    if !output.status.success() {
        return Err(BuildError::CompileFailed {
            src: obj.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr)
                .trim_end()
                .to_string(),
        });
    }
    Ok(())
}
