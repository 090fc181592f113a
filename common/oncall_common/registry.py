"""The operation registry: typed functions declared once, served by every front door.

An automation is a plain function whose first parameter is the Context::

    @operation("alerts list", examples=[("Critical alerts", "oncall alerts list severity=critical")])
    def list_alerts(ctx, matchers: Annotated[list[str], Arg(positional=True)] = None,
                    active: bool = False):
        '''List alerts.

        :param matchers: amtool-style matchers (name=value, name!=value, name=~re, name!~re).
        :param active: Only active alerts.
        '''

The decorator records an ``OperationSpec`` and returns the function unchanged. Front doors
(knack, az, a GUI) are generated from ``REGISTRY``; none of this imports a front door.
"""
from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import re
import sys
import typing
from typing import Any, Callable

ENTRY_POINT_GROUP = "oncall.extensions"


@dataclasses.dataclass
class Arg:
    """Per-parameter metadata; put it in ``Annotated[type, Arg(...)]`` or ``operation(args=...)``."""
    options: tuple = ()            # extra option strings, e.g. ("-c",); the long form is derived
    positional: bool = False
    help: str | None = None
    repeat: bool = False           # list given as a repeated option (--field a --field b)
    choices: tuple | None = None
    metavar: str | None = None
    secret: bool = False           # value is redacted everywhere once read
    required: bool | None = None
    parse: Callable | None = None  # str -> value, errors become usage errors
    hidden: bool = False


@dataclasses.dataclass
class Param:
    name: str
    type: Any                      # the base type: str, int, float, bool, an Enum, ...
    is_list: bool
    default: Any
    required: bool
    arg: Arg
    help: str

    @property
    def option(self):
        return "--" + self.name.replace("_", "-")


@dataclasses.dataclass
class Connection:
    """Arguments shared by every command that talks to one service, and the client factory."""
    name: str
    params: list
    factory: Callable
    module: str


@dataclasses.dataclass
class OperationSpec:
    name: str                      # "alerts silence add"
    func: Callable
    params: list
    summary: str
    description: str
    examples: list                 # [(title, command line starting with "oncall ")]
    mutating: bool = False
    confirm: bool = False          # destructive: ask unless --yes
    uses: tuple = ()               # connection names whose args this command takes
    table: Callable | None = None  # result -> list of flat rows for -o table
    target: Any = None             # parameter naming the audited target, or callable(kwargs, result) -> str
    extension: str | None = None

    @property
    def group(self):
        return self.name.rsplit(" ", 1)[0]

    @property
    def module(self):
        return self.func.__module__


class Registry:
    def __init__(self):
        self.operations: dict[str, OperationSpec] = {}
        self.connections: dict[str, Connection] = {}
        self.groups: dict[str, str] = {}           # group name -> help summary
        self.extensions: dict[str, dict] = {}      # name -> {"version", "module", "error"}
        self._loaded = False

    def add(self, spec):
        if spec.name in self.operations and self.operations[spec.name].func is not spec.func:
            existing = self.operations[spec.name]
            raise ValueError(f"operation {spec.name!r} declared twice ({existing.module} and {spec.module})")
        self.operations[spec.name] = spec

    def connection_params(self, spec):
        out = []
        for name in spec.uses:
            out.extend(self.connections[name].params)
        return out

    def load_extensions(self, warn=None, only=None):
        """Import the extensions named by the ``oncall.extensions`` entry points (once each).

        ``only``: a group name; when an extension of that name exists, just it and the core load
        (the command line names its group, so the others' imports are not paid for)."""
        found = _entry_points()
        if only is not None and any(ep.name == only for ep in found):
            found = [ep for ep in found if ep.name in (only, "core")]
        else:
            self._loaded = True
        for ep in found:
            if ep.name in self.extensions:
                continue
            try:
                importlib.import_module(ep.value.split(":")[0])
                self.extensions[ep.name] = {"version": ep.version, "module": ep.value, "error": None}
            except Exception as ex:  # noqa: BLE001 - one broken extension must not break the CLI
                self.extensions[ep.name] = {"version": ep.version, "module": ep.value, "error": str(ex)}
                if warn:
                    warn(f"extension {ep.name!r} failed to load: {type(ex).__name__}: {ex}")
        for spec in self.operations.values():
            if spec.extension is None:
                spec.extension = _extension_of(spec.module, self.extensions)
        return self


@dataclasses.dataclass
class EntryPoint:
    name: str
    value: str
    version: str | None


