"""The blob-to-zip engine against a real Azurite (fixtures in conftest.py).

Every produced zip is opened and each entry compared byte for byte with its blob
(zipfile also checks each entry's CRC as it is read).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from oncall_blob import _zipstream as zs
from oncall_blob._names import assign_entry_names, compile_pattern, matches_pattern, safe_entry_name

MiB = 1 << 20


# ----------------------------------------------------------------------------- helpers


def upload_all(container, blobs: dict, workers: int = 16) -> None:
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda item: container.upload_blob(item[0], item[1], overwrite=True), blobs.items()))


def blob_bytes(container, name: str, **kwargs) -> bytes:
    return container.download_blob(name, **kwargs).readall()


def read_zip(source) -> zipfile.ZipFile:
    zf = zipfile.ZipFile(source)
    assert zf.testzip() is None  # every entry's CRC
    return zf


def assert_zip_matches(source, container, mapping: dict, *, manifest: bool = False, **download_kwargs) -> zipfile.ZipFile:
    """The zip holds exactly `mapping`'s entries (blob name → entry), in listing order,
    each equal to its blob, byte for byte."""
    zf = read_zip(source)
    names = [i.filename for i in zf.infolist()]
    expected = [mapping[n] for n in sorted(mapping)]
    if manifest:
        expected.append(zs.MANIFEST_NAME)
    assert names == expected
    for blob_name, entry in mapping.items():
        assert zf.read(entry) == blob_bytes(container, blob_name, **download_kwargs), blob_name
    return zf


def assert_nothing_left(target: Path) -> None:
    assert not target.exists()
    leftovers = [p.name for p in target.parent.iterdir() if ".partial-" in p.name or p.name.startswith(".blobzip-")]
    assert leftovers == []


class SeededStream(io.RawIOBase):
    """`size` pseudo-random bytes from `seed`, generated 1 MiB at a time (never all held)."""

    BLOCK = MiB

    def __init__(self, size: int, seed: int) -> None:
        self._left = size
        self._rng = random.Random(seed)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._left + len(self._pending)
        while len(self._pending) < n and self._left > 0:
            block = min(self.BLOCK, self._left)
            self._pending += self._rng.randbytes(block)
            self._left -= block
        out, self._pending = self._pending[:n], self._pending[n:]
        return out

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def seeded_md5(size: int, seed: int) -> bytes:
    stream, md5 = SeededStream(size, seed), hashlib.md5()
    while chunk := stream.read(MiB):
        md5.update(chunk)
    return md5.digest()


class Recorder:
    """A Progress that keeps what it is told."""

    def __init__(self, on_start=None, on_advance=None) -> None:
        self.total = None
        self.blobs = self.bytes = 0
        self.calls = 0
        self._on_start, self._on_advance = on_start, on_advance

    def start(self, total_blobs, total_bytes):
        self.total = (total_blobs, total_bytes)
        if self._on_start:
            self._on_start()

    def advance(self, blobs, nbytes):
        self.blobs += blobs
        self.bytes += nbytes
        self.calls += 1
        if self._on_advance:
            self._on_advance(self)


def container_sas_client(azurite, container_name: str):
    from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(
        azurite.account_name, container_name, account_key=azurite.account_key,
        permission=ContainerSasPermissions(read=True, write=True, list=True, create=True, delete=True),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
    )
    return ContainerClient.from_container_url(f"{azurite.account_url}/{container_name}?{sas}")


# ----------------------------------------------------------------------------- names (pure)


@pytest.mark.parametrize("blob, prefix, keep, entry", [
    ("logs/a.txt", "logs/", False, "a.txt"),
    ("logs/a.txt", "logs/", True, "logs/a.txt"),
    ("logs/a.txt", "logs", False, "a.txt"),
    ("/etc/passwd", "", False, "etc/passwd"),
    ("//srv/share/f", "", False, "srv/share/f"),
    ("a/../../b", "", False, "a/b"),
    ("../../up", "", False, "up"),
    ("./a/./b/.", "", False, "a/b"),
    ("a\\b\\..\\c", "", False, "a/b/c"),
    ("C:\\Windows\\x.dll", "", False, "Windows/x.dll"),
    ("c:rel", "", False, "rel"),
    ("a//b///c", "", False, "a/b/c"),
    ("ctl\x00\x01\x1f\x7f\x85x", "", False, "ctl_____x"),
    ("tab\tnew\nline", "", False, "tab_new_line"),
    ("..", "", False, "_"),
    ("logs/", "logs/", False, "_"),
    ("ü/日本語/ファイル.txt", "", False, "ü/日本語/ファイル.txt"),
])
def test_safe_entry_name(blob, prefix, keep, entry):
    assert safe_entry_name(blob, prefix, keep) == entry


def test_assign_entry_names_disambiguates_deterministically():
    names = ["/x/y", "a", "a/b", "b.csv", "b.csv/", "MANIFEST.json", "r~1.txt", "r.txt", "r/../r.txt", "x/y"]
    mapping = assign_entry_names(names, reserved=["MANIFEST.json"])
    assert mapping == {
        "/x/y": "x/y",
        "a": "a~1",                 # a directory of `a/b`: a file there would not extract
        "a/b": "a/b",
        "b.csv": "b.csv",
        "b.csv/": "b~1.csv",
        "MANIFEST.json": "MANIFEST~1.json",
        "r~1.txt": "r~1.txt",
        "r.txt": "r.txt",
        "r/../r.txt": "r/r.txt",
        "x/y": "x/y~1",
    }
    assert len(set(mapping.values())) == len(names)
    assert assign_entry_names(list(reversed(names)))["x/y"] == "x/y"  # order decides, nothing else
    assert assign_entry_names(["r.txt", "./r.txt", "r~1.txt"]) == {
        "r.txt": "r.txt", "./r.txt": "r~2.txt", "r~1.txt": "r~1.txt"}  # never steals a real name


@pytest.mark.parametrize("pattern, name, matched", [
    ("*.log", "a.log", True), ("*.log", "d/a.log", False),
    ("**/*.log", "d/e/a.log", True), ("**/*.log", "a.log", True),
    ("d/**", "d/a/b", True), ("d/*", "d/a/b", False), ("**", "x/y/z", True),
    ("a?c", "abc", True), ("a?c", "a/c", False),
    ("[ab]*", "b1", True), ("[!ab]*", "c1", True), ("[!ab]*", "a1", False), ("[!a]x", "/x", False),
    ("*.[ch]", "x.h", True), ("a[", "a[", True), ("[]]", "]", True), ("*.LOG", "a.log", False),
    (None, "anything/at/all", True),
])
def test_patterns(pattern, name, matched):
    assert matches_pattern(name, pattern) is matched


def test_pattern_is_compiled_once():
    assert compile_pattern("**/*.log") is compile_pattern("**/*.log")


# ----------------------------------------------------------------------------- module hygiene


def test_importing_the_engine_does_not_import_azure():
    code = (
        "import sys; import oncall_blob._zipstream, oncall_blob._names; "
        "print([m for m in sys.modules if m.startswith('azure')])"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(zs.__file__).parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_as_of_is_not_implemented(container, tmp_path):
    with pytest.raises(NotImplementedError):
        zs.download_zip(container, dest=tmp_path / "x.zip", as_of=dt.datetime.now(dt.timezone.utc))
    assert_nothing_left(tmp_path / "x.zip")


# ----------------------------------------------------------------------------- content


def test_unicode_nested_and_unsafe_names(container, tmp_path):
    deep = "/".join(f"level{i:02d}" for i in range(40)) + "/deep.txt"
    blobs = {
        "ü/日本語/ファイル.txt": "ユニコード ✓".encode(),
        "emoji/😀 smile.txt": b"smile",
        deep: b"deep" * 1000,
        "/leading/slash.txt": b"leading",
        "//double/x.txt": b"double",
        "a//b.txt": b"a-b",
        "C:\\win\\x.dll": b"MZ",           # Azurite, like Azure, stores `\` as `/`
        "tab\there.txt": b"tab",
        "new\nline.txt": b"newline",
        "del\x7f.txt": b"del",
        "same": b"file named like a folder",
        "same/inside.txt": b"inside",
        "x/y.txt": b"x-y",
        "/x/y.txt": b"slash-x-y",
        "MANIFEST.json": b"a blob that is not the manifest",
    }
    upload_all(container, blobs)
    target = tmp_path / "out.zip"
    result = zs.download_zip(container, dest=target, manifest=True)

    mapping = {r["name"]: r["entry"] for r in zs.plan(container, manifest=True)["entries"]}
    assert mapping["ü/日本語/ファイル.txt"] == "ü/日本語/ファイル.txt"
    assert mapping[deep] == deep
    assert mapping["/leading/slash.txt"] == "leading/slash.txt"
    assert mapping["//double/x.txt"] == "double/x.txt"
    assert mapping["a//b.txt"] == "a/b.txt"
    assert mapping["C:/win/x.dll"] == "win/x.dll"
    assert mapping["tab\there.txt"] == "tab_here.txt"
    assert mapping["new\nline.txt"] == "new_line.txt"
    assert mapping["del\x7f.txt"] == "del_.txt"
    assert mapping["same"] == "same~1"
    assert mapping["/x/y.txt"] == "x/y.txt" and mapping["x/y.txt"] == "x/y~1.txt"
    assert mapping["MANIFEST.json"] == "MANIFEST~1.json"

    zf = assert_zip_matches(target, container, mapping, manifest=True)
    assert result["blobs"] == len(blobs) and result["entries"] == len(blobs) + 1
    assert result["bytes"] == sum(len(v) for v in blobs.values())
    assert result["zipBytes"] == target.stat().st_size
    assert result["md5Verified"] == len(blobs)
    assert result["path"] == str(target)
    assert {r["name"] for r in result["renamed"]} == {
        "/leading/slash.txt", "//double/x.txt", "a//b.txt", "C:/win/x.dll", "tab\there.txt",
        "new\nline.txt", "del\x7f.txt", "same", "x/y.txt", "/x/y.txt", "MANIFEST.json"}

    info = zf.getinfo("ü/日本語/ファイル.txt")
    assert info.flag_bits & 0x800  # UTF-8 names flagged
    assert (info.external_attr >> 16) == 0o100644
    manifest = json.loads(zf.read(zs.MANIFEST_NAME))
    assert manifest["container"] == container.container_name and manifest["blobs"] == len(blobs)
    rows = {r["name"]: r for r in manifest["entries"]}
    assert rows["x/y.txt"] == {
        "name": "x/y.txt", "entry": "x/y~1.txt", "size": 3,
        "md5": hashlib.md5(b"x-y").hexdigest(), "lastModified": rows["x/y.txt"]["lastModified"]}
    assert [r["name"] for r in manifest["entries"]] == sorted(mapping)

    # unzip tools see the blob's Last-Modified
    props = container.get_blob_client("x/y.txt").get_blob_properties()
    stamp = props.last_modified.astimezone(dt.timezone.utc)
    assert zf.getinfo("x/y~1.txt").date_time[:5] == (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute)
    with zipfile.ZipFile(target) as again:  # and the exact time in the UT extra field
        extra = again.getinfo("x/y~1.txt").extra
    assert extra[:4] == b"UT\x05\x00" and int.from_bytes(extra[5:9], "little") == int(stamp.timestamp())


def test_dot_segment_names(azurite, container, tmp_path):
    """Names with `.`/`..` segments exist (other tools send them as %2E); HTTP clients
    would normalise them away, so the engine escapes them; entries never climb out."""
    sas_client = container_sas_client(azurite, container.container_name)
    blobs = {"../up.txt": b"up", "a/./b.txt": b"a-dot-b", "b/../../evil.txt": b"evil", "x/..": b"x-dotdot"}
    for name, data in blobs.items():
        sas_client.upload_blob(name, data, raw_request_hook=zs._escape_dot_segments)
    assert sorted(b["name"] for b in zs.list_blobs(sas_client)) == sorted(blobs)

    target = tmp_path / "dots.zip"
    zs.download_zip(sas_client, dest=target)
    zf = read_zip(target)
    assert {i.filename: zf.read(i) for i in zf.infolist()} == {
        "up.txt": b"up", "a/b.txt": b"a-dot-b", "b/evil.txt": b"evil", "x": b"x-dotdot"}
    target.unlink()

    # A shared-key credential cannot sign those names (the path is signed as sent):
    # the error says so, and nothing is left behind.
    with pytest.raises(zs.DownloadError, match="SAS or Entra ID"):
        zs.download_zip(container, dest=target)
    assert_nothing_left(target)


def test_empty_blobs_and_directory_placeholders(container, tmp_path):
    upload_all(container, {"empty.txt": b"", "dir/empty2": b"", "dir/data.txt": b"data"})
    container.upload_blob("dir/", b"")                                         # a trailing-slash marker
    container.upload_blob("folder", b"", metadata={"hdi_isfolder": "true"})  # an HNS-style folder
    target = tmp_path / "e.zip"
    result = zs.download_zip(container, dest=target)
    assert result["skipped"] == 2 and result["blobs"] == 3
    zf = assert_zip_matches(target, container, {"dir/data.txt": "dir/data.txt", "dir/empty2": "dir/empty2",
                                                "empty.txt": "empty.txt"})
    assert zf.getinfo("empty.txt").file_size == 0
    assert zf.getinfo("empty.txt").compress_type == zipfile.ZIP_STORED


def test_prefix_and_pattern(container, tmp_path):
    blobs = {
        "logs/2024/01/app.log": b"jan app\n" * 100,
        "logs/2024/01/db.log": b"jan db\n" * 100,
        "logs/2024/02/app.log": b"feb app\n" * 100,
        "logs/2024/02/app.txt": b"not a log",
        "logs/top.log": b"top",
        "logs-other/x.log": b"other",
        "other/logs/y.log": b"elsewhere",
    }
    upload_all(container, blobs)

    listed = zs.list_blobs(container, "logs/", "**/*.log")
    assert [b["name"] for b in listed] == ["logs/2024/01/app.log", "logs/2024/01/db.log",
                                          "logs/2024/02/app.log", "logs/top.log"]
    first = listed[0]
    assert set(first) == {"name", "size", "lastModified", "contentMd5", "contentType", "etag"}
    assert first["contentMd5"] == hashlib.md5(blobs["logs/2024/01/app.log"]).hexdigest()
    assert first["lastModified"].endswith("Z") and dt.datetime.fromisoformat(first["lastModified"][:-1])
    assert [b["name"] for b in zs.list_blobs(container, "logs/", "*.log")] == ["logs/top.log"]
    assert [b["name"] for b in zs.list_blobs(container, "logs/", "2024/*/app.*")] == [
        "logs/2024/01/app.log", "logs/2024/02/app.log", "logs/2024/02/app.txt"]
    # a prefix is a string prefix, not a folder: "logs" also takes "logs-other/"
    assert len(zs.list_blobs(container, "logs")) == 6

    plan = zs.plan(container, prefix="logs/2024/", pattern="*/app.log")
    assert plan["blobs"] == 2 and plan["bytes"] == 800 + 800
    assert [e["entry"] for e in plan["entries"]] == ["01/app.log", "02/app.log"]

    target = tmp_path / "p.zip"
    result = zs.download_zip(container, prefix="logs/2024/", pattern="*/app.log", dest=target)
    assert result["blobs"] == 2 and result["renamed"] == []
    assert_zip_matches(target, container, {"logs/2024/01/app.log": "01/app.log", "logs/2024/02/app.log": "02/app.log"})

    kept = tmp_path / "k.zip"
    zs.download_zip(container, prefix="logs/2024", pattern="**/*.log", keep_prefix=True, dest=kept)
    assert_zip_matches(kept, container, {n: n for n in ["logs/2024/01/app.log", "logs/2024/01/db.log",
                                                        "logs/2024/02/app.log"]})
    assert zs.download_zip(container, prefix="nothing/", dest=tmp_path / "none.zip")["blobs"] == 0
    assert read_zip(tmp_path / "none.zip").namelist() == []


def test_ten_thousand_small_blobs(azurite, container, tmp_path):
    """Upload straight over HTTP (a SAS and a few keep-alive connections: the SDK's
    per-request cost would double this test's time), then zip them all."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    count = 10_000
    names = [f"day{i % 31:02d}/host{i % 7}/event-{i:05d}.json" for i in range(count)]

    def content(name: str) -> bytes:
        return (json.dumps({"blob": name, "n": len(name)}) + "\n").encode() * (1 + len(name) % 5)

    sas = generate_container_sas(
        azurite.account_name, container.container_name, account_key=azurite.account_key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    local = threading.local()
    connections = []

    def put(name: str) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", azurite.port, timeout=30)
            connections.append(conn)
        data = content(name)
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        conn.request("PUT", f"/{azurite.account_name}/{container.container_name}/{quote(name)}?{sas}", body=data,
                     headers={"x-ms-blob-type": "BlockBlob", "x-ms-version": "2025-01-05",
                              "x-ms-blob-content-md5": md5})
        response = conn.getresponse()
        response.read()
        assert response.status == 201, (name, response.status)

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(put, names))
    finally:
        for conn in connections:
            conn.close()
    uploaded = time.monotonic() - started

    target = tmp_path / "many.zip"
    recorder = Recorder()
    result = zs.download_zip(container, dest=target, progress=recorder)
    zipped = time.monotonic() - started - uploaded
    print(f"\n10,000 blobs: upload {uploaded:.1f} s, zip {zipped:.1f} s ({result['zipBytes']} bytes)")

    assert result["blobs"] == count and result["md5Verified"] == count
    total = sum(len(content(n)) for n in names)
    assert recorder.total == (count, total) and (recorder.blobs, recorder.bytes) == (count, total)
    zf = zipfile.ZipFile(target)
    infos = zf.infolist()
    assert [i.filename for i in infos] == sorted(names)
    for info in infos:
        assert zf.read(info) == content(info.filename)  # CRC checked by the read too
    print(f"verified in {time.monotonic() - started - uploaded - zipped:.1f} s")


_MEMORY_PROBE = r"""
import json, os, sys
sys.path.insert(0, os.environ["PROBE_PATH"])
from azure.storage.blob import ContainerClient
from oncall_blob import _zipstream as zs

def high_water_mark():  # peak resident memory of this process so far
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

client = ContainerClient.from_connection_string(os.environ["PROBE_CONN"], os.environ["PROBE_CONTAINER"])
folder = os.environ["PROBE_DIR"]
zs.download_zip(client, prefix="big/small", dest=os.path.join(folder, "warm.zip"))  # load everything once
before = high_water_mark()
result = zs.download_zip(client, dest=os.path.join(folder, "big.zip"), max_concurrency=4, compress_level=1)
print(json.dumps({"before": before, "after": high_water_mark(), "seconds": result["seconds"]}))
"""


def test_large_blob_streams_with_flat_memory(azurite, container, tmp_path):
    """A 64 MiB blob goes through with the process's peak RSS growing by a small fraction
    of it. Measured in a fresh process: the peak RSS of this test session says nothing."""
    from azure.storage.blob import ContentSettings

    size, seed = 64 * MiB + 12_345, 20240601
    md5 = seeded_md5(size, seed)
    container.upload_blob("big/random.bin", SeededStream(size, seed), length=size, max_concurrency=4,
                          content_settings=ContentSettings(content_md5=bytearray(md5)))
    container.upload_blob("big/small.txt", b"small\n" * 1000)

    env = dict(os.environ, PROBE_PATH=str(Path(zs.__file__).parents[1]), PROBE_CONN=azurite.connection_string,
               PROBE_CONTAINER=container.container_name, PROBE_DIR=str(tmp_path))
    probe = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True, env=env,
                           timeout=120)
    assert probe.returncode == 0, probe.stderr
    measured = json.loads(probe.stdout.strip().splitlines()[-1])
    growth = measured["after"] - measured["before"]
    print(f"\n64 MiB blob: {measured['seconds']} s, peak RSS {measured['after'] / MiB:.0f} MiB, "
          f"grew by {growth / MiB:.1f} MiB during the download")
    assert growth < 24 * MiB, f"peak RSS grew by {growth / MiB:.1f} MiB for a {size / MiB:.0f} MiB blob"

    zf = read_zip(tmp_path / "big.zip")
    info = zf.getinfo("big/random.bin")
    assert info.file_size == size
    assert info.compress_type == zipfile.ZIP_STORED  # incompressible: sampled and stored
    assert zf.getinfo("big/small.txt").compress_type == zipfile.ZIP_DEFLATED
    expected = SeededStream(size, seed)
    with zf.open(info) as entry:  # zipfile checks the CRC at the end
        while chunk := entry.read(MiB):
            assert chunk == expected.read(len(chunk))
    assert expected.read(1) == b""
    assert zf.read("big/small.txt") == b"small\n" * 1000


