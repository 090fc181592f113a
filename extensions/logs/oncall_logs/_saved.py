"""Saved queries: ``.kql`` files with a short YAML header in ``//`` comments.

A saved query stays a valid KQL file (paste it into the portal as it is)::

    // ---
    // description: Error lines of one service's pods
    // timespan: PT1H                  # default --timespan
    // workspace: prod                 # default --workspace (a name from [logs-workspaces] or an id)
    // parameters:
    //   service: {type: string, help: The app label of the pods}
    //   max_rows: {type: int, default: 200, help: Rows to return at most}
    // ---
    ContainerLogV2 | where PodName startswith service | take max_rows

The name is the file's stem (a ``name:`` in the header must agree). A parameter without
``default`` is required; ``default: null`` is the typed null (``datetime(null)``...).

Where they come from, first found wins (so a team overrides a shipped query by name):

1. ``user``: ``<config dir>/queries/*.kql`` (``~/.oncall/queries``),
2. ``team``: each folder in config ``[logs] queries_dir`` (comma-separated; a team's repository),
3. ``shipped``: every package named by an ``oncall.logs.queries`` entry point (this extension
   ships ``oncall_logs.queries``; any extension can ship more the same way).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from oncall_common import ConfigError, NotFoundError

from . import kql

ENTRY_POINT_GROUP = "oncall.logs.queries"
OWN_PACKAGE = "oncall_logs.queries"
HEADER_MARK = "---"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_HEADER_KEYS = {"name", "description", "timespan", "workspace", "parameters"}
_PARAM_KEYS = {"type", "default", "help"}
_REQUIRED = object()


class SavedQueryError(ValueError):
    """A saved query file that cannot be used (bad header, broken KQL, unused parameter)."""


@dataclass
class Parameter:
    name: str
    type: str = "string"
    default: object = _REQUIRED
    help: str = ""

    @property
    def required(self):
        return self.default is _REQUIRED

    def to_dict(self):
        out = {"name": self.name, "type": self.type, "required": self.required, "help": self.help}
        if not self.required:
            out["default"] = _plain(self.default)
        return out


@dataclass
class SavedQuery:
    name: str
    query: str
    source: str                    # user | team | shipped:<extension>
    path: str
    description: str = ""
    timespan: str | None = None
    workspace: str | None = None
    parameters: dict = field(default_factory=dict)   # name -> Parameter, in header order
    overrides: list = field(default_factory=list)    # paths of same-named queries this one hides
    error: str | None = None       # set when the file is unusable

    def to_dict(self, with_query=False):
        out = {"name": self.name, "description": self.description, "source": self.source, "path": self.path,
               "parameters": [p.to_dict() for p in self.parameters.values()], "timespan": self.timespan,
               "workspace": self.workspace, "overrides": list(self.overrides)}
        if self.error:
            out["error"] = self.error
        if with_query:
            out["query"] = self.query
        return out

    def check(self):
        """Raise ConfigError when this query's file is unusable."""
        if self.error:
            raise ConfigError(f"saved query {self.name!r} ({self.path}) is invalid: {self.error}")


def _plain(value):
    """A default as JSON data (datetimes, timespans and guids as text)."""
    import datetime as dt
    import uuid
    if isinstance(value, dt.datetime):
        from oncall_common.convert import isoformat
        return isoformat(value)
    if isinstance(value, (dt.date, dt.timedelta, uuid.UUID)):
        return str(value)
    return value


# ------------------------------------------------------------------ parsing


def has_header(text):
    first = text.lstrip().split("\n", 1)[0].strip()
    return first.startswith("//") and first[2:].strip() == HEADER_MARK


def parse(text, *, name, source, path, check_name=True):
    """A SavedQuery from a file's text; a broken file gives one with ``error`` set (never raises)."""
    saved = SavedQuery(name=name, query=text, source=source, path=str(path))
    try:
        header, body = split_header(text)
        if not check_name and header.get("name") is not None:
            saved.name = str(header["name"])
        _apply_header(saved, header)
        saved.query = body
        _check_query(saved)
    except SavedQueryError as ex:
        saved.error = str(ex)
    return saved


def split_header(text):
    """(header dict, KQL body) of a saved query's text; no header gives ({}, text)."""
    lines = text.splitlines(keepends=True)
    index = 0
    while index < len(lines) and not lines[index].strip():
        index += 1
    first = lines[index].strip() if index < len(lines) else ""
    if not (first.startswith("//") and first[2:].strip() == HEADER_MARK):
        return {}, text
    yaml_lines = []
    for number in range(index + 1, len(lines)):
        stripped = lines[number].strip()
        if not stripped.startswith("//"):
            raise SavedQueryError(f"header line {number + 1} does not start with //; close the header with '// ---'")
        content = stripped[2:]
        if content.strip() == HEADER_MARK:
            return _load_yaml("".join(yaml_lines)), "".join(lines[number + 1:])
        yaml_lines.append((content[1:] if content.startswith(" ") else content) + "\n")
    raise SavedQueryError("the header has no closing '// ---' line")


def _load_yaml(text):
    import yaml
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as ex:
        raise SavedQueryError("header is not valid YAML: " + " ".join(str(ex).split())) from None
    if not isinstance(data, dict):
        raise SavedQueryError("header must be a YAML mapping (description:, parameters:, ...)")
    return data


