"""The Log Analytics client: azure-monitor-query's ``LogsQueryClient``, credentials, and error mapping.

Credentials: ``--access-token`` (env ONCALL_LOGS_ACCESS_TOKEN) is used as a bearer token as it is;
otherwise azure-identity's ``DefaultAzureCredential`` (reuses ``az login``, managed identity,
``AZURE_*`` service principal variables). Every SDK and transport error becomes one of the
suite's errors here and nowhere else. The SDK is imported inside functions only.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import gc
import itertools
import json
import os
import time
import urllib.parse
from collections.abc import Mapping
from typing import Annotated

from oncall_common import (Arg, AuthError, ConfigError, ServiceError, UnreachableError, connection)
from oncall_common.errors import from_http_status

PUBLIC_ENDPOINT = "https://api.loganalytics.io"
# sovereign clouds: their token audience is their own API host
KNOWN_HOSTS = ("api.loganalytics.io", "api.loganalytics.azure.cn", "api.loganalytics.us",
               "api.loganalytics.azure.us")
SERVICE = "Log Analytics"
LOGIN_HINT = "run 'az login', or pass --access-token (env ONCALL_LOGS_ACCESS_TOKEN)"


class AccessTokenCredential:
    """An azure-core ``TokenCredential`` (and ``SupportsTokenInfo``) for a bearer token given as it is."""

    def __init__(self, token, lifetime=3600):
        self._token = token.strip()
        self._expires_on = int(time.time()) + lifetime

    def get_token(self, *scopes, claims=None, tenant_id=None, enable_cae=False, **kwargs):
        from azure.core.credentials import AccessToken
        return AccessToken(self._token, self._expires_on)

    def get_token_info(self, *scopes, options=None):
        from azure.core.credentials import AccessTokenInfo
        return AccessTokenInfo(self._token, self._expires_on)

    def close(self):
        pass

    def __repr__(self):  # never show the token
        return "AccessTokenCredential(***)"


def normalize_endpoint(url):
    """The API base the SDK takes (``https://host/v1``); raises ConfigError for a URL it cannot use."""
    text = (url or PUBLIC_ENDPOINT).strip().rstrip("/")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme != "https" or not parts.netloc:
        raise ConfigError(f"invalid Log Analytics endpoint {url!r}",
                          hint="use https://host[:port] (bearer tokens are never sent over plain http)")
    return text if text.endswith("/v1") else text + "/v1"


def audience_for(endpoint):
    host = urllib.parse.urlsplit(endpoint).hostname or ""
    return f"https://{host}" if host in KNOWN_HOSTS else PUBLIC_ENDPOINT


def timespan_iso(timespan):
    """The request body's ``timespan`` for a timedelta or a (start, end) pair, as the SDK writes it."""
    if timespan is None:
        return None
    if isinstance(timespan, dt.timedelta):
        return f"PT{timespan.total_seconds()}S"
    start, end = timespan
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return f"{start.astimezone(dt.timezone.utc).strftime(fmt)}/{end.astimezone(dt.timezone.utc).strftime(fmt)}"


class QueryOutcome:
    """Plain tables from one query, plus the service's error when the result is partial."""

    def __init__(self, tables, partial_error=None):
        self.tables = tables                # [{"name", "columns": [{"name", "type"}], "rows": [dict]}]
        self.partial_error = partial_error  # one-line message, or None


class LogsClient:
    def __init__(self, endpoint, credential, *, ca_file=None, retries=3):
        self.endpoint = endpoint
        self.audience = audience_for(endpoint)
        self.credential = credential
        self.ca_file = ca_file
        self.retries = retries
        self._sdk = None

    def request_preview(self, workspace, query, *, timespan=None, additional=None, server_timeout=None):
        """What ``query`` would send, for --dry-run (the token is never part of it)."""
        request = {"method": "POST", "url": f"{self.endpoint}/workspaces/{workspace}/query",
                   "body": {"query": query, "timespan": timespan_iso(timespan), "workspaces": additional or None}}
        if server_timeout:
            request["headers"] = {"Prefer": f"wait={server_timeout}"}
        return request

    def _client(self):
        if self._sdk is None:
            with sdk_errors(self.endpoint):
                from azure.monitor.query import LogsQueryClient
                if self.credential is None:
                    self.credential = _default_credential()
                kwargs = {"endpoint": self.endpoint, "audience": self.audience, "retry_total": self.retries}
                if self.ca_file:
                    kwargs["connection_verify"] = os.path.expanduser(self.ca_file)
                self._sdk = LogsQueryClient(self.credential, **kwargs)
        return self._sdk

    def query(self, workspace, query, *, timespan=None, additional=None, server_timeout=None):
        client = self._client()
        with sdk_errors(self.endpoint), gc_paused():
            result = client.query_workspace(workspace, query, timespan=timespan, server_timeout=server_timeout,
                                            additional_workspaces=additional or None)
            partial = getattr(result, "partial_error", None)
            if partial is not None or getattr(result, "partial_data", None) is not None:
                return QueryOutcome(plain_tables(result.partial_data or []), partial_message(partial))
            return QueryOutcome(plain_tables(result.tables or []))

    def close(self):
        if self._sdk is not None:
            self._sdk.close()


# ------------------------------------------------------------------ results


@contextlib.contextmanager
def gc_paused():
    """A large result is millions of small objects made at once, and the cyclic GC would rescan all of them again
    and again while they are built. They form no cycles worth collecting midway: collect once, afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _datetime_cell(value):
    if isinstance(value, dt.datetime):
        text = value.isoformat()
        if text.endswith("+00:00"):   # what the SDK gives: aware UTC
            return text[:-6] + "Z"
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value


def _dynamic_cell(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _bool_cell(value):
    return bool(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _text_cell(value):
    # the SDK turns a null timespan or guid into the text "None" (str(None)); neither type can spell that
    return None if value is None or value == "None" else value


_CONVERTERS = {"datetime": _datetime_cell, "dynamic": _dynamic_cell, "bool": _bool_cell, "timespan": _text_cell,
               "guid": _text_cell}


def plain_tables(tables):
    """SDK ``LogsTable`` objects as plain data with types kept: numbers and bools as they are, datetimes as
    ISO-8601 UTC text, dynamic values as JSON data; timespan, guid and decimal stay text."""
    out = []
    for table in tables:
        columns = list(table.columns)
        types = list(getattr(table, "columns_types", None) or ["string"] * len(columns))
        rows = []
        if table.rows and columns:
            # column by column: one C-level map per column instead of a Python loop per cell
            by_column = list(zip(*table.rows))
            for i, kind in enumerate(types):
                if kind in _CONVERTERS and i < len(by_column):
                    by_column[i] = list(map(_CONVERTERS[kind], by_column[i]))
            rows = list(map(dict, map(zip, itertools.repeat(columns), zip(*by_column))))
        out.append({"name": table.name, "columns": [{"name": c, "type": t} for c, t in zip(columns, types)],
                    "rows": rows})
    return out


def partial_message(error):
    if error is None:
        return "the service returned part of the result without saying why"
    code = getattr(error, "code", None) or "PartialError"
    message = getattr(error, "message", None) or ""
    details = getattr(error, "details", None) or []
    inner = _innermost(details[0]) if details else None
    text = inner or message or "part of the query failed"
    return " ".join(f"{code}: {text}".split())


def _innermost(error):
    if not isinstance(error, Mapping):
        return None
    message = error.get("message")
    while isinstance(error.get("innererror"), Mapping):
        error = error["innererror"]
        message = error.get("message") or message
    return message


# ------------------------------------------------------------------ errors


def _one_line(text, limit=400):
    return " ".join(str(text).split())[:limit]


def _service_detail(ex):
    """(code, message) from an HttpResponseError: the service's error code and innermost message."""
    code, message = None, None
    response = getattr(ex, "response", None)
    try:
        body = response.json() if response is not None else None
    except Exception:  # noqa: BLE001 - not JSON: fall back to the exception text
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        code = body["error"].get("code")
        message = _innermost(body["error"])
    model = getattr(ex, "model", None)
    code = code or getattr(model, "code", None)
    message = message or getattr(model, "message", None) or getattr(ex, "message", None) or str(ex)
    return code, _one_line(message)


def _http_error(ex):
    status = getattr(ex, "status_code", None) or 0
    code, message = _service_detail(ex)
    what = f"{status}{' ' + code if code else ''}"
    if status == 401:
        return AuthError(f"{SERVICE} refused the credentials ({what}): {message}", hint=LOGIN_HINT)
    text = f"{SERVICE} answered {what}: {message}"
    if status == 403:
        return AuthError(text, hint="check the workspace id and that your identity may read it")
    return from_http_status(status, text) if status else ServiceError(text)


@contextlib.contextmanager
def sdk_errors(endpoint):
    """Turn azure-core / azure-identity exceptions into the suite's errors (one line, own exit code)."""
    from azure.core.exceptions import (AzureError, ClientAuthenticationError, HttpResponseError,
                                       ServiceRequestError, ServiceResponseError)
    try:
        yield
    except ClientAuthenticationError as ex:
        if getattr(ex, "status_code", None):
            raise _http_error(ex) from None
        raise AuthError(f"could not get an Azure token for {SERVICE}: {_one_line(getattr(ex, 'message', ex))}",
                        hint=LOGIN_HINT) from None
    except HttpResponseError as ex:
        raise _http_error(ex) from None
    except (ServiceRequestError, ServiceResponseError) as ex:
        raise UnreachableError(f"cannot reach {SERVICE} at {endpoint}: {_one_line(getattr(ex, 'message', ex))}") \
            from None
    except AzureError as ex:
        raise ServiceError(f"{SERVICE} call failed: {_one_line(getattr(ex, 'message', ex))}") from None
    except ValueError as ex:   # the SDK refuses a value (e.g. an odd timespan) before sending
        raise ServiceError(f"the Log Analytics SDK refused the request: {_one_line(ex)}") from None


def _default_credential():
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:  # pragma: no cover - a dependency of this distribution
        raise ConfigError("azure-identity is not installed", hint="pip install azure-identity") from None
    return DefaultAzureCredential()


@connection("logs")
def logs_connection(ctx,
                    endpoint: Annotated[str, Arg(metavar="URL")] = None,
                    access_token: Annotated[str, Arg(secret=True, metavar="TOKEN")] = None,
                    ca_file: Annotated[str, Arg(metavar="PEM")] = None,
                    retries: Annotated[int, Arg(metavar="N")] = 3):
    """Log Analytics connection.

    :param endpoint: Log Analytics API URL (config logs.endpoint, env ONCALL_LOGS_ENDPOINT);
        default https://api.loganalytics.io.
    :param access_token: A bearer token to use as it is (env ONCALL_LOGS_ACCESS_TOKEN); never printed.
        Default: azure-identity (az login, managed identity, AZURE_* variables).
    :param ca_file: CA bundle to verify the endpoint's certificate (or env REQUESTS_CA_BUNDLE).
    :param retries: How often to retry throttled (429), failed (5xx) and unreachable requests.
    """
    url = normalize_endpoint(endpoint)
    if ca_file and not os.path.isfile(os.path.expanduser(ca_file)):
        raise ConfigError(f"CA bundle {ca_file!r} does not exist", hint="pass --ca-file PEM (config logs.ca_file)")
    credential = AccessTokenCredential(access_token) if access_token else None  # None: azure-identity, when needed
    return LogsClient(url, credential, ca_file=ca_file, retries=max(0, retries if retries is not None else 3))
