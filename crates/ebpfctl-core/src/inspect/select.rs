//! Naming kernel objects as bpftool does: `ID` (or `id ID`), `name NAME`, `tag TAG`,
//! `pinned PATH`. Each kind has the keywords that make sense for it (see `keywords`).
use std::ffi::CString;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::sys::{self, ObjKind};
use super::{InspectError, Result};

/// Which objects a `show` or `dump` is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Id(u32),
    /// A program's full name or its kernel name (15 characters); a map's name.
    Name(String),
    /// A program's tag: 16 hex digits (the hash of its instructions, as `prog list` shows).
    Tag(String),
    /// The object pinned at this path on a bpffs.
    Pinned(PathBuf),
}

/// The selector keywords of each kind of object.
pub fn keywords(kind: ObjKind) -> &'static [&'static str] {
    match kind {
        ObjKind::Prog => &["id", "name", "tag", "pinned"],
        ObjKind::Map => &["id", "name", "pinned"],
        ObjKind::Link | ObjKind::Btf => &["id", "pinned"],
    }
}

impl Selector {
    /// Parses the words after `show` or `dump`: `ID`, or a keyword of `kind` and its value.
    pub fn parse(kind: ObjKind, words: &[String]) -> Result<Selector, String> {
        let kw = keywords(kind);
        let usage = format!("ID or {} VALUE", kw.join("|"));
        let id = |v: &str| {
            v.parse::<u32>()
                .map(Selector::Id)
                .map_err(|_| format!("{v:?} is not a {kind} id (expected {usage})"))
        };
        match words {
            [v] => id(v),
            [k, v] if kw.contains(&k.as_str()) => match k.as_str() {
                "id" => id(v),
                "name" if v.is_empty() => Err("name: expected a name".into()),
                "name" => Ok(Selector::Name(v.clone())),
                "tag" if v.len() == 16 && v.chars().all(|c| c.is_ascii_hexdigit()) => {
                    Ok(Selector::Tag(v.to_ascii_lowercase()))
                }
                "tag" => Err(format!("tag {v:?}: expected 16 hex digits")),
                _ => Ok(Selector::Pinned(PathBuf::from(v))),
            },
            [k, _] => Err(format!("{k:?}: a {kind} is selected by {usage}")),
            _ => Err(format!("expected {usage}")),
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Id(id) => write!(f, "id {id}"),
            Selector::Name(n) => write!(f, "name {n}"),
            Selector::Tag(t) => write!(f, "tag {t}"),
            Selector::Pinned(p) => write!(f, "pinned {}", p.display()),
        }
    }
}

/// The id of the object of `kind` pinned at `path`.
pub fn pinned_id(kind: ObjKind, path: &Path) -> Result<u32> {
    let what = format!("pinned {}", path.display());
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| InspectError::NoMatch(format!("{what}: the path has a NUL byte")))?;
    // SAFETY: `c` is a NUL-terminated path; the call returns a new fd or -errno.
    let rc = unsafe { libbpf_sys::bpf_obj_get(c.as_ptr()) };
    if rc < 0 {
        let e = sys::errno_of(rc);
        return Err(InspectError::sys(
            format!("{what} (a path on a bpffs, e.g. under /sys/fs/bpf)"),
            e,
        ));
    }
    // SAFETY: a fresh fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(rc) };
    let info = sys::fdinfo(fd.as_fd());
    let key = match kind {
        ObjKind::Prog => "prog_id",
        ObjKind::Map => "map_id",
        ObjKind::Link => "link_id",
        ObjKind::Btf => "btf_id",
    };
    // A link's fdinfo also names its program: the link's own key is checked first.
    let other = ["link_id", "prog_id", "map_id"]
        .into_iter()
        .find(|k| info.contains_key(*k));
    match (other, info.get(key).and_then(|v| v.parse::<u32>().ok())) {
        (Some(k), Some(id)) if k == key => Ok(id),
        (Some(k), _) => Err(InspectError::NoMatch(format!(
            "{what} is a BPF {}, not a {kind}",
            k.trim_end_matches("_id")
        ))),
        _ => Err(InspectError::NoMatch(format!("{what}: not a {kind}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: ObjKind, w: &[&str]) -> Result<Selector, String> {
        Selector::parse(kind, &w.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_bpftool_selectors() {
        assert_eq!(p(ObjKind::Prog, &["42"]), Ok(Selector::Id(42)));
        assert_eq!(p(ObjKind::Prog, &["id", "7"]), Ok(Selector::Id(7)));
        assert_eq!(
            p(ObjKind::Prog, &["name", "on_exec"]),
            Ok(Selector::Name("on_exec".into()))
        );
        assert_eq!(
            p(ObjKind::Prog, &["tag", "ABCDEF0123456789"]),
            Ok(Selector::Tag("abcdef0123456789".into()))
        );
        assert!(p(ObjKind::Prog, &["tag", "xyz"]).is_err());
        assert!(p(ObjKind::Map, &["tag", "abcdef0123456789"]).is_err());
        assert!(p(ObjKind::Link, &["name", "x"]).is_err());
        assert_eq!(
            p(ObjKind::Link, &["pinned", "/sys/fs/bpf/l"]),
            Ok(Selector::Pinned("/sys/fs/bpf/l".into()))
        );
        assert!(p(ObjKind::Prog, &["forty-two"]).is_err());
    }
}
