//! Credentials saved by `ebpfctl image login`, `docker login`, `podman login` or `skopeo
//! login`: the `auths` map of their JSON files (`{"auths": {"host[:port]": {"auth":
//! base64("user:password")}}}`), and the credential helpers they name (`credHelpers` per
//! registry, `credsStore` for all), run as `docker-credential-<name> get|store|erase` with
//! the docker-credential-helpers protocol on stdin/stdout.
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;

use crate::OciError;

/// The first saved user and password for `registry` (as the reference spells it): per file
/// in [`candidates`] order, its credential helper for the registry, then its `auths` entry,
/// then its `credsStore`.
pub(crate) fn lookup(registry: &str) -> Result<Option<(String, String)>, OciError> {
    let Some(want) = normalise(registry) else {
        return Ok(None);
    };
    for path in candidates() {
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) else {
            continue;
        };
        if let Some(helper) = helper_for(&v, &want, false) {
            if let Some(found) = helper_get(&helper, registry)? {
                return Ok(Some(found));
            }
        }
        if let Some(found) = find(&data, &want) {
            return Ok(Some(found));
        }
        if let Some(helper) = helper_for(&v, &want, true) {
            if let Some(found) = helper_get(&helper, registry)? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// `credHelpers[registry]` (per registry), or with `store` the file's `credsStore`.
fn helper_for(v: &serde_json::Value, want: &str, store: bool) -> Option<String> {
    let name = if store {
        v.get("credsStore")?.as_str()?.to_string()
    } else {
        v.get("credHelpers")?
            .as_object()?
            .iter()
            .find(|(k, _)| normalise(k).as_deref() == Some(want))?
            .1
            .as_str()?
            .to_string()
    };
    (!name.is_empty()).then_some(name)
}

/// Helper names are a program name's suffix: nothing that could walk the file system.
fn check_helper_name(helper: &str) -> Result<(), OciError> {
    if helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !helper.starts_with('.')
    {
        Ok(())
    } else {
        Err(OciError::Helper {
            helper: helper.to_string(),
            msg: "not a valid helper name".to_string(),
        })
    }
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; its stdout, or
/// `None` when it says it has no credentials for the registry.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<Option<Vec<u8>>, OciError> {
    check_helper_name(helper)?;
    let program = format!("docker-credential-{helper}");
    let err = |msg: String| OciError::Helper {
        helper: helper.to_string(),
        msg,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            err(if e.kind() == std::io::ErrorKind::NotFound {
                format!("{program} is not on PATH (named in the credentials file; install it or remove it from there)")
            } else {
                format!("cannot run {program}: {e}")
            })
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("{action}: {e}")))?;
    if out.status.success() {
        return Ok(Some(out.stdout));
    }
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.contains("credentials not found") {
        return Ok(None);
    }
    Err(err(format!("{action} failed ({}): {text}", out.status)))
}

fn helper_get(helper: &str, registry: &str) -> Result<Option<(String, String)>, OciError> {
    let Some(out) = run_helper(helper, "get", registry.as_bytes())? else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_slice(&out).map_err(|e| OciError::Helper {
        helper: helper.to_string(),
        msg: format!("get: unreadable answer: {e}"),
    })?;
    let user = v.get("Username").and_then(|u| u.as_str()).unwrap_or("");
    let secret = v.get("Secret").and_then(|u| u.as_str()).unwrap_or("");
    Ok((!user.is_empty() || !secret.is_empty()).then(|| (user.to_string(), secret.to_string())))
}

/// Where `image login` writes when not told: `$REGISTRY_AUTH_FILE`, else
/// `$XDG_CONFIG_HOME/containers/auth.json`, else `~/.config/containers/auth.json` when HOME
/// is the user's own, else (root) `/run/containers/0/auth.json`, as podman does. All are
/// read back by [`lookup`].
pub(crate) fn default_login_file() -> Result<PathBuf, OciError> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        return Ok(p);
    }
    if let Some(d) = env("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Ok(d.join("containers/auth.json"));
    }
    let uid = euid();
    if let Some(h) = env("HOME").filter(|p| p.is_absolute()) {
        if std::fs::metadata(&h).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
            return Ok(h.join(".config/containers/auth.json"));
        }
    }
    if uid == 0 {
        return Ok(PathBuf::from("/run/containers/0/auth.json"));
    }
    Err(OciError::Usage(
        "no place for credentials: HOME is unset or not yours; set REGISTRY_AUTH_FILE or pass --authfile FILE".to_string(),
    ))
}

fn euid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// Where a login went.
pub(crate) struct Saved {
    pub file: PathBuf,
    pub helper: Option<String>,
}

