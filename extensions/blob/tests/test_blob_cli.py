"""`oncall blob ...` through the real CLI against a real Azurite: every zip is opened and each entry
compared byte for byte with its blob; faults end in one-line errors, distinct exit codes and no file
at the target. (The engine's own edge cases are in test_zipstream.py.)"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import pty
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from support.cli import VENV_BIN, run_process

MiB = 1 << 20
ONCALL = VENV_BIN / "oncall"

LOGS = {
    "payments/2024-06-01/app.log": b"2024-06-01T10:00:00Z ERROR OOMKilled: payments\n" * 3000,
    "payments/2024-06-01/heap.hprof": bytes(range(256)) * 2048,
    "payments/2024-06-01/gc.log": b"[gc] pause 12ms\n" * 500,
    "payments/2024-06-02/app.log": b"2024-06-02 started\n",
    "payments/empty.txt": b"",
    "web/access.log": b"GET / 200\n" * 100,
}


@pytest.fixture(autouse=True)
def no_storage_env(monkeypatch):
    """No AZURE_STORAGE_* credential of the machine reaches a test unless the test sets it."""
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY",
                 "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def upload(container, blobs, md5=True):
    from azure.storage.blob import ContentSettings
    for name, data in blobs.items():
        settings = ContentSettings(content_md5=bytearray(hashlib.md5(data).digest())) if md5 else None
        container.upload_blob(name, data, overwrite=True, content_settings=settings)


@pytest.fixture
def seeded(container):
    upload(container, LOGS)
    return container


@pytest.fixture
def blob(oncall, azurite, container):
    """`blob("download-zip", ...)`: the command for this test's container, with Azurite's connection string."""
    def run(command, *args, conn=True):
        extra = ["--connection-string", azurite.connection_string] if conn else []
        return oncall("blob", command, "-c", container.container_name, *extra, *map(str, args))
    return run


def assert_one_line_error(result, code, *fragments):
    assert result.code == code, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result
    for fragment in fragments:
        assert fragment in lines[0], result
    assert "Traceback" not in result.err


def assert_no_file(target: Path):
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir() if ".partial-" in p.name or ".blobzip-" in p.name] == []


def assert_zip_is_the_blobs(source, container, mapping, manifest=False):
    """Exactly `mapping`'s entries (blob name -> entry), in name order, each equal to its blob byte for byte
    and dated with its blob's Last-Modified."""
    zf = zipfile.ZipFile(source)
    assert zf.testzip() is None
    names = [i.filename for i in zf.infolist()]
    assert names == [mapping[n] for n in sorted(mapping)] + (["MANIFEST.json"] if manifest else [])
    for name, entry in mapping.items():
        client = container.get_blob_client(name)
        assert zf.read(entry) == client.download_blob().readall(), name
        modified = client.get_blob_properties().last_modified.astimezone(dt.timezone.utc)
        info = zf.getinfo(entry)
        dos = modified.replace(second=modified.second - modified.second % 2)  # DOS time: 2-second steps
        assert info.date_time == dos.timetuple()[:6], name
        assert info.extra[:4] == b"UT\x05\x00" and int.from_bytes(info.extra[5:9], "little") == int(
            modified.timestamp()), name  # the exact second, for unzip
    return zf


# ----------------------------------------------------------------------------- imports and help


