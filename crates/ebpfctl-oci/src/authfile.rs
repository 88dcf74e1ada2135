//! Credentials saved by `docker login`, `podman login` or `skopeo login`: the `auths` map of
//! their JSON files (`{"auths": {"host[:port]": {"auth": base64("user:password")}}}`).
//! Credential helpers (`credsStore`, `credHelpers`) are not run.
use std::path::PathBuf;

use base64::Engine;

/// The first saved user and password for `registry` (as the reference spells it).
pub(crate) fn lookup(registry: &str) -> Option<(String, String)> {
    let want = normalise(registry)?;
    candidates()
        .into_iter()
        .find_map(|path| find(&std::fs::read(path).ok()?, &want))
}

/// Where the container tools keep credentials, in the order podman/skopeo read them.
fn candidates() -> Vec<PathBuf> {
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
}
