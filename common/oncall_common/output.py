"""Rendering operation results: tables, csv, markdown (json/yaml/tsv are knack's own).

Plain functions over plain data so any front door can use them. A command's table shape
(``OperationSpec.table``) turns its result into flat rows with display column names; with
``--query`` the query's result is shown as it is. No column is ever dropped: nested values
are shown as compact JSON.
"""
import contextlib
import csv
import gc
import io
import json
import operator

TABLE_FORMATS = {"table": "simple", "md": "github"}


def cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


_NUMBERS_AND_TEXT = {str, int, float}


def _text_column(values):
    """``[cell(v) for v in values]``, faster when the column holds only text and numbers."""
    kinds = set(map(type, values))
    if kinds <= _NUMBERS_AND_TEXT:   # cell() is str() for these (bool is its own type, not int, here)
        return values if kinds == {str} else list(map(str, values))
    return list(map(cell, values))


@contextlib.contextmanager
def _gc_paused():
    """Building 100,000s of row lists makes the cyclic GC scan every live object again and again (half the time
    spent here); nothing made here forms a reference cycle, so it may wait until we are done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def rows_of(result):
    """(columns, rows) for any result: list of dicts, a dict, a scalar or a list of scalars."""
    if result is None:
        return [], []
    with _gc_paused():
        return _rows_of(result)


def _rows_of(result):
    items = result if isinstance(result, list) else [result]
    columns = []
    seen = set()
    for item in items:
        if isinstance(item, dict):
            if len(item) <= len(seen) and seen.issuperset(item):
                continue  # no new key (the common case): skip the per-key loop
            for key in item:
                if key not in seen:
                    seen.add(key)
                    columns.append(key)
    if not columns:
        return ["Result"], [[cell(item)] for item in items]
    width = len(columns)
    if all(isinstance(item, dict) and len(item) == width for item in items):
        # every row has every column: convert column by column (C-level maps); same cells as below
        fetch = operator.itemgetter(*columns) if width > 1 else (lambda item: (item[columns[0]],))
        by_column = [_text_column(col) for col in zip(*map(fetch, items))]
        return columns, [list(row) for row in zip(*by_column)]
    rows = []
    for item in items:
        if isinstance(item, dict):
            rows.append([cell(item.get(c)) for c in columns])
        else:
            rows.append([cell(item)] + [""] * (width - 1))
    return columns, rows


def shape(result, table, query_active):
    """Apply the command's table shape unless a --query chose the data."""
    if isinstance(result, dict) and result.get("dryRun"):
        return result
    if table is not None and not query_active and result is not None:
        return table(result)
    return result


def render_table(result, fmt="table"):
    columns, rows = rows_of(result)
    if not columns:
        return ""
    text = _plain_table(columns, rows, fmt)
    if text is None:
        from tabulate import tabulate
        text = tabulate(rows, headers=columns, tablefmt=TABLE_FORMATS[fmt], disable_numparse=True)
    return text + "\n"


_MIN_PADDING = 2  # tabulate's MIN_PADDING: a column is at least its header plus two


def _plain_table(columns, rows, fmt):
    """What tabulate(disable_numparse=True) draws for "simple" and "github", byte for byte, when every header and
    cell is printable ASCII without surrounding spaces (no ANSI codes, line breaks or wide characters: nothing
    tabulate would measure, strip or wrap differently); None otherwise, and tabulate draws it. Tabulate spends
    seconds on 100,000 rows; this takes a fraction of one."""
    if not all(type(c) is str for c in columns):
        return None
    cols = list(zip(*rows)) if rows else [()] * len(columns)
    if len(cols) != len(columns):
        return None
    widths = []
    for header, col in zip(columns, cols):
        for cells in ((header,), col):
            joined = "".join(cells)
            if not (joined.isascii() and joined.isprintable()):
                return None
            spaced = "\0".join(cells)
            if " \0" in spaced or "\0 " in spaced or spaced[:1] == " " or spaced[-1:] == " ":
                return None
        widths.append(max(len(header) + _MIN_PADDING, max(map(len, col), default=0)))
    if fmt == "table":
        line = "  ".join("{:<%d}" % w for w in widths)
        lines = [line.format(*columns).rstrip(), "  ".join("-" * w for w in widths)]
        lines.extend(line.format(*row).rstrip() for row in rows)
    else:  # github: padding 1, | borders
        line = "|" + "|".join(" {:<%d} " % w for w in widths) + "|"
        lines = [line.format(*columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines.extend(line.format(*row) for row in rows)
    return "\n".join(lines)


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
