"""A loopback HTTP(S) server that checks every exchange against a vendor spec.

A concrete simulator subclasses ``SimServer`` and implements ``handle(request) -> Response``.
The base class records each request, checks it against the ``Swagger2Spec`` before the
simulator sees it, checks each response after, applies injected faults, streams chunked
bodies and upgrades connections to WebSockets.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import os
import re
import socket
import struct
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Iterator

from simulators.swagger import Operation, SpecViolation, Swagger2Spec

__all__ = ["Request", "Response", "Fault", "SimServer", "WebSocket", "Headers"]


class Headers(dict):
    """Header dict with case-insensitive lookups (keys stored as sent)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()):
        super().__init__()
        self._lower: dict[str, str] = {}
        for k, v in items:
            self[k] = v

    def __setitem__(self, key, value):
        old = self._lower.get(key.lower())
        if old is not None and old != key:
            super().__delitem__(old)
        self._lower[key.lower()] = key
        super().__setitem__(key, value)

    def __getitem__(self, key):
        return super().__getitem__(self._lower.get(key.lower(), key))

    def __contains__(self, key):
        return isinstance(key, str) and key.lower() in self._lower

    def get(self, key, default=None):
        real = self._lower.get(key.lower())
        return default if real is None else super().__getitem__(real)


@dataclass
class Request:
    method: str
    path: str  # as sent, percent-encoding kept, without the query string
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    json: Any = None  # the body parsed, when it is JSON
    operation: Operation | None = None  # the spec operation it matched
    client: tuple | None = None

    @property
    def parsed_body(self) -> Any:
        return self.json if self.json is not None else self.body

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes] | None = b""  # an iterable is sent chunked, as it is produced
    headers: dict = field(default_factory=dict)
    content_type: str | None = None
    validate_as: dict | str | None = None  # schema or "#/definitions/..." replacing the operation's
    skip_validation: str | None = None  # why this response is not checked against the spec
    validate_body: bytes | None = None  # checked instead of `body` (e.g. a sample of a huge list)
    websocket: Callable[["WebSocket"], None] | None = None  # run after a 101 upgrade
    subprotocol: str | None = None

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict | None = None, **kw) -> "Response":
        return cls(status, json.dumps(obj).encode(), dict(headers or {}), "application/json", **kw)

    @classmethod
    def text(cls, text: str | bytes, status: int = 200, content_type: str = "text/plain", **kw) -> "Response":
        data = text.encode() if isinstance(text, str) else text
        return cls(status, data, kw.pop("headers", {}), content_type, **kw)

    @classmethod
    def upgrade(cls, handler: Callable[["WebSocket"], None], subprotocol: str | None = None) -> "Response":
        return cls(101, b"", {}, None, websocket=handler, subprotocol=subprotocol,
                   skip_validation="101 upgrades are not described by Swagger 2.0")


@dataclass
class Fault:
    """An injected failure, applied before normal handling to matching requests."""

    path: str = ".*"  # regex searched in the request path
    method: str | None = None
    status: int = 500
    headers: dict = field(default_factory=dict)  # e.g. {"Retry-After": "1"}
    body: bytes | str | dict = b""
    times: int | None = 1  # None = every time
    drop: bool = False  # send headers and part of the body, then close the connection
    delay: float = 0.0  # seconds to wait before answering
    hits: int = 0

    def matches(self, request: Request) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method and self.method.upper() != request.method:
            return False
        return re.search(self.path, request.path) is not None


