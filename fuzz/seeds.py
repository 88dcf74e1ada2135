#!/usr/bin/env python3
"""Seed corpus for the fuzz targets, generated from this project's own objects.

Usage: fuzz/seeds.py EBPFCTL_BINARY TOOL_PROBE_DIR OUT_DIR

- object:      the examples (compiled with `ebpfctl build`, DWARF stripped) and the tools'
               probes (execsnoop, opensnoop, observe)
- btf_parse, btf_dump: their .BTF sections
- btf_decode:  each struct of those BTFs with a value's bytes (the target's input format)
- go_binary:   examples/go-mesh built with every Go toolchain here, normal and stripped
- go_pclntab:  their .gopclntab sections after the .text address
- go_code:     the code of their net/http functions
- execsnoop_event, opensnoop_event, observe_event: records laid out as the probes write them
  (offsets as in the decoders, which unit tests check against the probes' BTF)
- oci_manifest: a manifest and a probe config as `ebpfctl push` writes them (docs/oci.md)
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOS = ["/usr/bin/go", "/opt/ebpfctl-go/1.21.13/go/bin/go", "/opt/ebpfctl-go/1.27.3/go/bin/go"]


def put(out, target, data, name=None):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = name or hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def elf_sections(data):
    """{name: (addr, offset, size, type)} of an ELF64 little-endian file."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    hdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    stro = hdrs[shstrndx][4]
    out = {}
    for h in hdrs:
        end = data.index(b"\0", stro + h[0])
        out[data[stro + h[0]:end].decode(errors="replace")] = (h[3], h[4], h[5], h[1], h[7])
    return out


def section(data, secs, name):
    _, off, size, _, _ = secs[name]
    return data[off:off + size]


def symbols(data, secs):
    """{name: (value, size)} from .symtab."""
    if ".symtab" not in secs or ".strtab" not in secs:
        return {}
    sym = section(data, secs, ".symtab")
    strs = section(data, secs, ".strtab")
    out = {}
    for i in range(0, len(sym) - 23, 24):
        name_off, _, _, _, value, size = struct.unpack_from("<IBBHQQ", sym, i)
        end = strs.find(b"\0", name_off)
        out[strs[name_off:end].decode(errors="replace")] = (value, size)
    return out


def btf_struct_ids(btf):
    """Type ids of the STRUCT records of raw BTF (a walk of the record sizes)."""
    hdr_len, type_off, type_len = struct.unpack_from("<III", btf, 4)
    p, end, tid, ids = hdr_len + type_off, hdr_len + type_off + type_len, 1, []
    extra = {1: lambda v: 4, 3: lambda v: 12, 4: lambda v: 12 * v, 5: lambda v: 12 * v,
             6: lambda v: 8 * v, 13: lambda v: 8 * v, 14: lambda v: 4, 15: lambda v: 12 * v,
             17: lambda v: 4, 19: lambda v: 12 * v}
    while p + 12 <= end:
        _, info, _ = struct.unpack_from("<III", btf, p)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if kind == 4:
            ids.append(tid)
        p += 12 + extra.get(kind, lambda v: 0)(vlen)
        tid += 1
    return ids


def objects(ebpfctl, probe_dir, tmp):
    objs = []
    ex = os.path.join(REPO, "examples")
    for f in sorted(os.listdir(ex)):
        if not f.endswith(".bpf.c"):
            continue
        o = os.path.join(tmp, f[:-2] + ".o")
        subprocess.run([ebpfctl, "build", os.path.join(ex, f), "-I", ex, "-o", o], check=True,
                       stderr=subprocess.DEVNULL)
        strip = shutil.which("llvm-strip-19") or shutil.which("llvm-strip")
        subprocess.run([strip, "--strip-debug", o], check=True)
        objs.append(o)
    for f in sorted(os.listdir(probe_dir)):
        if f.endswith(".bpf.o"):
            objs.append(os.path.join(probe_dir, f))
    return objs


def go_binaries(tmp):
    out = []
    src = os.path.join(REPO, "examples", "go-mesh")
    for go in GOS:
        if not os.access(go, os.X_OK):
            print(f"seeds: {go} missing (scripts/setup.sh --test installs it)", file=sys.stderr)
            continue
        ver = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
        env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local")
        for flavour, flags in [("full", []), ("stripped", ["-ldflags=-s -w"])]:
            exe = os.path.join(tmp, f"go-mesh-{ver}-{flavour}")
            subprocess.run([go, "build", "-o", exe] + flags + ["."], cwd=src, env=env, check=True)
            out.append(exe)
    return out