def _entry_points():
    """The ``oncall.extensions`` entry points on sys.path (first distribution of a name wins).

    A direct scan of ``*.dist-info/entry_points.txt``: importlib.metadata costs ~30 ms to import
    and more to walk every distribution, on every command."""
    import os
    import re as _re
    seen_dists, points = set(), {}
    for base in sys.path:
        try:
            entries = os.scandir(base or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if not (name.endswith(".dist-info") or name.endswith(".egg-info")):
                    continue
                stem = name.rsplit(".", 1)[0]
                dist, _, version = stem.partition("-")
                key = _re.sub(r"[-_.]+", "-", dist).lower()
                if key in seen_dists:
                    continue
                seen_dists.add(key)
                try:
                    with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as fh:
                        text = fh.read()
                except OSError:
                    continue
                for ep_name, value in _parse_group(text, ENTRY_POINT_GROUP):
                    points.setdefault(ep_name, EntryPoint(ep_name, value, version.split("-")[0] or None))
    return sorted(points.values(), key=lambda ep: (ep.name != "core", ep.name))


def _parse_group(text, group):
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]").strip()
            continue
        if current == group and "=" in line:
            name, value = line.split("=", 1)
            yield name.strip(), value.strip()


def _extension_of(module, extensions):
    for name, info in extensions.items():
        if module == info["module"] or module.startswith(info["module"].split(":")[0].rsplit(".", 1)[0] + "."):
            return name
    return None


REGISTRY = Registry()


def group(name, summary):
    """Give a command group its one-line help."""
    REGISTRY.groups[name] = summary


def operation(name, *, examples=(), mutating=False, confirm=False, uses=(), table=None,
              target=None, args=None, registry=None):
    """Declare ``func`` as the command ``name``; returns ``func`` unchanged."""
    uses = (uses,) if isinstance(uses, str) else tuple(uses)

    def decorate(func):
        summary, description, param_help = parse_docstring(func.__doc__)
        params = params_from_signature(func, param_help, args or {}, skip_first=True)
        spec = OperationSpec(name=" ".join(name.split()), func=func, params=params, summary=summary,
                             description=description, examples=list(examples), mutating=mutating,
                             confirm=confirm, uses=uses, table=table, target=target)
        (registry or REGISTRY).add(spec)
        func.__oncall_operation__ = spec
        return func
    return decorate


def connection(name, *, args=None, registry=None):
    """Declare a client factory ``factory(ctx, **values)`` whose parameters every user command takes."""
    def decorate(func):
        _, _, param_help = parse_docstring(func.__doc__)
        params = params_from_signature(func, param_help, args or {}, skip_first=True)
        (registry or REGISTRY).connections[name] = Connection(name, params, func, func.__module__)
        return func
    return decorate


_PARAM_RE = re.compile(r"^\s*:param\s+(?:[\w\[\], ]+\s+)?(\w+):\s*(.*)$")


def parse_docstring(doc):
    """(summary, description, {param: help}) from a Sphinx-style docstring."""
    if not doc:
        return "", "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary = lines[0].strip() if lines else ""
    body, params, current = [], {}, None
    for line in lines[1:]:
        m = _PARAM_RE.match(line)
        if m:
            current = m.group(1)
            params[current] = m.group(2).strip()
        elif current and line.startswith((" ", "\t")) and line.strip():
            params[current] += " " + line.strip()
        elif line.strip().startswith(":"):
            current = None
        else:
            current = None
            body.append(line)
    return summary, "\n".join(body).strip(), params


def _unwrap(annotation):
    """(base type, is_list, Arg or None) from an annotation."""
    arg = None
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        arg = next((e for e in extras if isinstance(e, Arg)), None)
        annotation = base
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (sys.version_info >= (3, 10) and origin is __import__("types").UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = members[0] if len(members) == 1 else str
        origin = typing.get_origin(annotation)
    if origin in (list, tuple, typing.List, typing.Sequence) or annotation in (list, tuple):
        inner = typing.get_args(annotation)
        return (inner[0] if inner else str), True, arg
    return annotation, False, arg


def params_from_signature(func, param_help, overrides, skip_first=True):
    hints = typing.get_type_hints(func, include_extras=True)
    sig = inspect.signature(func)
    params = []
    for index, p in enumerate(sig.parameters.values()):
        if skip_first and index == 0:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        base, is_list, arg = _unwrap(hints.get(p.name, str))
        arg = overrides.get(p.name) or arg or Arg()
        if base is inspect.Parameter.empty or base is typing.Any:
            base = str
        default = None if p.default is p.empty else p.default
        required = arg.required if arg.required is not None else p.default is p.empty
        params.append(Param(name=p.name, type=base, is_list=is_list, default=default, required=required,
                            arg=arg, help=arg.help or param_help.get(p.name, "")))
    return params


def is_enum(tp):
    return isinstance(tp, type) and issubclass(tp, enum.Enum)
