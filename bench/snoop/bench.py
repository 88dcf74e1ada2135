#!/usr/bin/env python3
"""Side-by-side benchmark of ebpfctl execsnoop/opensnoop and bpftrace one-liners.

Driven by run.sh. Per round and storm, the configurations run in a rotating order (no
tracer, ebpfctl, bpftrace). For a traced run: launch the tracer (output to tmpfs), trigger
a marker event every few ms until it shows in the output (start-up), run the storm (wall
time), stop the tracer with SIGINT, read its CPU time and peak RSS from wait4(), and count
the storm's events in its output. Medians over rounds. Tracer output goes to tmpfs
(--outdir) so that both tracers pay the same, small, price for writing it.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

EXECS = 3000
OPENS = 200000

BPFTRACE_EXEC = r"""
tracepoint:syscalls:sys_enter_execve, tracepoint:syscalls:sys_enter_execveat
{ printf("exec %d %s ", pid, comm); join(args->argv); }
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


def wall(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


class Tracer:
    def __init__(self, argv, out_path, err_path):
        self.out_path = out_path
        self.out = open(out_path, "wb")
        self.err = open(err_path, "wb")
        self.t0 = time.perf_counter()
        self.p = subprocess.Popen(argv, stdout=self.out, stderr=self.err)
        self.pos = 0

    def seen(self, needle):
        with open(self.out_path, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        # Keep a tail in case the needle straddles two reads.
        if needle in data:
            return True
        self.pos += max(0, len(data) - len(needle))
        return False

    def wait_first(self, needle, trigger, timeout=30.0):
        while time.perf_counter() - self.t0 < timeout:
            if self.p.poll() is not None:
                raise RuntimeError(f"tracer died: {open(self.err.name).read()}")
            trigger()
            if self.seen(needle):
                return time.perf_counter() - self.t0
            time.sleep(0.002)
        raise RuntimeError("no first event within %ss" % timeout)

    def peak_rss_kib(self):
        # VmHWM of the tracer's own image. (wait4's ru_maxrss would also count the
        # pre-exec copy of this Python process.)
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        time.sleep(0.3)  # let the last records reach the output
        rss = self.peak_rss_kib()
        self.p.send_signal(signal.SIGINT)
        _, status, ru = os.wait4(self.p.pid, 0)
        self.p.returncode = os.waitstatus_to_exitcode(status)
        self.out.close()
        self.err.close()
        return {
            "cpu_s": ru.ru_utime + ru.ru_stime,
            "peak_rss_kib": rss,
            "exit": self.p.returncode,
        }


def count_lines(path, pred):
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if pred(line):
                n += 1
    return n


def exec_storm(cfg, a, work):
    storm = [os.path.join(work, "execstorm"), str(EXECS)]
    if cfg == "none":
        return {"wall_s": wall(storm)}
    out, err = os.path.join(a.outdir, f"exec-{cfg}.out"), os.path.join(a.outdir, f"exec-{cfg}.err")
    if cfg == "ebpfctl":
        argv = [a.ebpfctl, "execsnoop", "-o", "json"] + a.exec_args.split()
        is_storm = lambda l: b'"type":"started"' in l and b'"args":["/bin/true","a","b"]' in l
        is_exit = lambda l: b'"type":"exited"' in l and b'"args":["/bin/true","a","b"]' in l
    else:
        argv = ["bpftrace", "-B", "full", "-e", BPFTRACE_EXEC]
        # The storm's execs, by the caller's comm; whether argv was readable is counted apart.
        is_storm = lambda l: l.startswith(b"exec ") and b" execstorm " in l
        is_exit = lambda l: l.startswith(b"exit ") and l.rstrip(b"\n").endswith(b" true")
    t = Tracer(argv, out, err)
    startup = t.wait_first(b"snoopbench-start",
                           lambda: subprocess.run(["/bin/true", "snoopbench-start"]))
    w = wall(storm)
    r = t.stop()
    with_args = lambda l: is_storm(l) and l.rstrip(b"\n").endswith(b"/bin/true a b")
    if cfg == "ebpfctl":
        with_args = is_storm
    r.update(wall_s=w, startup_s=startup, captured=count_lines(out, is_storm),
             with_args=count_lines(out, with_args), exits=count_lines(out, is_exit),
             issued=EXECS)
    return r


def open_storm(cfg, a, work):
    target = os.path.join(work, "openstorm.file")
    marker = os.path.join(work, "snoopbench-start-marker")
    for p in (target, marker):
        open(p, "w").close()
    storm = [os.path.join(work, "openstorm"), target, str(OPENS)]
    if cfg == "none":
        return {"wall_s": wall(storm)}
    out, err = os.path.join(a.outdir, f"open-{cfg}.out"), os.path.join(a.outdir, f"open-{cfg}.err")
    needle = target.encode()
    if cfg == "ebpfctl":
        argv = [a.ebpfctl, "opensnoop", "-o", "json"] + a.open_args.split()
        is_storm = lambda l: b'"path":"' + needle + b'"' in l
    else:
        argv = ["bpftrace", "-B", "full", "-e", BPFTRACE_OPEN]
        is_storm = lambda l: l.rstrip(b"\n").endswith(b" " + needle)

    def trigger():
        os.close(os.open(marker, os.O_RDONLY))

    t = Tracer(argv, out, err)
    startup = t.wait_first(b"snoopbench-start-marker", trigger)
    w = wall(storm)
    r = t.stop()
    r.update(wall_s=w, startup_s=startup, captured=count_lines(out, is_storm), issued=OPENS)
    return r


def med(runs, key):
    v = [r[key] for r in runs if key in r]
    return statistics.median(v) if v else None


def table(name, results):
    base = med(results["none"], "wall_s")
    print(f"\n{name}: medians of {len(results['none'])} rounds")
    print(f"{'tracer':<9} {'wall s':>8} {'slowdown':>9} {'tracer CPU s':>13} {'captured/issued':>16} "
          f"{'peak RSS MiB':>13} {'start-up ms':>12}  notes")
    for cfg, runs in results.items():
        w = med(runs, "wall_s")
        if cfg == "none":
            print(f"{cfg:<9} {w:>8.3f} {'1.00x':>9} {'-':>13} {'-':>16} {'-':>13} {'-':>12}")
            continue
        cap = f"{int(med(runs, 'captured'))}/{runs[0]['issued']}"
        worst = min(r["captured"] for r in runs)
        if worst != runs[0]["issued"]:
            cap += f" (min {worst})"
        notes = ""
        if "with_args" in runs[0]:
            notes += f"argv read in {int(med(runs, 'with_args'))}; "
        if "exits" in runs[0]:
            notes += f"exits {int(med(runs, 'exits'))}"
        print(f"{cfg:<9} {w:>8.3f} {w / base:>8.2f}x {med(runs, 'cpu_s'):>13.3f} {cap:>16} "
              f"{med(runs, 'peak_rss_kib') / 1024:>13.1f} {med(runs, 'startup_s') * 1000:>12.1f}  {notes}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ebpfctl", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", required=True)
    ap.add_argument("--exec-args", default="", help="extra flags for ebpfctl execsnoop")
    ap.add_argument("--open-args", default="", help="extra flags for ebpfctl opensnoop")
    ap.add_argument("--storms", default="exec,open", help="which storms: exec,open")
    ap.add_argument("--outdir", default="/dev/shm/snoopbench",
                    help="tracer output (tmpfs, so disk writes do not count as tracer CPU)")
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    if os.geteuid() != 0:
        sys.exit("run as root")
    cfgs = ["none", "ebpfctl", "bpftrace"]
    all_results = {}
    storms = (("exec", "exec storm (3,000 fork+exec of /bin/true a b)", exec_storm),
              ("open", "open storm (200,000 open+close of one file)", open_storm))
    for key, storm_name, fn in storms:
        if key not in a.storms.split(","):
            continue
        results = {c: [] for c in cfgs}
        for r in range(a.rounds):
            order = cfgs[r % 3:] + cfgs[:r % 3]
            for cfg in order:
                res = fn(cfg, a, a.work)
                results[cfg].append(res)
                print(f"  round {r + 1} {cfg}: {json.dumps(res)}", file=sys.stderr)
        table(storm_name, results)
        all_results[storm_name] = results
    with open(a.out, "w") as f:
        json.dump(all_results, f, indent=1)
    print(f"\nraw runs: {a.out}")


if __name__ == "__main__":
    main()
