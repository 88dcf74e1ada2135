#!/usr/bin/env python3
"""Side-by-side benchmark of ebpfctl execsnoop/opensnoop, libbpf-tools' C execsnoop/opensnoop
(bcc) and bpftrace one-liners on the same tracepoints.

Driven by run.sh. Per round and storm the configurations run in a rotating order (no tracer,
ebpfctl, libbpf-tools, bpftrace), so slow phases of a shared machine hit each of them alike.
Per traced configuration and round, two runs:

- start-up: launch the tracer, trigger a marker event every 2 ms until it shows in the output
  (the C tools run under `stdbuf -oL`, else their stdout is flushed only at exit), stop it.
- storm: launch the tracer with its normal output buffering, wait until a marker shows (the
  C tools: a fixed settle, then the marker is checked in the output afterwards), run the
  storm (its wall time), stop the tracer with SIGINT, read its CPU time from wait4() and its
  peak RSS (VmHWM) just before, count the storm's events in its output and the losses it
  reported on stderr, and the tracer's voluntary context switches during the storm (its
wake-ups: each is a sleep in poll/epoll that ended).

Tracer output goes to tmpfs (--outdir) so that every tracer pays the same small price for
writing it. Medians over rounds with min–max; ratios are to libbpf-tools.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

EXECS = 3000
OPENS = 200000

BPFTRACE_EXEC = r"""
tracepoint:syscalls:sys_enter_execve, tracepoint:syscalls:sys_enter_execveat
{ printf("exec %d %d %s ", pid, curtask->real_parent->tgid, comm); join(args->argv); }
tracepoint:syscalls:sys_exit_execve, tracepoint:syscalls:sys_exit_execveat
{ printf("ret %d %d\n", pid, args->ret); }
tracepoint:sched:sched_process_exit /pid == tid/ { printf("exit %d %s\n", pid, comm); }
"""

BPFTRACE_OPEN = r"""
tracepoint:syscalls:sys_enter_open, tracepoint:syscalls:sys_enter_openat
{ @f[tid] = args->filename; }
tracepoint:syscalls:sys_exit_open, tracepoint:syscalls:sys_exit_openat /@f[tid]/
{ printf("%d %d %s\n", pid, args->ret, str(@f[tid])); delete(@f[tid]); }
END { clear(@f); }
"""

TRACERS = ["ebpfctl", "libbpf-tools", "bpftrace"]
# Extra configurations (--tracers): ebpfctl with its environment or flags changed.
VARIANTS = {
    "ebpfctl-wake0": ("ebpfctl", {"EBPFCTL_WAKEUP_BYTES": "0"}, []),
    "ebpfctl-ring256": ("ebpfctl", None, ["--ring-kib", "256"]),
    "ebpfctl-ring512": ("ebpfctl", None, ["--ring-kib", "512"]),
    "ebpfctl-ring1024": ("ebpfctl", None, ["--ring-kib", "1024"]),
    "ebpfctl-ring2048": ("ebpfctl", None, ["--ring-kib", "2048"]),
}


def variant_args(cfg):
    return VARIANTS[cfg][2] if cfg in VARIANTS else []


def base_of(cfg):
    return VARIANTS[cfg][0] if cfg in VARIANTS else cfg
C_SETTLE_S = 1.5  # storm runs of the C tools: their marker is only visible at exit

# Losses as each tracer reports them on stderr.
LOSS_RE = {
    "ebpfctl": (re.compile(rb"events lost \((\d+) in total\)"), max),
    "libbpf-tools": (re.compile(rb"Lost (\d+) events on CPU"), sum),
    "bpftrace": (re.compile(rb"Lost (\d+) events"), sum),
}


def c_tool(name):
    for p in (f"/usr/sbin/{name}", f"/usr/sbin/bpf-{name}"):
        if os.access(p, os.X_OK):
            return p
    sys.exit(f"libbpf-tools' {name} not found (apt-get install libbpf-tools)")


class Tracer:
    def __init__(self, argv, out_path, err_path, env=None):
        self.out_path = out_path
        self.out = open(out_path, "wb")
        self.err = open(err_path, "wb")
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(argv, stdout=self.out, stderr=self.err,
                                  env=dict(os.environ, **env) if env else None)
        self.pos = 0

    def seen(self, needle):
        with open(self.out_path, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        if needle in data:
            return True
        # Keep a tail in case the needle straddles two reads.
        self.pos += max(0, len(data) - len(needle))
        return False

    def died(self):
        if self.p.poll() is not None:
            raise RuntimeError(f"tracer died: {open(self.err.name).read()}")

    def wait_first(self, needle, trigger, timeout=30.0):
        while time.perf_counter() - self.t0 < timeout:
            self.died()
            trigger()
            if self.seen(needle):
                return time.perf_counter() - self.t0
            time.sleep(0.002)
        raise RuntimeError("no first event within %ss" % timeout)

    def rss_kib(self):
        # VmHWM (peak) and VmRSS (now) of the tracer's own image. (wait4's ru_maxrss would
        # also count the pre-exec copy of this Python process.)
        v = {}
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                k, _, rest = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    v[k] = int(rest.split()[0])
        return v.get("VmHWM", 0), v.get("VmRSS", 0)

    def switches(self):
        """Voluntary context switches of all the tracer's threads so far."""
        n = 0
        for t in os.listdir(f"/proc/{self.p.pid}/task"):
            try:
                with open(f"/proc/{self.p.pid}/task/{t}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches:"):
                            n += int(line.split()[1])
            except FileNotFoundError:
                pass
        return n

    def stop(self, settle=0.3):
        time.sleep(settle)  # let the last records reach the output
        hwm, rss = self.rss_kib()
        self.p.send_signal(signal.SIGINT)
        _, status, ru = os.wait4(self.p.pid, 0)
        self.p.returncode = os.waitstatus_to_exitcode(status)
        self.out.close()
        self.err.close()
        return {"cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_kib": hwm,
                "end_rss_kib": rss, "exit": self.p.returncode}


