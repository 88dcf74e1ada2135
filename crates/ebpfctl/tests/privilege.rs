//! What ebpfctl writes as root cannot be steered by another local user: each test stages the
//! attack as a second uid (`nobody`) and checks that root's run neither writes through the
//! planted paths nor uses what was planted, and says so when it refuses.
mod common;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{assert_one_line_error, bin};

const VICTIM: &str = "root's precious file\n";

/// The second user: `nobody`, looked up by name (fails loudly if the system has none).
fn attacker() -> (u32, u32) {
    let name = std::ffi::CString::new("nobody").unwrap();
    // SAFETY: `name` is NUL-terminated; getpwnam returns null or a pointer to static storage
    // that stays valid until the next getpw* call, and we copy the two fields at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !pw.is_null(),
        "these tests need a second user `nobody` (useradd -r nobody)"
    );
    // SAFETY: checked non-null above.
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

fn assert_root() {
    // SAFETY: geteuid has no arguments and cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "privilege tests run as root");
}

/// Runs a shell script as the attacker; it must succeed.
fn as_attacker(script: &str) {
    let (uid, gid) = attacker();
    let o = Command::new("/bin/sh")
        .args(["-ec", script])
        .uid(uid)
        .gid(gid)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "attacker script failed: {script}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A scratch directory of root's that the attacker can traverse (0755), with a victim file
/// of root's in it.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        assert_root();
        let dir = tempfile::Builder::new()
            .prefix("ebpfctl-privilege-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("victim"), VICTIM).unwrap();
        Scene { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn victim(&self) -> PathBuf {
        self.path("victim")
    }

    /// A directory owned by root with the given mode (e.g. 0o1777: a second /tmp).
    fn root_dir(&self, rel: &str, mode: u32) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// A directory owned by the attacker (mode 0755).
    fn attacker_dir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        let (uid, gid) = attacker();
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        p
    }

    fn assert_victim_intact(&self) {
        let now = std::fs::read(self.victim()).unwrap();
        assert!(
            now == VICTIM.as_bytes(),
            "root wrote through the attacker's symlink into {}: it now holds {} bytes starting {:?}",
            self.victim().display(),
            now.len(),
            String::from_utf8_lossy(&now[..now.len().min(60)])
        );
    }

    /// A probe source of root's in the scene.
    fn probe(&self) -> PathBuf {
        let p = self.path("probe.bpf.c");
        std::fs::write(
            &p,
            "#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\n\
             SEC(\"tracepoint/syscalls/sys_enter_getpid\")\n\
             int on_getpid(void *ctx) { return 0; }\n\
             char LICENSE[] SEC(\"license\") = \"GPL\";\n",
        )
        .unwrap();
        p
    }
}

/// The key ebpfctl-build stamps a vmlinux.h with (FNV-1a 64 of the kernel's BTF): an
/// attacker can compute it too (/sys/kernel/btf/vmlinux is world-readable).
fn vmlinux_key() -> String {
    let btf = std::fs::read("/sys/kernel/btf/vmlinux").expect("kernel BTF");
    let h = btf.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{h:016x}")
}

/// As the attacker, plants a complete include cache under `dir` (`ebpfctl/include`): a
/// vmlinux.h that must never be compiled, with a matching stamp so it looks current, and
/// every bundled header as a symlink to root's victim file.
fn plant_include_cache(dir: &Path, victim: &Path) {
    let inc = dir.join("ebpfctl/include");
    let v = victim.display();
    as_attacker(&format!(
        "mkdir -p {inc}/bpf\n\
         printf '#error planted vmlinux.h compiled\\n' > {inc}/vmlinux.h\n\
         printf '{key}' > {inc}/vmlinux.h.key\n\
         for h in bpf_helpers.h bpf_helper_defs.h bpf_tracing.h bpf_core_read.h bpf_endian.h usdt.bpf.h; do\n\
           ln -s {v} {inc}/bpf/$h\n\
         done\n\
         ln -s {v} {inc}/ebpfctl.h\n",
        inc = inc.display(),
        key = vmlinux_key(),
    ));
}

fn build(scene: &Scene, env: &[(&str, &Path)], remove: &[&str]) -> (Output, PathBuf) {
    let out = scene.path("probe.bpf.o");
    let _ = std::fs::remove_file(&out);
    let mut cmd = Command::new(bin());
    cmd.arg("build")
        .arg(scene.probe())
        .arg("-o")
        .arg(&out)
        .stdin(Stdio::null());
    for k in ["HOME", "XDG_CACHE_HOME", "TMPDIR"].iter().chain(remove) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.output().unwrap(), out)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// HOME unset used to mean a shared `$TMPDIR/ebpfctl/include` (`/tmp/ebpfctl/include`): a user
/// who made it first had root overwrite files through symlinked headers and compile their
/// vmlinux.h. Root now uses its own `/var/cache/ebpfctl` and never looks in the temp dir.
#[test]
fn build_without_home_ignores_a_cache_planted_in_the_temp_dir() {
    let scene = Scene::new();
    let tmp = scene.root_dir("tmp", 0o1777);
    plant_include_cache(&tmp, &scene.victim());

    let (o, out) = build(&scene, &[("TMPDIR", &tmp)], &[]);
    scene.assert_victim_intact();
    assert!(!stderr(&o).contains("planted"), "{}", stderr(&o));
    assert!(o.status.success(), "build failed: {}", stderr(&o));
    assert!(out.is_file());
    // Root's cache is root's own and private.
    let meta = std::fs::symlink_metadata("/var/cache/ebpfctl/include").unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.uid(), 0);
    assert_eq!(meta.mode() & 0o077, 0, "mode {:o}", meta.mode());
}

