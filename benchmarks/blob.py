"""A container downloaded as one zip (`oncall blob download-zip`) beside `az storage blob download-batch` into a
folder: same Azurite, same data, same run. Targets: our wall time <= 0.7x az's on 1 GB in 1,000 blobs, and our
peak RSS <= 200 MB and flat (the 4 GB run's peak within 10% of the 1 GB run's).

    .venv/bin/python benchmarks/blob.py [--runs N] [--big] [--az-connections 2 8] [--keep]

The data: 1,000 blobs of 1 MiB (--big adds 4,000 of them, 4 GiB), half of them log text (deflated in the
zip), half random bytes like heap dumps (sampled, found incompressible, stored), each with its Content-MD5.
Wall time and peak RSS are the whole command's (python start-up and azure-cli's included), measured with
wait4; every zip is opened and its entry count and sizes checked after the run.
"""
import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _bench import AZ, ROOT, VENV_BIN

sys.path.insert(0, str(ROOT / "extensions" / "blob" / "tests"))
from azurite import Azurite  # noqa: E402

MiB = 1 << 20
TARGET_RATIO = 0.7
TARGET_RSS_MB = 200
FLAT = 0.10


def _log_text(rng, size):
    levels = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"]
    words = ("payment checkout order card declined retry upstream timeout pool exhausted gc pause heap "
             "request latency ms user session token refresh cache miss hit db query rows").split()
    lines, total = [], 0
    while total < size:
        line = (f"2024-06-01T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}."
                f"{rng.randrange(1000):03d}Z {rng.choice(levels)} payments-7d9f8-{rng.randrange(99999):05d} "
                + " ".join(rng.choice(words) for _ in range(rng.randrange(6, 16)))
                + f" id={rng.getrandbits(64):016x}\n")
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def seed(service, name, blobs, size):
    """`blobs` blobs of `size` bytes: even ones log text, odd ones random; each with its Content-MD5."""
    from azure.storage.blob import ContentSettings
    container = service.create_container(name)
    text = _log_text(random.Random(1), size + 64 * 1024)

    def put(i):
        if i % 2 == 0:
            offset = (i * 7919) % (64 * 1024)
            data = text[offset:offset + size]
            blob = f"payments/2024-06-01/logs/app-{i:05d}.log"
        else:
            data = os.urandom(size)
            blob = f"payments/2024-06-01/dumps/heap-{i:05d}.bin"
        container.upload_blob(blob, data, overwrite=True,
                              content_settings=ContentSettings(content_md5=bytearray(hashlib.md5(data).digest())))
        return len(data)

    with ThreadPoolExecutor(16) as pool:
        total = sum(pool.map(put, range(blobs)))
    return total