class WebSocket:
    """Server side of one RFC 6455 connection (client frames are masked)."""

    TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10

    def __init__(self, rfile, wfile, sock: socket.socket, request: Request, subprotocol: str | None):
        self.rfile, self.wfile, self.sock = rfile, wfile, sock
        self.request = request
        self.subprotocol = subprotocol
        self.closed = False
        self._send_lock = threading.Lock()

    def send(self, data: bytes | str, opcode: int | None = None) -> None:
        if isinstance(data, str):
            data, opcode = data.encode(), opcode or self.TEXT
        opcode = opcode or self.BINARY
        n = len(data)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        with self._send_lock:
            self.wfile.write(header + data)
            self.wfile.flush()

    def recv(self) -> tuple[int, bytes] | None:
        """Next data message as (opcode, payload); None once the peer closed."""
        message, first_opcode = b"", None
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                self.closed = True
                return None
            fin, opcode = head[0] & 0x80, head[0] & 0x0F
            masked, n = head[1] & 0x80, head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if masked else b""
            payload = self.rfile.read(n)
            if masked:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == self.PING:
                self.send(payload, self.PONG)
                continue
            if opcode == self.PONG:
                continue
            if opcode == self.CLOSE:
                if not self.closed:
                    try:
                        self.send(payload[:2], self.CLOSE)
                    except OSError:
                        pass
                self.closed = True
                return None
            if opcode != 0:
                first_opcode = opcode
            message += payload
            if fin:
                return first_opcode or self.BINARY, message

    def close(self, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.send(struct.pack("!H", code), self.CLOSE)
            except OSError:
                pass


# ----------------------------------------------------------------------------- TLS

_CERTS: dict[str, tuple[str, str, str]] = {}
_CERT_LOCK = threading.Lock()


def _test_certificates() -> tuple[str, str, str]:
    """(ca_file, cert_file, key_file): a throwaway CA and a 127.0.0.1/localhost leaf."""
    with _CERT_LOCK:
        if "files" in _CERTS:
            return _CERTS["files"]
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oncall simulator test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(start).not_valid_after(end)
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False,
                                           encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                    critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        folder = tempfile.mkdtemp(prefix="oncall-sim-tls-")
        pem = serialization.Encoding.PEM
        files = tuple(os.path.join(folder, n) for n in ("ca.pem", "cert.pem", "key.pem"))
        with open(files[0], "wb") as fh:
            fh.write(ca.public_bytes(pem))
        with open(files[1], "wb") as fh:
            fh.write(leaf.public_bytes(pem) + ca.public_bytes(pem))
        with open(files[2], "wb") as fh:
            fh.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        _CERTS["files"] = files  # type: ignore[assignment]
        return files  # type: ignore[return-value]


# ----------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sim: "SimServer"

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def setup(self):
        super().setup()
        self.server.sim._track(self.connection, True)  # type: ignore[attr-defined]

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.sim._track(self.connection, False)  # type: ignore[attr-defined]

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self):
        self.server.sim._serve(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # client hang-ups are normal here
        pass


class SimServer:
    """Base of every simulator. Subclasses implement ``handle``; see module docstring."""

    #: (method regex, path regex, why) for endpoints the vendor spec does not describe
    unvalidated: list[tuple[str, str, str]] = []
    #: set True (with a reason in the subclass) when the live service sends error statuses
    #: that the spec does not declare; their bodies are then checked against ``error_schema``
    allow_undeclared_errors: bool = False
    error_schema: dict | str | None = None

    def __init__(self, spec: Swagger2Spec | None = None, *, tls: bool = False, host: str = "127.0.0.1",
                 port: int = 0):
        if spec is not None:
            self.spec = spec
        elif not hasattr(self, "spec"):
            self.spec = None
        self.tls = tls
        self.host, self.port = host, port
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self.faults: list[Fault | dict] = []
        self.ca_file: str | None = None
        self.stopping = threading.Event()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ hooks

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def authorize(self, request: Request) -> Response | None:
        """Return a response to refuse the request (e.g. 401), or None to let it through."""
        return None

    def error_response(self, status: int, message: str) -> Response:
        """Body for errors the base class produces (spec violations, unknown routes)."""
        return Response.json({"error": {"code": status, "message": message}}, status,
                             skip_validation="simulator error report")

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> "SimServer":
        self._server = _HTTPServer((self.host, self.port), _Handler)
        self._server.sim = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        if self.tls:
            import ssl

            self.ca_file, cert, key = _test_certificates()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.stopping.clear()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            with self._lock:
                for conn in list(self._connections):
                    try:
                        conn.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            (self._connections.add if alive else self._connections.discard)(conn)

    # ------------------------------------------------------------------ checks

    def assert_clean(self) -> None:
        if self.violations:
            raise AssertionError(f"{len(self.violations)} spec violation(s):\n  " + "\n  ".join(self.violations))

    def add_fault(self, path: str = ".*", **kw) -> Fault:
        fault = Fault(path=path, **kw)
        self.faults.append(fault)
        return fault

    def _violation(self, message: str) -> None:
        with self._lock:
            self.violations.append(message)

    def _is_unvalidated(self, request: Request) -> bool:
        return any(re.fullmatch(m, request.method) and re.fullmatch(p, request.path)
                   for m, p, _ in self.unvalidated)

    def _next_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.faults):
                if isinstance(fault, dict):
                    fault = self.faults[i] = Fault(**fault)
                if fault.matches(request):
                    fault.hits += 1
                    return fault
        return None

    # ------------------------------------------------------------------ one exchange

    def _serve(self, h: _Handler) -> None:
        split = urllib.parse.urlsplit(h.path)
        body = h._read_body()
        headers = Headers(h.headers.items())
        request = Request(h.command, split.path, urllib.parse.parse_qs(split.query, keep_blank_values=True),
                          headers, body, client=h.client_address)
        if body and "json" in (headers.get("Content-Type") or "json"):
            try:
                request.json = json.loads(body)
            except ValueError:
                pass
        with self._lock:
            self.requests.append(request)

        response: Response | None = None
        check_response = True
        if self.spec is not None and not self._is_unvalidated(request):
            try:
                request.operation = self.spec.validate_request(request.method, request.path, request.query,
                                                               headers, body)
            except SpecViolation as exc:
                self._violation(f"request {request.method} {h.path}: {exc}")
                status = 404 if str(exc).startswith("no operation") else 400
                response, check_response = self.error_response(status, str(exc)), False
        if response is None:
            fault = self._next_fault(request)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                self._send_fault(h, fault)
                return
        if response is None:
            response = self.authorize(request)
        if response is None:
            try:
                response = self.handle(request)
            except Exception as exc:  # a simulator bug must show up in the test, not hang it
                self._violation(f"simulator error on {request.method} {h.path}: {exc!r}")
                response, check_response = self.error_response(500, f"simulator error: {exc!r}"), False
        if check_response:
            self._check_response(request, response)
        if response.websocket is not None:
            self._upgrade(h, request, response)
        else:
            self._send(h, request, response)

    def _check_response(self, request: Request, response: Response) -> None:
        if response.skip_validation or self.spec is None:
            return
        op = request.operation
        streaming = response.body is not None and not isinstance(response.body, (bytes, bytearray))
        body = None if streaming else (response.body or b"")
        if response.validate_body is not None:
            body = response.validate_body
        ctype = response.content_type or Headers(response.headers.items()).get("Content-Type")
        try:
            if response.validate_as is not None:
                if body:
                    self.spec.validate_instance(response.validate_as, json.loads(body),
                                                f"{op.operation_id if op else request.path}: response body")
                return
            if op is None:
                return
            declared = op.spec.get("responses", {})
            if (response.status >= 400 and self.allow_undeclared_errors
                    and str(response.status) not in declared and "default" not in declared):
                if self.error_schema is not None and body:
                    self.spec.validate_instance(self.error_schema, json.loads(body),
                                                f"{op.operation_id}: error {response.status} body")
                return
            self.spec.validate_response(op, response.status, response.headers, body, ctype)
        except (SpecViolation, ValueError) as exc:
            self._violation(f"response to {request.method} {request.path}: {exc}")

    def _send(self, h: _Handler, request: Request, response: Response) -> None:
        h.send_response(response.status)
        headers = Headers(response.headers.items())
        if response.content_type and "Content-Type" not in headers:
            headers["Content-Type"] = response.content_type
        body = response.body
        streaming = body is not None and not isinstance(body, (bytes, bytearray))
        if streaming:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(len(body or b""))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        if request.method == "HEAD":
            return
        if not streaming:
            h.wfile.write(body or b"")
            return
        iterator: Iterator[bytes] = iter(body)  # type: ignore[arg-type]
        try:
            for chunk in iterator:
                if chunk:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    h.wfile.flush()
                if self.stopping.is_set():
                    break
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except OSError:  # the client went away: normal for follow/watch streams
            h.close_connection = True
        finally:
            close = getattr(iterator, "close", None)
            if close:
                close()

    def _send_fault(self, h: _Handler, fault: Fault) -> None:
        body = fault.body
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        h.send_response(fault.status)
        for k, v in fault.headers.items():
            h.send_header(k, v)
        if fault.drop:
            body = body or b"x" * 64
            h.send_header("Content-Length", str(len(body) * 2))
            h.end_headers()
            h.wfile.write(body)
            h.wfile.flush()
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if body and not any(k.lower() == "content-type" for k in fault.headers):
            h.send_header("Content-Type", "application/json" if body[:1] in b"{[" else "text/plain")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _upgrade(self, h: _Handler, request: Request, response: Response) -> None:
        key = request.headers.get("Sec-WebSocket-Key")
        if "websocket" not in (request.headers.get("Upgrade") or "").lower() or not key:
            self._send(h, request, self.error_response(400, "expected a WebSocket upgrade"))
            return
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                                  .digest()).decode()
        h.send_response(101)
        h.send_header("Upgrade", "websocket")
        h.send_header("Connection", "Upgrade")
        h.send_header("Sec-WebSocket-Accept", accept)
        if response.subprotocol:
            h.send_header("Sec-WebSocket-Protocol", response.subprotocol)
        for k, v in response.headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.flush()
        ws = WebSocket(h.rfile, h.wfile, h.connection, request, response.subprotocol)
        try:
            response.websocket(ws)  # type: ignore[misc]
        except OSError:
            pass
        finally:
            ws.close()
            h.close_connection = True
