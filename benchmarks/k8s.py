#!/usr/bin/env python3
"""k8s benchmarks, ours and kubectl's in one run, against the same Kubernetes simulator.

    .venv/bin/python benchmarks/k8s.py [--pods 5000] [--runs 3] [--follow-pods 50] [--lines 400]

1. `oncall k8s restarts -A` over N pods vs `kubectl get pods -A -o json`: wall time (median of runs) and
   peak RSS.  Must reach: wall <= 1.5x kubectl's, peak RSS <= 150 MB.
2. `oncall k8s logs -l app=bench -f` following 50 pods while lines are appended to each vs
   `kubectl logs -l app=bench -f --prefix`: peak RSS and whether every line arrived.
   Must reach: peak RSS <= 100 MB, every line delivered.

Each measured command is started by a small launcher process that reads its rusage (os.wait4): a child
forked straight from this process (which holds the simulator and its 5,000 pods) would inherit this
process's peak RSS as its own.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
BIN = ROOT / ".venv" / "bin"

LAUNCHER = r"""
import json, os, signal, subprocess, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
proc = subprocess.Popen(cmd)
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *_: proc.send_signal(signal.SIGINT))
while True:
    try:
        _, status, usage = os.wait4(proc.pid, 0)
        break
    except InterruptedError:
        continue
with open(report, "w") as fh:
    json.dump({"wall": time.perf_counter() - start, "rss_mb": usage.ru_maxrss / 1024,
               "code": os.waitstatus_to_exitcode(status)}, fh)
