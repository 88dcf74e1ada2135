#!/usr/bin/env python3
"""Resource use of each tool as a node agent runs it (docs/deploy.md, the DaemonSet's
requests and limits): RSS (VmRSS at the end, VmHWM peak) and CPU (utime + stime of the
ebpfctl process, in % of one CPU) over a window, at idle and under a stated load, with the
events per second the tool itself counted in that window (its metrics).

    sudo bench/deploy/run.py [--ebpfctl target/release/ebpfctl] [--seconds 10]

Tools run with the DaemonSet's flags (JSON lines to a file, metrics on a loopback port):
  execsnoop -o json        load: 200 execs/s of /bin/true (a shell loop, paced)
  opensnoop -o json        load: 20,000 opens/s of one file (one Python process, paced)
  observe GO -o none       load: 100 HTTP requests/s from a Go load generator to a Go
                           server (examples/go-mesh, both observed)
  run exec_print.bpf.o     load: 200 execs/s, as execsnoop
"Idle" is the machine as it is (other processes keep running: figures include their
background execs and opens). Not a timed test: numbers depend on the machine.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out["VmRSS"], out["VmHWM"]


def start(ebpfctl, args, ready, outdir, name):
    out = open(os.path.join(outdir, name + ".out"), "wb")
    err_path = os.path.join(outdir, name + ".err")
    err = open(err_path, "wb")
    p = subprocess.Popen([ebpfctl] + args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        with open(err_path, "rb") as f:
            if ready.encode() in f.read():
                return p
        if p.poll() is not None:
            sys.exit(f"{name} exited: {open(err_path).read()}")
        time.sleep(0.05)
    p.kill()
    sys.exit(f"{name} not ready: {open(err_path).read()}")


def stop(p):
    p.send_signal(signal.SIGINT)
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def metrics_addr(err_path):
    text = open(err_path).read()
    return text.split("metrics on http://", 1)[1].split("/metrics", 1)[0]


def counted(addr, prefix):
    """Sum of the samples whose series name starts with `prefix` (what the tool saw)."""
    import urllib.request
    body = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in body.splitlines()
               if l.startswith(prefix) and not l.startswith("#"))


def measure(p, seconds, addr, prefix):
    time.sleep(1)  # start-up (snapshot, first drains) is not steady state
    c0, t0, n0 = cpu_seconds(p.pid), time.time(), counted(addr, prefix)
    time.sleep(seconds)
    c1, t1, n1 = cpu_seconds(p.pid), time.time(), counted(addr, prefix)
    rss, hwm = rss_kib(p.pid)
    return 100 * (c1 - c0) / (t1 - t0), rss / 1024, hwm / 1024, (n1 - n0) / (t1 - t0)


def exec_load():
    # 200 execs/s: 20 per 100 ms tick.
    return subprocess.Popen(
        ["bash", "-c", "while :; do for i in $(seq 20); do /bin/true; done; sleep 0.1; done"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def open_load(path):
    code = (
        "import os, time\n"
        f"p = {path!r}\n"
        "while True:\n"
        "    t = time.time()\n"
        "    for _ in range(2000):\n"
        "        os.close(os.open(p, os.O_RDONLY))\n"
        "    time.sleep(max(0, 0.1 - (time.time() - t)))\n")
    return subprocess.Popen([sys.executable, "-c", code])


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(outdir, ebpfctl):
    obj = os.path.join(outdir, "exec_print.bpf.o")
    subprocess.run([ebpfctl, "build", os.path.join(REPO, "examples/exec_print.bpf.c"), "-I",
                    os.path.join(REPO, "examples"), "-o", obj], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mesh = os.path.join(outdir, "bench-deploy-mesh")
    env = dict(os.environ, GOFLAGS="-mod=mod", GOTOOLCHAIN="local", CGO_ENABLED="0",
               GOCACHE=os.path.join(outdir, "gocache"), GOPATH=os.path.join(outdir, "gopath"))
    subprocess.run([os.environ.get("GO", "go"), "build", "-o", mesh, "."],
                   cwd=os.path.join(REPO, "examples/go-mesh"), env=env, check=True)
    return obj, mesh


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ebpfctl", default=os.path.join(REPO, "target/release/ebpfctl"))
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    outdir = tempfile.mkdtemp(prefix="bench-deploy-")
    obj, mesh = build(outdir, a.ebpfctl)
    openfile = os.path.join(outdir, "opened")
    open(openfile, "w").close()
    cases = [
        ("execsnoop", ["execsnoop", "-o", "json", "--metrics-addr", "127.0.0.1:0"], "tracing (",
         exec_load, "200 execs/s", 'ebpfctl_execsnoop_events_total{type="started"}'),
        ("opensnoop", ["opensnoop", "-o", "json", "--metrics-addr", "127.0.0.1:0"], "tracing (",
         lambda: open_load(openfile), "20,000 opens/s", "ebpfctl_opensnoop_events_total"),
        ("observe", ["observe", mesh, "-o", "none", "--metrics-addr", "127.0.0.1:0"],
         "observe: ready", None, "100 HTTP requests/s", "http_server_request_duration_seconds_count"),
        ("run exec_print", ["run", obj, "-o", "json", "--metrics-addr", "127.0.0.1:0"],
         "running:", exec_load, "200 execs/s", "ebpfctl_events_total"),
    ]
    print(f"{'tool':<16} {'load':<22} {'seen/s':>8} {'CPU %':>7} {'RSS MiB':>8} {'peak MiB':>9}")
    for name, args, ready, load, what, prefix in cases:
        servers = []
        front, loadgen = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        if name == "observe":
            servers.append(subprocess.Popen([mesh, "-name", "front", "-listen", front],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        p = start(a.ebpfctl, args, ready, outdir, name.replace(" ", "_"))
        addr = metrics_addr(os.path.join(outdir, name.replace(" ", "_") + ".err"))
        try:
            cpu, rss, hwm, seen = measure(p, a.seconds, addr, prefix)
            print(f"{name:<16} {'idle':<22} {seen:8.0f} {cpu:7.2f} {rss:8.1f} {hwm:9.1f}", flush=True)
            if name == "observe":
                lp = subprocess.Popen([mesh, "-name", "loadgen", "-listen", loadgen,
                                       "-load", f"http://{front}/", "-every", "10ms"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            else:
                lp = load()
            try:
                cpu, rss, hwm, seen = measure(p, a.seconds, addr, prefix)
            finally:
                lp.kill()
                lp.wait()
            print(f"{name:<16} {what:<22} {seen:8.0f} {cpu:7.2f} {rss:8.1f} {hwm:9.1f}", flush=True)
        finally:
            stop(p)
            for s in servers:
                s.kill()
                s.wait()
    subprocess.run(["rm", "-rf", outdir])


if __name__ == "__main__":
    main()