def test_importing_the_operations_does_not_import_the_sdk():
    code = ("import sys, oncall_blob.operations, oncall_blob._client, oncall_blob._format; "
            "print([m for m in ('azure.storage.blob', 'azure.core', 'azure.identity', 'requests', 'zipfile') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- list


def test_list_gives_names_sizes_times_md5_in_name_order(blob, seeded):
    r = blob("list")
    assert r.code == 0, r
    blobs = r.json
    assert [b["name"] for b in blobs] == sorted(LOGS)
    for b in blobs:
        data = LOGS[b["name"]]
        assert b["size"] == len(data)
        assert b["contentMd5"] == hashlib.md5(data).hexdigest()
        assert b["lastModified"].endswith("Z")
    table = blob("list", "--prefix", "payments/2024-06-01/", "-o", "table")
    assert table.code == 0, table
    lines = table.out.splitlines()
    assert lines[0].split() == ["Name", "Size", "Modified", "ContentMD5", "ContentType"]
    assert len(lines) == 2 + 3 + 1 and lines[-1].startswith("(total: 3 blobs)")
    assert "payments/2024-06-01/heap.hprof" in table.out and "512.0 KB" in table.out
    logs = blob("list", "--pattern", "**/*.log", "--query", "[].name", "-o", "tsv")
    assert logs.out.split() == sorted(n for n in LOGS if n.endswith(".log"))


# ----------------------------------------------------------------------------- download-zip


def test_download_zip_mirrors_the_blobs_below_the_prefix(blob, seeded, tmp_path):
    target = tmp_path / "payments.zip"
    r = blob("download-zip", "--prefix", "payments/", "--zip", target, "--manifest")
    assert r.code == 0, r
    result = r.json
    below = {n: n[len("payments/"):] for n in LOGS if n.startswith("payments/")}
    assert (result["blobs"], result["bytes"]) == (len(below), sum(len(LOGS[n]) for n in below))
    assert result["path"] == str(target) and result["zipBytes"] == target.stat().st_size
    assert (result["md5Verified"], result["md5Missing"]) == (len(below), 0)
    zf = assert_zip_is_the_blobs(target, seeded, below, manifest=True)
    manifest = json.loads(zf.read("MANIFEST.json"))
    assert {e["name"]: e["md5"] for e in manifest["entries"]} == {
        n: hashlib.md5(LOGS[n]).hexdigest() for n in below}
    assert zf.getinfo("2024-06-01/app.log").compress_type == zipfile.ZIP_STORED  # by default: fastest
    assert r.err == ""

    kept = tmp_path / "kept.zip"
    r = blob("download-zip", "--prefix", "payments/2024-06-01/", "--keep-prefix", "--zip", kept,
             "--pattern", "*.log", "--compress-level", "1", "-o", "table")
    assert r.code == 0, r
    assert r.out.splitlines()[0].split()[:4] == ["Zip", "Blobs", "Size", "ZipSize"]
    zf = assert_zip_is_the_blobs(kept, seeded, {n: n for n in ("payments/2024-06-01/app.log",
                                                               "payments/2024-06-01/gc.log")})
    assert zf.getinfo("payments/2024-06-01/app.log").compress_type == zipfile.ZIP_DEFLATED
    assert kept.stat().st_size < len(LOGS["payments/2024-06-01/app.log"]) / 10


def test_default_zip_name_and_unsafe_names_made_safe(blob, container, tmp_path, monkeypatch):
    upload(container, {"/abs.txt": b"1", "a//b.txt": b"2", "a/b.txt": b"3", "sp ace.txt": b"4"})
    monkeypatch.chdir(tmp_path)
    r = blob("download-zip")
    assert r.code == 0, r
    target = tmp_path / f"{container.container_name}.zip"
    assert r.json["path"] == f"{container.container_name}.zip"
    renamed = {x["name"]: x["entry"] for x in r.json["renamed"]}
    # a//b.txt is listed first, so it keeps a/b.txt; made safe or numbered, each is reported
    assert renamed == {"/abs.txt": "abs.txt", "a//b.txt": "a/b.txt", "a/b.txt": "a/b~1.txt"}
    mapping = {"/abs.txt": "abs.txt", "a//b.txt": "a/b.txt", "a/b.txt": "a/b~1.txt", "sp ace.txt": "sp ace.txt"}
    assert_zip_is_the_blobs(target, container, mapping)


def test_dry_run_lists_what_would_go_in_and_writes_nothing(blob, seeded, tmp_path):
    target = tmp_path / "plan.zip"
    r = blob("download-zip", "--prefix", "payments/2024-06-01/", "--zip", target, "--dry-run")
    assert r.code == 0, r
    plan = r.json
    assert plan["blobs"] == 3 and plan["bytes"] == sum(len(LOGS[n]) for n in LOGS if "2024-06-01" in n)
    assert [e["entry"] for e in plan["entries"]] == ["app.log", "gc.log", "heap.hprof"]
    assert plan["zip"] == str(target) and plan["zipExists"] is False
    table = blob("download-zip", "--prefix", "payments/2024-06-01/", "--zip", target, "--dry-run", "-o", "table")
    lines = table.out.splitlines()
    assert lines[0].split() == ["Entry", "Blob", "Size", "Modified"]
    assert [line.split()[0] for line in lines[2:5]] == ["app.log", "gc.log", "heap.hprof"]
    total = sum(len(LOGS[n]) for n in LOGS if "2024-06-01" in n)
    assert lines[-1].startswith(f"(total: 3 blobs -> {target})") and f"{total / 1024:.1f} KB" in lines[-1]
    assert [p.name for p in tmp_path.iterdir()] == ["home"]  # the test's isolated HOME only


def test_zip_to_stdout_through_a_real_process(azurite, seeded, tmp_path):
    r = subprocess.run([ONCALL, "blob", "download-zip", "-c", seeded.container_name, "--prefix", "payments/",
                        "--zip", "-"], capture_output=True, timeout=60,
                       env=dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string))
    assert r.returncode == 0, r.stderr
    below = {n: n[len("payments/"):] for n in LOGS if n.startswith("payments/")}
    assert_zip_is_the_blobs(io.BytesIO(r.stdout), seeded, below)
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1 and err[0].startswith("5 blobs (") and "to stdout" in err[0], err
    assert "\r" not in r.stderr.decode()  # no progress bar when stderr is not a terminal
    assert [p.name for p in tmp_path.iterdir()] == ["home"]  # the test's isolated HOME only


