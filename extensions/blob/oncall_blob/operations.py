"""Azure Blob Storage chores: list a container (or a prefix of it), and download it as one streamed,
verified zip. The engine is `_zipstream`; this module gives it arguments, a connection and a progress bar."""
import re
from typing import Annotated

from oncall_common import Arg, UsageError, group, operation

from . import _client  # noqa: F401 - declares the "blob" connection
from ._client import POOL_CONNECTIONS, translated
from ._format import download_rows, human_bytes, list_rows, summary_line

group("blob", "Azure Blob Storage: list a container, download it as one streamed, verified zip.")

DEFAULT_CONCURRENCY = 8

Container = Annotated[str, Arg(options=("-c",), metavar="NAME",
                               help="The container (not needed with --container-url).")]
Prefix = Annotated[str, Arg(metavar="PREFIX", help="Only blobs whose names start with this (e.g. payments/2024-06-01/).")]
Pattern = Annotated[str, Arg(metavar="GLOB", help="Only blobs whose name below --prefix matches this glob: * and ? "
                                                  "stay within one /-segment, ** crosses them (e.g. '**/*.log').")]


class _Progress:
    """The engine's progress protocol (start / advance) drawn with the front door's bar (a TTY's stderr only)."""

    def __init__(self, ctx, description):
        self.ctx = ctx
        self.description = description
        self.bar = None

    def start(self, total_blobs, total_bytes):
        self.bar = self.ctx.progress(total=total_blobs, unit="blobs",
                                     description=f"{self.description} {human_bytes(total_bytes)}")

    def advance(self, blobs, nbytes):
        self.bar.update(blobs, bytes=nbytes)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _default_zip_name(container, prefix):
    """`diagnostics.zip`, or `diagnostics-payments-2024-06-01.zip` for a prefix."""
    stem = container
    if prefix:
        stem += "-" + prefix
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "blobs"
    return stem + ".zip"


@operation("blob list", uses="blob", table=list_rows, examples=[
    ("Every blob of a container, as a table (with the total)", "oncall blob list --account myacct -c diagnostics -o table"),
    ("The payments service's logs under a prefix", "oncall blob list -c diagnostics --prefix payments/ --pattern '**/*.log'"),
    ("Against Azurite", "oncall blob list -c diagnostics --connection-string \"$AZURE_STORAGE_CONNECTION_STRING\""),
    ("Only the names", "oncall blob list -c diagnostics --query '[].name' -o tsv"),
])
def list_blobs(ctx, container: Container = None, prefix: Prefix = None, pattern: Pattern = None):
    """List the blobs of a container: name, size, last modified, content MD5.

    In name order, as download-zip takes them (directory placeholders left out). Each blob has name, size (bytes), lastModified (ISO-8601 UTC), contentMd5 (hex, or null when the blob has none), contentType and etag; the table ends with the total.
    """
    conn = ctx.client("blob")
    client = conn.container(container)
    from . import _zipstream
    with translated(None, conn):
        return _zipstream.list_blobs(client, prefix or "", pattern)


