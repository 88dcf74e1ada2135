#!/usr/bin/env python3
"""The observe benchmark (not a timed test).

Four identical copies of one Go program (bench/observe/main.go) run side by side, each a
server and a client sending N (50,000) sequential GETs over one keep-alive loopback
connection, in blocks of BLOCK requests. The blocks of the four take turns (the order
rotates every block), so a host that gets slower or faster during the run shifts them all
alike, and every figure is a median over blocks of a difference within the same block:

  off    nothing attached
  on     `ebpfctl observe` attached to this copy's client and server (uprobes fire per file)
  floor  empty BPF programs (`ebpfctl run`) at exactly observe's probe points: what the
         traps cost on this machine, whatever the programs do
  step   one empty program on main.get's first instruction (a CMP, single-stepped): what a
         probe the kernel cannot emulate (e.g. on a RET) costs per hit
  paused (PAUSED=1) a second `ebpfctl observe` on this copy, stopped (SIGSTOP) during the
         block and resumed after it: the probes' cost without their reader running on the
         other CPU (its ring must hold a block's events: the run stops if it lost any), so
         on − paused is what the reader's work beside the Go programs costs them (shared
         caches, memory, hyperthreads). It drains what it kept during the next block, which
         the rotation spreads over the other configurations alike

Reported, as latency per request: added (on − off; client and server probes together), the
floor (floor − off), observe above the floor (on − floor), a single-stepped hit
(step − off). Then observer CPU per observed request (all ebpfctl threads, from ready to the end), events
captured / expected (one client and one server event per request, warm-up included), lost
events, peak RSS of ebpfctl.

Usage: bench/observe/run.py [EBPFCTL]   (as root; default target/release/ebpfctl, built if
missing). Env: N=50000 BLOCK=1000 GO=/opt/ebpfctl-go/1.27.3/go/bin/go GO_CPU=1 EBPFCTL_CPU=0
BPF_STATS=1 (where the time above the floor goes: runs and time per program) PAUSED=1
"""
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
N = int(os.environ.get("N", "50000"))
BLOCK = int(os.environ.get("BLOCK", "1000"))
GO = os.environ.get("GO", "/opt/ebpfctl-go/1.27.3/go/bin/go")
WARMUP = 100  # requests each client sends before "ready" (main.go)
PAUSED = os.environ.get("PAUSED") == "1"
CONFIGS = ["off", "on", "floor", "step"] + (["paused"] if PAUSED else [])
# The Go programs run on one CPU and ebpfctl on another (empty: no pinning): on a 2-vCPU VM,
# where a cross-CPU wake-up costs far more than a local one, unpinned blocks swing by ×4
# with where the scheduler put client and server.
GO_CPU = os.environ.get("GO_CPU", "1")
EBPFCTL_CPU = os.environ.get("EBPFCTL_CPU", "0")
# BPF_STATS=1: also count runs and time of observe's and the floor's programs (the kernel's
# BPF stats, on for the run: they add two clock reads per program run, so latencies grow a little).
BPF_STATS = os.environ.get("BPF_STATS") == "1"


def go_env(work):
    """The environment of a Go build in the scratch directory `work`."""
    env = dict(os.environ, GOCACHE=f"{work}/gocache", GOPATH=f"{work}/gopath", GOFLAGS="-mod=mod",
               GOTOOLCHAIN="local")
    if GO.startswith("/opt/ebpfctl-go/"):
        env["GOROOT"] = GO[: -len("/bin/go")]
    return env


def pinned(cpu, argv):
    return ["taskset", "-c", cpu] + argv if cpu else argv


