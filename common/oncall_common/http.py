"""A small JSON-over-HTTP client for services without an official SDK (Alertmanager).

Standard library only, and only http.client (urllib.request costs more to import than the
request takes); maps transport failures and HTTP statuses onto the suite's errors, retries
idempotent calls on 429/502/503/504 honouring Retry-After.
"""
import base64
import http.client
import json
import logging
import ssl
import time
import urllib.parse

from . import redact
from .errors import ServiceError, UnreachableError, from_http_status

logger = logging.getLogger("oncall.http")
RETRY_STATUSES = (429, 502, 503, 504)


class HttpClient:
    def __init__(self, base_url, *, headers=None, token=None, username=None, password=None, timeout=30.0,
                 ca_file=None, insecure=False, client_cert=None, client_key=None, retries=2, service="service"):
        if not base_url or not base_url.startswith(("http://", "https://")):
            from .errors import ConfigError
            raise ConfigError(f"invalid {service} URL {base_url!r} (expected http(s)://host:port)")
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": "oncall"}
        self.headers.update(headers or {})
        if token:
            redact.register_secret(token)
            self.headers["Authorization"] = f"Bearer {token}"
        elif username is not None and password is not None:
            redact.register_secret(password)
            basic = base64.b64encode(f"{username}:{password}".encode()).decode()
            redact.register_secret(basic)
            self.headers["Authorization"] = f"Basic {basic}"
        self.timeout = timeout
        self.retries = retries
        self.service = service
        self._ssl = None
        if self.base_url.startswith("https"):
            self._ssl = ssl.create_default_context(cafile=ca_file)
            if insecure:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
            if client_cert:
                self._ssl.load_cert_chain(client_cert, client_key)

    def url(self, path, params=None):
        url = self.base_url + "/" + path.lstrip("/")
        if params:
            pairs = []
            for key, value in params.items():
                if value is None:
                    continue
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        return url

    def request(self, method, path, *, params=None, json_body=None, expect_json=True):
        url = self.url(path, params)
        data = None
        headers = dict(self.headers)
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        parts = urllib.parse.urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        headers["Host"] = parts.netloc
        attempts = self.retries + 1 if method in ("GET", "HEAD", "DELETE", "PUT") else 1
        for attempt in range(attempts):
            logger.debug("%s %s", method, url)
            try:
                if parts.scheme == "https":
                    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self.timeout,
                                                       context=self._ssl)
                else:
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
                try:
                    conn.request(method, target, body=data, headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException) as ex:  # refused, reset, timeout, TLS, DNS
                raise UnreachableError(f"cannot reach {self.service} at {self.base_url}: {ex}") from None
            logger.debug("-> %s (%d bytes)", resp.status, len(body))
            if resp.status >= 400:
                if resp.status in RETRY_STATUSES and attempt + 1 < attempts:
                    time.sleep(_retry_after(resp.getheader("Retry-After"), attempt))
                    continue
                raise from_http_status(resp.status, f"{self.service} answered {resp.status} {resp.reason} for "
                                                    f"{method} {parts.path}: "
                                                    f"{_message(body.decode('utf-8', 'replace'))}")
            if not expect_json:
                return body
            try:
                return json.loads(body) if body.strip() else None
            except ValueError as ex:
                raise ServiceError(f"{self.service} sent a response that is not JSON: {ex}") from None
        raise ServiceError(f"{self.service} kept failing")  # pragma: no cover - loop always returns or raises

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json_body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def _retry_after(value, attempt):
    try:
        return min(float(value), 30.0)
    except (TypeError, ValueError):
        return 0.5 * (2 ** attempt)


def _message(body):
    text = body.strip()
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            text = parsed.get("message") or parsed.get("error") or text
        elif isinstance(parsed, str):
            text = parsed
    except ValueError:
        pass
    return " ".join(str(text).split())[:300] or "(no details)"