def events(out):
    # execsnoop: esnp_exec (head 100 bytes, then filename, args, exe) and esnp_exit (88).
    fn, args, exe = b"/usr/bin/true", b"true\0--version\0", b"/usr/bin/true"
    e = bytearray(100)
    struct.pack_into("<IIQQQiIIIIII", e, 0, 1, 0, 1000, 2000, 7, 0, 42, 42, 1, 0, 0, 2)
    struct.pack_into("<HHHBB", e, 60, len(fn), len(args), len(exe), 0, 0)
    e[68:83] = b"true\0\0\0\0\0\0\0\0\0\0\0"
    e[84:99] = b"bash\0\0\0\0\0\0\0\0\0\0\0"
    e += fn + args + exe
    struct.pack_into("<I", e, 4, len(e))
    x = bytearray(88)
    struct.pack_into("<IIQQQIIIIi", x, 0, 2, 88, 3000, 1000, 7, 42, 1, 0, 0, 256)
    x[56:71] = b"true\0\0\0\0\0\0\0\0\0\0\0"
    x[72:87] = b"bash\0\0\0\0\0\0\0\0\0\0\0"
    frame = lambda r: struct.pack("<H", len(r)) + bytes(r)
    put(out, "execsnoop_event", frame(e) + frame(x))
    put(out, "execsnoop_event", frame(e))
    # opensnoop: osnp_event, head 80 bytes then the path.
    path = b"/etc/passwd"
    o = bytearray(80)
    struct.pack_into("<IIQQQqIIIiHB", o, 0, 80 + len(path), 2, 1000, 0o2000000, 0, 3, 42, 42, 0, -100,
                     len(path), 0)
    o[64:68] = b"cat\0"
    put(out, "opensnoop_event", bytes(o) + path)
    struct.pack_into("<q", o, 32, -2)
    put(out, "opensnoop_event", bytes(o) + path)
    # observe: obs_event (header up to 520 bytes, then request header bytes) and obs_proc.
    r = bytearray(520)
    struct.pack_into("<QQQQQ", r, 0, 1000, 5000, 1, 12, 0)
    struct.pack_into("<IIHBBH", r, 56, 42, 43, 200, 2, 0, 0)
    for at, text in [(72, b"go-mesh"), (88, b"GET"), (104, b"HTTP/1.1"), (136, b"localhost:8080"),
                     (200, b"/api"), (328, b"a=1"), (392, b"127.0.0.1:5555")]:
        r[at:at + len(text)] = text
    hdr = b"Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
    struct.pack_into("<H", r, 68, len(hdr))
    put(out, "observe_event", bytes(r) + hdr)
    r[66] = 1
    r[67] = 1
    r[456:470] = b"connection ref"
    put(out, "observe_event", bytes(r))
    env = b"PATH=/bin\0OTEL_SERVICE_NAME=shop\0"
    proc = struct.pack("<II", 42, len(env)) + env
    put(out, "observe_event", proc + bytes(8 + 8192 - len(proc)))


def oci(out):
    obj = b"\x7fELF object bytes"
    config = {"name": "exec_print", "architecture": "amd64", "license": "GPL",
              "programs": [{"name": "exec_print", "section": "tracepoint/sched/sched_process_exec"}],
              "maps": [{"name": "events", "type": "ringbuf", "keyword": "print"}], "params": []}
    cfg = json.dumps(config).encode()
    desc = lambda mt, d: {"mediaType": mt, "digest": "sha256:" + hashlib.sha256(d).hexdigest(),
                          "size": len(d)}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.ebpfctl.probe.v1",
                "config": desc("application/vnd.ebpfctl.probe.config.v1+json", cfg),
                "layers": [desc("application/vnd.ebpfctl.probe.object.v1", obj)]}
    put(out, "oci_manifest", json.dumps(manifest).encode())
    put(out, "oci_manifest", cfg)
    put(out, "oci_manifest", b"localhost:5000/probes/exec_print:v1")


def main():
    ebpfctl, probe_dir, out = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as tmp:
        for o in objects(ebpfctl, probe_dir, tmp):
            data = open(o, "rb").read()
            put(out, "object", data)
            secs = elf_sections(data)
            if ".BTF" not in secs:
                continue
            btf = section(data, secs, ".BTF")
            put(out, "btf_parse", btf)
            put(out, "btf_dump", btf)
            for tid in btf_struct_ids(btf)[:16]:
                value = bytes(range(256)) * 2
                put(out, "btf_decode", struct.pack("<II", tid, len(btf)) + btf + value)
        for exe in go_binaries(tmp):
            data = open(exe, "rb").read()
            put(out, "go_binary", data)
            secs = elf_sections(data)
            if ".gopclntab" in secs:
                text = secs[".text"][0]
                put(out, "go_pclntab", struct.pack("<Q", text) + section(data, secs, ".gopclntab"))
            syms = symbols(data, secs)
            text_addr, text_off = secs[".text"][0], secs[".text"][1]
            for name in ["net/http.(*Transport).roundTrip", "net/http.serverHandler.ServeHTTP",
                         "net/http.(*response).finishRequest", "net/http.(*persistConn).roundTrip"]:
                if name in syms:
                    addr, size = syms[name]
                    callee = syms.get("net/http.(*persistConn).roundTrip", (0, 0))[0]
                    at = text_off + addr - text_addr
                    put(out, "go_code", struct.pack("<Q", callee) + data[at:at + size])
    events(out)
    oci(out)
    for t in sorted(os.listdir(out)):
        print(f"seeds: {t}: {len(os.listdir(os.path.join(out, t)))}", file=sys.stderr)


if __name__ == "__main__":
    main()