def _apply_header(saved, header):
    unknown = sorted(set(header) - _HEADER_KEYS)
    if unknown:
        raise SavedQueryError(f"unknown header key(s) {', '.join(unknown)}; use {', '.join(sorted(_HEADER_KEYS))}")
    if header.get("name") is not None and str(header["name"]) != saved.name:
        raise SavedQueryError(f"header name {header['name']!r} differs from the file name {saved.name!r}")
    saved.description = str(header.get("description") or "").strip()
    if header.get("timespan") is not None:
        saved.timespan = str(header["timespan"])
        try:
            kql.parse_timespan_arg(saved.timespan)
        except ValueError as ex:
            raise SavedQueryError(f"header timespan: {ex}") from None
    if header.get("workspace") is not None:
        saved.workspace = str(header["workspace"])
    params = header.get("parameters") or {}
    if not isinstance(params, dict):
        raise SavedQueryError("parameters must be a mapping of name to {type, default, help}")
    for pname, spec in params.items():
        saved.parameters[str(pname)] = _parameter(str(pname), spec)


def _parameter(name, spec):
    if not kql.is_identifier(name):
        raise SavedQueryError(f"parameter name {name!r} is not a usable KQL identifier (letters, digits, _; "
                              "not a keyword)")
    if spec is None or isinstance(spec, str):  # "name: int" shorthand: a required parameter of that type
        spec = {"type": spec or "string"}
    if not isinstance(spec, dict):
        raise SavedQueryError(f"parameter {name!r}: expected {{type, default, help}}, got {spec!r}")
    unknown = sorted(set(spec) - _PARAM_KEYS)
    if unknown:
        raise SavedQueryError(f"parameter {name!r}: unknown key(s) {', '.join(unknown)}; use type, default, help")
    kind = str(spec.get("type") or "string")
    if kind not in kql.KQL_TYPES:
        raise SavedQueryError(f"parameter {name!r}: unknown type {kind!r}; use one of {', '.join(kql.KQL_TYPES)}")
    param = Parameter(name, kind, help=str(spec.get("help") or "").strip())
    if "default" in spec:
        param.default = typed_default(name, kind, spec["default"])
    return param


def typed_default(name, kind, value):
    """A header default as the Python value the literal writer takes; raises SavedQueryError."""
    try:
        if value is None:
            if kind == "string":
                raise ValueError("a string parameter's default cannot be null; use \"\"")
            kql.literal(None, kind)
            return None
        if kind == "string":
            value = str(value) if not isinstance(value, bool) else str(value).lower()
        elif isinstance(value, str):
            value = kql.parse_value(value, kind, name)
        kql.literal(value, kind)   # proves the value fits the type
        return value
    except ValueError as ex:
        raise SavedQueryError(f"parameter {name!r}: bad default: {ex}") from None


def _check_query(saved):
    try:
        if not kql.statements(saved.query):
            raise SavedQueryError("the query is empty")
        used = kql.referenced_names(saved.query)
    except kql.KqlSyntaxError as ex:
        raise SavedQueryError(f"the query does not parse: {ex}") from None
    unused = [name for name in saved.parameters if name not in used]
    if unused:
        raise SavedQueryError(f"declared parameter(s) {', '.join(unused)} not used by the query")


# ------------------------------------------------------------------ discovery


def team_dirs(ctx):
    raw = ctx.setting("logs", "queries_dir") or ""
    parts = [p.strip() for chunk in raw.split(",") for p in chunk.split(os.pathsep)]
    return [Path(os.path.expanduser(p)) for p in parts if p]


def user_dir(ctx):
    return Path(ctx.config.dir) / "queries"


def _shipped_packages():
    from importlib.metadata import entry_points
    packages = [("logs", OWN_PACKAGE)]
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.value not in {p for _, p in packages}:
            packages.append((ep.name, ep.value))
    return packages


def _files_in_dir(folder):
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".kql" and p.is_file())


def _read(path):
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as ex:
        raise SavedQueryError(f"cannot read it: {ex}") from None


def _load(source, name, path, reader):
    try:
        text = reader()
    except SavedQueryError as ex:
        return SavedQuery(name=name, query="", source=source, path=str(path), error=str(ex))
    return parse(text, name=name, source=source, path=path)


def discover(ctx, warn=None):
    """Every saved query visible, by name (first source wins; hidden ones listed in ``overrides``)."""
    found = {}

    def add(saved):
        if not _NAME_RE.match(saved.name):
            return
        if saved.name in found:
            found[saved.name].overrides.append(saved.path)
        else:
            found[saved.name] = saved

    folders = [("user", user_dir(ctx))] + [("team", d) for d in team_dirs(ctx)]
    for source, folder in folders:
        if source == "team" and not folder.is_dir() and warn:
            warn(f"config logs.queries_dir: {folder} is not a folder")
        for path in _files_in_dir(folder):
            add(_load(source, path.stem, path, lambda path=path: _read(path)))
    from importlib import resources
    for extension, package in _shipped_packages():
        try:
            root = resources.files(package)
            entries = sorted((e for e in root.iterdir() if e.name.endswith(".kql")), key=lambda e: e.name)
        except (ImportError, OSError, TypeError) as ex:
            if warn:
                warn(f"saved queries of extension {extension!r} ({package}) cannot be read: {ex}")
            continue
        for entry in entries:
            stem = entry.name[:-len(".kql")]
            add(_load(f"shipped:{extension}", stem, entry,
                      lambda entry=entry: entry.read_text(encoding="utf-8-sig")))
    return found


def find(ctx, name, warn=None):
    found = discover(ctx, warn)
    saved = found.get(name)
    if saved is None:
        names = ", ".join(sorted(found)) or "none"
        raise NotFoundError(f"no saved query named {name!r} (known: {names})",
                            hint="see 'oncall logs saved list'")
    saved.check()
    return saved
