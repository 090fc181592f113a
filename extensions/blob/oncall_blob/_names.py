"""Blob names → safe zip entry names, and blob-name glob patterns.

Blob names are arbitrary strings up to 1,024 characters: `a/../b`, `/etc/x`, `C:\\x`,
control characters and names that only differ in their slashes all exist. A zip entry
name is a path some unzip tool will create on disk, so every entry name produced here
is relative, has no `.`/`..`/empty segments, no backslashes, no drive letter and no
control characters, and no two entries collide (nor does a file take the name of a
directory another entry needs). The mapping original name → entry name is returned
so the manifest and the summary can show what was renamed.

Pure functions, standard library only.
"""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache
from typing import Dict, Iterable, Optional, Pattern

__all__ = [
    "strip_prefix",
    "safe_entry_name",
    "assign_entry_names",
    "compile_pattern",
    "matches_pattern",
]

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
EMPTY_NAME_FALLBACK = "_"


def strip_prefix(blob_name: str, prefix: str) -> str:
    """The part of `blob_name` below `prefix`, without the slashes that separate them."""
    if prefix and blob_name.startswith(prefix):
        blob_name = blob_name[len(prefix):]
    return blob_name.lstrip("/")


def safe_entry_name(blob_name: str, prefix: str = "", keep_prefix: bool = False) -> str:
    """One blob name made safe as a zip entry name (collisions are not handled here).

    Strips `prefix` unless `keep_prefix`; turns backslashes into slashes; drops a
    leading drive letter and every empty, `.` and `..` segment (dropped, not resolved,
    so nothing can climb out of the extraction folder); replaces control characters
    with `_`. A name with nothing left (`..`, or the prefix itself) becomes `_`.
    """
    name = blob_name if keep_prefix else strip_prefix(blob_name, prefix)
    name = _CONTROL_CHARS.sub("_", name.replace("\\", "/"))
    name = _DRIVE.sub("", name.lstrip("/"))
    segments = [s for s in name.split("/") if s not in ("", ".", "..")]
    return "/".join(segments) or EMPTY_NAME_FALLBACK


def _numbered(entry: str, n: int) -> str:
    """`dir/report.csv` → `dir/report~1.csv`; `dir/name` → `dir/name~1`."""
    head, tail = posixpath.split(entry)
    stem, dot, ext = tail.rpartition(".")
    if not dot or not stem:  # no extension, or a dot-file such as `.env`
        stem, ext = tail, ""
    else:
        ext = "." + ext
    numbered = f"{stem}~{n}{ext}"
    return f"{head}/{numbered}" if head else numbered


def assign_entry_names(
    blob_names: Iterable[str],
    *,
    prefix: str = "",
    keep_prefix: bool = False,
    reserved: Iterable[str] = (),
) -> Dict[str, str]:
    """Map each blob name to a unique safe zip entry name, in the given order.

    Deterministic: the first blob (in input order; listings come sorted) to claim a
    safe name keeps it, later ones get `name~1`, `name~2`… (before the extension).
    A candidate is never a name that another blob maps to plainly, a `reserved` name
    (e.g. `MANIFEST.json`), or a directory that other entries live under (a blob `a`
    next to a blob `a/b` becomes `a~1`, so the zip extracts).
    """
    names = list(blob_names)
    plain = {name: safe_entry_name(name, prefix, keep_prefix) for name in names}
    directories = set()
    for entry in plain.values():
        head = posixpath.dirname(entry)
        while head and head not in directories:
            directories.add(head)
            head = posixpath.dirname(head)
    wanted = set(plain.values())
    taken = set(reserved) | directories
    result: Dict[str, str] = {}
    for name in names:
        entry = plain[name]
        if entry in taken:
            n = 1
            while True:
                candidate = _numbered(entry, n)
                if candidate not in taken and candidate not in wanted:
                    break
                n += 1
            entry = candidate
        taken.add(entry)
        result[name] = entry
    return result


@lru_cache(maxsize=64)
def compile_pattern(pattern: str) -> Pattern[str]:
    """A glob as a regular expression, with fnmatch's syntax (`*`, `?`, `[seq]`,
    `[!seq]`, case-sensitive) except that `*`, `?` and `[...]` stay within one path
    segment while `**` crosses `/` (and `**/` also matches no directory at all)."""
    i, n, out = 0, len(pattern), []
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal `[`, as fnmatch does
                out.append(re.escape(c))
            else:
                negate = pattern[i + 1] == "!"
                body = pattern[i + 1 + negate:j]
                for special in ("\\", "[", "]", "^"):
                    body = body.replace(special, "\\" + special)
                out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def matches_pattern(relative_name: str, pattern: Optional[str]) -> bool:
    """Whether a name (relative to the listing prefix) matches `pattern`; None matches all."""
    if pattern is None or pattern == "":
        return True
    return compile_pattern(pattern).match(relative_name) is not None
