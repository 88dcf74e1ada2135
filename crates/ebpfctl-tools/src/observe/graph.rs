//! The service graph printed at exit: nodes are services (processes), edges are calls with
//! counts, error counts and p50/p99 latency.
//!
//! Edges come from client events: caller service → the server that answered for that host.
//! A host is resolved to a service when an observed server received requests with that Host
//! header; otherwise the node is the host itself (an external or unobserved server).
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::event::{Kind, Request};

/// Latency samples kept per edge; beyond it, samples replace older ones round-robin.
const MAX_SAMPLES: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    Json,
}

#[derive(Default)]
struct EdgeStats {
    count: u64,
    errors: u64,
    samples: Vec<u64>,
}

/// Accumulates requests into a service graph.
#[derive(Default)]
pub struct Graph {
    services: BTreeSet<String>,
    host_to_service: HashMap<String, String>,
    edges: BTreeMap<(String, String), EdgeStats>,
}

#[derive(Debug, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub count: u64,
    pub errors: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
}

#[derive(Debug, Serialize)]
pub struct GraphView {
    pub nodes: Vec<String>,
    pub edges: Vec<Edge>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Graph {
    pub fn add(&mut self, r: &Request) {
        self.services.insert(r.service.clone());
        match r.kind {
            Kind::Server => {
                if !r.host.is_empty() {
                    self.host_to_service
                        .insert(r.host.to_ascii_lowercase(), r.service.clone());
                }
            }
            Kind::Client => {
                let to = if r.host.is_empty() {
                    "?".to_string()
                } else {
                    r.host.to_ascii_lowercase()
                };
                let e = self.edges.entry((r.service.clone(), to)).or_default();
                e.count += 1;
                if r.error.is_some() || r.status >= 500 {
                    e.errors += 1;
                }
                if e.samples.len() < MAX_SAMPLES {
                    e.samples.push(r.duration_ns);
                } else {
                    let i = (e.count as usize) % MAX_SAMPLES;
                    e.samples[i] = r.duration_ns;
                }
            }
        }
    }

    /// Nodes and edges with hosts resolved to services.
    pub fn view(&self) -> GraphView {
        let mut nodes: BTreeSet<String> = self.services.clone();
        let mut merged: BTreeMap<(String, String), (u64, u64, Vec<u64>)> = BTreeMap::new();
        for ((from, host), st) in &self.edges {
            let to = self
                .host_to_service
                .get(host)
                .cloned()
                .unwrap_or_else(|| host.clone());
            nodes.insert(to.clone());
            let m = merged.entry((from.clone(), to)).or_default();
            m.0 += st.count;
            m.1 += st.errors;
            m.2.extend_from_slice(&st.samples);
        }
        let edges = merged
            .into_iter()
            .map(|((from, to), (count, errors, mut s))| {
                s.sort_unstable();
                Edge {
                    from,
                    to,
                    count,
                    errors,
                    p50_ns: percentile(&s, 0.50),
                    p99_ns: percentile(&s, 0.99),
                }
            })
            .collect();
        GraphView {
            nodes: nodes.into_iter().collect(),
            edges,
        }
    }

    pub fn render(&self, format: GraphFormat) -> String {
        let v = self.view();
        let ms = |ns: u64| format!("{:.2}ms", ns as f64 / 1e6);
        match format {
            // One line, so it can follow `-o json` lines on the same stream.
            GraphFormat::Json => serde_json::to_string(&v).unwrap_or_default() + "\n",
            GraphFormat::Dot => {
                let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
                let mut out =
                    String::from("digraph services {\n  rankdir=LR;\n  node [shape=box];\n");
                for n in &v.nodes {
                    out += &format!("  {};\n", q(n));
                }
                for e in &v.edges {
                    let label = format!(
                        "{} calls, {} errors\\np50 {} p99 {}",
                        e.count,
                        e.errors,
                        ms(e.p50_ns),
                        ms(e.p99_ns)
                    );
                    out += &format!("  {} -> {} [label=\"{label}\"];\n", q(&e.from), q(&e.to));
                }
                out + "}\n"
            }
            GraphFormat::Mermaid => {
                let ids: HashMap<&str, String> = v
                    .nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.as_str(), format!("n{i}")))
                    .collect();
                let esc = |s: &str| s.replace('"', "#quot;");
                let mut out = String::from("flowchart LR\n");
                for n in &v.nodes {
                    out += &format!("  {}[\"{}\"]\n", ids[n.as_str()], esc(n));
                }
                for e in &v.edges {
                    out += &format!(
                        "  {} -->|\"{} calls, {} errors, p50 {}, p99 {}\"| {}\n",
                        ids[e.from.as_str()],
                        e.count,
                        e.errors,
                        ms(e.p50_ns),
                        ms(e.p99_ns),
                        ids[e.to.as_str()]
                    );
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: Kind, service: &str, host: &str, status: u16, error: bool, ns: u64) -> Request {
        Request::for_test(kind, service, host, status, error, ns)
    }

    #[test]
    fn renders() {
        let mut g = Graph::default();
        g.add(&req(
            Kind::Server,
            "srv@api",
            "127.0.0.1:9091",
            200,
            false,
            500,
        ));
        g.add(&req(
            Kind::Client,
            "cli@web",
            "127.0.0.1:9091",
            200,
            false,
            1_000_000,
        ));
        g.add(&req(
            Kind::Client,
            "cli@web",
            "127.0.0.1:9091",
            503,
            false,
            3_000_000,
        ));
        g.add(&req(
            Kind::Client,
            "cli@web",
            "127.0.0.1:1",
            0,
            true,
            10_000,
        ));
        let v: serde_json::Value = serde_json::from_str(&g.render(GraphFormat::Json)).unwrap();
        assert_eq!(
            v["nodes"],
            serde_json::json!(["127.0.0.1:1", "cli@web", "srv@api"])
        );
        let e = &v["edges"][1];
        assert_eq!(
            (e["from"].as_str(), e["to"].as_str()),
            (Some("cli@web"), Some("srv@api"))
        );
        assert_eq!(
            (e["count"].as_u64(), e["errors"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(
            (e["p50_ns"].as_u64(), e["p99_ns"].as_u64()),
            (Some(1_000_000), Some(3_000_000))
        );
        let m = g.render(GraphFormat::Mermaid);
        assert!(m.starts_with("flowchart LR\n"), "{m}");
        assert!(
            m.contains("n1 -->|\"2 calls, 1 errors, p50 1.00ms, p99 3.00ms\"| n2"),
            "{m}"
        );
        let d = g.render(GraphFormat::Dot);
        assert!(
            d.contains("\"cli@web\" -> \"127.0.0.1:1\" [label=\"1 calls, 1 errors"),
            "{d}"
        );
    }

    #[test]
    fn percentiles() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&s, 0.5), 50);
        assert_eq!(percentile(&s, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
