"""Swagger 2.0 request/response checking for the test simulators.

Every simulator checks the requests it receives and the responses it sends against
the vendor's own published Swagger 2.0 document (see ../shared/specs/README.md).
A request the real service would reject raises ``SpecViolation``.

Deliberate departures from the spec are opt-in through ``relax`` (see ``RELAXATIONS``):
each simulator names the ones it needs, and each one says why it exists.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = ["SpecViolation", "Operation", "Swagger2Spec", "RELAXATIONS"]

# Named relaxations a simulator may opt into, and why each may be needed.
RELAXATIONS = {
    "api_version_in_accept": "azure-devops SDK sends api-version as a parameter of the Accept "
    "header (application/json;api-version=7.1-preview.3), never in the query the spec declares",
    "wrapped_lists": "Azure DevOps sends list responses as {count, value:[...]} while the spec "
    "declares a bare array; validate `value` against the array schema",
    "skip_params": "set of parameter names whose values are not type-checked (presence of "
    "required ones is still enforced), for parameters whose declared type clients ignore",
    "param_overrides": "dict name -> partial Swagger parameter (type, items, collectionFormat, "
    "pattern...) replacing the declared fields, e.g. Kubernetes `ports` declared integer but "
    "sent repeated; collectionFormat 'multi+csv' (simulator-only) = repeated and/or comma-joined",
    "param_patterns": "dict name -> regex or None: replace/drop a parameter's `pattern` (Blob's "
    "`blob` pattern rejects real blob names with '-', '_' or several dots)",
    "enum_case_insensitive": "True or a set of parameter names whose enum is matched ignoring "
    "case (Azure DevOps $expand enums are lower case, callers send Relations/All)",
    "trailing_slash": "a request path matches a template that differs only by a trailing slash "
    "(Kubernetes declares /api/, /apis/, /version/; clients call /api, /apis, /version)",
    "slash_params": "set of path parameter names that may contain '/', beyond those marked "
    "x-ms-skip-url-encoding (Kubernetes services/{name}/proxy/{path} carries a sub-path)",
    "check_formats": "False to stop checking date-time/uuid/int32/int64 formats",
    "check_content_type": "False to stop checking request Content-Type against `consumes`",
    "reject_unknown_query": "True to reject query parameters the operation does not declare",
    "optional_params": "set of parameter names whose `required: true` is waived",
    "untyped_objects": "a bare {type: object} (no properties/additionalProperties) accepts any "
    "JSON value: Azure DevOps writes .NET System.Object/JToken that way (work item field values, "
    "JsonPatchOperation.value), and the wire carries strings and numbers there",
}

_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
_SEPARATORS = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_PARAM_SCHEMA_KEYS = (
    "type", "format", "enum", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems",
    "multipleOf",
)


class SpecViolation(AssertionError):
    """A request or response the vendor's spec does not allow."""


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("date-time")
    def _dt(value):
        return not isinstance(value, str) or bool(_DATETIME_RE.match(value))

    @checker.checks("uuid")
    def _uuid(value):
        return not isinstance(value, str) or bool(_UUID_RE.match(value))

    @checker.checks("int32")
    def _i32(value):
        return not isinstance(value, int) or -(2**31) <= value < 2**31

    @checker.checks("int64")
    def _i64(value):
        return not isinstance(value, int) or -(2**63) <= value < 2**63

    return checker


_FORMATS = _format_checker()