/// `sudo` keeps the invoking user's HOME: root must not use (or write into) a cache under a
/// home directory that is not its own.
#[test]
fn build_as_root_ignores_a_home_that_is_not_roots() {
    let scene = Scene::new();
    let home = scene.attacker_dir("home");
    as_attacker(&format!("mkdir -p {}/.cache", home.display()));
    plant_include_cache(&home.join(".cache"), &scene.victim());

    let (o, out) = build(&scene, &[("HOME", &home)], &[]);
    scene.assert_victim_intact();
    assert!(!stderr(&o).contains("planted"), "{}", stderr(&o));
    assert!(o.status.success(), "build failed: {}", stderr(&o));
    assert!(out.is_file());
}

/// An explicit XDG_CACHE_HOME whose `ebpfctl` directory belongs to someone else is refused,
/// with one line saying whose it is.
#[test]
fn build_refuses_a_cache_dir_owned_by_another_user() {
    let scene = Scene::new();
    let cache = scene.root_dir("cache", 0o1777);
    plant_include_cache(&cache, &scene.victim());

    let (o, out) = build(&scene, &[("XDG_CACHE_HOME", &cache)], &[]);
    scene.assert_victim_intact();
    assert!(!stderr(&o).contains("planted"), "{}", stderr(&o));
    assert!(!out.exists(), "the probe was compiled");
    assert_one_line_error(&o, &format!("{}", cache.join("ebpfctl").display()));
    let (uid, _) = attacker();
    assert!(
        stderr(&o).contains(&format!("owned by uid {uid}")),
        "{}",
        stderr(&o)
    );
}

/// A cache directory of root's that others can write to is refused too.
#[test]
fn build_refuses_a_cache_dir_writable_by_others() {
    let scene = Scene::new();
    let cache = scene.root_dir("cache", 0o755);
    scene.root_dir("cache/ebpfctl", 0o777);

    let (o, out) = build(&scene, &[("XDG_CACHE_HOME", &cache)], &[]);
    assert!(!out.exists(), "the probe was compiled");
    assert_one_line_error(&o, "writable by");
    assert!(
        stderr(&o).contains(&cache.join("ebpfctl").display().to_string()),
        "{}",
        stderr(&o)
    );
}