def test_disk_buffers_and_zip64_entries(container, tmp_path, monkeypatch):
    """With no in-memory budget every blob goes through an anonymous temp file; with a
    tiny ZIP64 threshold every entry gets ZIP64 records. The zip stays exact."""
    monkeypatch.setattr(zs, "BUFFER_BUDGET_BYTES", 0)
    monkeypatch.setattr(zs, "ZIP64_FORCE_BYTES", 0)
    monkeypatch.setattr(zs, "SEGMENT_BYTES", 64 * 1024)  # many ranged GETs per blob
    blobs = {f"f{i}.txt": (f"line {i}\n" * (3000 * i + 1)).encode() for i in range(6)}
    upload_all(container, blobs)
    target = tmp_path / "z64.zip"
    zs.download_zip(container, dest=target, max_concurrency=3)
    assert_zip_matches(target, container, {n: n for n in blobs})
    assert_nothing_left(tmp_path / "absent.zip")


def test_content_md5_verified_and_missing(container, tmp_path):
    from azure.storage.blob import BlobBlock, ContentSettings

    data = b"block data " * 10_000
    container.upload_blob("with-md5.txt", data)  # Put Blob: the service stores an MD5
    committed = container.get_blob_client("no-md5.txt")  # Put Block List: no MD5 unless given
    committed.stage_block("b1", data[:50_000])
    committed.stage_block("b2", data[50_000:])
    committed.commit_block_list([BlobBlock("b1"), BlobBlock("b2")])
    explicit = container.get_blob_client("explicit-md5.txt")
    explicit.stage_block("b1", data)
    explicit.commit_block_list([BlobBlock("b1")], content_settings=ContentSettings(
        content_md5=bytearray(hashlib.md5(data).digest())))
    assert [b["contentMd5"] is None for b in zs.list_blobs(container)] == [False, True, False]

    target = tmp_path / "m.zip"
    result = zs.download_zip(container, dest=target, manifest=True)
    assert (result["md5Verified"], result["md5Missing"]) == (2, 1)
    zf = assert_zip_matches(target, container, {n: n for n in ["explicit-md5.txt", "no-md5.txt", "with-md5.txt"]},
                            manifest=True)
    rows = json.loads(zf.read(zs.MANIFEST_NAME))["entries"]
    assert {r["md5"] for r in rows} == {hashlib.md5(data).hexdigest()}  # computed where none is stored


