//! deploy/kubernetes/, offline: every overlay renders with `kubectl kustomize`, every object
//! validates against the Kubernetes schema (`kubernetes-validate --strict`; the
//! ServiceMonitor, a prometheus-operator CRD, is checked against the Service here instead),
//! the objects agree with each other (ports, selectors, ConfigMap keys, volumes), every
//! container's command line is accepted by this ebpfctl, and each container has the
//! capabilities the tool was measured to need (tests/ship.rs), no more.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn overlays() -> Vec<PathBuf> {
    let dir = repo().join("deploy/kubernetes/overlays");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("kustomization.yaml").exists())
        .collect();
    v.sort();
    assert!(
        v.len() >= 2,
        "expected overlays minimal and full, got {v:?}"
    );
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// `kubectl kustomize DIR`: the YAML text and its objects as JSON.
fn render(dir: &Path) -> (String, Vec<Value>) {
    let o = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .expect("kubectl (with its built-in kustomize) is needed by this test");
    assert!(
        o.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let yaml = String::from_utf8(o.stdout).unwrap();
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml\nfor d in yaml.safe_load_all(sys.stdin):\n    d and print(json.dumps(d))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed by this test");
    use std::io::Write;
    py.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "YAML to JSON (PyYAML, installed with kubernetes-validate): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (yaml, parse_lines(&out.stdout))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let v = of_kind(docs, kind);
    assert_eq!(v.len(), 1, "expected one {kind}");
    v[0]
}

fn containers(docs: &[Value]) -> Vec<&Value> {
    one(docs, "DaemonSet")["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn every_overlay_renders_and_validates_against_the_schema() {
    for dir in overlays() {
        let (yaml, docs) = render(&dir);
        let file = tmp().join(format!("deploy-{}-{}.yaml", name(&dir), std::process::id()));
        std::fs::write(&file, &yaml).unwrap();
        let crds = of_kind(&docs, "ServiceMonitor").len();
        assert_eq!(crds, 1, "{}: one ServiceMonitor", name(&dir));
        // The oldest Kubernetes the manifests are meant for, and kubernetes-validate's newest.
        for version in [Some("1.28.0"), None] {
            let mut cmd = Command::new("kubernetes-validate");
            cmd.arg("--strict");
            if let Some(v) = version {
                cmd.args(["-k", v]);
            }
            let o = cmd
                .arg(&file)
                .stdin(Stdio::null())
                .output()
                .expect("kubernetes-validate (pip install kubernetes-validate; scripts/setup.sh --test) is needed by this test");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(o.status.success(), "{}: {text}", name(&dir));
            let passed = text
                .lines()
                .filter(|l| l.contains(" passed for resource "))
                .count();
            assert_eq!(
                passed,
                docs.len() - crds,
                "{}: not every object validated:\n{text}",
                name(&dir)
            );
            // The only object without a schema is the ServiceMonitor, skipped by name.
            for l in text
                .lines()
                .filter(|l| !l.contains(" passed for resource "))
            {
                assert!(
                    l.contains("Couldn't find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1"),
                    "{}: {l}",
                    name(&dir)
                );
            }
        }
        let _ = std::fs::remove_file(&file);
    }
}

#[test]
fn objects_agree_with_each_other() {
    for dir in overlays() {
        let n = name(&dir);
        let (_, docs) = render(&dir);
        let ds = one(&docs, "DaemonSet");
        let pod = &ds["spec"]["template"];
        let svc = one(&docs, "Service");
        let sm = one(&docs, "ServiceMonitor");
        let cm = one(&docs, "ConfigMap");
        let ns = one(&docs, "Namespace")["metadata"]["name"].clone();
        for d in &docs {
            if d["kind"] != "Namespace" {
                assert_eq!(
                    d["metadata"]["namespace"], ns,
                    "{n}: {} outside {ns}",
                    d["kind"]
                );
            }
        }
        assert_eq!(pod["spec"]["hostPID"], true, "{n}: host PID namespace");
        assert_eq!(
            pod["spec"]["tolerations"],
            serde_json::json!([{"operator": "Exists"}]),
            "{n}: every node"
        );

        // Selectors: the DaemonSet's pods are what the Service selects, the Service is what
        // the ServiceMonitor selects.
        let pod_labels = pod["metadata"]["labels"].as_object().unwrap();
        for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
            assert_eq!(pod_labels.get(k), Some(v), "{n}: Service selects {k}={v}");
        }
        for (k, v) in ds["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(pod_labels.get(k), Some(v), "{n}: DaemonSet selects {k}={v}");
        }
        let svc_labels = svc["metadata"]["labels"].as_object().unwrap();
        for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
            assert_eq!(
                svc_labels.get(k),
                Some(v),
                "{n}: ServiceMonitor selects {k}={v}"
            );
        }

        // Ports: every container port is a Service port and a ServiceMonitor endpoint.
        let container_ports: BTreeSet<String> = containers(&docs)
            .iter()
            .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        let svc_ports: BTreeSet<String> = svc["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(
                    p["name"], p["targetPort"],
                    "{n}: Service port {p} targets its namesake"
                );
                p["name"].as_str().unwrap().to_string()
            })
            .collect();
        let sm_ports: BTreeSet<String> = sm["spec"]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["port"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            container_ports, svc_ports,
            "{n}: container ports vs Service ports"
        );
        assert_eq!(
            svc_ports, sm_ports,
            "{n}: Service ports vs ServiceMonitor endpoints"
        );
        let annotated = svc["metadata"]["annotations"]["prometheus.io/port"]
            .as_str()
            .unwrap();
        assert!(
            svc["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"].as_u64().map(|v| v.to_string()).as_deref() == Some(annotated)),
            "{n}: prometheus.io/port {annotated} is not a Service port"
        );

        // ConfigMap keys and volumes the containers use exist.
        let volumes: BTreeSet<String> = pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect();
        for c in containers(&docs) {
            for e in c["env"].as_array().cloned().unwrap_or_default() {
                let r = &e["valueFrom"]["configMapKeyRef"];
                if r.is_object() {
                    assert_eq!(
                        r["name"], cm["metadata"]["name"],
                        "{n}: {} refers to another ConfigMap",
                        c["name"]
                    );
                    assert!(
                        cm["data"][r["key"].as_str().unwrap()].is_string(),
                        "{n}: ConfigMap has no {}",
                        r["key"]
                    );
                }
            }
            for m in c["volumeMounts"].as_array().cloned().unwrap_or_default() {
                assert!(
                    volumes.contains(m["name"].as_str().unwrap()),
                    "{n}: no volume {}",
                    m["name"]
                );
            }
            assert!(
                c["image"].as_str().unwrap().contains(':'),
                "{n}: {} image has no tag",
                c["name"]
            );
        }
    }
}

