//! containerd's gRPC API: `Containers.Get` for a container's labels.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::GetContainerRequest;
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request};

use super::Meta;
use crate::Runtime;

/// After a failed connection, wait this long before the next try.
const RETRY: Duration = Duration::from_secs(2);

/// A lazily connected client; synchronous (its own current-thread runtime).
pub struct Containerd {
    socket: PathBuf,
    timeout: Duration,
    rt: Option<tokio::runtime::Runtime>,
    client: Option<ContainersClient<Channel>>,
    failed_at: Option<Instant>,
}

impl Containerd {
    pub fn new(socket: PathBuf, timeout: Duration) -> Containerd {
        Containerd {
            socket,
            timeout,
            rt: None,
            client: None,
            failed_at: None,
        }
    }

    fn connect(&mut self) -> bool {
        if self.client.is_some() {
            return true;
        }
        if self.failed_at.is_some_and(|t| t.elapsed() < RETRY) || !self.socket.exists() {
            return false;
        }
        if self.rt.is_none() {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => self.rt = Some(rt),
                Err(_) => return false,
            }
        }
        let rt = self.rt.as_ref().expect("built above");
        let socket = self.socket.clone();
        let timeout = self.timeout;
        let ch = rt.block_on(async move {
            tokio::time::timeout(timeout, containerd_client::connect(socket)).await
        });
        match ch {
            Ok(Ok(ch)) => {
                self.client = Some(ContainersClient::new(ch));
                self.failed_at = None;
                true
            }
            _ => {
                self.failed_at = Some(Instant::now());
                false
            }
        }
    }

    /// The container `id` of namespace `ns`: its labels (Kubernetes fields) and a name
    /// (the Kubernetes container name, else the id). `None`: containerd does not have it, or
    /// cannot be reached.
    pub fn get(&mut self, ns: &str, id: &str) -> Option<Meta> {
        if !self.connect() {
            return None;
        }
        let mut req = Request::new(GetContainerRequest { id: id.to_string() });
        req.metadata_mut()
            .insert("containerd-namespace", ns.parse().ok()?);
        let mut client = self.client.clone()?;
        let timeout = self.timeout;
        let rt = self.rt.as_ref()?;
        let resp = rt.block_on(async move { tokio::time::timeout(timeout, client.get(req)).await });
        let c = match resp {
            Ok(Ok(r)) => r.into_inner().container?,
            Ok(Err(status)) => {
                if status.code() != Code::NotFound {
                    // The connection may be broken: reconnect next time.
                    self.client = None;
                }
                return None;
            }
            Err(_) => {
                self.client = None;
                return None;
            }
        };
        let mut m = Meta {
            runtime: Some(Runtime::Containerd),
            ..Meta::default()
        };
        m.kubernetes_from(&c.labels);
        m.name = Some(m.container.clone().unwrap_or_else(|| c.id.clone()));
        Some(m)
    }
}