def test_content_encoding_is_kept_as_stored(container, tmp_path):
    import gzip

    from azure.storage.blob import ContentSettings

    raw = gzip.compress(b"compressed log line\n" * 500)
    container.upload_blob("app.log", raw, content_settings=ContentSettings(content_encoding="gzip"))
    target = tmp_path / "g.zip"
    zs.download_zip(container, dest=target, compress_level=6)
    zf = read_zip(target)
    assert zf.read("app.log") == raw  # the stored bytes, not silently decompressed
    assert zf.getinfo("app.log").compress_type == zipfile.ZIP_STORED


# ----------------------------------------------------------------------------- failures


def test_tampered_md5_raises_and_leaves_nothing(container, tmp_path):
    from azure.storage.blob import ContentSettings

    upload_all(container, {f"ok{i}.txt": b"fine" * 100 for i in range(20)})
    container.upload_blob("tampered.txt", b"the real content")
    container.get_blob_client("tampered.txt").set_http_headers(
        ContentSettings(content_md5=bytearray(hashlib.md5(b"something else").digest())))
    target = tmp_path / "t.zip"
    with pytest.raises(zs.IntegrityError) as caught:
        zs.download_zip(container, dest=target)
    assert caught.value.blob == "tampered.txt"
    assert caught.value.expected == hashlib.md5(b"something else").hexdigest()
    assert caught.value.actual == hashlib.md5(b"the real content").hexdigest()
    assert_nothing_left(target)
    # verification can be turned off
    assert zs.download_zip(container, dest=target, verify_md5=False)["md5Verified"] == 0
    assert read_zip(target).read("tampered.txt") == b"the real content"


