"""A small JSON-over-HTTP client for services without an official SDK (Alertmanager).

Standard library only (cheap to import); maps transport failures and HTTP statuses onto the
suite's errors, retries idempotent calls on 429/502/503/504 honouring Retry-After.
"""
import base64
import json
import logging
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from . import redact
from .errors import ServiceError, UnreachableError, from_http_status

logger = logging.getLogger("oncall.http")
RETRY_STATUSES = (429, 502, 503, 504)


class HttpClient:
    def __init__(self, base_url, *, headers=None, token=None, username=None, password=None, timeout=30.0,
                 ca_file=None, insecure=False, client_cert=None, client_key=None, retries=2, service="service"):
        if not base_url or "://" not in base_url:
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
        attempts = self.retries + 1 if method in ("GET", "HEAD", "DELETE", "PUT") else 1
        for attempt in range(attempts):
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            logger.debug("%s %s", method, url)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as resp:
                    body = resp.read()
                    logger.debug("-> %s (%d bytes)", resp.status, len(body))
                    if not expect_json:
                        return body
                    return json.loads(body) if body.strip() else None
            except urllib.error.HTTPError as ex:
                body = ex.read().decode("utf-8", "replace")
                if ex.code in RETRY_STATUSES and attempt + 1 < attempts:
                    time.sleep(_retry_after(ex.headers.get("Retry-After"), attempt))
                    continue
                raise from_http_status(ex.code, f"{self.service} answered {ex.code} {ex.reason} for {method} "
                                                f"{_path_of(url)}: {_message(body)}") from None
            except (urllib.error.URLError, socket.timeout, ConnectionError, ssl.SSLError) as ex:
                reason = getattr(ex, "reason", ex)
                raise UnreachableError(f"cannot reach {self.service} at {self.base_url}: {reason}") from None
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


def _path_of(url):
    return urllib.parse.urlsplit(url).path


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
