//! ebpfctl's cache directory: bundled headers and `vmlinux.h` for `ebpfctl build`, pulled
//! objects for `ebpfctl pull` and `ebpfctl run REF`. It is always its user's own, so that root
//! never writes through, or compiles or loads from, a path another user controls.
//!
//! The base is `$XDG_CACHE_HOME`, else `~/.cache` when `$HOME` is a directory owned by the
//! user (under `sudo`, HOME is often the invoking user's, not root's), else `/var/cache` for
//! root. Under it, `ebpfctl/` and each subdirectory are created 0700 and checked at every use:
//! one that is a symlink, owned by someone else, or writable by group or others is refused, and
//! so is a base owned by another user or writable by others without the sticky bit.
//!
//! The same rules serve other per-user directories ([`Base`]): `ebpfctl-oci` keeps its image
//! store under the data base (`$XDG_DATA_HOME`, `~/.local/share`, `/var/lib` for root).
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Root's cache base when it has no home of its own (HOME unset or another user's).
pub const ROOT_BASE: &str = "/var/cache";

/// One kind of per-user base directory (XDG base directory spec) and how errors name it.
#[derive(Debug, Clone, Copy)]
pub struct Base {
    /// In messages: "`what` directory /x/y is ...".
    pub what: &'static str,
    /// The environment variable naming the base (`XDG_CACHE_HOME`).
    pub env: &'static str,
    /// The base under a HOME of the user's own (`.cache`).
    pub home: &'static str,
    /// Root's base when it has no home of its own (`/var/cache`).
    pub root: &'static str,
    /// Appended to the way out of a refusal: ", or ..." (another way to name a directory).
    pub or_else: &'static str,
}

/// The cache: headers, `vmlinux.h`.
pub const CACHE: Base = Base {
    what: "cache",
    env: "XDG_CACHE_HOME",
    home: ".cache",
    root: ROOT_BASE,
    or_else: "",
};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("no {what} directory: HOME is unset or not yours; set {env} to a directory of your own{or_else}")]
    NoBase {
        what: &'static str,
        env: &'static str,
        or_else: &'static str,
    },
    #[error("{what} directory {} {why}: refusing to use it; {fix}", path.display())]
    Unsafe {
        what: &'static str,
        path: PathBuf,
        why: String,
        fix: String,
    },
    #[error("cannot create {what} directory {}: {source}", path.display())]
    Create {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn euid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// The base for these environment values and effective uid (see the module docs).
fn base_for(
    kind: &Base,
    xdg: Option<OsString>,
    home: Option<OsString>,
    uid: u32,
) -> Option<PathBuf> {
    if let Some(x) = xdg.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(x);
    }
    if let Some(h) = home.map(PathBuf::from).filter(|p| p.is_absolute()) {
        if std::fs::metadata(&h).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
            return Some(h.join(kind.home));
        }
    }
    (uid == 0).then(|| PathBuf::from(kind.root))
}

/// `<cache base>/ebpfctl/<sub>`, created private (0700) if missing, every level checked.
pub fn dir(sub: &str) -> Result<PathBuf, CacheError> {
    dir_in(&CACHE, sub)
}

/// `<base>/ebpfctl/<sub>` for any kind of base, created private (0700) if missing, every
/// level checked.
pub fn dir_in(kind: &Base, sub: &str) -> Result<PathBuf, CacheError> {
    let uid = euid();
    let base = base_for(
        kind,
        std::env::var_os(kind.env).filter(|v| !v.is_empty()),
        std::env::var_os("HOME").filter(|v| !v.is_empty()),
        uid,
    )
    .ok_or(CacheError::NoBase {
        what: kind.what,
        env: kind.env,
        or_else: kind.or_else,
    })?;
    check_base(kind, &base, uid)?;
    let top = base.join("ebpfctl");
    private_dir_of(kind, &top)?;
    let d = top.join(sub);
    private_dir_of(kind, &d)?;
    Ok(d)
}

/// A directory the user named (`--store DIR`): created 0700 if missing (with its parents),
/// refused like the levels of [`dir_in`] when another user could change it or its parent.
pub fn named_dir(kind: &Base, path: &Path) -> Result<(), CacheError> {
    let uid = euid();
    // The way out is another directory on the command line, not the environment variable.
    let named = |e| match e {
        CacheError::Unsafe {
            what,
            path,
            why,
            fix,
        } => CacheError::Unsafe {
            what,
            path,
            fix: if fix == fix_mode(kind) {
                "chmod go-w it, or name another directory of your own".to_string()
            } else {
                "remove it, or name another directory of your own".to_string()
            },
            why,
        },
        e => e,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        check_base(kind, parent, uid).map_err(named)?;
    }
    private_dir_of(kind, path).map_err(named)
}