@pytest.mark.parametrize("change", ["delete", "overwrite"])
def test_blob_changed_after_listing(container, tmp_path, change):
    upload_all(container, {f"f{i:02d}.txt": b"stable" * 50 for i in range(30)})
    victim = container.get_blob_client("f17.txt")

    def meddle():  # runs after the listing, before any download
        if change == "delete":
            victim.delete_blob()
        else:
            victim.upload_blob(b"new content", overwrite=True)

    target = tmp_path / "c.zip"
    with pytest.raises(zs.SourceChangedError, match="f17.txt") as caught:
        zs.download_zip(container, dest=target, progress=Recorder(on_start=meddle))
    assert caught.value.blob == "f17.txt"
    assert "after it was listed" in str(caught.value)
    assert_nothing_left(target)


def test_connection_cut_mid_blob(azurite, container, tmp_path, proxies):
    from azure.storage.blob import ContainerClient

    upload_all(container, {"a.txt": b"a" * 1000, "cut.bin": random.Random(7).randbytes(8 * MiB)})
    proxy = proxies.CuttingProxy(azurite.port, cut_after=1 * MiB)
    try:
        client = ContainerClient(
            f"http://127.0.0.1:{proxy.port}/{azurite.account_name}", container.container_name,
            credential={"account_name": azurite.account_name, "account_key": azurite.account_key},
            retry_total=0, connection_timeout=5, read_timeout=10,
        )
        target = tmp_path / "cut.zip"
        started = time.monotonic()
        with pytest.raises(zs.DownloadError, match="cut.bin") as caught:
            zs.download_zip(client, dest=target)
        assert caught.value.blob == "cut.bin"
        assert proxy.cuts >= 1
        assert time.monotonic() - started < 30
        assert_nothing_left(target)
    finally:
        proxy.close()