def test_progress_bar_on_a_terminal(azurite, seeded, tmp_path):
    main, secondary = pty.openpty()
    try:
        proc = subprocess.Popen([ONCALL, "blob", "download-zip", "-c", seeded.container_name, "--zip",
                                 tmp_path / "p.zip"], stdout=subprocess.PIPE, stderr=secondary,
                                env=dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string))
        os.close(secondary)
        out, _ = proc.communicate(timeout=60)
        drawn = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(main)
    assert proc.returncode == 0, drawn
    assert json.loads(out)["blobs"] == len(LOGS)
    text = drawn.decode(errors="replace")
    assert "6/6 blobs" in text and "\r" in text and "B/s" in text, text


# ----------------------------------------------------------------------------- faults


def test_wrong_key_is_an_auth_error_and_leaves_no_file(blob, azurite, seeded, tmp_path):
    wrong = base64.b64encode(b"not the key" * 6).decode()
    target = tmp_path / "w.zip"
    r = blob("download-zip", "--zip", target, "--blob-endpoint", azurite.account_url, "--account",
             azurite.account_name, "--account-key", wrong, conn=False)
    assert_one_line_error(r, 4, "refused", "check the account key")
    assert wrong not in r.err
    assert_no_file(target)
    assert blob("list", "--blob-endpoint", azurite.account_url, "--account-key", wrong, conn=False).code == 4


def test_missing_container_is_not_found(oncall, azurite, tmp_path):
    target = tmp_path / "n.zip"
    r = oncall("blob", "download-zip", "-c", "no-such-container", "--zip", target,
               "--connection-string", azurite.connection_string)
    assert_one_line_error(r, 5, "container 'no-such-container' does not exist")
    assert_no_file(target)
    assert oncall("blob", "list", "-c", "no-such-container",
                  "--connection-string", azurite.connection_string).code == 5


def test_existing_target_is_kept_unless_overwrite(blob, seeded, tmp_path):
    target = tmp_path / "exists.zip"
    target.write_bytes(b"precious")
    r = blob("download-zip", "--zip", target)
    assert_one_line_error(r, 6, str(target), "--overwrite")
    assert target.read_bytes() == b"precious"
    r = blob("download-zip", "--zip", target, "--overwrite")
    assert r.code == 0, r
    assert_zip_is_the_blobs(target, seeded, {n: n for n in LOGS})


