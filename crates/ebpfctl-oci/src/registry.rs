//! oci-client behind a synchronous session: one current-thread runtime, one client, one
//! reference; its errors mapped to [`OciError`] with the root cause kept on one line.
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;

use crate::format::{self, Descriptor};
use crate::{Auth, Connection, OciError, Transport};

/// A parsed image reference.
pub(crate) struct Ref(oci_client::Reference);

impl Ref {
    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }
    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }
    pub fn whole(&self) -> String {
        self.0.whole()
    }
    /// True when the reference's registry is exactly `host` (not a docker.io default).
    pub fn registry_is(&self, host: &str) -> bool {
        self.0.registry() == host
    }
}

pub(crate) fn parse_reference(s: &str) -> Result<Ref, OciError> {
    let bad = |msg: String| OciError::BadReference {
        reference: s.to_string(),
        msg,
    };
    if s.is_empty() {
        return Err(bad("empty".to_string()));
    }
    let r: oci_client::Reference = s.parse().map_err(|e| bad(format!("{e}")))?;
    Ok(Ref(r))
}

pub(crate) struct Session {
    rt: tokio::runtime::Runtime,
    client: oci_client::Client,
    reference: oci_client::Reference,
    auth: RegistryAuth,
    transport: Transport,
}

impl Session {
    /// One client for the transport the connection settings pick ([`Connection::transport`]);
    /// nothing is retried over another one. Says so through `conn.warn` when credentials are
    /// about to travel over plain HTTP.
    pub fn new(reference: &Ref, conn: &Connection) -> Result<Session, OciError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(OciError::Runtime)?;
        let transport = conn.transport(reference.0.registry());
        let client = client(&reference.0, transport)?;
        let auth = match &conn.auth {
            Auth::Anonymous => match crate::authfile::lookup(reference.0.registry()) {
                Some((user, password)) => RegistryAuth::Basic(user, password),
                None => RegistryAuth::Anonymous,
            },
            Auth::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
        };
        if let (Transport::PlainHttp, RegistryAuth::Basic(user, _), Some(warn)) =
            (transport, &auth, conn.warn)
        {
            let registry = reference.0.registry();
            warn(&format!(
                "the password of {user} for {registry} goes over plain HTTP, unencrypted{}",
                if crate::is_loopback(registry) {
                    " (loopback: it stays on this machine)"
                } else {
                    "; anyone on the path can read it (drop --plain-http if the registry has TLS)"
                }
            ));
        }
        Ok(Session {
            rt,
            client,
            reference: reference.0.clone(),
            auth,
            transport,
        })
    }

    /// Authenticates (token exchange when the registry asks for it); also the first contact,
    /// so an unreachable registry fails here.
    pub fn auth(&mut self, op: oci_client::RegistryOperation) -> Result<(), OciError> {
        self.try_auth(op).map_err(|e| self.map_err(e))
    }

    fn try_auth(&self, op: oci_client::RegistryOperation) -> Result<(), OciDistributionError> {
        self.rt
            .block_on(async {
                self.client
                    .store_auth_if_needed(self.reference.resolve_registry(), &self.auth)
                    .await;
                self.client.auth(&self.reference, &self.auth, op).await
            })
            .map(|_| ())
    }

    pub fn push_blob(&self, data: Vec<u8>, digest: &str) -> Result<(), OciError> {
        let exists = self
            .rt
            .block_on(self.client.blob_exists(&self.reference, digest))
            .unwrap_or(false);
        if exists {
            return Ok(());
        }
        self.rt
            .block_on(self.client.push_blob(&self.reference, data, digest))
            .map(|_| ())
            .map_err(|e| self.map_err(e))
    }

    pub fn push_manifest(&self, body: Vec<u8>, media_type: &'static str) -> Result<(), OciError> {
        self.rt
            .block_on(self.client.push_manifest_raw(
                &self.reference,
                body,
                http::HeaderValue::from_static(media_type),
            ))
            .map(|_| ())
            .map_err(|e| self.map_err(e))
    }

    /// The manifest's bytes and digest. Every kind is accepted so that a wrong one gets a
    /// precise message rather than a content-negotiation failure.
    pub fn pull_manifest(&mut self) -> Result<(Vec<u8>, String), OciError> {
        self.auth(oci_client::RegistryOperation::Pull)?;
        let accept = [
            format::OCI_MANIFEST,
            format::OCI_INDEX,
            format::DOCKER_MANIFEST,
            format::DOCKER_LIST,
        ];
        let (raw, digest) = self
            .rt
            .block_on(
                self.client
                    .pull_manifest_raw(&self.reference, &self.auth, &accept),
            )
            .map_err(|e| self.map_err(e))?;
        // A digest reference pins the bytes: check them ourselves.
        if let Some(want) = self.reference.digest() {
            let got = format::sha256_digest(&raw);
            if want.starts_with("sha256:") && got != want {
                return Err(OciError::DigestMismatch {
                    reference: self.reference.whole(),
                    what: "manifest",
                    expected: want.to_string(),
                    actual: got,
                });
            }
        }
        Ok((raw.to_vec(), digest))
    }

    pub fn pull_blob(&self, d: &Descriptor) -> Result<Vec<u8>, OciError> {
        let desc = OciDescriptor {
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size as i64,
            ..Default::default()
        };
        let mut out = Capped {
            buf: Vec::with_capacity(d.size as usize),
            cap: d.size as usize,
        };
        self.rt
            .block_on(self.client.pull_blob(&self.reference, &desc, &mut out))
            .map_err(|e| match e {
                OciDistributionError::IoError(err)
                    if err.kind() == std::io::ErrorKind::FileTooLarge =>
                {
                    OciError::DigestMismatch {
                        reference: self.reference.whole(),
                        what: "blob",
                        expected: format!("{} ({} bytes)", d.digest, d.size),
                        actual: "more bytes than the manifest says".to_string(),
                    }
                }
                OciDistributionError::DigestError(err) => OciError::DigestMismatch {
                    reference: self.reference.whole(),
                    what: "blob",
                    expected: d.digest.clone(),
                    actual: err.to_string(),
                },
                e => self.map_err(e),
            })?;
        Ok(out.buf)
    }

    fn map_err(&self, e: OciDistributionError) -> OciError {
        let reference = self.reference.whole();
        match e {
            OciDistributionError::ImageManifestNotFoundError(_) => OciError::NotFound { reference },
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => {
                OciError::Unauthorized { reference }
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    OciError::NotFound { reference }
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    OciError::Unauthorized { reference }
                } else {
                    OciError::Registry {
                        reference,
                        msg: envelope_text(&envelope),
                    }
                }
            }
            OciDistributionError::ServerError { code: 404, .. } => OciError::NotFound { reference },
            OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => OciError::Unauthorized { reference },
            OciDistributionError::ServerError { code, message, .. } => {
                // Some paths hand back the registry's JSON error envelope unparsed.
                let msg = match serde_json::from_str::<oci_client::errors::OciEnvelope>(&message) {
                    Ok(env) => envelope_text(&env),
                    Err(_) => one_line(&message),
                };
                // Go's TLS servers answer plain HTTP with a 400 saying so.
                let hint = if self.transport == Transport::PlainHttp && msg.contains("HTTPS") {
                    " (plain HTTP reached a registry that speaks HTTPS: pass --plain-http=false, or --tls-no-verify for a self-signed certificate)"
                } else {
                    ""
                };
                OciError::Registry {
                    reference,
                    msg: format!("HTTP {code}: {msg}{hint}"),
                }
            }
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                let cause = root_cause(&e);
                let hint = unreachable_hint(self.transport, &cause);
                OciError::Unreachable {
                    registry: self.reference.resolve_registry().to_string(),
                    cause,
                    hint,
                }
            }
            e => OciError::Registry {
                reference,
                msg: root_cause(&e),
            },
        }
    }
}