/// A fresh cache is created private (0700) and reused on the next build.
#[test]
fn build_creates_a_private_cache() {
    let scene = Scene::new();
    let cache = scene.root_dir("cache", 0o755);
    for _ in 0..2 {
        let (o, out) = build(&scene, &[("XDG_CACHE_HOME", &cache)], &[]);
        assert!(o.status.success(), "build failed: {}", stderr(&o));
        assert!(out.is_file());
    }
    for d in ["ebpfctl", "ebpfctl/include", "ebpfctl/include/bpf"] {
        let meta = std::fs::symlink_metadata(cache.join(d)).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o700, "{d}: mode {:o}", meta.mode());
    }
    let leftovers: Vec<_> = std::fs::read_dir(cache.join("ebpfctl/include"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !matches!(
                n.as_str(),
                "bpf" | "ebpfctl.h" | "solo_types.h" | "vmlinux.h" | "vmlinux.h.key"
            )
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Starts `ebpfctl ARGS` held before exec, so its pid is known to the attacker before it runs
/// (as a pid is to anyone watching /proc); returns the held child.
fn held(args: &[&str], env: &[(&str, &Path)]) -> std::process::Child {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("read _ && exec \"$0\" \"$@\"")
        .arg(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn release(mut child: std::process::Child) -> Output {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child.wait_with_output().unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `ebpfctl feature` wrote its uprobe scratch file at `$TMPDIR/ebpfctl-uprobe-<pid>` and
/// followed a symlink there: anyone able to write to the temp directory made root zero a file
/// of their choice. It now uses a fresh private file and leaves the planted paths alone.
#[test]
fn feature_does_not_write_through_planted_temp_paths() {
    let scene = Scene::new();
    // A temp directory the attacker controls (TMPDIR kept through `sudo -E`, or a shared
    // scratch directory on a system without fs.protected_symlinks).
    let tmp = scene.attacker_dir("tmp");
    let victim_dir = scene.root_dir("victim-dir", 0o755);
    std::fs::write(victim_dir.join("keep"), VICTIM).unwrap();

    let child = held(&["feature"], &[("TMPDIR", &tmp)]);
    let pid = child.id();
    as_attacker(&format!(
        "ln -s {victim} {tmp}/ebpfctl-uprobe-{pid}\nln -s {vdir} {tmp}/ebpfctl-securityfs-{pid}",
        victim = scene.victim().display(),
        vdir = victim_dir.display(),
        tmp = tmp.display(),
    ));
    let before = entries(&tmp);
    let o = release(child);
    assert!(o.status.success(), "feature failed: {}", stderr(&o));
    scene.assert_victim_intact();
    assert_eq!(entries(&victim_dir), ["keep"]);
    assert_eq!(entries(&tmp), before, "feature changed the temp directory");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.contains("uprobe") && l.contains("[yes]")),
        "uprobe not probed:\n{out}"
    );
}

/// `init DIR` checked `exists()` (false for a dangling symlink) and then wrote through the
/// path: a symlink planted in DIR made root create or fill a file elsewhere.
#[test]
fn init_does_not_write_through_a_planted_symlink() {
    let scene = Scene::new();
    let dir = scene.attacker_dir("shared");
    let target = scene.path("created-by-root");
    as_attacker(&format!(
        "ln -s {} {}/probe.bpf.c",
        target.display(),
        dir.display()
    ));
    let o = Command::new(bin())
        .arg("init")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !target.exists(),
        "root wrote the template through the symlink"
    );
    assert_one_line_error(&o, "already exists");
}

/// When ebpfctl mounts bpffs itself (for a pinned map), it mounts it root's only: bpffs
/// defaults to 1777, where any user can plant directories or symlinks at the names libbpf
/// pins by. Staged in a private mount namespace with bpffs unmounted.
#[test]
fn bpffs_mounted_by_ebpfctl_is_private() {
    assert_root();
    let obj = common::build_source(
        "privilege_pinned",
        r#"#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} privilege_pin SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 k = 0;
	__u64 one = 1;
	bpf_map_update_elem(&privilege_pin, &k, &one, BPF_ANY);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"#,
    );
    // Everything happens in the namespace, which takes its bpffs (and the pin) with it.
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg(
            "umount -l /sys/fs/bpf 2>/dev/null || true\n\
             \"$0\" run \"$1\" --duration 1s --no-metrics -o none\n\
             stat -c 'mode=%a' /sys/fs/bpf",
        )
        .arg(bin())
        .arg(&obj)
        .stdin(Stdio::null())
        .output()
        .expect("unshare (util-linux) is needed by this test");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let mode = out
        .lines()
        .find_map(|l| l.strip_prefix("mode="))
        .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
        .unwrap_or_else(|| panic!("no mode in: {out}\n{}", stderr(&o)));
    // The kernel keeps the sticky bit (1700): what matters is that only root can write.
    assert_eq!(mode & 0o077, 0, "bpffs mounted with mode {mode:o}");
}