def test_integrity_failure_exits_10_and_leaves_no_file(blob, container, tmp_path):
    from azure.storage.blob import ContentSettings
    upload(container, {f"ok{i}.log": b"fine\n" * 200 for i in range(10)})
    container.upload_blob("tampered.log", b"the real content")
    container.get_blob_client("tampered.log").set_http_headers(
        ContentSettings(content_md5=bytearray(hashlib.md5(b"what was meant").digest())))
    target = tmp_path / "t.zip"
    r = blob("download-zip", "--zip", target)
    assert_one_line_error(r, 10, "tampered.log", "Content-MD5", hashlib.md5(b"the real content").hexdigest())
    assert_no_file(target)
    r = blob("download-zip", "--zip", target, "--no-verify-md5")
    assert r.code == 0 and r.json["md5Verified"] == 0
    assert zipfile.ZipFile(target).read("tampered.log") == b"the real content"


def test_connection_cut_mid_blob_is_unreachable(oncall, azurite, container, proxies, tmp_path, monkeypatch):
    upload(container, {"a.log": b"a" * 1000, "cut.bin": os.urandom(6 * MiB)})
    monkeypatch.setenv("AZURE_STORAGE_KEY", azurite.account_key)
    target = tmp_path / "cut.zip"
    with proxies.CuttingProxy(azurite.port, cut_after=1 * MiB) as proxy:
        r = oncall("blob", "download-zip", "-c", container.container_name, "--zip", target, "--retries", "0",
                   "--blob-endpoint", f"http://127.0.0.1:{proxy.port}/{azurite.account_name}")
    assert_one_line_error(r, 8, "cut.bin")
    assert proxy.cuts >= 1
    assert_no_file(target)


def test_unreachable_endpoint(oncall, tmp_path, monkeypatch):
    from support.cli import free_port
    monkeypatch.setenv("AZURE_STORAGE_KEY", base64.b64encode(b"k" * 32).decode())
    started = time.monotonic()
    r = oncall("blob", "download-zip", "-c", "c1", "--zip", tmp_path / "u.zip", "--retries", "0",
               "--blob-endpoint", f"http://127.0.0.1:{free_port()}/devstoreaccount1")
    assert_one_line_error(r, 8)
    assert time.monotonic() - started < 20
    assert_no_file(tmp_path / "u.zip")