def test_wrong_account_key(azurite, container, tmp_path):
    from azure.storage.blob import ContainerClient

    upload_all(container, {"a.txt": b"a"})
    wrong = azurite.connection_string.replace(azurite.account_key, base64.b64encode(b"wrong key" * 7).decode())
    client = ContainerClient.from_connection_string(wrong, container.container_name)
    target = tmp_path / "w.zip"
    with pytest.raises(zs.AuthError, match=container.container_name):
        zs.download_zip(client, dest=target)
    with pytest.raises(zs.AuthError):
        zs.list_blobs(client)
    assert_nothing_left(target)


def test_missing_container(blob_service, tmp_path):
    client = blob_service.get_container_client("no-such-container")
    target = tmp_path / "n.zip"
    with pytest.raises(zs.SourceNotFoundError, match="'no-such-container' does not exist"):
        zs.download_zip(client, dest=target)
    with pytest.raises(zs.SourceNotFoundError):
        zs.plan(client)
    assert_nothing_left(target)


def test_existing_target_is_not_overwritten(container, tmp_path):
    upload_all(container, {"a.txt": b"new"})
    target = tmp_path / "exists.zip"
    target.write_bytes(b"precious")
    with pytest.raises(zs.TargetExistsError):
        zs.download_zip(container, dest=target)
    assert target.read_bytes() == b"precious"
    with pytest.raises(zs.TargetExistsError):
        zs.download_zip(container, dest=tmp_path)  # a directory is never a target

    # a file that appears while the zip is being written is not clobbered either
    late = tmp_path / "late.zip"
    with pytest.raises(zs.TargetExistsError):
        zs.download_zip(container, dest=late, progress=Recorder(on_start=lambda: late.write_bytes(b"late")))
    assert late.read_bytes() == b"late"
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []

    result = zs.download_zip(container, dest=target, overwrite=True)
    assert read_zip(target).read("a.txt") == b"new" and result["zipBytes"] == target.stat().st_size
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def test_cancel_event_and_keyboard_interrupt_leave_nothing(container, tmp_path):
    upload_all(container, {f"f{i:03d}.txt": b"x" * 5000 for i in range(60)})
    cancel = threading.Event()
    target = tmp_path / "cancel.zip"
    with pytest.raises(zs.DownloadCancelled):
        zs.download_zip(container, dest=target, cancel_event=cancel,
                        progress=Recorder(on_advance=lambda r: r.blobs >= 5 and cancel.set()))
    assert_nothing_left(target)

    def interrupt(recorder):
        if recorder.blobs >= 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        zs.download_zip(container, dest=target, progress=Recorder(on_advance=interrupt))
    assert_nothing_left(target)


