//! The `container` object of JSON events (docs/containers.md), rendered once per container.
use crate::Container;

/// `{"runtime":"podman","id":"…","name":"web"}`; Kubernetes containers add `pod`,
/// `namespace`, `pod_uid`, `container`. Unknown fields are left out.
pub fn render(c: &Container) -> Vec<u8> {
    serde_json::to_vec(c).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Runtime;

    #[test]
    fn fields() {
        let c = Container {
            runtime: Some(Runtime::Crio),
            id: "abc".into(),
            name: Some("app".into()),
            pod: Some("web-0".into()),
            namespace: Some("shop".into()),
            pod_uid: Some("0b7c".into()),
            container: Some("app".into()),
            ..Container::default()
        };
        let v: serde_json::Value = serde_json::from_slice(&render(&c)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"runtime":"cri-o","id":"abc","name":"app","pod":"web-0",
                "namespace":"shop","pod_uid":"0b7c","container":"app"})
        );
        let bare = Container {
            id: "x".into(),
            ..Container::default()
        };
        assert_eq!(render(&bare), br#"{"id":"x"}"#);
    }
}
