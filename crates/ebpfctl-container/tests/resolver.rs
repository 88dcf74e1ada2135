//! Root tests on real cgroups of every shape, with real processes in them: the resolver
//! finds each container from the process's cgroup id, by file handle and by walking, and
//! takes names from runtime state files laid out as the runtimes write them.
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebpfctl_container::resolver::Slot;
use ebpfctl_container::runtime::Paths;
use ebpfctl_container::testing::Tree;
use ebpfctl_container::{CgroupFs, Resolver, ResolverOptions, Runtime};

fn id(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

const UID: &str = "0b7c5d2e-8f1a-4c3b-9d6e-2a1f0e9d8c7b";

/// A sleeping child, killed on drop.
struct Sleeper(Child);

impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(Command::new("sleep").arg("60").spawn().unwrap())
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() {
    // SAFETY: geteuid has no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(euid == 0, "these tests create cgroups: run them as root");
}

/// The shapes, relative to the tree's top.
fn shapes() -> Vec<(String, Option<Runtime>, String, Option<&'static str>)> {
    let u = UID.replace('-', "_");
    vec![
        (
            format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{}.scope", id('1')),
            Some(Runtime::Containerd),
            id('1'),
            Some(UID),
        ),
        (format!("kubepods/besteffort/pod{UID}/{}", id('2')), None, id('2'), Some(UID)),
        (format!("system.slice/docker-{}.scope", id('3')), Some(Runtime::Docker), id('3'), None),
        (format!("docker/{}", id('4')), Some(Runtime::Docker), id('4'), None),
        (format!("machine.slice/libpod-{}.scope", id('5')), Some(Runtime::Podman), id('5'), None),
        (format!("system.slice/crio-{}.scope", id('6')), Some(Runtime::Crio), id('6'), None),
        (format!("libpod_parent/libpod-{}", id('7')), Some(Runtime::Podman), id('7'), None),
    ]
}

fn no_runtimes(dir: &std::path::Path) -> Paths {
    Paths {
        containerd: dir.join("no-containerd/containerd.sock"),
        storage: vec![dir.join("no-storage")],
        docker: dir.join("no-docker"),
        timeout: Duration::from_millis(200),
    }
}

#[test]
fn every_shape_by_handle_and_by_walk() {
    root();
    let fs = CgroupFs::open().unwrap();
    let shapes = shapes();
    let paths: Vec<&str> = shapes.iter().map(|s| s.0.as_str()).collect();
    let tree = Tree::new(&fs, &paths);
    let sleepers: Vec<Sleeper> = shapes.iter().map(|_| Sleeper::new()).collect();
    for (s, p) in shapes.iter().zip(&sleepers) {
        tree.enter(&s.0, p.pid());
    }
    let tmp = tempfile::tempdir().unwrap();
    for no_handles in [false, true] {
        let r = Arc::new(
            Resolver::start(ResolverOptions {
                paths: no_runtimes(tmp.path()),
                no_handles,
                ..Default::default()
            })
            .unwrap(),
        );
        assert_eq!(r.uses_handles(), !no_handles);
        let mut view = r.view();
        for ((path, runtime, cid, uid), p) in shapes.iter().zip(&sleepers) {
            let cg = fs.id_of(&tree.rel(path)).unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            let e = loop {
                if let Some(e) = view.get(cg) {
                    break Arc::clone(e);
                }
                assert!(no_handles, "{path}: by handle, the first lookup knows it");
                assert!(
                    Instant::now() < deadline,
                    "{path}: the walk did not find it"
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            assert_eq!(e.container.runtime, *runtime, "{path}");
            assert_eq!(&e.container.id, cid, "{path}");
            assert_eq!(e.container.pod_uid.as_deref(), *uid, "{path}");
            assert_eq!(e.cgroup, tree.rel(path));
            // The same through the process.
            let by_pid = r.get_pid(p.pid()).unwrap();
            assert_eq!(by_pid.container.id, *cid);
        }
        // The test process itself is in no container.
        let me = fs
            .id_of(&ebpfctl_container::cgroupfs::proc_cgroup(std::process::id()).unwrap())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(r.slot(me), Slot::Pending) {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(r.get(me).is_none());
        // scan() finds all of them.
        let found = r.scan();
        for (_, _, cid, _) in &shapes {
            assert!(
                found.iter().any(|(_, e)| &e.container.id == cid),
                "scan: {cid}"
            );
        }
    }
    drop(sleepers);
    drop(tree);
}

#[test]
fn a_cgroup_below_a_container_is_the_container() {
    root();
    let fs = CgroupFs::open().unwrap();
    let path = format!("docker/{}/init.scope", id('8'));
    let tree = Tree::new(&fs, &[&path]);
    let p = Sleeper::new();
    tree.enter(&path, p.pid());
    let tmp = tempfile::tempdir().unwrap();
    let r = Resolver::start(ResolverOptions {
        paths: no_runtimes(tmp.path()),
        ..Default::default()
    })
    .unwrap();
    let e = r.get_pid(p.pid()).unwrap();
    assert_eq!(e.container.id, id('8'));
    assert_eq!(e.cgroup, tree.rel(&format!("docker/{}", id('8'))));
}

/// Names from state files written as the runtimes write them: containers/storage's
/// containers.json (podman's names, checked against podman 4.3 here), a CRI-O config.json
/// with the Kubernetes annotations, docker's config.v2.json.
#[test]
fn names_from_runtime_state() {
    root();
    let fs = CgroupFs::open().unwrap();
    let (podman, crio, docker) = (id('a'), id('b'), id('c'));
    let paths = [
        format!("libpod_parent/libpod-{podman}"),
        format!(
            "kubepods.slice/kubepods-pod{}.slice/crio-{crio}.scope",
            UID.replace('-', "_")
        ),
        format!("system.slice/docker-{docker}.scope"),
    ];
    let tree = Tree::new(&fs, &paths.iter().map(String::as_str).collect::<Vec<_>>());
    let sleepers: Vec<Sleeper> = paths.iter().map(|_| Sleeper::new()).collect();
    for (p, s) in paths.iter().zip(&sleepers) {
        tree.enter(p, s.pid());
    }
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("storage");
    let oc = storage.join("overlay-containers");
    std::fs::create_dir_all(oc.join(&crio).join("userdata")).unwrap();
    std::fs::write(
        oc.join("containers.json"),
        format!(
            r#"[{{"id":"{podman}","names":["web"],"image":"","layer":"6f5e","metadata":"{{\"name\":\"web\"}}","created":"2026-12-01T09:59:01Z","flags":{{}}}},
               {{"id":"{crio}","names":["k8s_app_shop-0_shop_{UID}_0"],"image":"","layer":"","metadata":"{{}}"}}]"#
        ),
    )
    .unwrap();
    std::fs::write(
        oc.join(&crio).join("userdata/config.json"),
        format!(
            r#"{{"ociVersion":"1.0.2","annotations":{{"io.kubernetes.pod.name":"shop-0","io.kubernetes.pod.namespace":"shop","io.kubernetes.pod.uid":"{UID}","io.kubernetes.container.name":"app"}}}}"#
        ),
    )
    .unwrap();
    let dock = tmp.path().join("docker");
    std::fs::create_dir_all(dock.join("containers").join(&docker)).unwrap();
    std::fs::write(
        dock.join("containers").join(&docker).join("config.v2.json"),
        r#"{"ID":"c","Name":"/db","Config":{"Labels":{}}}"#,
    )
    .unwrap();
    let r = Resolver::start(ResolverOptions {
        paths: Paths {
            storage: vec![storage],
            docker: dock,
            ..no_runtimes(tmp.path())
        },
        ..Default::default()
    })
    .unwrap();
    let want = [
        (&sleepers[0], "web", None, None),
        (&sleepers[1], "app", Some("shop-0"), Some("shop")),
        (&sleepers[2], "db", None, None),
    ];
    for (s, name, pod, ns) in want {
        // The first answer comes from the path; the names follow from the resolver thread.
        let deadline = Instant::now() + Duration::from_secs(5);
        let e = loop {
            let e = r.get_pid(s.pid()).unwrap();
            if e.container.resolved {
                break e;
            }
            assert!(Instant::now() < deadline, "no names for {:?}", e.container);
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(e.container.name.as_deref(), Some(name));
        assert_eq!(e.container.pod.as_deref(), pod);
        assert_eq!(e.container.namespace.as_deref(), ns);
    }
    assert!(r.runtime_lookups() >= 3);
}