"""


def launch(cmd, env, stdout):
    fd, report = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, report, *map(str, cmd)], env=env, stdout=stdout,
                            stderr=subprocess.PIPE)
    return proc, report


def finish(proc, report, timeout=300):
    _, err = proc.communicate(timeout=timeout)
    with open(report) as fh:
        result = json.load(fh)
    os.unlink(report)
    result["stderr"] = err.decode(errors="replace")
    return result


def measure(cmd, env):
    with tempfile.TemporaryFile() as out:
        proc, report = launch(cmd, env, out)
        result = finish(proc, report)
        out.seek(0)
        result["stdout"] = out.read()
    if result["code"] != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({result['code']}): {result['stderr'][-2000:]}")
    return result


def bench_restarts(sim, env, pods, runs):
    sim.bulk_pods(pods)
    ours_cmd = [BIN / "oncall", "k8s", "restarts", "-A"]
    peer_cmd = [BIN / "kubectl", "get", "pods", "-A", "-o", "json"]
    measure(peer_cmd, env)  # warm-up: kubectl caches discovery, both warm the page cache
    measure(ours_cmd, env)
    ours, peer = [], []
    for _ in range(runs):
        peer.append(measure(peer_cmd, env))
        ours.append(measure(ours_cmd, env))
    rows = json.loads(ours[-1]["stdout"])
    expected = len(range(0, pods, 7))
    assert len(rows) == expected, f"restarts listed {len(rows)} containers, expected {expected}"
    assert len(json.loads(peer[-1]["stdout"])["items"]) == pods
    return ({"wall": statistics.median(r["wall"] for r in ours), "rss_mb": max(r["rss_mb"] for r in ours)},
            {"wall": statistics.median(r["wall"] for r in peer), "rss_mb": max(r["rss_mb"] for r in peer)})


def bench_follow(sim, env, pods, lines_per_pod, cmd, label):
    names = [f"{label}-{i:02d}" for i in range(pods)]
    for name in names:
        sim.add_pod("follow", name, labels={"app": label})
        sim.append_log("follow", name, "app", f"{name} hello")
    received = []
    proc, report = launch(cmd, env, subprocess.PIPE)
    reader = threading.Thread(target=lambda: received.extend(proc.stdout), daemon=True)
    reader.start()
    expected = {f"{n} hello" for n in names} | {f"{n} line {i}" for n in names for i in range(lines_per_pod)}
    deadline = time.monotonic() + 60
    while sum(1 for r in sim.requests if r.path.endswith("/log") and r.query.get("follow") == ["true"]
              and r.path.split("/")[6].startswith(label)) < pods:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit(f"{label}: the follower did not open {pods} streams: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    started = time.perf_counter()
    for i in range(lines_per_pod):
        for name in names:
            sim.append_log("follow", name, "app", f"{name} line {i}")
        if i % 50 == 49:
            time.sleep(0.05)  # bursts, as real pods write
    while len(received) < len(expected) and time.monotonic() < deadline + 120:
        time.sleep(0.05)
    delivery = time.perf_counter() - started
    time.sleep(0.5)  # anything extra (duplicates) would arrive now
    proc.send_signal(signal.SIGINT)
    result = finish(proc, report)
    reader.join(5)
    texts = [line.decode().rstrip("\n").split("] ", 1)[-1] for line in received]
    result.update(lines=len(texts), expected=len(expected), every_line=(sorted(texts) == sorted(expected)),
                  delivery=delivery)
    for name in names:
        sim.delete_pod("follow", name)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--follow-pods", type=int, default=50)
    parser.add_argument("--lines", type=int, default=400, help="lines appended to each followed pod")
    args = parser.parse_args()
    from simulators.k8s import K8sSimulator

    home = Path(tempfile.mkdtemp(prefix="oncall-bench-k8s-"))
    sim = K8sSimulator().start()
    try:
        config = sim.write_kubeconfig(home / "kubeconfig", namespace="default")
        env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
               "KUBECONFIG": str(config), "ONCALL_CONFIG_DIR": str(home / ".oncall"), "LANG": "C.UTF-8"}
        print(f"k8s restarts over {args.pods} pods, median of {args.runs} runs ...", file=sys.stderr)
        ours, peer = bench_restarts(sim, env, args.pods, args.runs)
        print(f"logs -f over {args.follow_pods} pods x {args.lines} lines ...", file=sys.stderr)
        follow_ours = bench_follow(sim, env, args.follow_pods, args.lines,
                                   [BIN / "oncall", "k8s", "logs", "-n", "follow", "-l", "app=ours", "-f",
                                    "--max-pods", "60"], "ours")
        follow_peer = bench_follow(sim, env, args.follow_pods, args.lines,
                                   [BIN / "kubectl", "logs", "-n", "follow", "-l", "app=peer", "-f", "--prefix",
                                    f"--max-log-requests={args.follow_pods}"], "peer")
        if sim.violations:
            print("spec violations:", *sim.violations[:5], sep="\n  ", file=sys.stderr)
    finally:
        sim.stop()
        shutil.rmtree(home, ignore_errors=True)

    ratio = ours["wall"] / peer["wall"]
    checks = [
        ("restarts -A wall <= 1.5x kubectl", ratio <= 1.5, f"{ratio:.2f}x"),
        ("restarts -A peak RSS <= 150 MB", ours["rss_mb"] <= 150, f"{ours['rss_mb']:.0f} MB"),
        ("logs -f peak RSS <= 100 MB", follow_ours["rss_mb"] <= 100, f"{follow_ours['rss_mb']:.0f} MB"),
        ("logs -f every line delivered", follow_ours["every_line"],
         f"{follow_ours['lines']}/{follow_ours['expected']}"),
    ]
    print(f"\n{'measure':<44}{'oncall':>14}{'kubectl':>14}")
    print(f"{'restarts -A / get pods -A -o json: wall s':<44}{ours['wall']:>14.2f}{peer['wall']:>14.2f}")
    print(f"{'  peak RSS MB':<44}{ours['rss_mb']:>14.0f}{peer['rss_mb']:>14.0f}")
    print(f"{f'logs -f, {args.follow_pods} pods: peak RSS MB':<44}{follow_ours['rss_mb']:>14.0f}"
          f"{follow_peer['rss_mb']:>14.0f}")
    print(f"{'  lines delivered':<44}{follow_ours['lines']:>8}/{follow_ours['expected']:<5}"
          f"{follow_peer['lines']:>8}/{follow_peer['expected']:<5}")
    print(f"{'  time to deliver them, s':<44}{follow_ours['delivery']:>14.2f}{follow_peer['delivery']:>14.2f}")
    print()
    for name, ok, figure in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {figure}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
