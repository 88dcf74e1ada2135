#!/usr/bin/env python3
"""Runner benchmark: a getppid() ring-buffer flood through `ebpfctl run -o json > file`, side by
side with bpftrace printing the same fields, alternating, medians over ROUNDS.

Scenarios per tracer and round:
  flood    loadgen at full speed for FLOOD_S seconds: events/s decoded, consumer CPU ns/event,
           events lost, peak RSS
  paced    200,000 getppid/s for PACED_S seconds: events lost (target 0)
  startup  launch → first event seen in the output file (loadgen already running at 2,000/s)

Usage: bench/runner/run.py EBPFCTL_BIN [ROUNDS]   (as root; bench/run.sh builds everything)
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FLOOD_S = float(os.environ.get("FLOOD_S", "3"))
PACED_S = float(os.environ.get("PACED_S", "3"))
TICK = os.sysconf("SC_CLK_TCK")
CPU_TRACER, CPU_LOAD = "1", "0"


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Tracer:
    def __init__(self, name, argv, out_path, ready):
        self.name, self.out_path = name, out_path
        self.out = open(out_path, "w")
        self.err = tempfile.TemporaryFile(mode="w+")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(["taskset", "-c", CPU_TRACER] + argv, stdout=self.out, stderr=self.err)
        self.ready = ready

    def wait_ready(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                self.err.seek(0)
                raise RuntimeError(f"{self.name} exited: {self.err.read()}")
            if self.ready(self):
                return
            time.sleep(0.005)
        raise RuntimeError(f"{self.name} did not start")

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def stdout(self):
        with open(self.out_path) as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


def ebpfctl_tracer(bin_, obj, tgid, out):
    argv = [bin_, "run", obj, "-o", "json", "--no-metrics", "--param", f"target_tgid={tgid}"]
    return Tracer("ebpfctl", argv, out, lambda t: "running:" in t.stderr())


def bpftrace_tracer(tgid, out):
    prog = (
        "tracepoint:syscalls:sys_enter_getppid /pid == %d/ { $s = @seq; @seq = $s + 1; "
        'printf("%%d %%d %%s %%llu %%llu\\n", pid, tid, comm, nsecs, $s); } END { clear(@seq); }' % tgid
    )
    argv = ["bpftrace", "-B", "line", "-f", "json", "-e", prog]
    return Tracer("bpftrace", argv, out, lambda t: "attached_probes" in t.stdout())


def count(tracer_name, text):
    """(events received, events reported lost) from a tracer's output."""
    events = lost = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if tracer_name == "ebpfctl":
            if "_lost" in rec:
                lost += rec["_lost"]
            elif rec.get("_map") == "flood":
                events += 1
        else:
            if rec.get("type") == "printf":
                events += 1
            elif rec.get("type") == "lost_events":
                lost += rec.get("data", {}).get("events", 0)
    return events, lost


def make_tracer(name, bin_, obj, tgid, out):
    return ebpfctl_tracer(bin_, obj, tgid, out) if name == "ebpfctl" else bpftrace_tracer(tgid, out)


def settle(tracer, name, issued, timeout=10):
    """Waits until the output stops growing (or has every event)."""
    last, stable_since, end = -1, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < end:
        n = os.path.getsize(tracer.out_path)
        if n != last:
            last, stable_since = n, time.monotonic()
        elif time.monotonic() - stable_since > 0.4:
            return
        time.sleep(0.05)


def loaded_run(name, bin_, obj, loadgen, rate, secs, tmp):
    lg = subprocess.Popen(["taskset", "-c", CPU_LOAD, loadgen, str(rate), str(secs), "wait"], stdout=subprocess.PIPE, text=True)
    tr = make_tracer(name, bin_, obj, lg.pid, os.path.join(tmp, f"{name}.out"))
    try:
        tr.wait_ready()
        time.sleep(0.2)
        cpu0 = cpu_seconds(tr.proc.pid)
        lg.send_signal(signal.SIGUSR1)
        issued = int(lg.communicate()[0].split()[1])
        settle(tr, name, issued)
        cpu = cpu_seconds(tr.proc.pid) - cpu0
        rss = peak_rss_mib(tr.proc.pid)
    finally:
        tr.stop()
    events, lost = count(name, tr.stdout())
    return {"issued": issued, "events": events, "lost": lost, "cpu": cpu, "rss": rss}