def losses(cfg, out_path, err_path):
    cfg = base_of(cfg)
    rx, agg = LOSS_RE[cfg]
    found = []
    # bpftrace reports its losses on stdout, the others on stderr.
    for p in (out_path, err_path) if cfg == "bpftrace" else (err_path,):
        with open(p, "rb") as f:
            found += [int(m) for m in rx.findall(f.read())]
    return agg(found) if found else 0


def count_lines(path, pred):
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if pred(line):
                n += 1
    return n


def run_storm(argv):
    t = time.perf_counter()
    p = subprocess.Popen(argv)
    p.wait()
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed")
    return time.perf_counter() - t, p.pid


def traced(a, cfg, storm_key, argv, marker, trigger, storm, counters):
    """Start-up run, then storm run, of one tracer; returns the storm run's figures."""
    out = os.path.join(a.outdir, f"{storm_key}-{cfg}.out")
    err = os.path.join(a.outdir, f"{storm_key}-{cfg}.err")
    lb = ["stdbuf", "-oL"] if cfg == "libbpf-tools" else []
    env = VARIANTS[cfg][1] if cfg in VARIANTS else None
    t = Tracer(lb + argv, out, err, env)
    startup = t.wait_first(marker, trigger)
    t.stop(settle=0)
    t = Tracer(argv, out, err, env)
    if cfg == "libbpf-tools":
        while time.perf_counter() - t.t0 < C_SETTLE_S:
            t.died()
            time.sleep(0.05)
        trigger()
    else:
        t.wait_first(marker, trigger)
    s0 = t.switches()
    w, storm_pid = run_storm(storm)
    wakeups = t.switches() - s0
    r = t.stop()
    with open(out, "rb") as f:
        ready = marker in f.read()
    if not ready:
        raise RuntimeError(f"{cfg} had not attached {C_SETTLE_S}s after start")
    r.update(wall_s=w, startup_s=startup, lost=losses(cfg, out, err),
             wakeups_per_s=wakeups / w)
    for key, pred in counters(storm_pid).items():
        r[key] = count_lines(out, pred)
    return r


