"""Azure Monitor Log Analytics query API simulator (data plane, ``/v1``).

Serves what ``azure-monitor-query`` 2.0.0 calls, over TLS with a test CA:

- ``POST /v1/workspaces/{workspaceId}/query`` (``query_workspace``; with
  ``additional_workspaces`` the extra workspaces ride in the body's
  ``workspaces`` list, same endpoint),
- ``POST /v1/$batch`` (``query_batch``),
- ``POST /v1/{resourceId}/query`` (``query_resource``), and the GET forms.

Every request and response is checked against the vendor's Swagger
(``shared/specs/azure-log-analytics/OperationalInsights-2022-10-27.json``).
Tests register answers keyed by the final query text; there is no KQL engine.

Pointing the SDK at it (what :meth:`LogAnalyticsSim.client` does)::

    LogsQueryClient(sim.credential(), endpoint=sim.url,             # or sim.url + "/v1"
                    audience="https://api.loganalytics.io",         # keeps the real token scope
                    connection_verify=sim.ca_file)                  # trust the test CA

A process that cannot take those keyword arguments (the real CLI in a
subprocess) trusts the CA through ``REQUESTS_CA_BUNDLE=sim.ca_file``: requests
uses it whenever azure-core leaves ``verify`` at True. Without TLS the SDK
refuses to send a bearer token, and we do not weaken the client for that.

Relaxations, each because the official SDK does it and the live service takes it:

- ``untyped_objects``: the spec types every table cell as ``{type: object}``;
  the service sends strings, numbers, booleans and nulls there.
- null optional body fields (done here, see ``NULLABLE_BODY_FIELDS``): the SDK
  serialises unset ``timespan`` and ``workspaces`` as JSON ``null`` on every
  call, in single and batch bodies; the spec types them string and array.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from simulators.base import Fault, Request, Response, SimServer
from simulators.swagger import Swagger2Spec

__all__ = [
    "LogAnalyticsSim",
    "StaticTokenCredential",
    "QueryCall",
    "service_error",
    "partial_error",
    "SPEC_PATH",
    "LOGS_SCOPE",
    "NULLABLE_BODY_FIELDS",
]

_SPECS_DIR = Path(os.environ.get("ONCALL_SPECS_DIR") or Path(__file__).resolve().parents[2] / ".." / "shared" / "specs")
SPEC_PATH = _SPECS_DIR / "azure-log-analytics" / "OperationalInsights-2022-10-27.json"
LOGS_AUDIENCE = "https://api.loganalytics.io"
LOGS_SCOPE = LOGS_AUDIENCE + "/.default"

#: queryBody fields the SDK sends as JSON null when unset (the live service reads null as absent)
NULLABLE_BODY_FIELDS = ("timespan", "workspaces")

COLUMN_TYPES = ("bool", "datetime", "dynamic", "int", "long", "real", "string", "guid", "decimal", "timespan")

_ERROR_CODES = {
    400: "BadArgumentError", 401: "AuthorizationRequiredError", 403: "InsufficientAccessError",
    404: "PathNotFoundError", 409: "ConflictError", 429: "ThrottledError", 500: "InternalServerError",
    502: "BadGatewayError", 503: "ServiceUnavailableError", 504: "GatewayTimeoutError",
}
_ERROR_MESSAGES = {
    400: "The request had some invalid properties",
    401: "Valid authentication was not provided",
    403: "The provided credentials have insufficient access to perform the requested operation",
    404: "The requested path does not exist",
    429: "Too many requests were sent; retry after the period given in Retry-After",
    500: "An internal error occurred while processing the request",
    503: "The service is temporarily unavailable",
}


# ----------------------------------------------------------------------- credential


class StaticTokenCredential:
    """An ``azure.core.credentials.TokenCredential`` (and ``SupportsTokenInfo``) that
    hands out one fixed bearer token, valid for ten years.

    ``scopes`` (optional) are the only scopes it will issue a token for, so a test
    also proves the client asks for the right audience. ``requested`` records the
    scopes of every call.
    """

    def __init__(self, token: str, *, scopes: Iterable[str] | None = None, lifetime: int = 10 * 365 * 86400):
        self.token = token
        self.expires_on = int(time.time()) + lifetime
        self.allowed_scopes = tuple(scopes) if scopes is not None else None
        self.requested: list[tuple[str, ...]] = []

    def _check(self, scopes: tuple[str, ...]) -> None:
        self.requested.append(scopes)
        if self.allowed_scopes is not None and not set(scopes) <= set(self.allowed_scopes):
            from azure.core.exceptions import ClientAuthenticationError

            raise ClientAuthenticationError(
                message=f"StaticTokenCredential issues tokens for {self.allowed_scopes}, not {scopes}")

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any):
        from azure.core.credentials import AccessToken

        self._check(scopes)
        return AccessToken(self.token, self.expires_on)

    def get_token_info(self, *scopes: str, options: Mapping[str, Any] | None = None):
        from azure.core.credentials import AccessTokenInfo

        self._check(scopes)
        return AccessTokenInfo(self.token, self.expires_on)

    def close(self) -> None:
        pass

    def __enter__(self) -> "StaticTokenCredential":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------- error bodies


def service_error(status: int = 400, code: str | None = None, message: str | None = None,
                  innererror: Mapping[str, Any] | None = None, details: Sequence[Mapping] | None = None) -> dict:
    """An error body shaped like the service's: ``{"error": {code, message, correlationId, ...}}``."""
    error: dict[str, Any] = {
        "code": code or _ERROR_CODES.get(status, "InternalServerError" if status >= 500 else "BadArgumentError"),
        "message": message or _ERROR_MESSAGES.get(status, "The request failed"),
        "correlationId": str(uuid.uuid4()),
    }
    if innererror:
        error["innererror"] = dict(innererror)
    if details:
        error["details"] = [dict(d) for d in details]
    return {"error": error}