# ----------------------------------------------------------------------------- streams


def test_stream_to_an_unseekable_pipe(container):
    blobs = {"a.txt": b"alpha" * 1000, "b/c.bin": random.Random(3).randbytes(300_000), "empty": b""}
    upload_all(container, blobs)
    read_fd, write_fd = os.pipe()
    received = bytearray()

    def drain():
        with os.fdopen(read_fd, "rb") as reader:
            while chunk := reader.read(65536):
                received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with os.fdopen(write_fd, "wb") as pipe:
        with pytest.raises(OSError):
            pipe.tell()  # really unseekable
        result = zs.download_zip(container, dest=pipe, manifest=True)
    reader.join(timeout=30)
    assert result["path"] is None and result["zipBytes"] == len(received)
    zf = assert_zip_matches(io.BytesIO(bytes(received)), container, {n: n for n in blobs}, manifest=True)
    # sizes and CRC are known before each entry is written: no data descriptors, even in a pipe
    assert not any(info.flag_bits & 0x08 for info in zf.infolist())


def test_stream_to_a_seekable_buffer(container):
    upload_all(container, {"a.txt": b"alpha" * 1000})
    buffer = io.BytesIO(b"HEADER")
    buffer.seek(0, io.SEEK_END)
    result = zs.download_zip(container, dest=buffer)
    assert result["zipBytes"] == len(buffer.getvalue()) - 6
    assert zipfile.ZipFile(io.BytesIO(buffer.getvalue()[6:])).read("a.txt") == b"alpha" * 1000