def startup(name, bin_, obj, loadgen, tmp):
    lg = subprocess.Popen(["taskset", "-c", CPU_LOAD, loadgen, "2000", "30"], stdout=subprocess.DEVNULL)
    out = os.path.join(tmp, f"{name}.start")
    try:
        t0 = time.monotonic()
        tr = make_tracer(name, bin_, obj, lg.pid, out)
        first = None
        while time.monotonic() - t0 < 20:
            if count(name, tr.stdout())[0] > 0:
                first = time.monotonic() - t0
                break
            time.sleep(0.001)
        tr.stop()
    finally:
        lg.kill()
        lg.wait()
    return first


def main():
    bin_ = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    tmp = tempfile.mkdtemp(prefix="ebpfctl-bench-")
    obj = os.path.join(tmp, "flood.bpf.o")
    sh(bin_, "build", os.path.join(HERE, "flood.bpf.c"), "-o", obj)
    loadgen = os.path.join(tmp, "loadgen")
    sh("gcc", "-O2", "-o", loadgen, os.path.join(HERE, "loadgen.c"))

    res = {t: {"rate": [], "ns": [], "lost_flood": [], "lost_paced": [], "rss": [], "start": []} for t in ("ebpfctl", "bpftrace")}
    for r in range(rounds):
        order = ["ebpfctl", "bpftrace"] if r % 2 == 0 else ["bpftrace", "ebpfctl"]
        for name in order:
            f = loaded_run(name, bin_, obj, loadgen, 0, FLOOD_S, tmp)
            p = loaded_run(name, bin_, obj, loadgen, 200000, PACED_S, tmp)
            s = startup(name, bin_, obj, loadgen, tmp)
            d = res[name]
            d["rate"].append(f["events"] / FLOOD_S)
            d["ns"].append(f["cpu"] * 1e9 / max(f["events"], 1))
            d["lost_flood"].append(f["issued"] - f["events"])
            d["lost_paced"].append(p["issued"] - p["events"])
            d["rss"].append(max(f["rss"], p["rss"]))
            d["start"].append(s * 1000 if s is not None else float("nan"))
            print(f"round {r + 1} {name}: flood issued {f['issued']} got {f['events']} (reported lost {f['lost']}) "
                  f"cpu {f['cpu']:.2f}s rss {f['rss']:.1f}MiB; paced issued {p['issued']} got {p['events']}; "
                  f"start {d['start'][-1]:.0f}ms", file=sys.stderr, flush=True)

    med = {t: {k: statistics.median(v) for k, v in d.items()} for t, d in res.items()}
    e, b = med["ebpfctl"], med["bpftrace"]
    rows = [
        ("events/s decoded (flood)", "rate", "{:,.0f}", "≥ 1,000,000"),
        ("consumer CPU ns/event (flood)", "ns", "{:,.0f}", "≤ 300"),
        ("events lost (flood)", "lost_flood", "{:,.0f}", ""),
        ("events lost at 200k/s", "lost_paced", "{:,.0f}", "0"),
        ("peak RSS MiB", "rss", "{:.1f}", "≤ 20"),
        ("start → first event ms", "start", "{:.0f}", "≤ 60"),
    ]
    print(f"\nRunner benchmark, {rounds} rounds, medians (flood {FLOOD_S:g}s, paced {PACED_S:g}s at 200k/s)\n")
    print("| metric | ebpfctl | bpftrace | ebpfctl/bpftrace | target |")
    print("|---|---|---|---|---|")
    for label, k, fmt, target in rows:
        ratio = e[k] / b[k] if b[k] else float("nan")
        print(f"| {label} | {fmt.format(e[k])} | {fmt.format(b[k])} | {ratio:.2f} | {target} |")


if __name__ == "__main__":
    main()