fn fix_owner(kind: &Base) -> String {
    format!(
        "remove it, or set {} to a directory of your own{}",
        kind.env, kind.or_else
    )
}

fn fix_mode(kind: &Base) -> String {
    format!(
        "chmod go-w it, or set {} to a directory of your own{}",
        kind.env, kind.or_else
    )
}

fn create_err<'a>(kind: &Base, path: &'a Path) -> impl FnOnce(io::Error) -> CacheError + 'a {
    let what = kind.what;
    move |source| CacheError::Create {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The base may be a symlink (a cache moved elsewhere) and may be shared if sticky (like
/// /tmp), but must be the user's or root's.
fn check_base(kind: &Base, base: &Path, uid: u32) -> Result<(), CacheError> {
    if !base.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(base)
            .map_err(create_err(kind, base))?;
    }
    let m = std::fs::metadata(base).map_err(create_err(kind, base))?;
    let unsafe_because = |why: String, fix| CacheError::Unsafe {
        what: kind.what,
        path: base.to_path_buf(),
        why,
        fix,
    };
    if !m.is_dir() {
        return Err(unsafe_because("is not a directory".into(), fix_owner(kind)));
    }
    if m.uid() != uid && m.uid() != 0 {
        return Err(unsafe_because(
            format!(
                "is owned by uid {}, not by you (uid {uid}) or root",
                m.uid()
            ),
            fix_owner(kind),
        ));
    }
    if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
        return Err(unsafe_because(
            format!(
                "is writable by group or others without the sticky bit (mode {:o})",
                m.mode() & 0o7777
            ),
            fix_mode(kind),
        ));
    }
    Ok(())
}

/// [`private_dir_of`] for the cache.
pub fn private_dir(path: &Path) -> Result<(), CacheError> {
    private_dir_of(&CACHE, path)
}

/// Creates `path` with mode 0700 unless it exists, then checks that it is a real directory
/// (not a symlink), owned by the effective user and not writable by group or others. The
/// parent must already be trusted: nobody else can then replace `path` after the check.
pub fn private_dir_of(kind: &Base, path: &Path) -> Result<(), CacheError> {
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(create_err(kind, path)(e)),
    }
    let m = std::fs::symlink_metadata(path).map_err(create_err(kind, path))?;
    let uid = euid();
    let refuse = |why: String, fix| {
        Err(CacheError::Unsafe {
            what: kind.what,
            path: path.to_path_buf(),
            why,
            fix,
        })
    };
    if m.file_type().is_symlink() {
        return refuse("is a symbolic link".into(), fix_owner(kind));
    }
    if !m.is_dir() {
        return refuse("is not a directory".into(), fix_owner(kind));
    }
    if m.uid() != uid {
        return refuse(
            format!("is owned by uid {}, not by you (uid {uid})", m.uid()),
            fix_owner(kind),
        );
    }
    if m.mode() & 0o022 != 0 {
        return refuse(
            format!(
                "is writable by group or others (mode {:o})",
                m.mode() & 0o7777
            ),
            fix_mode(kind),
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
        let c = &CACHE;
        assert_eq!(
            base_for(c, xdg, root_home.clone(), 0),
            Some(PathBuf::from("/x/cache"))
        );
        // A relative XDG_CACHE_HOME is ignored (XDG base directory spec).
        assert_eq!(
            base_for(c, Some("rel".into()), root_home.clone(), 0),
            Some(PathBuf::from("/.cache"))
        );
        // `/` is root's: a home of root's; for another uid it is not theirs.
        assert_eq!(base_for(c, None, root_home.clone(), 12345), None);
        assert_eq!(base_for(c, None, None, 0), Some(PathBuf::from(ROOT_BASE)));
        assert_eq!(base_for(c, None, None, 12345), None);
        let data = Base {
            what: "store",
            env: "XDG_DATA_HOME",
            home: ".local/share",
            root: "/var/lib",
            or_else: ", or pass --store DIR",
        };
        assert_eq!(
            base_for(&data, None, root_home, 0),
            Some(PathBuf::from("/.local/share"))
        );
        assert_eq!(
            base_for(&data, None, None, 0),
            Some(PathBuf::from("/var/lib"))
        );
        let e = CacheError::NoBase {
            what: CACHE.what,
            env: CACHE.env,
            or_else: CACHE.or_else,
        };
        assert_eq!(e.to_string(), "no cache directory: HOME is unset or not yours; set XDG_CACHE_HOME to a directory of your own");
        assert_eq!(
            fix_owner(&CACHE),
            "remove it, or set XDG_CACHE_HOME to a directory of your own"
        );
    }
}