@operation("blob download-zip", uses="blob", table=download_rows, examples=[
    ("A whole container into diagnostics.zip", "oncall blob download-zip --account myacct -c diagnostics"),
    ("One service's blobs of one day, names below the prefix",
     "oncall blob download-zip -c diagnostics --prefix payments/2024-06-01/ --zip payments.zip"),
    ("What would go in, and the total size", "oncall blob download-zip -c diagnostics --prefix payments/ --dry-run -o table"),
    ("Only the logs, with a manifest (name, size, MD5) inside",
     "oncall blob download-zip -c diagnostics --pattern '**/*.log' --manifest --zip logs.zip --overwrite"),
    ("Stream it to another program", "oncall blob download-zip -c diagnostics --zip - | ssh bastion 'cat > d.zip'"),
    ("With a container SAS URL", "oncall blob download-zip --container-url 'https://acct.blob.core.windows.net/diagnostics?sv=...' --zip d.zip"),
])
def download_zip(ctx, container: Container = None, prefix: Prefix = None, pattern: Pattern = None,
                 zip: Annotated[str, Arg(metavar="FILE")] = None,  # noqa: A002 - the option is --zip
                 keep_prefix: bool = False,
                 overwrite: bool = False,
                 manifest: bool = False,
                 max_concurrency: Annotated[int, Arg(metavar="N")] = DEFAULT_CONCURRENCY,
                 compress_level: Annotated[int, Arg(metavar="0-9")] = 0,
                 verify_md5: bool = True,
                 dry_run: Annotated[bool, Arg(help="List what would go into the zip, and the total size; "
                                                   "download nothing.")] = False):
    """Download a container, or the blobs under a prefix, as one zip: streamed, parallel, verified.

    Entries mirror the blob names below --prefix (made safe: no absolute paths, no '..', no duplicates; renamed ones are listed in the summary), each with its blob's Last-Modified time. Blobs are downloaded in parallel and streamed into the zip, so memory stays flat however large the container; ZIP64 past 4 GB or 65,535 entries. Each blob is checked against its Content-MD5 when it has one.

    The zip is written beside the target and renamed into place only when complete: after a failure or Ctrl-C no file is left at the target, and the exit code says why (5 no container, 4 refused, 6 the zip exists, 10 a blob failed its check or changed, 8 the network failed, 130 cancelled).
    :param zip: The zip file to write (default CONTAINER[-PREFIX].zip here); '-' writes the zip to stdout
        (the summary then goes to stderr).
    :param keep_prefix: Keep --prefix in the entry names.
    :param overwrite: Replace the zip file if it exists.
    :param manifest: Add MANIFEST.json to the zip: container, prefix, and each blob's name, entry, size, MD5.
    :param max_concurrency: Blobs downloaded at once (1-64).
    :param compress_level: 0 (default) stores every entry, fastest; 1 (fast) to 9 (small) deflates the
        compressible ones in the download threads (log text to about a third). Already-compressed content
        (.gz, .zip, images, random data) is always stored.
    :param verify_md5: Skip checking each blob against its stored Content-MD5 (checked by default).
    """
    if not 1 <= max_concurrency <= POOL_CONNECTIONS:
        raise UsageError(f"--max-concurrency must be between 1 and {POOL_CONNECTIONS}")
    if not 0 <= compress_level <= 9:
        raise UsageError("--compress-level must be between 0 and 9")
    to_stdout = zip == "-"
    conn = ctx.client("blob")
    client = conn.container(container)
    target = zip or _default_zip_name(client.container_name, prefix)
    from . import _zipstream

    if dry_run or ctx.dry_run:
        with translated(None, conn):
            plan = _zipstream.plan(client, prefix=prefix or "", pattern=pattern, keep_prefix=keep_prefix,
                                   manifest=manifest)
        plan["zip"] = target
        if not to_stdout:
            import os
            plan["zipExists"] = os.path.exists(target)
            if plan["zipExists"] and not overwrite:
                ctx.warn(f"{target} exists: the download would stop there unless --overwrite is given")
        return plan

    if to_stdout:
        out = getattr(ctx.stdout, "buffer", None)
        if out is None:
            raise UsageError("--zip -: this standard output takes no bytes", hint="give --zip FILE")
        if getattr(ctx.stdout, "isatty", lambda: False)():
            raise UsageError("refusing to write a zip to a terminal", hint="redirect it (--zip - > d.zip), "
                                                                          "pipe it, or give --zip FILE")
        ctx.stdout.flush()
        dest = out
    else:
        dest = target
    progress = _Progress(ctx, f"{client.container_name}/{prefix or ''}")
    try:
        with translated("standard output" if to_stdout else target, conn):
            result = _zipstream.download_zip(
                client, prefix=prefix or "", pattern=pattern, keep_prefix=keep_prefix, dest=dest,
                overwrite=overwrite, max_concurrency=max_concurrency, manifest=manifest, progress=progress,
                verify_md5=verify_md5, compress_level=compress_level)
    finally:
        progress.close()
    if to_stdout:
        dest.flush()
        ctx.info(summary_line(result))
        return None
    return result