def test_ctrl_c_mid_download_leaves_no_file(azurite, container, proxies, tmp_path):
    """SIGINT to a real `oncall` process while a 24 MiB blob trickles in: exit 130, nothing at the target."""
    upload(container, {"big.bin": os.urandom(24 * MiB), "small.log": b"x" * 100})
    target = tmp_path / "big.zip"
    with proxies.SlowProxy(azurite.port, rate=6 * MiB) as proxy:
        proc = subprocess.Popen(
            [ONCALL, "blob", "download-zip", "-c", container.container_name, "--zip", target,
             "--blob-endpoint", f"http://127.0.0.1:{proxy.port}/{azurite.account_name}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ, AZURE_STORAGE_KEY=azurite.account_key))
        deadline = time.monotonic() + 30
        while not any(".partial-" in p.name for p in tmp_path.iterdir()):  # listed; downloading
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None, "the download ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert out == b"" and err.decode().strip().splitlines()[-1] == "cancelled"
    assert_no_file(target)


# ----------------------------------------------------------------------------- credentials


def test_credentials_from_environment_config_and_a_sas_url(oncall, azurite, seeded, tmp_path, monkeypatch):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas
    name = seeded.container_name
    expected = sorted(LOGS)
    # AZURE_STORAGE_CONNECTION_STRING, as az reads it
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    assert oncall("blob", "list", "-c", name, "--query", "[].name").json == expected
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    assert oncall("blob", "list", "-c", name).code == 3  # no account at all: a config error
    # account + key from the environment, endpoint from the config file
    assert oncall("configure", "set", f"blob.blob_endpoint={azurite.account_url}").code == 0
    monkeypatch.setenv("AZURE_STORAGE_KEY", azurite.account_key)
    assert oncall("blob", "list", "-c", name, "--query", "[].name").json == expected
    monkeypatch.delenv("AZURE_STORAGE_KEY")
    # a container SAS URL, and a SAS token for the account endpoint
    sas = generate_container_sas(azurite.account_name, name, account_key=azurite.account_key,
                                 permission=ContainerSasPermissions(read=True, list=True),
                                 expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    url = f"{azurite.account_url}/{name}?{sas}"
    target = tmp_path / "sas.zip"
    r = oncall("blob", "download-zip", "--container-url", url, "--zip", target, "--debug")
    assert r.code == 0, r
    assert_zip_is_the_blobs(target, seeded, {n: n for n in LOGS})
    signature = dict(p.split("=", 1) for p in sas.split("&"))["sig"]
    assert signature not in r.out + r.err and "DEBUG" in r.err
    r = oncall("blob", "list", "-c", name, "--sas-token", sas)
    assert r.code == 0 and [b["name"] for b in r.json] == expected
    assert oncall("blob", "list", "-c", "other", "--container-url", url).code == 2


def test_secrets_never_print_even_with_debug(oncall, azurite, seeded, tmp_path):
    key = azurite.account_key
    runs = [
        oncall("blob", "list", "-c", seeded.container_name, "--connection-string", azurite.connection_string,
               "--debug"),
        oncall("blob", "download-zip", "-c", seeded.container_name, "--zip", tmp_path / "d.zip", "--debug",
               "--account-key", key, "--blob-endpoint", azurite.account_url),
        oncall("blob", "download-zip", "-c", seeded.container_name, "--zip", tmp_path / "e.zip", "--debug",
               "--account-key", key[:-8] + "AAAAAAA=", "--blob-endpoint", azurite.account_url),  # wrong: 403 path
        oncall("blob", "list", "-c", seeded.container_name, "--connection-string", "AccountName=x;AccountKey=" + key,
               "--blob-endpoint", azurite.account_url, "--debug"),
    ]
    assert [r.code for r in runs] == [0, 0, 4, 2], runs
    for r in runs:
        assert "DEBUG" in r.err
        for form in (key, key[:-8] + "AAAAAAA=", key[:40]):
            assert form not in r.out + r.err


def test_entra_id_without_a_sign_in_is_an_auth_error(oncall, monkeypatch, tmp_path):
    # developer credentials only (no managed-identity probe may leave this machine), and no az to ask
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "dev")
    monkeypatch.setenv("PATH", "/nonexistent")
    r = oncall("blob", "list", "-c", "c1", "--account", "acct", "--blob-endpoint", "https://127.0.0.1:9/acct",
               "--retries", "0")
    assert_one_line_error(r, 4, "Microsoft Entra ID sign-in failed", "az login")
    r = oncall("blob", "list", "-c", "c1", "--account", "acct", "--blob-endpoint", "http://127.0.0.1:9/acct")
    assert_one_line_error(r, 3, "https")


# ----------------------------------------------------------------------------- az


def test_az_oncall_blob_gives_the_same_archive_and_json(az, azurite, seeded, tmp_path, oncall):
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string}
    ours = tmp_path / "ours.zip"
    theirs = tmp_path / "az.zip"
    r = oncall("blob", "download-zip", "-c", seeded.container_name, "--zip", ours,
               "--connection-string", azurite.connection_string, "--manifest")
    assert r.code == 0, r
    a = az.run("oncall", "blob", "download-zip", "-c", seeded.container_name, "--zip", theirs, "--manifest", env=env)
    assert a.code == 0, a
    assert {k: v for k, v in json.loads(a.out).items() if k not in ("seconds", "path", "zipBytes")} == \
        {k: v for k, v in r.json.items() if k not in ("seconds", "path", "zipBytes")}
    zours, ztheirs = zipfile.ZipFile(ours), zipfile.ZipFile(theirs)  # (zipBytes: MANIFEST.json has its createdAt)
    assert [i.filename for i in ztheirs.infolist()] == [i.filename for i in zours.infolist()]
    for info in zours.infolist():
        if info.filename != "MANIFEST.json":  # its createdAt differs
            assert ztheirs.read(info.filename) == zours.read(info.filename)
            assert ztheirs.getinfo(info.filename).date_time == info.date_time
    listed = az.run("oncall", "blob", "list", "-c", seeded.container_name, env=env)
    assert listed.code == 0 and json.loads(listed.out) == oncall(
        "blob", "list", "-c", seeded.container_name, "--connection-string", azurite.connection_string).json
    missing = az.run("oncall", "blob", "list", "-c", "no-such-container", env=env)
    assert missing.code == 5 and missing.err.strip().startswith("ERROR: container 'no-such-container'")