/// What to try when the first contact failed, from the transport used and the cause.
fn unreachable_hint(transport: Transport, cause: &str) -> &'static str {
    match transport {
        // rustls met something other than a TLS record: the server speaks plain HTTP.
        Transport::Https | Transport::HttpsNoVerify if cause.contains("InvalidContentType") => {
            " (the registry answered without TLS: if it has no HTTPS, pass --plain-http)"
        }
        Transport::Https if cause.contains("certificate") => {
            " (its certificate is not trusted: add its CA with SSL_CERT_FILE, or pass --tls-no-verify to skip the check)"
        }
        Transport::Https => {
            " (for a registry without TLS pass --plain-http; for a self-signed certificate --tls-no-verify)"
        }
        Transport::HttpsNoVerify | Transport::PlainHttp => "",
    }
}

fn client(
    reference: &oci_client::Reference,
    transport: Transport,
) -> Result<oci_client::Client, OciError> {
    let config = ClientConfig {
        protocol: match transport {
            Transport::PlainHttp => ClientProtocol::Http,
            Transport::Https | Transport::HttpsNoVerify => ClientProtocol::Https,
        },
        accept_invalid_certificates: transport == Transport::HttpsNoVerify,
        use_monolithic_push: true,
        platform_resolver: None,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        user_agent: concat!("ebpfctl/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    };
    oci_client::Client::try_from(config).map_err(|e| OciError::Unreachable {
        registry: reference.resolve_registry().to_string(),
        cause: format!("cannot set up the HTTP client: {}", root_cause(&e)),
        hint: "",
    })
}

/// A sink that refuses to grow past the size the manifest declared, so a misbehaving
/// registry cannot make us buffer without end (the digest check comes only at the end).
struct Capped {
    buf: Vec<u8>,
    cap: usize,
}

impl tokio::io::AsyncWrite for Capped {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.buf.len() + data.len() > self.cap {
            return std::task::Poll::Ready(Err(std::io::ErrorKind::FileTooLarge.into()));
        }
        self.buf.extend_from_slice(data);
        std::task::Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// `CODE: message; ...` of a registry's error envelope.
fn envelope_text(envelope: &oci_client::errors::OciEnvelope) -> String {
    envelope
        .errors
        .iter()
        .map(|e| {
            let code = serde_json::to_value(&e.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            if e.message.is_empty() {
                code
            } else {
                format!("{code}: {}", one_line(&e.message))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The error and its sources on one line, skipping sources a message already contains.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let msg = one_line(&err.to_string());
        if !msg.is_empty() && !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
        cur = err.source();
    }
    out
}

fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn capped_sink_refuses_extra_bytes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut c = Capped {
            buf: Vec::new(),
            cap: 3,
        };
        rt.block_on(c.write_all(b"abc")).unwrap();
        let e = rt.block_on(c.write_all(b"d")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert_eq!(c.buf, b"abc");
    }

    #[test]
    fn envelope_on_one_line() {
        let env: oci_client::errors::OciEnvelope = serde_json::from_str(
            r#"{"errors":[{"code":"MANIFEST_INVALID","message":"bad\nthing"},{"code":"WEIRD","message":""}]}"#,
        )
        .unwrap();
        assert_eq!(envelope_text(&env), "MANIFEST_INVALID: bad thing; WEIRD");
    }
}