def test_failed_stream_gets_no_central_directory(container):
    from azure.storage.blob import ContentSettings

    upload_all(container, {"a.txt": b"fine" * 100, "z.txt": b"real"})
    container.get_blob_client("z.txt").set_http_headers(ContentSettings(content_md5=bytearray(16)))
    out = io.BytesIO()
    with pytest.raises(zs.IntegrityError):
        zs.download_zip(container, dest=out)
    with pytest.raises(zipfile.BadZipFile):  # a consumer cannot mistake it for a whole zip
        zipfile.ZipFile(io.BytesIO(out.getvalue()))


def test_progress_reports_totals_then_increments(container, tmp_path):
    blobs = {f"p{i}.txt": b"p" * (1000 * (i + 1)) for i in range(12)}
    upload_all(container, blobs)
    recorder = Recorder()
    zs.download_zip(container, dest=tmp_path / "p.zip", progress=recorder, max_concurrency=2)
    total = sum(map(len, blobs.values()))
    assert recorder.total == (12, total)
    assert (recorder.blobs, recorder.bytes) == (12, total)


def test_compress_levels(container, tmp_path):
    blobs = {"text.log": b"compressible line\n" * 5000, "photo.jpg": b"\xff\xd8 not really a jpeg" * 500}
    upload_all(container, blobs)
    sizes = {}
    for level in (0, 1, 9):
        target = tmp_path / f"l{level}.zip"
        sizes[level] = zs.download_zip(container, dest=target, compress_level=level)["zipBytes"]
        zf = assert_zip_matches(target, container, {n: n for n in blobs})
        assert zf.getinfo("photo.jpg").compress_type == zipfile.ZIP_STORED  # by extension, at any level
        expected = zipfile.ZIP_STORED if level == 0 else zipfile.ZIP_DEFLATED
        assert zf.getinfo("text.log").compress_type == expected
    assert sizes[0] > sizes[1] >= sizes[9]
    with pytest.raises(ValueError):
        zs.download_zip(container, dest=tmp_path / "bad.zip", compress_level=10)
