#!/usr/bin/env python3
"""Where a tracer's resident memory is: /proc/PID/smaps grouped by mapping.

    bench/snoop/smaps.py [--rounds N] [--settle S] [--storm CMD] -- TRACER ARGS...

Per round: start the tracer (stdout to /dev/null), wait --settle seconds (it has loaded and
attached by then), optionally run --storm (a shell command) and wait 0.3 s, read
/proc/PID/smaps and /proc/PID/status, stop it with SIGINT. Prints, per group of mappings
(the binary's code, read-only data, RELRO, data; each shared library; heap; thread stacks;
other anonymous memory; the BPF ring buffer), the median over rounds of Rss, Pss,
Anonymous and Private_Dirty in KiB, then VmHWM / VmRSS medians with min-max.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

FIELDS = ("Rss", "Pss", "Anonymous", "Private_Dirty")


def group_of(perms, path, exe, seen_exe_ro):
    if path == exe:
        if "x" in perms:
            return "binary text (r-xp)"
        if "w" in perms:
            return "binary data (rw-p)"
        # The first r--p mapping is the ELF headers and .rodata; a later one is RELRO.
        return "binary RELRO (r--p, relocated)" if seen_exe_ro else "binary rodata (r--p)"
    if path.startswith("/"):
        return "lib " + os.path.basename(path)
    if path == "[heap]":
        return "heap"
    if path == "[stack]":
        return "main stack"
    if "bpf" in path:
        return "bpf " + path
    if path.startswith("["):
        return path
    return "anonymous (thread stacks, malloc arenas, mmaps)"


def smaps(pid):
    exe = os.readlink(f"/proc/{pid}/exe")
    out, cur, seen_ro = {}, None, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
                perms = parts[1]
                path = " ".join(parts[5:]) if len(parts) > 5 else ""
                cur = group_of(perms, path, exe, seen_ro)
                if path == exe and perms.startswith("r--"):
                    seen_ro = True
                out.setdefault(cur, dict.fromkeys(FIELDS, 0))
            elif parts[0].rstrip(":") in FIELDS and cur is not None:
                out[cur][parts[0].rstrip(":")] += int(parts[1])
    return out


def status(pid):
    v = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("VmHWM", "VmRSS", "Threads"):
                v[k] = int(rest.split()[0])
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--storm", default=None)
    ap.add_argument("cmd", nargs="+")
    a = ap.parse_args()
    rounds = []
    for _ in range(a.rounds):
        p = subprocess.Popen(a.cmd, stdout=subprocess.DEVNULL)
        time.sleep(a.settle)
        if a.storm:
            subprocess.run(a.storm, shell=True, check=True)
            time.sleep(0.3)
        if p.poll() is not None:
            sys.exit(f"smaps.py: {a.cmd[0]} exited with {p.returncode}")
        rounds.append((smaps(p.pid), status(p.pid)))
        p.send_signal(signal.SIGINT)
        p.wait()
    groups = sorted({g for r, _ in rounds for g in r},
                    key=lambda g: -statistics.median(r.get(g, {}).get("Rss", 0) for r, _ in rounds))
    print(f"| {' '.join(a.cmd)} | " + " | ".join(FIELDS) + " |")
    print("|---|" + "---|" * len(FIELDS))
    tot = dict.fromkeys(FIELDS, 0)
    for g in groups:
        vals = [statistics.median(r.get(g, {}).get(k, 0) for r, _ in rounds) for k in FIELDS]
        if vals[0] == 0:
            continue
        for k, v in zip(FIELDS, vals):
            tot[k] += v
        print(f"| {g} | " + " | ".join(f"{v:.0f}" for v in vals) + " |")
    print("| total | " + " | ".join(f"{tot[k]:.0f}" for k in FIELDS) + " |")
    for k in ("VmHWM", "VmRSS", "Threads"):
        xs = [s[k] for _, s in rounds]
        print(f"{k}: {statistics.median(xs):.0f} ({min(xs)}-{max(xs)})")


if __name__ == "__main__":
    main()
