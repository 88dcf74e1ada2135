#!/usr/bin/env python3
"""How long `ebpfctl observe` takes to stop (not a timed test).

Builds the benchmark's Go program (bench/observe/main.go), copies it four times, and for 1
and 4 copies observed at once measures the time from SIGINT to the observer's exit, ROUNDS
(5) times each, with uprobe-multi links (the default where the kernel has them) and with
perf-event uprobes (EBPFCTL_UPROBE_MULTI=0, what kernels before 6.6 get). Nothing runs in
the observed programs: this is detaching and unloading only.

Usage: bench/observe/stop.py [EBPFCTL]   (as root; default target/release/ebpfctl, built if
missing). Env: ROUNDS=5 GO=/opt/ebpfctl-go/1.27.3/go/bin/go
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
GO = os.environ.get("GO", "/opt/ebpfctl-go/1.27.3/go/bin/go")


def die(msg):
    print(f"bench/observe/stop: {msg}", file=sys.stderr)
    sys.exit(1)


def stop_time(ebpfctl, bins, env, work):
    """Seconds from SIGINT to exit of one observer of `bins`; (seconds, its startup line)."""
    err = os.path.join(work, "observe.err")
    p = subprocess.Popen([ebpfctl, "observe", *bins, "-o", "none"], stdout=subprocess.DEVNULL,
                         stderr=open(err, "w"), env=env)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        with open(err) as f:
            text = f.read()
        if "observe: ready" in text:
            break
        if p.poll() is not None:
            die(f"observe exited before it was ready:\n{text}")
        time.sleep(0.05)
    else:
        p.kill()
        die("observe not ready after 120 s")
    time.sleep(0.3)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    p.wait(timeout=120)
    took = time.monotonic() - t0
    first = next((l for l in text.splitlines() if " uprobes on " in l), "")
    return took, first


def main():
    if os.geteuid() != 0:
        die("run as root (observe loads BPF programs)")
    ebpfctl = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "target/release/ebpfctl")
    if not os.access(ebpfctl, os.X_OK):
        subprocess.run(["cargo", "build", "--release", "-p", "ebpfctl"], cwd=REPO, check=True)
    work = tempfile.mkdtemp(prefix="ebpfctl-bench-stop-")
    try:
        env = dict(os.environ, GOCACHE=f"{work}/gocache", GOPATH=f"{work}/gopath",
                   GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
        if GO.startswith("/opt/ebpfctl-go/"):
            env["GOROOT"] = GO[: -len("/bin/go")]
        subprocess.run([GO, "build", "-o", f"{work}/bench", "."], cwd=HERE, env=env, check=True)
        bins = []
        for i in range(4):
            bins.append(f"{work}/bench-{i}")
            shutil.copy(f"{work}/bench", bins[-1])
        rows = []
        for mode, extra in [("uprobe-multi links", {}), ("perf-event uprobes", {"EBPFCTL_UPROBE_MULTI": "0"})]:
            for n in (1, 4):
                times, line = [], ""
                for _ in range(ROUNDS):
                    t, line = stop_time(ebpfctl, bins[:n], dict(os.environ, **extra), work)
                    times.append(t)
                uprobes = line.split(" uprobes on ")[0].rsplit(" ", 1)[-1] if line else "?"
                rows.append((mode, n, uprobes, statistics.median(times), min(times), max(times)))
        print(f"Stopping `ebpfctl observe` (SIGINT to exit), {ROUNDS} rounds, kernel {os.uname().release}\n")
        print("| attached as | executables | uprobes each | median | min – max |")
        print("| --- | --- | --- | --- | --- |")
        for mode, n, u, med, lo, hi in rows:
            print(f"| {mode} | {n} | {u} | {med:.2f} s | {lo:.2f} – {hi:.2f} s |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