def exec_storm(cfg, a, work):
    storm = [os.path.join(work, "execstorm"), str(EXECS)]
    if cfg == "none":
        return {"wall_s": run_storm(storm)[0]}
    if base_of(cfg) == "ebpfctl":
        argv = [a.ebpfctl, "execsnoop", "-o", "json"] + a.exec_args.split() + variant_args(cfg)

        def counters(sp):
            ppid = b'"ppid":%d,' % sp
            return {
                "captured": lambda l: b'"type":"started"' in l and ppid in l,
                "with_args": lambda l: b'"type":"started"' in l and ppid in l
                and b'"args":["/bin/true","a","b"]' in l,
                "exits": lambda l: b'"type":"exited"' in l and ppid in l,
            }
    elif cfg == "libbpf-tools":
        argv = [c_tool("execsnoop")]

        def counters(sp):
            def mine(l):
                f = l.split()
                return len(f) >= 4 and f[0] == b"true" and f[2] == b"%d" % sp

            return {
                "captured": mine,
                "with_args": lambda l: mine(l) and l.rstrip().endswith(b"/bin/true a b"),
            }
    else:
        argv = ["bpftrace", "-B", "full", "-e", BPFTRACE_EXEC]

        def counters(sp):
            def mine(l):
                f = l.split()
                return len(f) >= 4 and f[0] == b"exec" and f[2] == b"%d" % sp

            return {
                "captured": mine,
                "with_args": lambda l: mine(l) and l.rstrip().endswith(b"/bin/true a b"),
                "exits": lambda l: l.startswith(b"exit ") and l.rstrip().endswith(b" true"),
            }

    def trigger():
        subprocess.run(["/bin/true", "snoopbench-start"])

    r = traced(a, cfg, "exec", argv, b"snoopbench-start", trigger, storm, counters)
    r["issued"] = EXECS
    return r


def open_storm(cfg, a, work):
    target = os.path.join(work, "openstorm.file")
    marker = os.path.join(work, "snoopbench-start-marker")
    for p in (target, marker):
        open(p, "w").close()
    storm = [os.path.join(work, "openstorm"), target, str(OPENS)]
    if cfg == "none":
        return {"wall_s": run_storm(storm)[0]}
    needle = target.encode()
    if base_of(cfg) == "ebpfctl":
        argv = [a.ebpfctl, "opensnoop", "-o", "json"] + a.open_args.split() + variant_args(cfg)

        def counters(sp):
            pid = b'"pid":%d,' % sp
            return {"captured": lambda l: pid in l and b'"path":"' + needle + b'"' in l}
    elif cfg == "libbpf-tools":
        argv = [c_tool("opensnoop")]

        def counters(sp):
            return {"captured": lambda l: l.startswith(b"%d " % sp)
                    and l.rstrip().endswith(b" " + needle)}
    else:
        argv = ["bpftrace", "-B", "full", "-e", BPFTRACE_OPEN]

        def counters(sp):
            return {"captured": lambda l: l.startswith(b"%d " % sp)
                    and l.rstrip().endswith(b" " + needle)}

    def trigger():
        os.close(os.open(marker, os.O_RDONLY))

    r = traced(a, cfg, "open", argv, os.path.basename(marker).encode(), trigger, storm, counters)
    r["issued"] = OPENS
    return r


def stats(runs, key):
    v = [r[key] for r in runs if key in r]
    if not v:
        return None
    return statistics.median(v), min(v), max(v)


def fmt(s, scale=1.0, digits=3, unit=""):
    if s is None:
        return "n/a"
    m, lo, hi = (x * scale for x in s)
    return f"{m:.{digits}f}{unit} ({lo:.{digits}f}–{hi:.{digits}f})"


