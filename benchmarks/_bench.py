"""Timing helpers for the benchmarks: wall time and peak RSS of whole commands, ours beside the peer's."""
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
VENV_BIN = ROOT / ".venv" / "bin"
AZ = Path(os.environ.get("ONCALL_AZ_VENV") or Path.home() / ".cache" / "oncall" / "az-venv") / "bin" / "az"


def run_once(argv, env=None, stdout=subprocess.DEVNULL, input=None):
    """(wall seconds, peak RSS MB, exit code) of one run."""
    full = dict(os.environ)
    full.update(env or {})
    start = time.perf_counter()
    proc = subprocess.Popen([str(a) for a in argv], stdout=stdout, stderr=subprocess.PIPE, env=full,
                            stdin=subprocess.PIPE if input else subprocess.DEVNULL)
    if input:
        proc.stdin.write(input)
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}: {err[-500:]}")
    return wall, usage.ru_maxrss / 1024, proc.returncode


def measure(argv, env=None, runs=5, warmup=1):
    for _ in range(warmup):
        run_once(argv, env)
    samples = [run_once(argv, env) for _ in range(runs)]
    walls = [s[0] for s in samples]
    return {"median": statistics.median(walls), "min": min(walls), "rss": max(s[1] for s in samples)}


def report(title, rows, ratio_of=None, limit=None):
    """rows: [(label, result)]; prints a table and the ratio ours/peer against the limit."""
    print(f"\n{title}")
    print(f"  {'command':<58} {'median s':>9} {'min s':>7} {'peak MB':>8}")
    for label, r in rows:
        print(f"  {label:<58} {r['median']:>9.3f} {r['min']:>7.3f} {r['rss']:>8.1f}")
    if ratio_of:
        ours, peer = ratio_of
        ratio = ours["median"] / peer["median"]
        verdict = "" if limit is None else ("  OK" if ratio <= limit else f"  OVER the {limit}x target")
        print(f"  ratio ours/peer = {ratio:.2f}{f' (target <= {limit})' if limit else ''}{verdict}")
        return ratio
    return None
