#!/usr/bin/env python3
"""bench/idle_fleet.py: 50,000 concurrent idle POP3 sessions on this machine.

One process holds at most RLIMIT_NOFILE sockets (20,000 here, and the
sandbox has no CAP_SYS_RESOURCE to raise it), for popgate and for the
generator alike. So this runs popgate the way it is deployed: several
instances on one PostgreSQL (as behind a balancer), each driven by its own
generator process on its own users (--first-user) and its own source
addresses. Every generator logs in its share, holds the sessions for
--hold-s, then NOOPs and QUITs; while all of them hold, this script counts
the established server-side connections of every instance (`ss`) and reads
every instance's memory.

It needs the full dataset in a running database, which
`bench/compare.py --build-dir build-bench --keep --scenarios none --no-micro`
leaves behind (stop it afterwards as compare.py says). Then:

    bench/idle_fleet.py --build-dir build-bench --work-dir /tmp/popgate-bench

It prints a line per instance, the totals, and one JSON line. Exit status 0
only if every session was held at once with no error.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402  (the harness: settings, process helpers, memory readers)

SOURCE_ADDRS_PER_GENERATOR = 16  # 127.0.0.x: room for 16 x 28,000 client ports each


def pss_kib(pid):
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss for {pid}")


def established(ports):
    """Server-side established connections on these local ports."""
    out = subprocess.run(["ss", "-Htn", "state", "established"], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    count = 0
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2].rsplit(":", 1)[-1] in ports:
            count += 1
    return count


def start_instance(binary, dsn, work, i):
    d = work / f"fleet{i}"
    d.mkdir(parents=True, exist_ok=True)
    ready = d / "ready"
    if ready.exists():
        ready.unlink()
    # Each instance its own name: lock holders are (instance, session).
    cmd = [binary, "--dsn", dsn, "--listener", "name=pop3,address=127.0.0.1:0", "--ready-file", str(ready),
           "--shards", str(os.cpu_count()), "--set", f"server.instance_name=fleet-{i}"]
    for s in compare.POPGATE_SETTINGS:
        cmd += ["--set", s]
    log = open(d / "popgate.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    compare.wait_for(lambda: ready.exists() or proc.poll() is not None, f"instance {i} to serve")
    if proc.poll() is not None:
        raise RuntimeError(f"instance {i} exited {proc.returncode}: {(d / 'popgate.log').read_text()[-2000:]}")
    port = int(ready.read_text().splitlines()[1].split(" ", 1)[1].rsplit(":", 1)[1])
    return proc, port


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default="build-bench")
    ap.add_argument("--work-dir", default="/tmp/popgate-bench")
    ap.add_argument("--sessions", type=int, default=50_000)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--hold-s", type=float, default=30.0)
    args = ap.parse_args()
    build = Path(args.build_dir).resolve()
    work = Path(args.work_dir)
    dsn = (work / "pg" / "dsn").read_text().strip()
    shares = [args.sessions // args.instances + (1 if i < args.sessions % args.instances else 0)
              for i in range(args.instances)]
    instances = []
    generators = []
    try:
        for i in range(args.instances):
            instances.append(start_instance(str(build / "server/popgate"), dsn, work, i))
        baseline = [pss_kib(p.pid) for p, _ in instances]
        first = 0
        for i, ((proc, port), share) in enumerate(zip(instances, shares)):
            lo = 1 + i * SOURCE_ADDRS_PER_GENERATOR
            cmd = [str(build / "bench/popgate-bench"), "--scenario", "idle", "--dataset", "full", "--target",
                   f"popgate-{i}", "--port", str(port), "--tls-port", "1", "--first-user", str(first),
                   "--idle-steps", f"{share // 10},{share}", "--idle-hold-s", str(args.hold_s),
                   "--source-addrs", f"127.0.0.{lo}-{lo + SOURCE_ADDRS_PER_GENERATOR - 1}",
                   "--server-pid", str(proc.pid), "--quiet"]
            generators.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            first += share
        # While every generator holds: the most connections seen at once.
        ports = {str(port) for _, port in instances}
        peak, peak_pss = 0, [0] * len(instances)
        deadline = time.monotonic() + compare.BENCH_TIMEOUT_S
        while any(g.poll() is None for g in generators) and time.monotonic() < deadline:
            now = established(ports)
            if now > peak:
                peak = now
                peak_pss = [pss_kib(p.pid) for p, _ in instances]
            time.sleep(1.0)
        reports = []
        for g in generators:
            out, err = g.communicate(timeout=60)
            lines = [l for l in out.splitlines() if l.startswith("{")]
            if not lines:
                raise RuntimeError(f"a generator printed no report: {err[-2000:]}")
            reports.append((json.loads(lines[-1]), g.returncode))
    finally:
        for g in generators:
            if g.poll() is None:
                g.kill()
        for proc, _ in instances:
            proc.terminate()
        for proc, _ in instances:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()

    errors = sum(j["errors"]["total"] for j, _ in reports)
    held = sum(j["sessions_held"] for j, _ in reports)
    growth = sum(peak_pss) - sum(baseline)
    for i, ((j, rc), share) in enumerate(zip(reports, shares)):
        per = compare.idle_per_session(j) or float("nan")
        print(f"instance {i}: {j['sessions_held']:,} of {share:,} held, {per:.1f} KiB per session "
              f"(slope between steps), errors {j['errors']['total']}, generator exit {rc}")
    print(f"fleet: {held:,} sessions held, {peak:,} established at once (ss), "
          f"PSS growth of the {args.instances} instances at that moment {growth / 1024:.1f} MiB = "
          f"{growth / max(peak, 1):.1f} KiB per session, errors {errors}")
    print(json.dumps({"tool": "idle_fleet", "instances": args.instances, "sessions": args.sessions,
                      "held": held, "established_peak": peak, "pss_growth_kib": growth,
                      "kib_per_session": growth / max(peak, 1), "errors": errors,
                      "per_instance_kib": [compare.idle_per_session(j) for j, _ in reports]}))
    ok = errors == 0 and held == args.sessions and peak >= args.sessions and all(rc == 0 for _, rc in reports)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