def run(argv, env, stdout=subprocess.DEVNULL):
    """(wall seconds, peak RSS MB) of one command; raises if it fails. Its stderr goes to a file: az draws a
    progress bar there, and a pipe nobody reads would stop it."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(a) for a in argv], stdout=stdout, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(map(str, argv))} failed: {err.read().decode(errors='replace')[-800:]}")
    return wall, usage.ru_maxrss / 1024


def check_zip(path, blobs, total):
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert len(infos) == blobs, f"{path}: {len(infos)} entries, expected {blobs}"
        assert sum(i.file_size for i in infos) == total, f"{path}: sizes do not add up"


def check_folder(folder, blobs, total):
    files = [p for p in Path(folder).rglob("*") if p.is_file()]
    assert len(files) == blobs and sum(p.stat().st_size for p in files) == total, f"{folder}: incomplete"


def bench_ours(conn, container, blobs, total, work, runs, extra=()):
    env = dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=conn)
    samples = []
    for _ in range(runs):
        target = work / "ours.zip"
        target.unlink(missing_ok=True)
        samples.append(run([VENV_BIN / "oncall", "blob", "download-zip", "-c", container, "--zip", target,
                            "-o", "none", *extra], env))
        check_zip(target, blobs, total)
    zip_mb = target.stat().st_size / MiB
    target.unlink()
    return _summary(samples) | {"zipMB": zip_mb}


def bench_az(conn, container, blobs, total, work, runs, connections):
    env = dict(os.environ, AZURE_CONFIG_DIR=str(work / "azure"), AZURE_CORE_COLLECT_TELEMETRY="0",
               AZURE_CORE_FIRST_RUN="yes", AZURE_CORE_ONLY_SHOW_ERRORS="1", AZURE_CORE_NO_COLOR="1")
    samples = []
    for _ in range(runs):
        folder = work / "az-folder"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        argv = [AZ, "storage", "blob", "download-batch", "--destination", folder, "--source", container,
                "--connection-string", conn]
        if connections:
            argv += ["--max-connections", str(connections)]
        samples.append(run(argv, env))
        check_folder(folder, blobs, total)
        shutil.rmtree(folder, ignore_errors=True)
    return _summary(samples)


def _summary(samples):
    walls = [s[0] for s in samples]
    return {"median": statistics.median(walls), "min": min(walls), "rss": max(s[1] for s in samples)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--blobs", type=int, default=1000)
    parser.add_argument("--blob-size", type=int, default=MiB)
    parser.add_argument("--big", action="store_true", help="also the 4x run (4 GiB), for the flat-memory check")
    parser.add_argument("--az-connections", type=int, nargs="*", default=[0, 8],
                        help="az --max-connections values to run (0: az's default, 2)")
    parser.add_argument("--no-az", action="store_true")
    parser.add_argument("--levels", type=int, nargs="*", default=[1],
                        help="also run ours with these --compress-level values (default: 1)")
    args = parser.parse_args()
    if not args.no_az and not AZ.exists():
        sys.exit(f"azure-cli not found at {AZ}: run scripts/setup (or pass --no-az)")

    work = Path(tempfile.mkdtemp(prefix="oncall-bench-blob-", dir=os.environ.get("TMPDIR", "/var/tmp")))
    need_mb = int(args.blobs * args.blob_size * (5 if args.big else 1) / MiB) + 1024
    server = Azurite(memory_limit_mb=need_mb)
    server.start()
    from azure.storage.blob import BlobServiceClient
    service = BlobServiceClient.from_connection_string(server.connection_string)
    try:
        started = time.monotonic()
        total = seed(service, "bench1g", args.blobs, args.blob_size)
        print(f"seeded {args.blobs} blobs, {total / MiB:.0f} MiB in {time.monotonic() - started:.1f}s "
              f"(Azurite {server.account_url})", flush=True)
        rows = []
        ours = bench_ours(server.connection_string, "bench1g", args.blobs, total, work, args.runs)
        rows.append((f"oncall blob download-zip ({total / MiB:.0f} MiB -> {ours['zipMB']:.0f} MiB zip)", ours))
        for level in args.levels:
            r = bench_ours(server.connection_string, "bench1g", args.blobs, total, work, args.runs,
                           extra=("--compress-level", str(level)))
            rows.append((f"  ... --compress-level {level} ({r['zipMB']:.0f} MiB zip)", r))
        peers = []
        if not args.no_az:
            for connections in args.az_connections:
                label = f"az storage blob download-batch (--max-connections {connections or '2, default'})"
                peer = bench_az(server.connection_string, "bench1g", args.blobs, total, work, args.runs,
                                connections)
                rows.append((label, peer))
                peers.append((connections, peer))
        big = None
        if args.big:
            big_blobs = args.blobs * 4
            started = time.monotonic()
            big_total = seed(service, "bench4g", big_blobs, args.blob_size)
            print(f"seeded {big_blobs} blobs, {big_total / MiB:.0f} MiB in {time.monotonic() - started:.1f}s",
                  flush=True)
            big = bench_ours(server.connection_string, "bench4g", big_blobs, big_total, work, 1)
            rows.append((f"oncall blob download-zip ({big_total / MiB:.0f} MiB -> {big['zipMB']:.0f} MiB zip)", big))

        print(f"\nblob to zip: {os.cpu_count()} CPUs, runs={args.runs}")
        print(f"  {'command':<66} {'median s':>9} {'min s':>7} {'MB/s':>7} {'peak MB':>8}")
        for label, r in rows:
            size = big_total if r is big else total
            print(f"  {label:<66} {r['median']:>9.2f} {r['min']:>7.2f} {size / MiB / r['median']:>7.0f} "
                  f"{r['rss']:>8.1f}")
        for connections, peer in peers:
            ratio = ours["median"] / peer["median"]
            verdict = "OK" if ratio <= TARGET_RATIO else f"OVER the {TARGET_RATIO}x target"
            print(f"  wall ours/az (--max-connections {connections or '2, default'}) = {ratio:.2f} "
                  f"(target <= {TARGET_RATIO}) {verdict}")
        verdict = "OK" if ours["rss"] <= TARGET_RSS_MB else "OVER"
        print(f"  peak RSS ours = {ours['rss']:.0f} MB (target <= {TARGET_RSS_MB}) {verdict}")
        if big is not None:
            growth = big["rss"] / ours["rss"] - 1
            verdict = "OK" if growth <= FLAT else "OVER"
            print(f"  peak RSS 4x data / 1x data = {big['rss']:.0f} / {ours['rss']:.0f} MB: {growth:+.1%} "
                  f"(target within {FLAT:.0%}) {verdict}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
