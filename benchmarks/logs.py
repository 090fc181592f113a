"""A 100,000-row, 10-column Log Analytics result rendered to csv and to table (target: <= 2 s each), beside a
plain ``csv.writer`` dump of the same rows as the floor; then the whole command end to end against the simulator.

    .venv/bin/python benchmarks/logs.py [--rows N] [--runs N] [--no-cli]

Render figures start from the data ``oncall logs query`` returns (typed values: ISO datetimes, numbers, bools,
dynamic as JSON data) and end with the text, as ``--out FILE`` and the -o front door produce it.
"""
import argparse
import csv
import datetime as dt
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _bench import ROOT, VENV_BIN

sys.path.insert(0, str(ROOT / "extensions" / "logs"))
TARGET = 2.0
WS = "11111111-2222-3333-4444-555555555555"
COLUMNS = ["TimeGenerated:datetime", "Computer:string", "PodName:string", "Count:long", "Small:int", "Ratio:real",
           "Ok:bool", "Took:timespan", "Id:guid", "Props:dynamic"]


def wire_rows(n):
    """Rows as the simulator's caller gives them (Python values; it writes them the way the service does)."""
    start = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    ids = [uuid.UUID(int=i * 7919) for i in range(1000)]
    return [[start + dt.timedelta(seconds=i, microseconds=i % 1000), f"aks-node-{i % 12}",
             f"payments-7d9f8-{i % 97:05d}", i * 1013, i % 5000, i / 7.0, i % 3 == 0,
             dt.timedelta(milliseconds=i % 90000), ids[i % 1000], {"status": 500 + i % 4, "path": f"/pay/{i % 40}"}]
            for i in range(n)]


def returned_rows(n):
    """The same rows as ``oncall logs query`` returns them (what -o / --out render)."""
    names = [c.split(":")[0] for c in COLUMNS]
    out = []
    for row in wire_rows(n):
        values = list(row)
        values[0] = values[0].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        values[7] = str(values[7])
        values[8] = str(values[8])
        out.append(dict(zip(names, values)))
    return out


def timed(func, runs):
    """Wall seconds (median, min) and CPU seconds (min: this machine is shared, CPU time is the steadier figure)."""
    walls, cpus = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        func()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return {"median": statistics.median(walls), "min": min(walls), "cpu": min(cpus)}


def run_cli(argv, env, runs):
    """Wall and CPU seconds (user + sys of the oncall process alone, not the simulator's) and peak RSS."""
    full = dict(os.environ, **env)
    walls, cpus, rss = [], [], 0.0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{argv} failed: {proc.stderr.read().decode()[-500:]}")
        cpus.append(usage.ru_utime + usage.ru_stime)
        rss = max(rss, usage.ru_maxrss / 1024)
    return {"median": statistics.median(walls), "min": min(walls), "cpu": min(cpus), "rss": rss}


def show(title, rows):
    print(f"\n{title}")
    print(f"  {'':<64} {'wall median':>11} {'wall min':>9} {'CPU':>7} {'peak MB':>8}")
    for label, r in rows:
        rss = f"{r['rss']:>8.0f}" if r.get("rss") else f"{'':>8}"
        print(f"  {label:<64} {r['median']:>11.2f} {r['min']:>9.2f} {r['cpu']:>7.2f} {rss}")


def render_figures(rows, runs):
    from knack.util import CommandResultItem

    from oncall_common.frontdoor import commands as fd
    from oncall_common.frontdoor.cli import _fmt
    from oncall_common.frontdoor.cli import _plain_todict as todict  # what the front door's invocation calls
    from oncall_common.output import render_csv, render_table
    from oncall_common.registry import REGISTRY

    import oncall_logs.operations  # noqa: F401 - registers the commands

    transform = fd.table_transformer(REGISTRY.operations["logs query"])
    plain = [list(r.values()) for r in rows]

    def floor():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(list(rows[0]))
        writer.writerows(plain)

    def front_door(kind):
        item = CommandResultItem(todict(rows), table_transformer=transform, is_query_active=False)
        return _fmt(kind)(item)

    figures = [
        ("floor: csv.writer dump of the same rows", timed(floor, runs)),
        ("render_csv (what --out FILE.csv does)", timed(lambda: render_csv(rows), runs)),
        ("render_table (what --out FILE.txt does)", timed(lambda: render_table(rows, "table"), runs)),
        ("-o csv after the command returns (knack todict + shape + csv)", timed(lambda: front_door("csv"), runs)),
        ("-o table after the command returns (todict + shape + table)", timed(lambda: front_door("table"), runs)),
    ]
    return figures


def cli_figures(n, runs):
    from simulators.loganalytics import LogAnalyticsSim
    with LogAnalyticsSim() as sim, tempfile.TemporaryDirectory() as tmp:
        sim.validate_sample = 200   # check the first and last 100 rows of each answer against the spec
        sim.add_result("BigResult", [{"name": "PrimaryResult", "columns": COLUMNS, "rows": wire_rows(n)}])
        env = {"ONCALL_LOGS_ENDPOINT": sim.url, "ONCALL_LOGS_ACCESS_TOKEN": sim.token,
               "ONCALL_LOGS_CA_FILE": sim.ca_file, "ONCALL_LOGS_WORKSPACE": WS, "ONCALL_CONFIG_DIR": tmp,
               "ONCALL_NO_HELP_CACHE": "1"}
        oncall = str(VENV_BIN / "oncall")
        out = Path(tmp) / "big.csv"
        figures = [(f"oncall logs query BigResult {' '.join(extra).replace(str(out), out.name)}",
                    run_cli([oncall, "logs", "query", "BigResult", *extra], env, runs))
                   for extra in (["--out", str(out)], ["-o", "csv"], ["-o", "table"], ["-o", "json"])]
        lines = out.read_text().count("\n")
        assert lines == n + 1, f"{out} has {lines} lines"
        sim.assert_clean()
        return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true", help="only the render figures")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    rows = returned_rows(args.rows)
    figures = render_figures(rows, args.runs)
    show(f"{args.rows:,} rows x 10 columns rendered, in-process (seconds)", figures)
    floor = figures[0][1]
    worst = 0.0
    for label, figure in figures[1:3]:
        worst = max(worst, figure["cpu"])
        print(f"  {label.split(' (')[0]}: {figure['cpu']:.2f} s CPU, {figure['median']:.2f} s wall = "
              f"{figure['cpu'] / floor['cpu']:.1f}x the csv.writer floor (target <= {TARGET} s)"
              f"{'  OK' if figure['cpu'] <= TARGET else '  OVER'}")
    if not args.no_cli:
        show(f"{args.rows:,} rows end to end: simulator (TLS, in the benchmark process) -> SDK -> oncall -> output "
             "(CPU: the oncall process only)", cli_figures(args.rows, args.runs))
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