def semantic_error(message: str, code: str = "SEM0100") -> dict:
    """The 400 body for a query the service can parse but not resolve."""
    return service_error(400, innererror={
        "code": "SemanticError", "message": "A semantic error occurred.",
        "innererror": {"code": code, "message": message},
    })


def syntax_error(message: str = "Query could not be parsed", line: int = 1, pos: int = 1, token: str = "") -> dict:
    """The 400 body for a query the service cannot parse."""
    return service_error(400, innererror={
        "code": "SyntaxError", "message": "A recognition error occurred in the query.",
        "innererror": {"code": "SYN0002", "message": f"{message} at '{token}' on line [{line},{pos}]",
                       "line": line, "pos": pos, "token": token},
    })


def partial_error(message: str = "Partial query failure: Low memory condition (E_LOW_MEMORY_CONDITION)") -> dict:
    """The ``error`` member of a 200 answer that carries partial data."""
    return {
        "code": "PartialError",
        "message": "There were some errors when processing your query.",
        "details": [{
            "code": "EngineError",
            "message": "Something went wrong processing your query on the server.",
            "innererror": {"code": "-2133196797", "message": message, "severity": 2, "severityName": "Error"},
        }],
    }


# ------------------------------------------------------------------------ tables


def _format_timespan(value: timedelta) -> str:
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{value.days}.{hours:02d}:{minutes:02d}:{seconds:02d}" if value.days else \
        f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    if value.microseconds:
        text += f".{value.microseconds:06d}0"
    return text


def _format_datetime(value: datetime | date) -> str:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{value.microsecond:06d}0Z" if value.microsecond else "Z")


def _wire_cell(kind: str, value: Any, where: str) -> Any:
    """A Python value as the service puts it on the wire for a column of ``kind``."""
    if value is None:
        return None
    if kind == "datetime":
        return _format_datetime(value) if isinstance(value, (datetime, date)) else str(value)
    if kind == "timespan":
        return _format_timespan(value) if isinstance(value, timedelta) else str(value)
    if kind == "guid":
        return str(value)
    if kind == "dynamic":  # the service sends dynamic cells as JSON text
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if kind == "decimal":
        return str(value)
    if kind == "real":
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            number = float(value)
            if math.isnan(number):
                return "NaN"
            if math.isinf(number):
                return "Infinity" if number > 0 else "-Infinity"
            return number
        raise ValueError(f"{where}: real cell needs a number, got {value!r}")
    if kind in ("int", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: {kind} cell needs an int, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where}: bool cell needs a bool, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{where}: string cell needs a str, got {value!r}")
    return value