def table(name, results, load):
    base = stats(results["none"], "wall_s")
    # Ratios to the C tools only when they ran (TRACERS= may leave them out).
    c = {k: stats(results.get("libbpf-tools", []), k)
         for k in ("cpu_s", "peak_rss_kib", "end_rss_kib", "startup_s")}
    n = len(results["none"])
    print(f"\n### {name}\n")
    print(f"Medians of {n} interleaved rounds (min–max); ×: ratio to libbpf-tools. "
          f"No tracer: {fmt(base)} s. Load average before / after: {load[0]} / {load[1]}.\n")
    exec_storm_ = any("with_args" in r for runs in results.values() for r in runs)
    head = ["tracer", "captured", "losses reported", "workload slowdown", "storm k/s",
            "tracer CPU s"]
    if exec_storm_:
        head.append("argv captured")
    head += ["peak RSS MiB", "RSS at end MiB", "start to first event ms",
             "tracer wake-ups /s in the storm"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))

    def ratio(key, v):
        if c[key] is None or v is None or c[key][0] == 0:
            return ""
        return f" ×{v[0] / c[key][0]:.2f}"

    for cfg in TRACERS:
        runs = results.get(cfg)
        if not runs:
            continue
        issued = runs[0]["issued"]
        cap = stats(runs, "captured")
        row = [cfg,
               f"{cap[0] / issued * 100:.1f} % ({cap[1] / issued * 100:.1f}–{cap[2] / issued * 100:.1f})",
               "/".join(str(r["lost"]) for r in runs)]
        slow = [r["wall_s"] / base[0] for r in runs]
        row.append(f"×{statistics.median(slow):.2f} ({min(slow):.2f}–{max(slow):.2f})")
        rate = [issued / r["wall_s"] / 1000 for r in runs]
        row.append(f"{statistics.median(rate):.0f} ({min(rate):.0f}–{max(rate):.0f})")
        cpu = stats(runs, "cpu_s")
        row.append(fmt(cpu) + ratio("cpu_s", cpu))
        if exec_storm_:
            wa = stats(runs, "with_args")
            row.append(f"{int(wa[0])} / {issued} ({int(wa[1])}–{int(wa[2])})")
        rss = stats(runs, "peak_rss_kib")
        row.append(fmt(rss, 1 / 1024, 1) + ratio("peak_rss_kib", rss))
        end = stats(runs, "end_rss_kib")
        row.append(fmt(end, 1 / 1024, 1) + ratio("end_rss_kib", end))
        st = stats(runs, "startup_s")
        row.append(fmt(st, 1000, 0) + ratio("startup_s", st))
        row.append(fmt(stats(runs, "wakeups_per_s"), 1, 0))
        print("| " + " | ".join(row) + " |")


def main():
    global TRACERS
    ap = argparse.ArgumentParser()
    ap.add_argument("--ebpfctl", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", required=True)
    ap.add_argument("--exec-args", default="", help="extra flags for ebpfctl execsnoop")
    ap.add_argument("--open-args", default="", help="extra flags for ebpfctl opensnoop")
    ap.add_argument("--storms", default="exec,open", help="which storms: exec,open")
    ap.add_argument("--tracers", default=",".join(TRACERS),
                    help="subset of " + ",".join(TRACERS + list(VARIANTS)))
    ap.add_argument("--outdir", default="/dev/shm/snoopbench",
                    help="tracer output (tmpfs, so disk writes do not count as tracer CPU)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    os.makedirs(a.outdir, exist_ok=True)
    TRACERS = [t for t in TRACERS + list(VARIANTS) if t in a.tracers.split(",")]
    cfgs = ["none"] + TRACERS
    all_results = {}
    storms = (("exec", "exec storm (3,000 fork+exec of /bin/true a b)", exec_storm),
              ("open", "open storm (200,000 open+close of one file)", open_storm))
    for key, storm_name, fn in storms:
        if key not in a.storms.split(","):
            continue
        results = {c: [] for c in cfgs}
        load0 = open("/proc/loadavg").read().split()[0]
        for r in range(a.rounds):
            k = r % len(cfgs)
            for cfg in cfgs[k:] + cfgs[:k]:
                res = fn(cfg, a, a.work)
                results[cfg].append(res)
                print(f"  round {r + 1} {cfg}: {json.dumps(res)}", file=sys.stderr)
        load1 = open("/proc/loadavg").read().split()[0]
        table(storm_name, results, (load0, load1))
        all_results[storm_name] = {"load": [load0, load1], "runs": results}
    with open(a.out, "w") as f:
        json.dump(all_results, f, indent=1)
    for f in os.listdir(a.outdir):
        os.unlink(os.path.join(a.outdir, f))
    print(f"\nraw runs: {a.out}")


if __name__ == "__main__":
    main()
