"""Table shapes for the logs commands, and ``--out FILE`` (rendered like -o, written atomically).

Result shapes (documented in docs/logs.md):

- one result table: the rows, a list of ``{column: value}`` (``--query "[].Computer"`` works as usual);
- several tables: ``{"tables": [{"name", "columns": [{"name", "type"}], "rows": [{column: value}]}]}``;
- with ``--out FILE``: a summary ``{"out", "format", "rows", "tables": [{"name", "rows"}], "partial"}``.
"""
import os
import tempfile
from pathlib import Path

from oncall_common import UsageError

FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonc": "json", ".yaml": "yaml", ".yml": "yaml",
                ".md": "md", ".markdown": "md", ".txt": "table", ".table": "table"}
OUT_FORMATS = ("json", "jsonc", "yaml", "yamlc", "table", "tsv", "csv", "md")


def result_data(tables):
    """What a query command returns for these plain tables (see the module docstring)."""
    if len(tables) == 1:
        return tables[0]["rows"]
    return {"tables": tables}


def query_rows(result):
    """-o table|csv|md rows: one table as it is; several kept apart by a leading Table column."""
    if isinstance(result, list):
        return result
    if isinstance(result, dict) and "out" in result:
        return [{"File": result["out"], "Format": result["format"], "Rows": result["rows"],
                 "Tables": ", ".join(f"{t['name']} ({t['rows']})" for t in result["tables"]),
                 "Partial": result.get("partial", False)}]
    if isinstance(result, dict) and "tables" in result:
        return _apart(result["tables"])
    return result


def _apart(tables):
    names = {c["name"] for t in tables for c in t["columns"]}
    key = "Table" if "Table" not in names else "Result table"
    rows = []
    for table in tables:
        if not table["rows"]:   # keep an empty table (and its columns) visible
            rows.append({key: f"{table['name']} (no rows)", **{c["name"]: None for c in table["columns"]}})
        for row in table["rows"]:
            rows.append({key: table["name"], **row})
    return rows


def _parameters_text(parameters):
    """``name:type`` for a required parameter, ``name:type=default`` for an optional one."""
    parts = []
    for p in parameters:
        text = f"{p['name']}:{p['type']}"
        if not p["required"]:
            default = p.get("default")
            text += '=""' if default == "" else "=null" if default is None else f"={default}"
        parts.append(text)
    return " ".join(parts)


def saved_rows(saved):
    return [{"Name": s["name"], "Source": s["source"], "Parameters": _parameters_text(s["parameters"]),
             "Description": s["description"], "Status": "invalid: " + s["error"] if s.get("error") else "ok"}
            for s in saved]


def saved_detail(saved):
    return [{"Name": saved["name"], "Source": saved["source"], "Path": saved["path"],
             "Timespan": saved.get("timespan"), "Workspace": saved.get("workspace"),
             "Parameters": _parameters_text(saved["parameters"]), "Query": saved.get("query", "").strip()}]


def workspace_rows(workspaces):
    return [{"Name": w["name"], "WorkspaceId": w["workspaceId"], "Default": w["default"]} for w in workspaces]


# ------------------------------------------------------------------ --out FILE


def out_format(path, explicit=None):
    if explicit:
        return "json" if explicit == "jsonc" else "yaml" if explicit == "yamlc" else explicit
    fmt = FILE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"cannot tell the format of {path!r} from its extension",
                         hint=f"use one of {', '.join(sorted(FILE_FORMATS))}, or --out-format")
    return fmt


def render_file(result, fmt):
    from oncall_common.output import render
    return render(result, fmt, table=query_rows)


def write_atomic(path, text):
    """Write ``text`` to ``path`` so a reader sees the old file or the whole new one, never a part."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"--out {path}: is a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as ex:
        raise UsageError(f"cannot write {path}: {ex.strerror or ex}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException as ex:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(ex, OSError):
            raise UsageError(f"cannot write {path}: {ex.strerror or ex}") from None
        raise
    return str(target)