def _wire_table(table: Mapping[str, Any], index: int) -> dict:
    where = f"table {index} ({table.get('name', '?')})"
    name = table.get("name", "PrimaryResult" if index == 0 else f"Table_{index}")
    columns = []
    for column in table.get("columns", []):
        if isinstance(column, str):  # "name:type" shorthand
            column_name, _, kind = column.partition(":")
            column = {"name": column_name, "type": kind or "string"}
        if column.get("type") not in COLUMN_TYPES:
            raise ValueError(f"{where}: column {column.get('name')!r} has type {column.get('type')!r}; "
                             f"expected one of {COLUMN_TYPES}")
        columns.append({"name": column["name"], "type": column["type"]})
    rows = []
    for r, row in enumerate(table.get("rows", [])):
        if len(row) != len(columns):
            raise ValueError(f"{where}: row {r} has {len(row)} cells for {len(columns)} columns")
        rows.append([_wire_cell(c["type"], v, f"{where} row {r} column {c['name']!r}") for c, v in zip(columns, row)])
    return {"name": name, "columns": columns, "rows": rows}


# ------------------------------------------------------------------------ registry


@dataclass
class QueryCall:
    """One query the simulator received (batch items count one each)."""

    workspace: str  # primary workspace id, or the resource id for resource queries
    query: str
    timespan: str | None
    workspaces: list[str] | None
    prefer: str
    batch_id: str | None = None
    resource: bool = False


@dataclass
class _Answer:
    match: Callable[[str], bool]
    description: str
    workspace: str | None
    tables: list[dict]
    error: dict | None
    status: int
    body: dict | None  # a whole error body for failing answers
    statistics: dict | None
    render: dict | None
    hits: int = 0
    times: int | None = None


_DURATION_RE = re.compile(r"P(?=\d|T\d)(\d+(\.\d+)?Y)?(\d+(\.\d+)?M)?(\d+(\.\d+)?W)?(\d+(\.\d+)?D)?"
                          r"(T(?=\d)(\d+(\.\d+)?H)?(\d+(\.\d+)?M)?(\d+(\.\d+)?S)?)?\Z")
_INSTANT_RE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?\Z")


def _valid_timespan(text: str) -> bool:
    parts = text.split("/")
    if len(parts) == 1:
        return bool(_DURATION_RE.match(parts[0]))
    if len(parts) != 2:
        return False
    a, b = parts
    kinds = (bool(_INSTANT_RE.match(a)), bool(_DURATION_RE.match(a)), bool(_INSTANT_RE.match(b)),
             bool(_DURATION_RE.match(b)))
    return (kinds[0] and (kinds[2] or kinds[3])) or (kinds[1] and kinds[2])


class _LogAnalyticsSpec(Swagger2Spec):
    """The vendor spec, reading the SDK's ``null`` optional body fields as absent."""

    def validate_request(self, method, path, query, headers, body):
        return super().validate_request(method, path, query, headers, _drop_sdk_nulls(body))


def _drop_sdk_nulls(body: bytes | None) -> bytes | None:
    if not body:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body

    def clean(query_body: Any) -> None:
        if isinstance(query_body, dict):
            for key in NULLABLE_BODY_FIELDS:
                if key in query_body and query_body[key] is None:
                    del query_body[key]

    if isinstance(data, dict):
        clean(data)
        for item in data.get("requests") or []:
            if isinstance(item, dict):
                clean(item.get("body"))
    return json.dumps(data).encode()


_SPEC: list[_LogAnalyticsSpec] = []
_SPEC_LOCK = threading.Lock()