/// `$(VAR)` in an argument, expanded the way the kubelet does from the container's env.
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = arg.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    assert!(!out.contains("$("), "unexpanded variable in {arg:?}");
    out
}

fn container_env(c: &Value, cm: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for e in c["env"].as_array().cloned().unwrap_or_default() {
        let k = e["name"].as_str().unwrap().to_string();
        let v = match e["value"].as_str() {
            Some(v) => v.to_string(),
            None => cm["data"][e["valueFrom"]["configMapKeyRef"]["key"].as_str().unwrap()]
                .as_str()
                .unwrap()
                .to_string(),
        };
        env.insert(k, v);
    }
    env
}

fn check_args(args: &[String], env: &BTreeMap<String, String>) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .envs(env)
        .env("EBPFCTL_CHECK_ARGS", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn every_command_line_is_accepted_by_ebpfctl() {
    let mut tools = BTreeSet::new();
    for dir in overlays() {
        let (_, docs) = render(&dir);
        let cm = one(&docs, "ConfigMap");
        for c in containers(&docs) {
            assert!(
                c["command"].is_null(),
                "the image's entrypoint runs ebpfctl"
            );
            let env = container_env(c, cm);
            let args: Vec<String> = strings(&c["args"])
                .iter()
                .map(|a| expand(a, &env))
                .collect();
            let o = check_args(&args, &env);
            assert!(
                o.status.success(),
                "{}: container {}: ebpfctl {args:?} is refused:\n{}",
                name(&dir),
                c["name"],
                String::from_utf8_lossy(&o.stderr)
            );
            tools.insert(args[0].clone());
        }
    }
    assert_eq!(
        tools,
        ["execsnoop", "observe", "opensnoop", "run"]
            .map(String::from)
            .into(),
        "the overlays run every tool and a probe"
    );
    // The check is the real parser: a flag it does not know is refused.
    let o = check_args(
        &["execsnoop".into(), "--no-such-flag".into()],
        &BTreeMap::new(),
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn containers_have_the_measured_capabilities() {
    // What each tool needs (tests/ship.rs measures it in containers; docs/deploy.md).
    let need: BTreeMap<&str, &[&str]> = [
        ("execsnoop", &["BPF", "PERFMON", "SYS_PTRACE"][..]),
        ("opensnoop", &["BPF", "PERFMON"][..]),
        ("observe", &["SYS_ADMIN", "SYS_PTRACE"][..]),
        ("run", &["BPF", "PERFMON"][..]),
    ]
    .into();
    for dir in overlays() {
        let (_, docs) = render(&dir);
        for c in containers(&docs) {
            let tool = strings(&c["args"])[0].clone();
            let sc = &c["securityContext"];
            assert!(
                sc["privileged"].is_null() || sc["privileged"] == false,
                "{tool}: privileged"
            );
            assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{tool}");
            assert_eq!(
                strings(&sc["capabilities"]["add"]),
                need[tool.as_str()],
                "{}: {tool}'s capabilities",
                name(&dir)
            );
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{tool}");
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{tool}");
            let mounts: BTreeSet<String> = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["mountPath"].as_str().unwrap().to_string())
                .collect();
            for p in ["/sys/kernel/tracing", "/sys/kernel/btf"] {
                assert!(mounts.contains(p), "{tool}: {p} not mounted");
            }
            let res = &c["resources"];
            assert!(
                res["requests"]["memory"].is_string() && res["limits"]["memory"].is_string(),
                "{tool}: resources"
            );
        }
    }
}
