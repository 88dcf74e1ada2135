#!/usr/bin/env bash
# Builds the ebpfctl container image offline, without a container daemon, as an OCI image
# layout (and optionally an oci-archive tarball). See docs/deploy.md.
#
# Usage: scripts/image.sh [--binary PATH] [--out DIR] [--tag TAG] [--archive FILE]
#   --binary PATH   put this ebpfctl in the image (default: cargo build --release, then
#                   target/release/ebpfctl); its debug sections are stripped
#   --out DIR       the OCI image layout to write (default: target/image/oci; replaced)
#   --tag TAG       the layout's ref name (default: the binary's version)
#   --archive FILE  also write the layout as one tar file (skopeo's oci-archive:FILE)
# Prints the manifest digest on stdout. Push it with e.g.
#   skopeo copy oci:target/image/oci:0.1.0 docker://registry.example/ebpfctl:0.1.0
#
# The image is one layer: the binary, exactly the shared libraries it links (from ldd, with
# their Debian copyright files), CA certificates (for `ebpfctl run REF` over HTTPS), and a
# minimal /etc. No shell, no package manager, no clang (`ebpfctl build` is for development
# machines, not nodes). Why not mmdebstrap: a Debian base would need the mirror (network)
# and be ~10x larger for files ebpfctl never opens; the libraries here are the host's, the
# same ones the binary was built and tested against.
#
# Reproducible: file times are SOURCE_DATE_EPOCH (default: the last commit's time), tar
# entries are sorted with numeric owner 0, gzip stores no name or time, JSON is written with
# sorted keys; the same binary and libraries give the same digests.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

binary="" out="$repo/target/image/oci" tag="" archive=""
while (($#)); do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --archive) archive=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in python3 tar gzip sha256sum objcopy ldd; do
  command -v "$tool" >/dev/null || { echo "image.sh: $tool is needed (scripts/setup.sh installs it)" >&2; exit 1; }
done

if [[ -z $binary ]]; then
  cargo build --release --locked -p ebpfctl >&2
  binary=$repo/target/release/ebpfctl
fi
[[ -x $binary ]] || { echo "image.sh: $binary is not an executable" >&2; exit 1; }

version=$("$binary" --version | awk 'NR == 1 {print $2}')
[[ -n $version ]] || { echo "image.sh: $binary --version printed no version" >&2; exit 1; }
tag=${tag:-$version}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ $revision != unknown ]] && ! git diff --quiet HEAD -- 2>/dev/null; then
  revision="$revision-dirty"
fi
# Where the source lives: Cargo.toml's repository key, else $EBPFCTL_IMAGE_SOURCE, else origin.
source_url=$(sed -n 's/^repository *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
source_url=${source_url:-${EBPFCTL_IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo unknown)}}
description=$(sed -n 's/^description *= *"\(.*\)"/\1/p' crates/ebpfctl/Cargo.toml | head -1)
licenses=$(sed -n 's/^license *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{usr/local/bin,etc/ssl/certs,tmp,root,proc,sys,dev,run,var/cache,usr/share/doc}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

objcopy --strip-debug "$binary" "$root/usr/local/bin/ebpfctl"
chmod 0755 "$root/usr/local/bin/ebpfctl"

# Exactly the libraries the binary links, at the paths the loader looks them up by.
mapfile -t libs < <(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
[[ ${#libs[@]} -gt 0 ]] || { echo "image.sh: ldd found no libraries for $binary" >&2; exit 1; }
for lib in "${libs[@]}"; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
  chmod 0644 "$root$lib"
done
# Their Debian packages (one dpkg query: each costs a scan of the package lists).
# dpkg knows a file by the path its package ships (/lib/... or /usr/lib/... on merged /usr).
mapfile -t pkgs < <(for lib in "${libs[@]}"; do echo "$lib"; readlink -f "$lib"; done |
  xargs dpkg -S 2>/dev/null | sed 's/[:,].*//' | sort -u)
chmod 0755 "$root"/lib64/ld-linux-*.so.* 2>/dev/null || true

# CA certificates: ebpfctl's registry client verifies TLS with the system store.
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
pkgs+=(ca-certificates)
for pkg in $(printf '%s\n' "${pkgs[@]}" | sort -u); do
  if [[ -f /usr/share/doc/$pkg/copyright ]]; then
    mkdir -p "$root/usr/share/doc/$pkg"
    cp "/usr/share/doc/$pkg/copyright" "$root/usr/share/doc/$pkg/copyright"
  fi
done

printf 'root:x:0:0:root:/root:/usr/local/bin/ebpfctl\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
find "$root" -type d -exec chmod go-w {} +
chmod 1777 "$root/tmp"
find "$root" -type f -exec chmod go-w {} +

# The layer: sorted, numeric root owner, fixed times, no atime/ctime in pax headers.
find "$root" -exec touch -h -d "@$epoch" {} +
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$root" -cf "$work/layer.tar" .
gzip -n -6 <"$work/layer.tar" >"$work/layer.tar.gz"

# Replace an earlier layout, never anything else.
if [[ -e $out && ! -f $out/oci-layout ]] && [[ -n "$(ls -A "$out" 2>/dev/null)" ]]; then
  echo "image.sh: $out exists and is not an OCI image layout; not replacing it" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out/blobs/sha256"
python3 - "$work" "$out" "$tag" "$epoch" "$arch" "$version" "$revision" "$source_url" \
  "$description" "$licenses" <<'PY'
import datetime, hashlib, json, os, shutil, sys

work, out, tag, epoch, arch, version, revision, source, description, licenses = sys.argv[1:]
created = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

def blob_bytes(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}

def dumps(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":")).encode()

diff_id = "sha256:" + sha256_file(os.path.join(work, "layer.tar"))
gz = os.path.join(work, "layer.tar.gz")
layer_digest = sha256_file(gz)
shutil.copyfile(gz, os.path.join(out, "blobs", "sha256", layer_digest))

labels = {
    "org.opencontainers.image.source": source,
    "org.opencontainers.image.revision": revision,
    "org.opencontainers.image.version": version,
    "org.opencontainers.image.created": created,
    "org.opencontainers.image.title": "ebpfctl",
    "org.opencontainers.image.description": description,
    "org.opencontainers.image.licenses": licenses,
}
config = {
    "created": created,
    "architecture": arch,
    "os": "linux",
    "config": {
        "Entrypoint": ["/usr/local/bin/ebpfctl"],
        "Cmd": ["--help"],
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root"],
        "WorkingDir": "/",
        "Labels": labels,
    },
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{"created": created, "created_by": "scripts/image.sh"}],
}
cfg = blob_bytes(dumps(config))
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
    "layers": [{
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": "sha256:" + layer_digest,
        "size": os.path.getsize(gz),
    }],
    "annotations": labels,
}
man = blob_bytes(dumps(manifest))
index = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **man,
        "platform": {"architecture": arch, "os": "linux"},
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }],
}
with open(os.path.join(out, "index.json"), "wb") as f:
    f.write(dumps(index))
with open(os.path.join(out, "oci-layout"), "wb") as f:
    f.write(dumps({"imageLayoutVersion": "1.0.0"}))
print(man["digest"])
PY

if [[ -n $archive ]]; then
  find "$out" -exec touch -h -d "@$epoch" {} +
  tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$out" -cf "$archive" .
fi
layer_size=$(stat -c %s "$work/layer.tar.gz")
echo "image.sh: $out:$tag ($arch, ${pkgs[*]}); layer $((layer_size / 1024)) KiB compressed, $(( $(stat -c %s "$work/layer.tar") / 1024 )) KiB unpacked" >&2