def log_analytics_spec() -> Swagger2Spec:
    with _SPEC_LOCK:
        if not _SPEC:
            _SPEC.append(_LogAnalyticsSpec(SPEC_PATH, relax={"untyped_objects": True}))
        return _SPEC[0]


# ------------------------------------------------------------------------ simulator


class LogAnalyticsSim(SimServer):
    """Log Analytics query API over TLS. See the module docstring.

    State a test reads: ``queries`` (exact query text of every query, in order),
    ``calls`` (:class:`QueryCall` each), plus the base ``requests``/``violations``.
    State a test sets: ``token``, ``forbidden`` (workspace or resource ids that
    answer 403), ``known_workspaces`` (when set, others answer 404), and answers
    through :meth:`add_result` / :meth:`add_query_error` / :meth:`add_service_fault`.
    ``validate_sample`` (rows): for scale tests and benchmarks, tables longer than
    this are checked against the spec on their first and last rows only (every
    cell is written by the same typed code, and the spec types cells as ``object``).
    """

    def __init__(self, *, token: str | None = None, tls: bool = True):
        super().__init__(log_analytics_spec(), tls=tls)
        self.token = token or "sim-la-" + secrets.token_urlsafe(24)
        self.queries: list[str] = []
        self.calls: list[QueryCall] = []
        self.forbidden: set[str] = set()
        self.known_workspaces: set[str] | None = None
        self.validate_sample: int | None = None
        self._answers: list[_Answer] = []
        self._state = threading.Lock()

    # ------------------------------------------------------------- test API

    @property
    def endpoint(self) -> str:
        """What ``LogsQueryClient(endpoint=...)`` takes; the SDK adds ``/v1``."""
        return self.url

    def credential(self) -> StaticTokenCredential:
        """A credential for this simulator's token, issuing only the real Log Analytics scope."""
        return StaticTokenCredential(self.token, scopes=[LOGS_SCOPE])

    def client_kwargs(self) -> dict:
        """Keyword arguments that point a ``LogsQueryClient`` here (besides the credential)."""
        return {"endpoint": self.endpoint, "audience": LOGS_AUDIENCE, "connection_verify": self.ca_file}

    def client(self, credential: Any = None, **kwargs: Any):
        """A real ``LogsQueryClient`` pointed here (endpoint, real audience, test CA)."""
        from azure.monitor.query import LogsQueryClient

        return LogsQueryClient(credential or self.credential(), **{**self.client_kwargs(), **kwargs})

    def add_result(self, match: str | re.Pattern | Callable[[str], bool], tables: Sequence[Mapping] | None = None,
                   error: Mapping | str | bool | None = None, *, workspace: str | None = None,
                   statistics: Mapping | None = None, render: Mapping | None = None,
                   times: int | None = None) -> _Answer:
        """Answer queries that match with ``tables``.

        ``match``: a substring of the final query text, a compiled regex
        (searched), or ``callable(query) -> bool``. ``tables``: ``[{"name",
        "columns": [{"name", "type"}] or ["name:type"], "rows": [[...]]}]``;
        cells are Python values, sent the way the service sends them
        (datetimes as ISO text, timespans as ``[d.]hh:mm:ss``, dynamic as JSON
        text, NaN as ``"NaN"``). ``error`` makes it a partial result: tables
        plus an ``error`` object (``True`` or a message for the usual
        PartialError, or a whole error dict). ``workspace`` limits the answer
        to one primary workspace/resource. The newest matching answer wins;
        ``times`` limits how often it answers.
        """
        wire_tables = [_wire_table(t, i) for i, t in enumerate(tables or [])]
        if error is True:
            error = partial_error()
        elif isinstance(error, str):
            error = partial_error(error)
        answer = _Answer(self._matcher(match), _describe(match), workspace, wire_tables,
                         dict(error) if error else None, 200, None, dict(statistics) if statistics else None,
                         dict(render) if render else None, times=times)
        body = self._success_body(answer, "include-statistics=true,include-render=true")
        self.spec.validate_instance("#/definitions/queryResults", self._sampled(body),
                                    f"add_result({answer.description})")
        with self._state:
            self._answers.append(answer)
        return answer

    def add_query_error(self, match: str | re.Pattern | Callable[[str], bool], body: Mapping | None = None, *,
                        status: int = 400, workspace: str | None = None, times: int | None = None) -> _Answer:
        """Fail matching queries with ``status`` and a service-like body (default: a SemanticError)."""
        if not body:
            body = semantic_error(f"Failed to resolve expression for query matching {_describe(match)}")
        body = dict(body)
        self.spec.validate_instance("#/definitions/errorResponse", body, "add_query_error body")
        answer = _Answer(self._matcher(match), _describe(match), workspace, [], None, status, body, None, None,
                         times=times)
        with self._state:
            self._answers.append(answer)
        return answer

    def add_service_fault(self, status: int, body: Mapping | None = None, *, retry_after: float | None = None,
                          times: int | None = 1, path: str = r"/query$|/\$batch$", **kw: Any) -> Fault:
        """A base-server fault (answered before auth and matching) with a service-like error body:
        400 bad query, 403, 429 with ``Retry-After``, 5xx..."""
        body = dict(body) if body else service_error(status)
        self.spec.validate_instance("#/definitions/errorResponse", body, "add_service_fault body")
        headers = dict(kw.pop("headers", {}))
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
        if retry_after is not None:
            headers["Retry-After"] = str(int(retry_after) if float(retry_after).is_integer() else retry_after)
        return self.add_fault(path, status=status, body=json.dumps(body), headers=headers, times=times,
                              method=kw.pop("method", "POST"), **kw)

    # ------------------------------------------------------------- hooks

    def authorize(self, request: Request) -> Response | None:
        auth = request.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return self._error(401, service_error(401), challenge="invalid_request")
        if not secrets.compare_digest(token.strip(), self.token):
            return self._error(401, service_error(401, "InvalidTokenError",
                                                  "The provided authentication is not valid for this resource"),
                               challenge="invalid_token")
        return None

    def error_response(self, status: int, message: str) -> Response:
        return Response.json(service_error(status, message=message), status,
                             skip_validation="simulator error report")

    def handle(self, request: Request) -> Response:
        op = request.operation
        oid = op.operation_id if op else ""
        prefer = request.headers.get("Prefer") or ""
        if oid in ("Query_Execute", "Query_Get"):
            status, body = self._query(op.path_params["workspaceId"], self._query_body(request), prefer)
            return self._json(status, body)
        if oid in ("Query_ResourceExecute", "Query_ResourceGet", "Query_ResourceExecuteXms", "Query_ResourceGetXms"):
            resource = "/" + op.path_params["resourceId"].lstrip("/")
            status, body = self._query(resource, self._query_body(request), prefer, resource=True)
            return self._json(status, body)
        if oid == "Query_Batch":
            return self._batch(request)
        return self._json(404, service_error(404, message=f"{request.method} {request.path} is not simulated"))

    # ------------------------------------------------------------- internals

    @staticmethod
    def _matcher(match: Any) -> Callable[[str], bool]:
        if isinstance(match, str):
            return lambda query: match in query
        if isinstance(match, re.Pattern):
            return lambda query: match.search(query) is not None
        if callable(match):
            return match
        raise TypeError(f"match must be a str, a compiled regex or a callable, got {type(match).__name__}")

    def _sampled(self, body: Mapping) -> Mapping:
        """``body`` with long tables cut to their first and last rows (see ``validate_sample``)."""
        limit = self.validate_sample
        tables = body.get("tables") if isinstance(body, Mapping) else None
        if not limit or not isinstance(tables, list) or all(len(t.get("rows", [])) <= limit for t in tables):
            return body
        half = max(1, limit // 2)
        cut = [dict(t, rows=t["rows"][:half] + t["rows"][-half:]) if len(t["rows"]) > limit else t for t in tables]
        return dict(body, tables=cut)

    def _json(self, status: int, body: Mapping, headers: Mapping | None = None) -> Response:
        response = Response.json(body, status, dict(headers or {}))
        sampled = self._sampled(body)
        if sampled is not body:
            response.validate_body = json.dumps(sampled).encode()
        response.content_type = "application/json; charset=utf-8"
        return response

    def _error(self, status: int, body: Mapping, challenge: str | None = None) -> Response:
        headers = {}
        if challenge:
            headers["WWW-Authenticate"] = (
                'Bearer authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                f'error="{challenge}", error_description="Authentication failed"')
        return self._json(status, body, headers)

    @staticmethod
    def _query_body(request: Request) -> dict:
        if request.method == "GET":
            return {"query": request.arg("query"), "timespan": request.arg("timespan")}
        return request.json if isinstance(request.json, dict) else {}

    def _query(self, target: str, body: Mapping, prefer: str, *, resource: bool = False,
               batch_id: str | None = None) -> tuple[int, dict]:
        """Answer one query: (status, body). Access and timespan are checked as the service does."""
        query = body.get("query")
        extra = list(body.get("workspaces") or [])
        call = QueryCall(target, query, body.get("timespan"), body.get("workspaces"), prefer, batch_id, resource)
        with self._state:
            self.queries.append(query)
            self.calls.append(call)
        for name in [target, *extra]:
            if name in self.forbidden:
                return 403, service_error(403, message=f"The provided credentials have insufficient access to "
                                                        f"perform the requested operation on '{name}'")
            if not resource and self.known_workspaces is not None and name not in self.known_workspaces:
                return 404, service_error(404, "WorkspaceNotFoundError", f"Workspace '{name}' could not be found")
        if not isinstance(query, str) or not query.strip():
            return 400, service_error(400, "BadArgumentError", "The query must not be empty")
        timespan = body.get("timespan")
        if timespan is not None and not _valid_timespan(timespan):
            return 400, service_error(400, "BadArgumentError", f"Invalid timespan '{timespan}'",
                                      innererror={"code": "InvalidTimespan", "message": "Invalid ISO 8601 timespan"})
        answer = self._find(query, target)
        if answer is None:
            return 400, semantic_error(f"No simulated result matches the query: {query[:200]!r}")
        if answer.body is not None:
            return answer.status, answer.body
        return 200, self._success_body(answer, prefer)

    def _find(self, query: str, target: str) -> _Answer | None:
        with self._state:
            for answer in reversed(self._answers):
                if answer.times is not None and answer.hits >= answer.times:
                    continue
                if answer.workspace is not None and answer.workspace != target:
                    continue
                if answer.match(query):
                    answer.hits += 1
                    return answer
        return None

    @staticmethod
    def _success_body(answer: _Answer, prefer: str) -> dict:
        body: dict[str, Any] = {"tables": answer.tables}
        wants = {p.strip().lower() for p in prefer.split(",")}
        if "include-statistics=true" in wants:
            body["statistics"] = answer.statistics or {
                "query": {"executionTime": 0.0123, "resourceUsage": {"cache": {"memory": {"hits": 1, "misses": 0}}}}}
        if "include-render=true" in wants and answer.render:
            body["render"] = answer.render
        if answer.error:
            body["error"] = answer.error
        return body

    def _batch(self, request: Request) -> Response:
        items = request.json.get("requests") or []
        ids = [item.get("id") for item in items]
        if len(set(ids)) != len(ids):
            return self._json(400, service_error(400, message="Batch request ids must be unique"))
        responses = []
        for item in items:
            prefer = (item.get("headers") or {}).get("Prefer", "")
            status, body = self._query(item["workspace"], item["body"], prefer, batch_id=item["id"])
            responses.append({"id": item["id"], "status": status, "body": body,
                              "headers": {"Content-Type": "application/json; charset=utf-8"}})
        return self._json(200, {"responses": responses})


def _describe(match: Any) -> str:
    if isinstance(match, str):
        return repr(match)
    if isinstance(match, re.Pattern):
        return f"/{match.pattern}/"
    return getattr(match, "__name__", "callable")
