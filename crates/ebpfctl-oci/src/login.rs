//! `image login` / `image logout`: check credentials against the registry as `docker login`
//! does (`GET /v2/`, then basic auth or the token exchange it asks for), then save or erase
//! them ([`crate::authfile`]).
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{authfile, Connection, OciError, Transport};

/// What [`login`] did.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub registry: String,
    /// The credentials file written.
    pub file: PathBuf,
    /// The credential helper that holds the secret (`docker-credential-<name>`), if any.
    pub helper: Option<String>,
    /// False when the registry asked for no credentials (nothing to check them against).
    pub verified: bool,
}

/// What [`logout`] did.
#[derive(Debug, Clone)]
pub struct LoggedOut {
    pub registry: String,
    pub file: PathBuf,
    pub helper: Option<String>,
}

fn registry_name(registry: &str) -> Result<String, OciError> {
    authfile::registry_of(registry).ok_or_else(|| {
        OciError::Usage(format!(
            "{registry:?} is not a registry (give host[:port], e.g. ghcr.io or 127.0.0.1:5000)"
        ))
    })
}

/// Checks `username` / `password` with the registry, then saves them in `authfile` (else
/// the default file: `$REGISTRY_AUTH_FILE`, `~/.config/containers/auth.json`, ...).
pub fn login(
    registry: &str,
    username: &str,
    password: &str,
    connection: &Connection,
    authfile: Option<&Path>,
) -> Result<LoggedIn, OciError> {
    let registry = registry_name(registry)?;
    if username.is_empty() {
        return Err(OciError::Usage(
            "no user name: pass --username USER".to_string(),
        ));
    }
    let file = match authfile {
        Some(f) => f.to_path_buf(),
        None => authfile::default_login_file()?,
    };
    let verified = check(&registry, username, password, connection)?;
    let saved = authfile::save(&file, &registry, username, password)?;
    Ok(LoggedIn {
        registry,
        file: saved.file,
        helper: saved.helper,
        verified,
    })
}

/// Removes the saved login for `registry` from `authfile` (else the default file) and from
/// the credential helper it names.
pub fn logout(registry: &str, authfile: Option<&Path>) -> Result<LoggedOut, OciError> {
    let registry = registry_name(registry)?;
    let file = match authfile {
        Some(f) => f.to_path_buf(),
        None => authfile::default_login_file()?,
    };
    let (saved, found) = authfile::erase(&file, &registry)?;
    if !found {
        return Err(OciError::Usage(format!(
            "not logged in to {registry} (nothing saved for it in {})",
            file.display()
        )));
    }
    Ok(LoggedOut {
        registry,
        file: saved.file,
        helper: saved.helper,
    })
}

/// True when the registry accepted the credentials, false when it asks for none.
fn check(
    registry: &str,
    username: &str,
    password: &str,
    conn: &Connection,
) -> Result<bool, OciError> {
    let transport = conn.transport(registry);
    if let (Transport::PlainHttp, Some(warn)) = (transport, conn.warn) {
        warn(&format!(
            "the password of {username} for {registry} goes over plain HTTP, unencrypted{}",
            if crate::is_loopback(registry) {
                " (loopback: it stays on this machine)"
            } else {
                "; anyone on the path can read it (drop --plain-http if the registry has TLS)"
            }
        ));
    }
    let scheme = match transport {
        Transport::PlainHttp => "http",
        Transport::Https | Transport::HttpsNoVerify => "https",
    };
    let unreachable = |e: reqwest::Error| {
        let cause = crate::registry::root_cause(&e);
        OciError::Unreachable {
            registry: registry.to_string(),
            hint: crate::registry::unreachable_hint(transport, &cause),
            cause,
        }
    };
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(transport == Transport::HttpsNoVerify)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("ebpfctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(unreachable)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OciError::Runtime)?;
    let denied = || OciError::Unauthorized {
        reference: registry.to_string(),
    };
    let registry_err = |msg: String| OciError::Registry {
        reference: registry.to_string(),
        msg,
    };
    rt.block_on(async {
        let base = format!("{scheme}://{registry}/v2/");
        let r = client.get(&base).send().await.map_err(unreachable)?;
        let status = r.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(false);
        }
        if status != 401 {
            let body = r.text().await.unwrap_or_default();
            return Err(registry_err(format!(
                "HTTP {status} from /v2/: {}",
                body.split_whitespace().collect::<Vec<_>>().join(" ")
            )));
        }
        let challenge = r
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (scheme, params) = parse_challenge(&challenge);
        let r = if scheme.eq_ignore_ascii_case("bearer") {
            let realm = params
                .iter()
                .find(|(k, _)| k == "realm")
                .map(|(_, v)| v.clone())
                .ok_or_else(|| {
                    registry_err(format!("a Bearer challenge without realm: {challenge}"))
                })?;
            let mut query: Vec<(&str, &str)> = vec![("account", username)];
            if let Some((_, s)) = params.iter().find(|(k, _)| k == "service") {
                query.push(("service", s));
            }
            client
                .get(&realm)
                .query(&query)
                .basic_auth(username, Some(password))
                .send()
                .await
                .map_err(unreachable)?
        } else {
            client
                .get(&base)
                .basic_auth(username, Some(password))
                .send()
                .await
                .map_err(unreachable)?
        };
        match r.status().as_u16() {
            200..=299 => Ok(true),
            401 | 403 => Err(denied()),
            s => Err(registry_err(format!(
                "HTTP {s} while checking the credentials"
            ))),
        }
    })
}

/// `Bearer realm="x",service="y"` → ("Bearer", [("realm","x"), ("service","y")]).
fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, tail) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.push((k, v.to_string()));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_string(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="x""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p[0], ("realm".into(), "https://auth.example/token".into()));
        assert_eq!(p[1], ("service".into(), "registry.example".into()));
        let (s, p) = parse_challenge(r#"Basic realm="test""#);
        assert_eq!(s, "Basic");
        assert_eq!(p, vec![("realm".into(), "test".into())]);
    }
}
