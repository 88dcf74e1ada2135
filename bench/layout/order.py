#!/usr/bin/env python3
"""Which functions of a release ebpfctl execsnoop / opensnoop call, in order: the linker's
symbol ordering file (crates/ebpfctl/link-order.txt), so start-up and the event loop run
from a few contiguous pages of the binary instead of ~25 neighbourhoods spread over 40 MB.

    sudo bench/layout/order.py [--out FILE] [--settle S] BINARY

BINARY is a release build (`cargo build --release -p ebpfctl`); it must carry its symbol
table (the release profile does not strip). Per tool (execsnoop, opensnoop, each `-o json`
as bench/snoop runs them): start it with ASLR off (setarch -R), wait --settle s, run a small
storm (execs / opens, bench/snoop's storm programs), wait, SIGINT, wait for exit. Meanwhile a
copy of BINARY runs bench/layout/funcs.bpf.c: a uprobe-multi link on every function symbol
of BINARY, which records the first call of each address. Addresses are mapped back to
symbols (`nm`), grouped by phase (start-up, events, exit) and tool, and written one symbol a
line:

    functions both tools call while events flow, then at start-up,
    then execsnoop's own, then opensnoop's own, then the exit path

so each tool's code is one contiguous run ([shared][exec-only] for one, [shared][open-only]
for the other). lld places the listed functions first in .text, in this order; the rest
follows in its usual order. Functions inlined away are not symbols and need nothing.

Regenerate after changes to start-up or event code: the order only moves code, a stale file
costs pages, never correctness (symbols not in the binary are ignored by the linker).
The uprobes make the traced runs slow (a trap per call); that does not change the order.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SNOOP = os.path.join(ROOT, "bench", "snoop")


def symbols(binary):
    """vaddr -> [names] of the defined function symbols of the binary."""
    out = subprocess.run(["nm", "--defined-only", binary], check=True,
                         capture_output=True, text=True).stdout
    by_addr = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] in "tTWw":
            by_addr.setdefault(int(parts[0], 16), []).append(parts[2])
    return by_addr


def base_of(pid, binary):
    """Load address of the binary in pid (its mapping at file offset 0)."""
    real = os.path.realpath(binary)
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == real and int(parts[2], 16) == 0:
                return int(parts[0].split("-")[0], 16)
    raise RuntimeError(f"{binary} is not mapped in {pid}")


def wait_line(path, needle, proc, timeout):
    end = time.time() + timeout
    while time.time() < end:
        with open(path, "rb") as f:
            if needle in f.read():
                return
        if proc.poll() is not None:
            raise RuntimeError(f"exited before {needle!r}: {open(path).read()}")
        time.sleep(0.1)
    raise RuntimeError(f"no {needle!r} after {timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--out", default=os.path.join(ROOT, "crates", "ebpfctl", "link-order.txt"))
    ap.add_argument("--settle", type=float, default=2.0)
    a = ap.parse_args()
    binary = os.path.realpath(a.binary)
    work = tempfile.mkdtemp(prefix="ebpfctl-order-")
    try:
        run(a, binary, work)
    finally:
        shutil.rmtree(work)


def run(a, binary, work):
    cc = shutil.which("clang-19") or shutil.which("clang") or "cc"
    for s in ("execstorm", "openstorm"):
        subprocess.run([cc, "-O2", "-o", os.path.join(work, s), os.path.join(SNOOP, s + ".c")],
                       check=True)
    # The tracer is a copy: the probes are on BINARY's inode, the copy runs unprobed.
    tracer = os.path.join(work, "tracer")
    shutil.copy(binary, tracer)
    with open(os.path.join(work, "funcs_target.h"), "w") as f:
        f.write(f'#define FUNCS_BIN "{binary}"\n')
    obj = os.path.join(work, "funcs.o")
    subprocess.run([tracer, "build", "-I", work, "-o", obj, os.path.join(HERE, "funcs.bpf.c")],
                   check=True, stdout=subprocess.DEVNULL)
    calls, err = os.path.join(work, "calls.json"), os.path.join(work, "tracer.err")
    t = subprocess.Popen([tracer, "run", "-o", "json", obj],
                         stdout=open(calls, "wb"), stderr=open(err, "wb"))
    phases = []  # (tool, tgid, base, t_started, t_storm, t_stop)
    try:
        wait_line(err, b"running:", t, 120)
        target = os.path.join(work, "openstorm.file")
        open(target, "w").close()
        storms = {
            "execsnoop": [os.path.join(work, "execstorm"), "200"],
            "opensnoop": [os.path.join(work, "openstorm"), target, "5000"],
        }
        for tool in ("execsnoop", "opensnoop"):
            t0 = time.monotonic_ns()
            terr = os.path.join(work, tool + ".err")
            p = subprocess.Popen(["setarch", "-R", binary, tool, "-o", "json"],
                                 stdout=subprocess.DEVNULL, stderr=open(terr, "wb"))
            # Start-up ends when it says it traces; the calls are slow under the probes.
            wait_line(terr, b"tracing", p, 300)
            time.sleep(a.settle)
            if p.poll() is not None:
                raise RuntimeError(f"{tool} exited with {p.returncode}")
            base = base_of(p.pid, binary)
            t1 = time.monotonic_ns()
            subprocess.run(storms[tool], check=True)
            time.sleep(1.0)
            t2 = time.monotonic_ns()
            p.send_signal(signal.SIGINT)
            p.wait()
            phases.append((tool, p.pid, base, t0, t1, t2))
        time.sleep(1.0)
    finally:
        t.send_signal(signal.SIGINT)
        t.wait()

    syms = symbols(binary)
    first = {}  # (tool, phase) -> [vaddr in first-call order]
    with open(calls) as f:
        recs = [json.loads(line) for line in f if line.startswith("{")]
    recs.sort(key=lambda r: r["at"])
    for tool, pid, base, t0, t1, t2 in phases:
        for r in recs:
            if r["tgid"] != pid:
                continue
            phase = "start" if r["at"] < t1 else "events" if r["at"] < t2 else "exit"
            first.setdefault((tool, phase), []).append(r["ip"] - base)
    per_tool = {}
    for (tool, phase), addrs in first.items():
        per_tool.setdefault(tool, set()).update(addrs)
    both = per_tool.get("execsnoop", set()) & per_tool.get("opensnoop", set())
    order, placed = [], set()

    def take(addrs, keep):
        for v in addrs:
            if v not in placed and keep(v):
                placed.add(v)
                order.append(v)

    for phase in ("events", "start"):
        for tool in ("opensnoop", "execsnoop"):
            take(first.get((tool, phase), []), lambda v: v in both)
    for tool in ("execsnoop", "opensnoop"):
        for phase in ("events", "start", "exit"):
            take(first.get((tool, phase), []), lambda v: v not in both)
    for tool in ("execsnoop", "opensnoop"):
        take(first.get((tool, "exit"), []), lambda v: True)
    missing = [v for v in order if v not in syms]
    lines = []
    for v in order:
        lines.extend(syms.get(v, []))
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    for (tool, phase), addrs in sorted(first.items()):
        print(f"{tool} {phase}: {len(addrs)} functions", file=sys.stderr)
    print(f"{len(both)} in both; {len(order)} functions, {len(lines)} symbols -> {a.out}"
          f" ({len(missing)} addresses without a symbol)", file=sys.stderr)


if __name__ == "__main__":
    main()