fn read_json(file: &Path) -> Result<serde_json::Value, OciError> {
    match std::fs::read(file) {
        Ok(data) => serde_json::from_slice(&data).map_err(|e| {
            OciError::Usage(format!(
                "{}: not a credentials file (JSON with \"auths\"): {e}",
                file.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(source) => Err(OciError::Read {
            path: file.display().to_string(),
            source,
        }),
    }
}

/// The `auths` key that names `registry` in `v`, if any (spelled as the file spells it).
fn auths_key(v: &serde_json::Value, want: &str) -> Option<String> {
    v.get("auths")?
        .as_object()?
        .keys()
        .find(|k| normalise(k).as_deref() == Some(want))
        .cloned()
}

/// Saves a login in `file`: through its credential helper for the registry (or its
/// `credsStore`) when it names one, with an empty `auths` entry as docker leaves; else as
/// base64 `user:password` in `auths`. The file is rewritten 0600 through a fresh temporary
/// file renamed into place.
pub(crate) fn save(
    file: &Path,
    registry: &str,
    username: &str,
    password: &str,
) -> Result<Saved, OciError> {
    let want = normalise(registry)
        .ok_or_else(|| OciError::Usage(format!("{registry:?} is not a registry name")))?;
    let mut v = read_json(file)?;
    let helper = helper_for(&v, &want, false).or_else(|| helper_for(&v, &want, true));
    let entry = match &helper {
        Some(h) => {
            let input = serde_json::json!({"ServerURL": registry, "Username": username, "Secret": password});
            run_helper(h, "store", input.to_string().as_bytes())?;
            serde_json::json!({})
        }
        None => {
            let b64 =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            serde_json::json!({ "auth": b64 })
        }
    };
    let key = auths_key(&v, &want).unwrap_or_else(|| registry.to_string());
    if !v.is_object() {
        v = serde_json::json!({});
    }
    let auths = v
        .as_object_mut()
        .expect("an object")
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    auths.as_object_mut().expect("an object").insert(key, entry);
    write_private(file, &v)?;
    Ok(Saved {
        file: file.to_path_buf(),
        helper,
    })
}

/// Removes a login from `file` (and from its credential helper); false when it had none.
pub(crate) fn erase(file: &Path, registry: &str) -> Result<(Saved, bool), OciError> {
    let want = normalise(registry)
        .ok_or_else(|| OciError::Usage(format!("{registry:?} is not a registry name")))?;
    let mut v = read_json(file)?;
    let helper = helper_for(&v, &want, false).or_else(|| helper_for(&v, &want, true));
    let mut found = false;
    if let Some(h) = &helper {
        found |= run_helper(h, "erase", registry.as_bytes())?.is_some();
    }
    if let Some(key) = auths_key(&v, &want) {
        if let Some(auths) = v.get_mut("auths").and_then(|a| a.as_object_mut()) {
            found |= auths
                .remove(&key)
                .is_some_and(|e| e.get("auth").is_some() || helper.is_none());
        }
        write_private(file, &v)?;
    }
    Ok((
        Saved {
            file: file.to_path_buf(),
            helper,
        },
        found,
    ))
}

/// Writes JSON 0600 through a fresh temporary file beside `file`, renamed over it (a
/// symlink at `file` is replaced, never written through); missing directories are created
/// 0700.
fn write_private(file: &Path, v: &serde_json::Value) -> Result<(), OciError> {
    let err = |source| OciError::Write {
        path: file.display().to_string(),
        source,
    };
    let dir = match file.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d,
        None => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth-")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(err)?;
    let mut text = serde_json::to_vec_pretty(v).expect("JSON serialises");
    text.push(b'\n');
    tmp.write_all(&text).map_err(err)?;
    tmp.persist(file).map_err(|e| err(e.error))?;
    Ok(())
}

/// The registry part of what `login` / `logout` were given: `host[:port]`, a URL
/// (`https://host/v2/`) or a reference (`host/repo:tag`).
pub(crate) fn registry_of(s: &str) -> Option<String> {
    let k = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = k.split('/').next().unwrap_or("");
    (!host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b)))
    .then(|| host.to_string())
}

/// Where the container tools keep credentials, in the order podman/skopeo read them.
pub(crate) fn candidates() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let home = env("HOME");
    let mut v = Vec::new();
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        v.push(p);
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        v.push(d.join("containers/auth.json"));
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    v.push(PathBuf::from(format!("/run/containers/{uid}/auth.json")));
    match env("XDG_CONFIG_HOME") {
        Some(d) => v.push(d.join("containers/auth.json")),
        None => v.extend(
            home.as_ref()
                .map(|h| h.join(".config/containers/auth.json")),
        ),
    }
    match env("DOCKER_CONFIG") {
        Some(d) => v.push(d.join("config.json")),
        None => v.extend(home.as_ref().map(|h| h.join(".docker/config.json"))),
    }
    v
}

fn find(json: &[u8], want: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    v.get("auths")?
        .as_object()?
        .iter()
        .filter(|(key, _)| normalise(key).as_deref() == Some(want))
        .find_map(|(_, entry)| {
            let b64 = entry.get("auth")?.as_str()?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (user, password) = text.split_once(':')?;
            (!user.is_empty()).then(|| (user.to_string(), password.to_string()))
        })
}

/// `https://index.docker.io/v1/` → `docker.io`; `host:port` stays; keys scoped to a
/// repository (`quay.io/org/repo`) are not registry-wide and give `None`.
fn normalise(key: &str) -> Option<String> {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = k.split_once('/').unwrap_or((k, ""));
    if !matches!(path.trim_end_matches('/'), "" | "v1" | "v2") || host.is_empty() {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_host() {
        // "alice:s3cret", "bob:x:y" (a colon in the password)
        let json = br#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "Ym9iOng6eQ=="},
            "127.0.0.1:5000": {"auth": "YWxpY2U6czNjcmV0"},
            "quay.io/org/repo": {"auth": "YWxpY2U6czNjcmV0"}
        }}"#;
        assert_eq!(
            find(json, "127.0.0.1:5000"),
            Some(("alice".into(), "s3cret".into()))
        );
        assert_eq!(
            find(json, &normalise("docker.io").unwrap()),
            Some(("bob".into(), "x:y".into()))
        );
        assert_eq!(find(json, "quay.io"), None);
        assert_eq!(find(b"not json", "quay.io"), None);
    }

    #[test]
    fn helpers_by_registry_then_store() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"credHelpers": {"ghcr.io": "pass", "https://quay.io/v1/": "secretservice"}, "credsStore": "desktop"}"#,
        )
        .unwrap();
        assert_eq!(helper_for(&v, "ghcr.io", false).as_deref(), Some("pass"));
        assert_eq!(
            helper_for(&v, "quay.io", false).as_deref(),
            Some("secretservice")
        );
        assert_eq!(helper_for(&v, "docker.io", false), None);
        assert_eq!(
            helper_for(&v, "docker.io", true).as_deref(),
            Some("desktop")
        );
        assert!(check_helper_name("ecr-login").is_ok());
        assert!(check_helper_name("../../bin/sh").is_err());
        assert!(check_helper_name(".hidden").is_err());
    }

    #[test]
    fn registry_names() {
        assert_eq!(
            registry_of("127.0.0.1:5000").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(
            registry_of("https://ghcr.io/v2/").as_deref(),
            Some("ghcr.io")
        );
        assert_eq!(
            registry_of("ghcr.io/acme/probe:v1").as_deref(),
            Some("ghcr.io")
        );
        assert_eq!(registry_of("[::1]:5000").as_deref(), Some("[::1]:5000"));
        assert_eq!(registry_of(""), None);
        assert_eq!(registry_of("bad host"), None);
    }

    /// A login is saved 0600 beside whatever the file held, through a rename: a symlink at
    /// the file's name is replaced, its target untouched; logout removes only that entry.
    #[test]
    fn save_and_erase_keep_the_rest() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        let theirs = br#"{"auths": {"ghcr.io": {"auth": "eDp5"}}, "other": 1}"#;
        std::fs::write(&victim, theirs).unwrap();
        let file = d.path().join("auth.json");
        std::os::unix::fs::symlink(&victim, &file).unwrap();
        let saved = save(&file, "127.0.0.1:5000", "alice", "s3cret").unwrap();
        assert!(saved.helper.is_none());
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(v["auths"]["127.0.0.1:5000"]["auth"], "YWxpY2U6czNjcmV0");
        assert_eq!(v["auths"]["ghcr.io"]["auth"], "eDp5");
        assert_eq!(v["other"], 1);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            find(&std::fs::read(&file).unwrap(), "127.0.0.1:5000"),
            Some(("alice".into(), "s3cret".into()))
        );
        let (_, found) = erase(&file, "127.0.0.1:5000").unwrap();
        assert!(found);
        let (_, found) = erase(&file, "127.0.0.1:5000").unwrap();
        assert!(!found);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(v["auths"], serde_json::json!({"ghcr.io": {"auth": "eDp5"}}));
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            theirs,
            "written through the symlink"
        );
        assert!(!std::fs::symlink_metadata(&file)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