def die(msg):
    print(f"bench/observe: {msg}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ns(pid):
    """CPU time of every thread of a process (schedstat: time spent on a CPU)."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def wait_for(proc, path, text, what, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(path, errors="replace") as f:
            if text in f.read():
                return
        if proc.poll() is not None:
            with open(path, errors="replace") as f:
                die(f"{what} exited before it was ready:\n{f.read()}")
        time.sleep(0.05)
    die(f"{what} not ready after {timeout} s")


def file_offset(binary, addr):
    """Virtual address → file offset, through the PT_LOAD program headers."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if f[:1] == ["LOAD"]:
            off, va, fsz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
            if va <= addr < va + fsz:
                return addr - va + off
    die(f"{addr:#x} is in no LOAD segment of {binary}")


def probe_points(ebpfctl, binary):
    """observe's probes on a successful request, and whether the kernel emulates them all."""
    v = json.loads(subprocess.run([ebpfctl, "observe", "--inspect", binary], capture_output=True,
                                  text=True, check=True).stdout)
    fs = [v["client"], (v["client_exit"] or {}).get("closure"), v["server"], v["finish_request"]]
    points = [(f["entry_offset"], f["entry_emulated"]) for f in fs if f]
    if v["client_success"]:  # roundTrip's error check, a conditional jump
        points.append((v["client_success"]["probe_offset"], True))
    if v["client_exit"] is None and v["client_success"] is None:
        how = "the client's success path ends at a RET probe (single-stepped), not in the floor"
    elif all(e for _, e in points):
        how = "every probe on that path is emulated by the kernel"
    else:
        how = "some probes on that path are single-stepped"
    return [p for p, _ in points], how


def single_step_point(binary):
    """File offset of main.get's first instruction (a CMP: single-stepped)."""
    out = subprocess.run(["readelf", "-sW", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if f[-1:] == ["main.get"]:
            return hex(file_offset(binary, int(f[1], 16)))
    die(f"main.get not found in {binary}")


class Bench:
    def __init__(self, ebpfctl, work):
        self.ebpfctl, self.work = ebpfctl, work
        self.procs = []

    def spawn(self, argv, name):
        """Starts argv with its output in WORK/NAME.log; returns (process, log path)."""
        log = os.path.join(self.work, f"{name}.log")
        p = subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p, log

    def empty_programs(self, name, binary, offsets):
        """`ebpfctl run` with an empty uprobe program at each file offset of binary."""
        src = os.path.join(self.work, f"{name}.bpf.c")
        with open(src, "w") as f:
            f.write('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
                    'char LICENSE[] SEC("license") = "GPL";\n')
            for i, o in enumerate(offsets):
                f.write(f'SEC("uprobe/{binary}:{o}") int {name}{i}(void *ctx) {{ return 0; }}\n')
        obj = src[: -len(".c")] + ".o"
        r = subprocess.run([self.ebpfctl, "build", src, "-o", obj], capture_output=True, text=True)
        if r.returncode:
            die(f"ebpfctl build {src}: {r.stderr}")
        err = os.path.join(self.work, f"{name}.err")
        p = subprocess.Popen(pinned(EBPFCTL_CPU, [self.ebpfctl, "run", obj, "-o", "none", "--no-metrics"]),
                             stdout=subprocess.DEVNULL, stderr=open(err, "w"))
        self.procs.append(p)
        wait_for(p, err, "running:", f"ebpfctl run {name}")
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)  # the paused observer may be stopped
                p.send_signal(signal.SIGINT if self.ebpfctl in p.args else signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    if os.geteuid() != 0:
        die("run as root (observe loads BPF programs)")
    ebpfctl = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "target/release/ebpfctl")
    if not os.access(ebpfctl, os.X_OK):
        subprocess.run(["cargo", "build", "--release", "-p", "ebpfctl"], cwd=REPO, check=True)
    if not os.access(GO, os.X_OK):
        die(f"{GO} missing: run scripts/setup.sh --test")
    work = tempfile.mkdtemp(prefix="ebpfctl-bench-observe-")
    env = go_env(work)
    subprocess.run([GO, "build", "-o", f"{work}/bench", "."], cwd=HERE, env=env, check=True)
    go_version = subprocess.run([GO, "version"], capture_output=True, text=True, env=env).stdout.split()[2]
    bins = {}
    for c in CONFIGS:  # one file per configuration: uprobes are per file
        bins[c] = f"{work}/bench-{c}"
        shutil.copy(f"{work}/bench", bins[c])
    b = Bench(ebpfctl, work)
    try:
        run(b, bins, go_version)
    finally:
        b.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def run(b, bins, go_version):
    blocks = max(1, N // BLOCK)
    print(f"observe benchmark: {blocks} blocks of {BLOCK} sequential requests per configuration "
          f"({', '.join(CONFIGS)}, order rotating), {go_version}, {os.uname().release}", file=sys.stderr)
    points, how = probe_points(b.ebpfctl, bins["on"])
    step_at = single_step_point(bins["step"])
    urls = {}
    for c in CONFIGS:
        port = free_port()
        p, log = b.spawn(pinned(GO_CPU, [bins[c], "serve", f"127.0.0.1:{port}"]), f"server-{c}")
        wait_for(p, log, "listening", f"{c} server")
        urls[c] = f"http://127.0.0.1:{port}/x"
    obs_err = os.path.join(b.work, "observe.err")
    obs = subprocess.Popen(pinned(EBPFCTL_CPU, [b.ebpfctl, "observe", bins["on"], "-o", "none"]),
                           stdout=subprocess.DEVNULL, stderr=open(obs_err, "w"))
    b.procs.append(obs)
    wait_for(obs, obs_err, "observe: ready", "ebpfctl observe")
    paused = None
    if PAUSED:
        paused, paused_err = b.spawn(pinned(EBPFCTL_CPU, [b.ebpfctl, "observe", bins["paused"], "-o", "none"]),
                                     "observe-paused")
        wait_for(paused, paused_err, "observe: ready", "the paused ebpfctl observe")
    floor = b.empty_programs("floor", bins["floor"], points)
    b.empty_programs("step", bins["step"], [step_at])
    stats_was = bpf_stats(True) if BPF_STATS else None
    cpu0 = cpu_ns(obs.pid)
    clients = {}
    for c in CONFIGS:
        p = subprocess.Popen(pinned(GO_CPU, [bins[c], "loop", urls[c]]), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        b.procs.append(p)
        if p.stdout.readline().strip() != "ready":
            die(f"{c} client did not start")
        clients[c] = p
    per = {c: [] for c in CONFIGS}  # ns per request, per block
    for i in range(blocks):
        for c in CONFIGS[i % len(CONFIGS):] + CONFIGS[: i % len(CONFIGS)]:
            p = clients[c]
            if c == "paused":
                paused.send_signal(signal.SIGSTOP)
            p.stdin.write(f"{BLOCK}\n")
            p.stdin.flush()
            per[c].append(int(p.stdout.readline()) / BLOCK)
            if c == "paused":
                paused.send_signal(signal.SIGCONT)
    for p in clients.values():
        p.stdin.close()
        p.wait(timeout=10)
    time.sleep(0.3)  # let the last batch be collected
    cpu1, rss = cpu_ns(obs.pid), peak_rss_kib(obs.pid)
    runs = None
    if BPF_STATS:
        runs = {"on": prog_runs(b.ebpfctl, obs.pid), "floor": prog_runs(b.ebpfctl, floor.pid)}
        bpf_stats(stats_was)
    events, lost = stop_observe(obs, obs_err)
    if paused and stop_observe(paused, paused_err)[1]:
        # Its ring overflowed while it was stopped: the probes skipped records in those blocks.
        die(f"the paused observer lost events: its figures would be too low (lower BLOCK={BLOCK})")
    report(per, blocks, (cpu1 - cpu0) / (blocks * BLOCK), events, lost, rss, len(points), how)
    if runs:
        report_runs(runs, blocks * BLOCK + WARMUP)


def stop_observe(proc, err):
    """Stops `ebpfctl observe` (SIGINT); its summary line's (requests, lost)."""
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    with open(err) as f:
        for line in f:
            w = line.split()
            if line.startswith("observe: ") and w[2:3] == ["requests,"]:
                return int(w[1]), int(w[3])
    die(f"no summary line from ebpfctl observe:\n{open(err).read()}")


def bpf_stats(on):
    """Sets kernel.bpf_stats_enabled; returns the value it had."""
    path = "/proc/sys/kernel/bpf_stats_enabled"
    with open(path) as f:
        was = f.read().strip() == "1"
    with open(path, "w") as f:
        f.write("1" if on else "0")
    return was


def prog_runs(ebpfctl, pid):
    """Per program of process pid: (runs, ns in the program), from the kernel's BPF stats
    (`ebpfctl prog list` names the holding processes; Debian's bpftool does not)."""
    out = subprocess.run([ebpfctl, "prog", "list", "-o", "json"], capture_output=True, text=True,
                         check=True).stdout
    runs = {}
    for p in json.loads(out):
        if any(x.get("pid") == pid for x in p.get("pids", [])):
            runs[p.get("name", str(p["id"]))] = (p.get("run_cnt", 0), p.get("run_time_ns", 0))
    return runs


def report_runs(runs, requests):
    """Where observe's time above the floor goes: BPF program runs and their own time
    (kernel.bpf_stats_enabled, which adds two clock reads per run to every program)."""
    print("\n| BPF programs (BPF_STATS=1) | runs per request | ns in programs per request |")
    print("| --- | --- | --- |")
    for c, progs in runs.items():
        n = sum(r for r, _ in progs.values()) / requests
        t = sum(ns for _, ns in progs.values()) / requests
        print(f"| {c}: all {len(progs)} programs | {n:.2f} | {t:.0f} |")
        if c == "on":
            for name, (r, ns) in sorted(progs.items(), key=lambda kv: -kv[1][1]):
                if r:
                    print(f"| on: {name} | {r / requests:.2f} | {ns / requests:.0f} ({ns / r:.0f} per run) |")


def report(per, blocks, obs_cpu, events, lost, rss, npoints, how):
    med = {c: statistics.median(v) for c, v in per.items()}

    rng = random.Random(1)

    def diff(a, b):
        """Median over blocks of (a − b) within each block, and its 95 % bootstrap interval."""
        d = [x - y for x, y in zip(per[a], per[b])]
        meds = sorted(statistics.median(rng.choices(d, k=len(d))) for _ in range(2000))
        return f"{statistics.median(d):.0f} ns [{meds[50]:.0f}, {meds[1949]:.0f}]"

    expected = 2 * (blocks * BLOCK + WARMUP)
    paused_rows = "" if "paused" not in per else f"""
| observe with its reader stopped, above the floor (paused − floor) | {diff('paused', 'floor')} |
| its reader running beside (on − paused) | {diff('on', 'paused')} |"""
    print(f"""Latency the client measures: medians over {blocks} blocks of {BLOCK} requests, differences
within each block, 95 % bootstrap intervals in brackets.

| per request | latency |
| --- | --- |
| off | {med['off']:.0f} ns |
| on | {med['on']:.0f} ns (×{med['on'] / med['off']:.3f}) |
| **added by observe** (on − off) | {diff('on', 'off')} |
| floor: empty programs at observe's {npoints} probe points (floor − off) | {diff('floor', 'off')} |
| observe above the floor (on − floor) | {diff('on', 'floor')} |
| one single-stepped uprobe, per hit (step − off) | {diff('step', 'off')} |{paused_rows}

{how}.

| observer | value |
| --- | --- |
| CPU per observed request (all ebpfctl threads, user + kernel) | {obs_cpu:.0f} ns |
| events captured / expected (client + server, warm-up included) | {events} / {expected} = {100 * events / expected:.2f} % |
| lost events | {lost} |
| peak RSS of ebpfctl | {rss / 1024:.1f} MiB |""")
    print("per-block ns/request: " + "; ".join(
        f"{c} " + " ".join(f"{x:.0f}" for x in per[c]) for c in CONFIGS), file=sys.stderr)


if __name__ == "__main__":
    main()
