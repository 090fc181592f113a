"""blob in the demo: the crash-looping payments pod left diagnostics in blob storage (a heap dump from the
OOM kill, logs, a thread dump); we see what is there, preview the zip, download it as one verified zip for
the incident, and see that a second run refuses to clobber it — against a real Azurite."""
import hashlib
import importlib.util
import os
import random

from demo.stack import ROOT

DAY = "payments/2024-06-01"


def _azurite_module():
    """extensions/blob/tests/azurite.py (the tests' starter), under a name of its own."""
    name = "oncall_blob_demo_azurite"
    spec = importlib.util.spec_from_file_location(name, ROOT / "extensions" / "blob" / "tests" / "azurite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _app_log(pod, restarts):
    lines = []
    for n in range(restarts):
        lines += [f"2024-06-01T10:{2 * n:02d}:01Z INFO  payments started (pod {pod}, heap limit 256Mi)",
                  f"2024-06-01T10:{2 * n:02d}:40Z WARN  checkout burst: 1,840 req/s, heap 231Mi",
                  f"2024-06-01T10:{2 * n + 1:02d}:55Z ERROR java.lang.OutOfMemoryError: Java heap space",
                  f"2024-06-01T10:{2 * n + 1:02d}:55Z INFO  heap dump written to /dumps/heap-oom.hprof"]
    return ("\n".join(lines * 40) + "\n").encode()


def _blobs():
    rng = random.Random(4711)
    return {
        f"{DAY}/payments-7d9f8-abcde/app.log": _app_log("payments-7d9f8-abcde", 5),
        f"{DAY}/payments-7d9f8-abcde/gc.log": b"".join(
            f"[{t}.{t % 997:03d}s][info][gc] Pause Young (G1 Evacuation Pause) {180 + t % 70}M->{150 + t % 60}M "
            f"(256M) {t % 40 + 3}.{t % 9}ms\n".encode() for t in range(6000)),
        f"{DAY}/payments-7d9f8-abcde/heap-oom.hprof": b"JAVA PROFILE 1.0.2\0" + rng.randbytes(3 * 1024 * 1024),
        f"{DAY}/payments-7d9f8-abcde/threads.txt": b'"checkout-worker-17" #41 RUNNABLE\n   at ...\n' * 400,
        f"{DAY}/payments-7d9f8-fghij/app.log": _app_log("payments-7d9f8-fghij", 2),
        "web/2024-06-01/access.log": b"GET /checkout 200 41ms\n" * 2000,
    }


def start(stack):
    azurite = _azurite_module()
    server = azurite.Azurite(memory_limit_mb=256)
    server.start()
    stack.cleanup(server.stop)
    from azure.storage.blob import BlobServiceClient, ContentSettings
    container = BlobServiceClient.from_connection_string(server.connection_string).create_container("diagnostics")
    for name, data in _blobs().items():
        container.upload_blob(name, data, content_settings=ContentSettings(
            content_md5=bytearray(hashlib.md5(data).digest())))
    stack.env["AZURE_STORAGE_CONNECTION_STRING"] = server.connection_string  # as az reads it
    stack.blob_zip = str(stack.tmp / "INC-4711-payments-diagnostics.zip")


def steps(stack):
    zip_path = stack.blob_zip
    return [
        ("What did the crashing pod leave in the diagnostics container?",
         ["blob", "list", "-c", "diagnostics", "--prefix", f"{DAY}/", "-o", "table"]),
        ("What the zip will hold: an entry per blob below the prefix, and the total (--dry-run downloads nothing)",
         ["blob", "download-zip", "-c", "diagnostics", "--prefix", f"{DAY}/", "--zip", zip_path, "--dry-run",
          "-o", "table"]),
        ("Download them as one zip for the incident: streamed, parallel, each blob checked against its MD5",
         ["blob", "download-zip", "-c", "diagnostics", "--prefix", f"{DAY}/", "--zip", zip_path, "--manifest",
          "-o", "table"]),
        ("Only the logs of both replicas, deflated, for the payments developers (a glob below the prefix)",
         lambda s: ["blob", "download-zip", "-c", "diagnostics", "--prefix", f"{DAY}/", "--pattern", "**/*.log",
                    "--compress-level", "1", "--zip", s.blob_zip.replace(".zip", "-logs.zip"), "-o", "table"]),
        ("A second run does not clobber the evidence: one line, exit code 6",
         ["blob", "download-zip", "-c", "diagnostics", "--prefix", f"{DAY}/", "--zip", zip_path], {"expect": 6}),
    ]
