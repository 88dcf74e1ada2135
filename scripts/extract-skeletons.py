#!/usr/bin/env python3
"""Extracts the BPF objects that libbpf skeletons embed in their binaries.

A `bpftool gen skeleton` binary carries its BPF object as one byte string in .rodata: a
complete little-endian ELF64 file with e_machine EM_BPF (247). This finds each one by its ELF
magic, checks the header, takes the size from the section-header table (the last thing in an
object clang writes) and writes it out as DEST/NAME.bpf.o (NAME-2.bpf.o for a second one).

Usage: scripts/extract-skeletons.py DEST BINARY...   (e.g. /usr/sbin/* of Debian's libbpf-tools)
"""
import os
import struct
import sys

EM_BPF = 247


def objects(data):
    at = 0
    while True:
        at = data.find(b"\x7fELF\x02\x01", at + 1)
        if at < 0:
            return
        hdr = data[at : at + 64]
        if len(hdr) < 64:
            return
        (e_type, e_machine) = struct.unpack_from("<HH", hdr, 16)
        if e_machine != EM_BPF or e_type != 1:  # ET_REL
            continue
        e_shoff = struct.unpack_from("<Q", hdr, 40)[0]
        e_shentsize, e_shnum = struct.unpack_from("<HH", hdr, 58)
        end = e_shoff + e_shentsize * e_shnum
        # Sections may follow the header table in odd objects: take the furthest end.
        for i in range(e_shnum):
            sh = data[at + e_shoff + i * e_shentsize : at + e_shoff + (i + 1) * e_shentsize]
            if len(sh) < 64:
                break
            sh_type = struct.unpack_from("<I", sh, 4)[0]
            sh_offset, sh_size = struct.unpack_from("<QQ", sh, 24)
            if sh_type != 8:  # SHT_NOBITS has no bytes in the file
                end = max(end, sh_offset + sh_size)
        if at + end <= len(data):
            yield data[at : at + end]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    dest = sys.argv[1]
    os.makedirs(dest, mode=0o700, exist_ok=True)
    for path in sys.argv[2:]:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            print(f"{path}: {e}", file=sys.stderr)
            continue
        name = os.path.basename(path)
        for i, obj in enumerate(objects(data)):
            out = os.path.join(dest, f"{name}.bpf.o" if i == 0 else f"{name}-{i + 1}.bpf.o")
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(obj)
            print(f"{out} {len(obj)}")


if __name__ == "__main__":
    main()
