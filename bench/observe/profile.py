#!/usr/bin/env python3
"""Where observe's per-request cost goes inside the kernel (not a timed test).

One copy of bench/observe/main.go (server and client, on CPU GO_CPU) sends N sequential GETs
while `ebpfctl observe -o none` (on EBPFCTL_CPU) watches it; `perf record` samples the Go
CPU at 10 kHz with call chains. Printed, as shares of the Go processes' samples: the uprobe
traps outside any BPF program (what the floor of empty programs pays too), each observe
program, and the kernel functions the programs spend their time in (user-memory reads,
clock reads, ring-buffer reservations, map lookups, ...).

Usage: bench/observe/profile.py [EBPFCTL]   (as root; needs `perf`: apt-get install
linux-perf). Env: N=40000 GO=... GO_CPU=1 EBPFCTL_CPU=0
"""
import collections
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's helpers: build, pinning, readiness)

N = int(os.environ.get("N", "40000"))


def samples(script):
    """Call chains (leaf first) of `perf script -F ip,sym` output."""
    chain = []
    for line in script.splitlines():
        if not line.startswith((" ", "\t")):
            if chain:
                yield chain
            chain = []
            continue
        parts = line.split(None, 1)
        chain.append(parts[1].split("+")[0] if len(parts) > 1 else "?")
    if chain:
        yield chain


def main():
    ebpfctl = sys.argv[1] if len(sys.argv) > 1 else os.path.join(run.REPO, "target/release/ebpfctl")
    if not os.access(ebpfctl, os.X_OK):
        run.die(f"{ebpfctl}: not built (cargo build --release -p ebpfctl)")
    if subprocess.run(["which", "perf"], capture_output=True).returncode:
        run.die("perf is missing: apt-get install linux-perf")
    with tempfile.TemporaryDirectory(prefix="observe-profile.") as tmp:
        binary = os.path.join(tmp, "bench")
        subprocess.run([run.GO, "build", "-o", binary, "."], cwd=run.HERE, check=True, env=run.go_env(tmp))
        port = run.free_port()
        log = os.path.join(tmp, "server.log")
        server = subprocess.Popen(run.pinned(run.GO_CPU, [binary, "serve", f"127.0.0.1:{port}"]),
                                  stdout=open(log, "w"), stderr=subprocess.STDOUT)
        obs_log = os.path.join(tmp, "observe.log")
        obs = subprocess.Popen(run.pinned(run.EBPFCTL_CPU, [ebpfctl, "observe", binary, "-o", "none"]),
                               stdout=subprocess.DEVNULL, stderr=open(obs_log, "w"))
        try:
            run.wait_for(server, log, "listening", "the Go server")
            run.wait_for(obs, obs_log, "observe: ready", "ebpfctl observe")
            client = subprocess.Popen(run.pinned(run.GO_CPU, [binary, "loop", f"http://127.0.0.1:{port}/p/q?x=1"]),
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert client.stdout.readline().strip() == "ready"
            data = os.path.join(tmp, "perf.data")
            perf = subprocess.Popen(["perf", "record", "-q", "-g", "-C", run.GO_CPU, "-e", "cpu-clock",
                                     "-F", "10000", "-o", data], stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            client.stdin.write(f"{N}\n")
            client.stdin.flush()
            client.stdout.readline()
            perf.send_signal(2)
            perf.wait()
            client.stdin.close()
            client.wait()
        finally:
            for p in (obs, server):
                p.send_signal(2)
                p.wait()
        script = subprocess.run(["perf", "script", "-i", data, "--comm", "bench", "-F", "ip,sym"],
                                capture_output=True, text=True).stdout
    parts, inside = collections.Counter(), collections.Counter()
    n = 0
    for chain in samples(script):
        n += 1
        # The int3 trap (asm_exc_int3 → exc_int3 → ...) and the return to user space after it.
        if not any("uprobe_notify_resume" in f or "exc_int3" in f for f in chain):
            parts["outside uprobes (Go, syscalls, network)"] += 1
            continue
        progs = [f for f in chain if f.startswith("bpf_prog_")]
        if not progs:
            parts["uprobe traps outside programs (the floor pays these too)"] += 1
            continue
        parts["program " + progs[-1].split("_", 3)[-1]] += 1
        leaf = chain[0]
        inside["(the programs' own code)" if leaf.startswith("bpf_prog_") else leaf] += 1
    if not n:
        run.die("perf recorded no sample of the Go programs")
    print(f"{n} samples of the Go programs ({N} requests)\n\n| where | share |\n| --- | --- |")
    for k, v in parts.most_common():
        print(f"| {k} | {v / n * 100:.2f} % |")
    total = sum(inside.values())
    print(f"\n| inside observe's programs ({total / n * 100:.2f} % in all) | share |\n| --- | --- |")
    for k, v in inside.most_common(12):
        print(f"| {k} | {v / n * 100:.2f} % |")


if __name__ == "__main__":
    main()
