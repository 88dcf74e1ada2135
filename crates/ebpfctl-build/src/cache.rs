//! ebpfctl's cache directory: bundled headers and `vmlinux.h` for `ebpfctl build`, pulled
//! objects for `ebpfctl pull` and `ebpfctl run REF`. It is always its user's own, so that root
//! never writes through, or compiles or loads from, a path another user controls.
//!
//! The base is `$XDG_CACHE_HOME`, else `~/.cache` when `$HOME` is a directory owned by the
//! user (under `sudo`, HOME is often the invoking user's, not root's), else `/var/cache` for
//! root. Under it, `ebpfctl/` and each subdirectory are created 0700 and checked at every use:
//! one that is a symlink, owned by someone else, or writable by group or others is refused, and
//! so is a base owned by another user or writable by others without the sticky bit.
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Root's cache base when it has no home of its own (HOME unset or another user's).
pub const ROOT_BASE: &str = "/var/cache";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("no cache directory: HOME is unset or not yours; set XDG_CACHE_HOME to a directory of your own")]
    NoBase,
    #[error("cache directory {} {why}: refusing to use it; {fix}", path.display())]
    Unsafe {
        path: PathBuf,
        why: String,
        fix: &'static str,
    },
    #[error("cannot create cache directory {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
}

fn euid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// The cache base for these environment values and effective uid (see the module docs).
fn base_for(xdg: Option<OsString>, home: Option<OsString>, uid: u32) -> Option<PathBuf> {
    if let Some(x) = xdg.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(x);
    }
    if let Some(h) = home.map(PathBuf::from).filter(|p| p.is_absolute()) {
        if std::fs::metadata(&h).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
            return Some(h.join(".cache"));
        }
    }
    (uid == 0).then(|| PathBuf::from(ROOT_BASE))
}

/// `<base>/ebpfctl/<sub>`, created private (0700) if missing, every level checked.
pub fn dir(sub: &str) -> Result<PathBuf, CacheError> {
    let uid = euid();
    let base = base_for(
        std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()),
        std::env::var_os("HOME").filter(|v| !v.is_empty()),
        uid,
    )
    .ok_or(CacheError::NoBase)?;
    check_base(&base, uid)?;
    let top = base.join("ebpfctl");
    private_dir(&top)?;
    let d = top.join(sub);
    private_dir(&d)?;
    Ok(d)
}

const FIX_OWNER: &str = "remove it, or set XDG_CACHE_HOME to a directory of your own";
const FIX_MODE: &str = "chmod go-w it, or set XDG_CACHE_HOME to a directory of your own";

fn create_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Create {
        path: path.to_path_buf(),
        source,
    }
}

/// The base may be a symlink (a cache moved elsewhere) and may be shared if sticky (like
/// /tmp), but must be the user's or root's.
fn check_base(base: &Path, uid: u32) -> Result<(), CacheError> {
    if !base.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(base)
            .map_err(create_err(base))?;
    }
    let m = std::fs::metadata(base).map_err(create_err(base))?;
    let unsafe_because = |why: String, fix| CacheError::Unsafe {
        path: base.to_path_buf(),
        why,
        fix,
    };
    if !m.is_dir() {
        return Err(unsafe_because("is not a directory".into(), FIX_OWNER));
    }
    if m.uid() != uid && m.uid() != 0 {
        return Err(unsafe_because(
            format!(
                "is owned by uid {}, not by you (uid {uid}) or root",
                m.uid()
            ),
            FIX_OWNER,
        ));
    }
    if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
        return Err(unsafe_because(
            format!(
                "is writable by group or others without the sticky bit (mode {:o})",
                m.mode() & 0o7777
            ),
            FIX_MODE,
        ));
    }
    Ok(())
}

/// Creates `path` with mode 0700 unless it exists, then checks that it is a real directory
/// (not a symlink), owned by the effective user and not writable by group or others. The
/// parent must already be trusted: nobody else can then replace `path` after the check.
pub fn private_dir(path: &Path) -> Result<(), CacheError> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(create_err(path)(e)),
    }
    let m = std::fs::symlink_metadata(path).map_err(create_err(path))?;
    let uid = euid();
    let refuse = |why: String, fix| {
        Err(CacheError::Unsafe {
            path: path.to_path_buf(),
            why,
            fix,
        })
    };
    if m.file_type().is_symlink() {
        return refuse("is a symbolic link".into(), FIX_OWNER);
    }
    if !m.is_dir() {
        return refuse("is not a directory".into(), FIX_OWNER);
    }
    if m.uid() != uid {
        return refuse(
            format!("is owned by uid {}, not by you (uid {uid})", m.uid()),
            FIX_OWNER,
        );
    }
    if m.mode() & 0o022 != 0 {
        return refuse(
            format!(
                "is writable by group or others (mode {:o})",
                m.mode() & 0o7777
            ),
            FIX_MODE,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_choice() {
        let xdg = Some(OsString::from("/x/cache"));
        let root_home = Some(OsString::from("/"));
        assert_eq!(
            base_for(xdg, root_home.clone(), 0),
            Some(PathBuf::from("/x/cache"))
        );
        // A relative XDG_CACHE_HOME is ignored (XDG base directory spec).
        assert_eq!(
            base_for(Some("rel".into()), root_home.clone(), 0),
            Some(PathBuf::from("/.cache"))
        );
        // `/` is root's: a home of root's; for another uid it is not theirs.
        assert_eq!(base_for(None, root_home.clone(), 12345), None);
        assert_eq!(base_for(None, None, 0), Some(PathBuf::from(ROOT_BASE)));
        assert_eq!(base_for(None, None, 12345), None);
    }
}