def _media_base(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _is_json_media(value: str | None) -> bool:
    base = _media_base(value)
    return base.endswith("json") or "json" in base.split("/")[-1]


# --------------------------------------------------------------------------- documents


def _prepare(node: Any, uri: str, untyped_objects: bool = False) -> Any:
    """Copy a Swagger document, turning Swagger-only schema keywords into draft-4 ones.

    Local `$ref`s become absolute (``<uri>#/definitions/x``) so that any fragment of the
    document can be handed to a validator on its own.
    """
    if isinstance(node, list):
        return [_prepare(v, uri, untyped_objects) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _prepare(v, uri, untyped_objects) for k, v in node.items() if k != "x-ms-examples"}
    if untyped_objects and out.get("type") == "object" and not (
            {"properties", "additionalProperties", "allOf", "$ref"} & set(out)):
        out.pop("type")
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#"):
        out["$ref"] = uri + out["$ref"]
    if out.get("format") == "int-or-string" or out.get("x-kubernetes-int-or-string") is True:
        out.pop("type", None)
        out.pop("format", None)
        out["anyOf"] = [{"type": "string"}, {"type": "integer"}]
    if out.get("type") == "object" and any(isinstance(a, dict) and a.get("type") == "array"
                                           for a in out.get("allOf", ())):
        # Azure DevOps writes .NET "class X : List<T>" as type object + allOf [array]
        # (JsonPatchDocument); nothing can be both, and the wire value is the array.
        out.pop("type")
        out.pop("properties", None)
    if out.get("type") == "file":  # Swagger 2.0 only; any payload
        out.pop("type")
    if out.get("x-nullable") is True:
        if "$ref" in out:
            ref = out.pop("$ref")
            out = {"anyOf": [{"$ref": ref}, {"type": "null"}], **{k: v for k, v in out.items()}}
        elif isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = out["enum"] + [None]
    return out


_doc_counter = itertools.count()


class _Doc:
    """One loaded, prepared Swagger document with its compiled-validator cache."""

    def __init__(self, path: str, untyped_objects: bool = False):
        self.path = path
        with open(path, encoding="utf-8-sig") as fh:
            text = fh.read()
        raw = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        if raw.get("swagger") != "2.0":
            raise ValueError(f"{path} is not a Swagger 2.0 document")
        self.uri = f"urn:swagger-doc:{next(_doc_counter)}"
        self.doc = _prepare(raw, self.uri, untyped_objects)
        self.registry = Registry().with_resource(
            self.uri, Resource(contents=self.doc, specification=DRAFT4)
        )
        self._validators: dict[tuple, Draft4Validator] = {}
        self._lock = threading.Lock()

    def resolve(self, node: Any) -> Any:
        """Follow local `$ref`s (``#/parameters/x``, ``#/responses/y``) to their target."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            ref = node["$ref"]
            if ref.startswith(self.uri):
                ref = ref[len(self.uri):]
            if not ref.startswith("#/"):
                raise ValueError(f"{self.path}: external $ref {ref!r} is not supported")
            target: Any = self.doc
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
            seen += 1
            if seen > 50:
                raise ValueError(f"$ref loop at {ref}")
        return node

    def validator(self, schema: dict, check_formats: bool) -> Draft4Validator:
        key = (id(schema), check_formats)
        found = self._validators.get(key)
        if found is None:
            validator = Draft4Validator(schema, registry=self.registry,
                                        format_checker=_FORMATS if check_formats else None)
            with self._lock:
                # keep `schema` alive beside its validator so its id() is never reused
                found = self._validators.setdefault(key, (schema, validator))
        return found[1]


_DOCS: dict[tuple[str, bool], _Doc] = {}
_DOCS_LOCK = threading.Lock()


def _load(path: str | os.PathLike, untyped_objects: bool = False) -> _Doc:
    real = os.path.realpath(os.fspath(path))
    with _DOCS_LOCK:
        doc = _DOCS.get((real, untyped_objects))
        if doc is None:
            doc = _DOCS[(real, untyped_objects)] = _Doc(real, untyped_objects)
        return doc


# --------------------------------------------------------------------------- operations


@dataclass
class Operation:
    """One operation matched by method and path."""

    method: str
    path_template: str
    operation_id: str
    spec: dict
    path_params: dict[str, str]
    params: dict[str, Any] = field(default_factory=dict)  # coerced values, filled by validation
    _route: "_Route | None" = field(default=None, repr=False)

    @property
    def doc(self) -> dict:
        return self._route.doc.doc if self._route else {}


@dataclass
class _Route:
    doc: _Doc
    template: str  # as written in the spec, query part included for x-ms-paths
    method: str
    op: dict
    parameters: list[dict]  # resolved, path-level merged with operation-level
    regex: re.Pattern
    literal_score: int
    query_must: dict[str, str | None]  # x-ms-paths discriminators: name -> exact value or None
    greedy: int
    param_names: list[str]

    @property
    def operation_id(self) -> str:
        return self.op.get("operationId") or f"{self.method} {self.template}"

    def consumes(self) -> list[str]:
        return self.op.get("consumes") or self.doc.doc.get("consumes") or []

    def produces(self) -> list[str]:
        return self.op.get("produces") or self.doc.doc.get("produces") or []


class Swagger2Spec:
    """Matches requests to the operations of one or more Swagger 2.0 documents and checks them."""

    def __init__(self, path_or_paths, *, case_insensitive: bool = False, base_path: str | None = None,
                 relax: Mapping[str, Any] | None = None):
        paths = [path_or_paths] if isinstance(path_or_paths, (str, os.PathLike)) else list(path_or_paths)
        self.case_insensitive = case_insensitive
        self.relax = dict(relax or {})
        unknown = set(self.relax) - set(RELAXATIONS)
        if unknown:
            raise ValueError(f"unknown relaxations {sorted(unknown)}; known: {sorted(RELAXATIONS)}")
        self.docs = [_load(p, bool(self.relax.get("untyped_objects"))) for p in paths]
        self.base_path_override = base_path
        self._routes: list[_Route] = []
        for doc in self.docs:
            prefix = self._normalise_base(base_path if base_path is not None else doc.doc.get("basePath", ""))
            for section in ("paths", "x-ms-paths"):
                for template, item in (doc.doc.get(section) or {}).items():
                    self._add_routes(doc, prefix, template, item)

    # ---------------------------------------------------------------- building routes

    @staticmethod
    def _normalise_base(base: str | None) -> str:
        base = re.sub(r"/{2,}", "/", "/" + (base or "").strip("/"))
        return "" if base == "/" else base

    def _add_routes(self, doc: _Doc, prefix: str, template: str, item: dict) -> None:
        item = doc.resolve(item)
        path_part, _, query_part = template.partition("?")
        query_must: dict[str, str | None] = {}
        bare: list[str] = []
        for piece in filter(None, query_part.split("&")):
            name, eq, value = piece.partition("=")
            if not eq:
                bare.append(name)
            elif re.fullmatch(r"\{[^}]+\}", value):
                query_must[name] = None
            else:
                query_must[name] = urllib.parse.unquote(value)
        common = [doc.resolve(p) for p in item.get("parameters", [])]
        slash_params = set(self.relax.get("slash_params", ()))
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            merged: dict[tuple, dict] = {(p["name"], p["in"]): p for p in common}
            for p in op.get("parameters", []):
                p = doc.resolve(p)
                merged[(p["name"], p["in"])] = p
            params = list(merged.values())
            declared_query = {p["name"] for p in params if p["in"] == "query"}
            must = dict(query_must)
            # A bare x-ms-paths name is a real requirement only when it is a declared query
            # parameter; otherwise ("flat", "hierarchy", "disambiguation_dummy") it only
            # keeps the JSON keys unique and clients never send it.
            for name in bare:
                if name in declared_query:
                    must[name] = None
            greedy_names = {p["name"] for p in params if p["in"] == "path"
                            and (p.get("x-ms-skip-url-encoding") or p["name"] in slash_params)}
            regex, literal, greedy, names = self._compile(prefix + path_part, greedy_names)
            self._routes.append(_Route(doc, template, method.upper(), op, params, regex,
                                       literal, must, greedy, names))

    def _compile(self, template: str, greedy_names: set[str]):
        template = re.sub(r"/{2,}", "/", template)
        trailing = self.relax.get("trailing_slash")
        if trailing and len(template) > 1:
            template = template.rstrip("/")
        pattern, literal, greedy, names = "", 0, 0, []
        for piece in re.split(r"(\{[^}]+\})", template):
            if piece.startswith("{") and piece.endswith("}"):
                name = piece[1:-1]
                group = f"p{len(names)}"
                names.append(name)
                if name in greedy_names:
                    pattern += f"(?P<{group}>.+)"
                    greedy += 1
                else:
                    pattern += f"(?P<{group}>[^/]+)"
            else:
                pattern += re.escape(piece)
                literal += len([s for s in piece.split("/") if s])
        if trailing:
            pattern += "/?"
        flags = re.IGNORECASE if self.case_insensitive else 0
        regex = re.compile(f"^{pattern}$", flags)
        return regex, literal, greedy, names

    # ---------------------------------------------------------------- matching

    def match(self, method: str, path: str, query: Mapping[str, list[str]] | None = None) -> Operation:
        method = method.upper()
        query = query or {}
        raw_path = path.split("?", 1)[0]
        candidates = []
        path_matched = False
        for route in self._routes:
            m = route.regex.match(raw_path)
            if not m:
                continue
            path_matched = True
            if route.method != method:
                continue
            ok = True
            for name, value in route.query_must.items():
                got = query.get(name)
                if not got or (value is not None and value not in got):
                    ok = False
                    break
            if not ok:
                continue
            required_q = [p["name"] for p in route.parameters if p["in"] == "query" and p.get("required")]
            satisfied = sum(1 for n in required_q if n in query)
            missing = len(required_q) - satisfied
            score = (route.literal_score, len(route.query_must), -missing, satisfied, -route.greedy)
            candidates.append((score, route, m))
        if not candidates:
            why = "method not allowed" if path_matched else "no operation"
            raise SpecViolation(f"{why} for {method} {raw_path}")
        candidates.sort(key=lambda c: c[0], reverse=True)
        _, route, m = candidates[0]
        names = route.param_names
        path_params = {n: urllib.parse.unquote(m.group(f"p{i}")) for i, n in enumerate(names)}
        return Operation(method, route.template, route.operation_id, route.op, path_params, _route=route)

    # ---------------------------------------------------------------- requests

    def validate_request(self, method: str, path: str, query: Mapping[str, list[str]] | None,
                         headers: Mapping[str, str] | None, body: bytes | None) -> Operation:
        query = {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in (query or {}).items()}
        op = self.match(method, path, query)
        route = op._route
        assert route is not None
        lower_headers = {k.lower(): v for k, v in (headers or {}).items()}
        oid = route.operation_id
        optional = set(self.relax.get("optional_params", ()))
        if self.relax.get("api_version_in_accept") and "api-version" not in query:
            m = re.search(r"api-version=([^;,\s]+)", lower_headers.get("accept", ""), re.I)
            if m:
                query["api-version"] = [m.group(1)]
        form = None
        declared_query = set()
        for p in route.parameters:
            where, name = p["in"], p["name"]
            required = p.get("required", False) and name not in optional
            if where == "body":
                op.params[name] = self._check_body(route, p, required, lower_headers, body)
                continue
            if where == "path":
                raw = [op.path_params.get(name)] if op.path_params.get(name) is not None else []
            elif where == "query":
                declared_query.add(name)
                raw = query.get(name, [])
            elif where == "header":
                value = lower_headers.get(name.lower())
                raw = [] if value is None else [value]
            elif where == "formData":
                if form is None:
                    form = urllib.parse.parse_qs((body or b"").decode("utf-8", "replace"),
                                                 keep_blank_values=True)
                raw = form.get(name, [])
            else:
                continue
            if not raw:
                if required:
                    raise SpecViolation(f"{oid}: missing required {where} parameter {name!r}")
                continue
            op.params[name] = self._check_param(route.doc, oid, p, raw)
        if self.relax.get("reject_unknown_query"):
            extra = sorted(set(query) - declared_query - set(route.query_must))
            if extra:
                raise SpecViolation(f"{oid}: undeclared query parameter(s) {extra}")
        return op

    def _param_def(self, p: dict) -> dict:
        name = p["name"]
        overrides = self.relax.get("param_overrides", {}).get(name)
        if overrides:
            p = {**p, **overrides}
        patterns = self.relax.get("param_patterns", {})
        if name in patterns:
            p = dict(p)
            if patterns[name] is None:
                p.pop("pattern", None)
            else:
                p["pattern"] = patterns[name]
        return p

    def _check_param(self, doc: _Doc, oid: str, p: dict, raw: list[str]) -> Any:
        name, where = p["name"], p["in"]
        if name in set(self.relax.get("skip_params", ())):
            return raw if len(raw) > 1 else raw[0]
        p = self._param_def(p)
        what = f"{oid}: {where} parameter {name!r}"
        if p.get("type") == "array":
            fmt = p.get("collectionFormat", "csv")
            if fmt == "multi":
                items = raw
            elif fmt == "multi+csv":
                items = [x for v in raw for x in v.split(",")]
            else:
                if len(raw) > 1:
                    raise SpecViolation(f"{what} given {len(raw)} times but collectionFormat is {fmt}")
                items = raw[0].split(_SEPARATORS.get(fmt, ",")) if raw[0] != "" else []
            item_def = p.get("items", {"type": "string"})
            value = [self._coerce(what, item_def, v) for v in items]
        else:
            if len(raw) > 1:
                raise SpecViolation(f"{what} given {len(raw)} times but is not an array")
            value = self._coerce(what, p, raw[0])
        schema = self._param_schema(p)
        self._validate(doc, schema, value, what)
        return value

    def _param_schema(self, p: dict) -> dict:
        cache = getattr(self, "_param_schemas", None)
        if cache is None:
            cache = self._param_schemas = {}
        key = json.dumps({k: p.get(k) for k in (*_PARAM_SCHEMA_KEYS, "items", "name")}, sort_keys=True,
                         default=str)
        schema = cache.get(key)
        if schema is None:
            schema = {k: p[k] for k in _PARAM_SCHEMA_KEYS if k in p}
            if "items" in p:
                schema["items"] = self._param_schema(p["items"]) if "$ref" not in p["items"] else p["items"]
            if schema.get("type") == "file":
                schema.pop("type")
            if "enum" in schema and self._enum_ci(p.get("name")):
                schema["enum"] = [e.lower() if isinstance(e, str) else e for e in schema["enum"]]
            cache[key] = schema
        return schema

    def _enum_ci(self, name: str | None) -> bool:
        setting = self.relax.get("enum_case_insensitive")
        return setting is True or (bool(setting) and name in setting)

    def _coerce(self, what: str, p: dict, value: str) -> Any:
        kind = p.get("type", "string")
        if kind == "integer":
            if not _INT_RE.match(value.strip()):
                raise SpecViolation(f"{what}: {value!r} is not an integer")
            return int(value)
        if kind == "number":
            if not _NUM_RE.match(value.strip()):
                raise SpecViolation(f"{what}: {value!r} is not a number")
            return float(value)
        if kind == "boolean":
            low = value.strip().lower()
            if low not in ("true", "false"):
                raise SpecViolation(f"{what}: {value!r} is not a boolean")
            return low == "true"
        if p.get("enum") and self._enum_ci(p.get("name")):
            return value.lower()
        return value

    def _check_body(self, route: _Route, p: dict, required: bool, headers: dict, body: bytes | None):
        oid = route.operation_id
        if not body:
            if required:
                raise SpecViolation(f"{oid}: missing required request body")
            return None
        ctype = headers.get("content-type")
        consumes = route.consumes()
        if (ctype and consumes and self.relax.get("check_content_type", True)
                and "*/*" not in consumes
                and _media_base(ctype) not in {_media_base(c) for c in consumes}):
            raise SpecViolation(f"{oid}: request Content-Type {ctype!r} not in consumes {consumes}")
        json_body = _is_json_media(ctype) if ctype else any(_is_json_media(c) for c in consumes) or not consumes
        if not json_body:
            return body
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise SpecViolation(f"{oid}: request body is not valid JSON: {exc}") from None
        schema = p.get("schema")
        if schema is not None:
            self._validate(route.doc, schema, value, f"{oid}: request body")
        return value

    # ---------------------------------------------------------------- responses

    def validate_response(self, op: Operation, status: int, headers: Mapping[str, str] | None,
                          body: bytes | None, content_type: str | None = None) -> None:
        route = op._route
        assert route is not None
        oid = route.operation_id
        responses = route.op.get("responses", {})
        resp = responses.get(str(status), responses.get("default"))
        if resp is None:
            raise SpecViolation(f"{oid}: response status {status} not declared "
                                f"(declared: {sorted(responses)})")
        resp = route.doc.resolve(resp)
        if content_type is None:
            content_type = {k.lower(): v for k, v in (headers or {}).items()}.get("content-type")
        produces = route.produces()
        if body and content_type and produces and "*/*" not in produces:
            bases = {_media_base(c) for c in produces}
            if content_type.lower().replace(" ", "") not in {c.lower().replace(" ", "") for c in produces} \
                    and _media_base(content_type) not in bases:
                raise SpecViolation(f"{oid}: response Content-Type {content_type!r} not in produces {produces}")
        schema = resp.get("schema")
        if schema is None or body is None:
            return
        is_json = _is_json_media(content_type) if content_type else any(_is_json_media(c) for c in produces)
        if not is_json:
            return
        if not body:
            raise SpecViolation(f"{oid}: response {status} has an empty body but declares a schema")
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise SpecViolation(f"{oid}: response {status} body is not valid JSON: {exc}") from None
        if self.relax.get("wrapped_lists") and isinstance(value, dict) and "value" in value:
            target = route.doc.resolve(schema)
            if target.get("type") == "array":
                if not isinstance(value.get("count"), int):
                    raise SpecViolation(f"{oid}: wrapped list response lacks an integer 'count'")
                value = value["value"]
        self._validate(route.doc, schema, value, f"{oid}: response {status} body")

    # ---------------------------------------------------------------- schemas

    def validate_instance(self, schema_or_ref: dict | str, instance: Any, what: str = "instance",
                          doc_index: int = 0) -> None:
        """Check any value against a schema or a ref such as '#/definitions/io.k8s...Pod'."""
        doc = self.docs[doc_index]
        if isinstance(schema_or_ref, str) and schema_or_ref.startswith("#"):
            schema_or_ref = doc.uri + schema_or_ref
        schema = {"$ref": schema_or_ref} if isinstance(schema_or_ref, str) else schema_or_ref
        cache = getattr(self, "_ref_schemas", None)
        if cache is None:
            cache = self._ref_schemas = {}
        if isinstance(schema_or_ref, str):
            schema = cache.setdefault(schema_or_ref, schema)
        self._validate(doc, schema, instance, what)

    def _validate(self, doc: _Doc, schema: dict, value: Any, what: str) -> None:
        validator = doc.validator(schema, self.relax.get("check_formats", True))
        error = best_match(validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(x) for x in error.absolute_path)
            message = error.message if len(error.message) < 300 else error.message[:300] + "..."
            raise SpecViolation(f"{what}{' at ' + where if where else ''}: {message}")

    def operations(self) -> Iterable[tuple[str, str, str]]:
        """(method, template, operationId) of every known operation."""
        for r in self._routes:
            yield r.method, r.template, r.operation_id
