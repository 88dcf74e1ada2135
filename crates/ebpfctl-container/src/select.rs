//! `--container NAME|ID`, `--pod NAME`, `--namespace NS`: which containers to show.
use crate::Container;

/// A choice of containers. Every given part must hold; several `containers` are
/// alternatives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Names (the runtime's or the Kubernetes container name) or ids (a prefix will do).
    pub containers: Vec<String>,
    pub pod: Option<String>,
    pub namespace: Option<String>,
}

/// Whether a task passes a [`Selector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Yes,
    No,
    /// Its container's names are not known yet (the runtime has not answered).
    Unknown,
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.pod.is_none() && self.namespace.is_none()
    }

    /// The verdict for a task in container `c` (`None`: not in a container).
    pub fn verdict(&self, c: Option<&Container>) -> Verdict {
        if self.is_empty() {
            return Verdict::Yes;
        }
        let Some(c) = c else { return Verdict::No };
        if c.monitor {
            return Verdict::No;
        }
        let mut unknown = false;
        let mut check = |known: Option<bool>| match known {
            Some(true) => true,
            Some(false) => false,
            None => {
                unknown = true;
                true
            }
        };
        let field = |v: &Option<String>, want: &str| match v {
            Some(v) => Some(v == want),
            None if c.resolved => Some(false),
            None => None,
        };
        if !self.containers.is_empty() {
            let hit = self.containers.iter().any(|w| {
                !w.is_empty()
                    && (c.id.starts_with(w.as_str())
                        || c.name.as_deref() == Some(w)
                        || c.container.as_deref() == Some(w))
            });
            let known = if hit || c.resolved { Some(hit) } else { None };
            if !check(known) {
                return Verdict::No;
            }
        }
        if let Some(p) = &self.pod {
            if !check(field(&c.pod, p)) {
                return Verdict::No;
            }
        }
        if let Some(n) = &self.namespace {
            if !check(field(&c.namespace, n)) {
                return Verdict::No;
            }
        }
        if unknown {
            Verdict::Unknown
        } else {
            Verdict::Yes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(resolved: bool) -> Container {
        Container {
            id: "4f8a3bd9c2e1".repeat(5) + "abcd",
            name: resolved.then(|| "web".to_string()),
            pod: resolved.then(|| "shop-0".to_string()),
            namespace: resolved.then(|| "shop".to_string()),
            resolved,
            ..Container::default()
        }
    }

    #[test]
    fn verdicts() {
        let s = |containers: &[&str], pod: Option<&str>, ns: Option<&str>| Selector {
            containers: containers.iter().map(|x| x.to_string()).collect(),
            pod: pod.map(String::from),
            namespace: ns.map(String::from),
        };
        assert_eq!(Selector::default().verdict(None), Verdict::Yes);
        assert_eq!(s(&["web"], None, None).verdict(None), Verdict::No);
        assert_eq!(
            s(&["web"], None, None).verdict(Some(&c(true))),
            Verdict::Yes
        );
        assert_eq!(
            s(&["4f8a3b"], None, None).verdict(Some(&c(false))),
            Verdict::Yes,
            "by id now"
        );
        assert_eq!(
            s(&["web"], None, None).verdict(Some(&c(false))),
            Verdict::Unknown
        );
        assert_eq!(s(&["db"], None, None).verdict(Some(&c(true))), Verdict::No);
        assert_eq!(
            s(&["db", "web"], None, None).verdict(Some(&c(true))),
            Verdict::Yes
        );
        assert_eq!(
            s(&[], Some("shop-0"), Some("shop")).verdict(Some(&c(true))),
            Verdict::Yes
        );
        assert_eq!(
            s(&[], Some("shop-0"), Some("other")).verdict(Some(&c(true))),
            Verdict::No
        );
        assert_eq!(
            s(&[], None, Some("shop")).verdict(Some(&c(false))),
            Verdict::Unknown
        );
        let mut m = c(true);
        m.monitor = true;
        assert_eq!(
            s(&["web"], None, None).verdict(Some(&m)),
            Verdict::No,
            "conmon is not the container"
        );
    }
}
