//! What a container lookup costs (bench/containers/run.sh): cgroup id → path by file handle
//! and by a walk of the tree, a cached lookup on the event path, and the runtimes' answers
//! for the containers running now. Creates N kubepods-shaped cgroups (removed at exit).
//! Run as root: `cargo run --release -p ebpfctl-container --example lookup_cost -- 500`.
use std::sync::Arc;
use std::time::Instant;

use ebpfctl_container::testing::Tree;
use ebpfctl_container::{CgroupFs, Resolver, ResolverOptions};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500);
    let fs = CgroupFs::open().expect("a cgroup v2 mount");
    let paths: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{i:08x}_0000_0000_0000_000000000000.slice/cri-containerd-{:064x}.scope",
                i
            )
        })
        .collect();
    let tree = Tree::new(&fs, &paths.iter().map(String::as_str).collect::<Vec<_>>());
    let ids: Vec<u64> = paths
        .iter()
        .map(|p| fs.id_of(&tree.rel(p)).unwrap())
        .collect();
    let total_cgroups = fs.walk().len();
    println!("cgroups in the hierarchy: {total_cgroups} ({n} created for this run)");

    let t = Instant::now();
    for &id in &ids {
        assert!(fs.path_by_handle(id).unwrap().is_some());
    }
    let per = t.elapsed().as_nanos() as f64 / ids.len() as f64;
    println!(
        "path by handle (open_by_handle_at + readlink): {:.1} us per id",
        per / 1e3
    );

    let rounds = 5;
    let t = Instant::now();
    for _ in 0..rounds {
        assert!(fs.walk().len() >= n);
    }
    let per_walk = t.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "walk of the whole tree: {:.2} ms ({:.1} us per cgroup)",
        per_walk * 1e3,
        per_walk * 1e6 / total_cgroups as f64
    );

    let r = Arc::new(Resolver::start(ResolverOptions::default()).unwrap());
    let mut view = r.view();
    let t = Instant::now();
    for &id in &ids {
        assert!(view.get(id).is_some());
    }
    println!(
        "first lookup (miss: handle + shape + queueing the runtime lookup): {:.1} us",
        t.elapsed().as_nanos() as f64 / ids.len() as f64 / 1e3
    );
    // Let the resolver thread answer (no runtime knows these), then time cached lookups.
    std::thread::sleep(std::time::Duration::from_secs(2));
    for &id in &ids {
        view.get(id);
    }
    let loops = 2_000_000;
    let g0 = r.generation();
    let t = Instant::now();
    let mut hits = 0usize;
    for i in 0..loops {
        hits += usize::from(view.get(ids[i % ids.len()]).is_some());
    }
    println!(
        "cached lookup (event path): {:.1} ns ({hits} hits, {} cache generations meanwhile)",
        t.elapsed().as_nanos() as f64 / loops as f64,
        r.generation() - g0
    );
    let host = fs.id_of("/").unwrap();
    let t = Instant::now();
    for _ in 0..loops {
        std::hint::black_box(view.get(host));
    }
    println!(
        "cached lookup of a host cgroup: {:.1} ns",
        t.elapsed().as_nanos() as f64 / loops as f64
    );

    // The runtimes, for the containers running now (names from containerd, containers/storage, docker).
    let before = r.runtime_lookups();
    let t = Instant::now();
    let found = r.scan();
    let asked = r.runtime_lookups() - before;
    let named = found
        .iter()
        .filter(|(_, e)| e.container.name.is_some())
        .count();
    println!(
        "scan: {} containers ({named} named by their runtime), {asked} runtime lookups, {:.1} ms in all",
        found.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    drop(r);
    drop(tree);
}
