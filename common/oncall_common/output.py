"""Rendering operation results: tables, csv, markdown (json/yaml/tsv are knack's own).

Plain functions over plain data so any front door can use them. A command's table shape
(``OperationSpec.table``) turns its result into flat rows with display column names; with
``--query`` the query's result is shown as it is. No column is ever dropped: nested values
are shown as compact JSON.
"""
import csv
import io
import json

TABLE_FORMATS = {"table": "simple", "md": "github"}


def cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


def rows_of(result):
    """(columns, rows) for any result: list of dicts, a dict, a scalar or a list of scalars."""
    if result is None:
        return [], []
    items = result if isinstance(result, list) else [result]
    columns = []
    seen = set()
    for item in items:
        if isinstance(item, dict):
            for key in item:
                if key not in seen:
                    seen.add(key)
                    columns.append(key)
    if not columns:
        return ["Result"], [[cell(item)] for item in items]
    rows = []
    for item in items:
        if isinstance(item, dict):
            rows.append([cell(item.get(c)) for c in columns])
        else:
            rows.append([cell(item)] + [""] * (len(columns) - 1))
    return columns, rows


def shape(result, table, query_active):
    """Apply the command's table shape unless a --query chose the data."""
    if isinstance(result, dict) and result.get("dryRun"):
        return result
    if table is not None and not query_active and result is not None:
        return table(result)
    return result


def render_table(result, fmt="table"):
    from tabulate import tabulate
    columns, rows = rows_of(result)
    if not columns:
        return ""
    text = tabulate(rows, headers=columns, tablefmt=TABLE_FORMATS[fmt], disable_numparse=True)
    return text + "\n"


def render_csv(result):
    columns, rows = rows_of(result)
    buf = io.StringIO()
    if columns:
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    return buf.getvalue()


def render(result, fmt, *, table=None, query_active=False):
    """Render plain data in one of the suite's formats (used by non-knack front ends)."""
    if fmt in ("json", "jsonc"):
        return json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt in ("yaml", "yamlc"):
        import yaml
        return yaml.safe_dump(result, default_flow_style=False, allow_unicode=True, sort_keys=False)
    if fmt == "none":
        return ""
    data = shape(result, table, query_active)
    if fmt in TABLE_FORMATS:
        return render_table(data, fmt)
    if fmt == "csv":
        return render_csv(data)
    if fmt == "tsv":
        _, rows = rows_of(data)
        return "".join("\t".join(r) + "\n" for r in rows)
    raise ValueError(f"unknown output format {fmt!r}")
