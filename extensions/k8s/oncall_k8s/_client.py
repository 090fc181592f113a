"""The Kubernetes connection: kubeconfig or in-cluster config through the official client, one transport,
one error mapping.

The official client (``kubernetes``) loads the configuration — kubeconfig files merged from KUBECONFIG,
contexts, tokens, client certificates, exec plugins, the in-cluster service account — and owns the
transport (its urllib3 pool with that TLS setup). Responses are parsed here as plain JSON: the generated
API classes and models cost 0.7 s and 20 MB to import and several times the memory of the JSON itself,
too much for a 5,000-pod restart report. Every SDK, transport and HTTP error becomes an
``oncall_common`` error in this module and nowhere else.
"""
import json
import logging
import os
import threading
import urllib.parse
from typing import Annotated

from oncall_common import Arg, AuthError, ConfigError, ServiceError, UnreachableError, connection
from oncall_common.errors import from_http_status

logger = logging.getLogger("oncall.k8s")

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
PAGE_SIZE = 500  # kubectl's --chunk-size: bounded memory for big lists
STREAM_ERRORS = ()  # filled lazily with urllib3's transport errors


@connection("k8s")
def k8s(ctx,
        kubeconfig: Annotated[str, Arg(metavar="FILE")] = None,
        context: Annotated[str, Arg(metavar="NAME")] = None,
        namespace: Annotated[str, Arg(options=("-n",), metavar="NAMESPACE")] = None):
    """Kubernetes cluster selection, as kubectl users expect.

    :param kubeconfig: Kubeconfig file(s), ':'-separated (config k8s.kubeconfig; default KUBECONFIG, then ~/.kube/config, then the in-cluster service account).
    :param context: Kubeconfig context to use (config k8s.context; default the current context).
    :param namespace: Namespace (config k8s.namespace; default the context's namespace, else "default").
    """
    return connect(kubeconfig=kubeconfig, context=context, namespace=namespace)


def connect(kubeconfig=None, context=None, namespace=None):
    """A ``Kube`` for the kubeconfig/context given, falling back as kubectl does (then in-cluster config)."""
    from kubernetes import client as kclient
    from kubernetes.config.config_exception import ConfigException

    cfg = kclient.Configuration()
    try:
        paths = _existing_paths(kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config")
        if paths:
            context_name, context_namespace = _load_kubeconfig(cfg, paths, context)
            source = os.pathsep.join(paths)
        elif kubeconfig:
            raise ConfigError(f"kubeconfig {kubeconfig} not found")
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            context_name, context_namespace = _load_in_cluster(cfg, context)
            source = "in-cluster service account"
        else:
            raise ConfigError("no Kubernetes configuration: no kubeconfig (KUBECONFIG, ~/.kube/config) and not "
                              "running inside a cluster", hint="pass --kubeconfig FILE or set KUBECONFIG")
    except ConfigException as ex:
        raise ConfigError(f"invalid Kubernetes configuration: {_one_line(ex)}") from None
    except (OSError, ValueError) as ex:
        raise ConfigError(f"cannot read the Kubernetes configuration: {_one_line(ex)}") from None
    cfg.retries = _retry_policy()
    # log follows keep one connection per container open; idle ones above this are dropped, not refused
    cfg.connection_pool_maxsize = 128
    return Kube(cfg, context=context_name, namespace=namespace or context_namespace or "default", source=source)


def _existing_paths(value):
    return [p for p in (os.path.expanduser(x) for x in value.split(os.pathsep) if x) if os.path.exists(p)]


def _load_kubeconfig(cfg, paths, context):
    from kubernetes import config as kconfig
    joined = os.pathsep.join(paths)
    contexts, active = kconfig.list_kube_config_contexts(config_file=joined)
    names = [c["name"] for c in contexts]
    chosen = context or _first_current_context(paths) or (active or {}).get("name")
    if not chosen:
        raise ConfigError(f"kubeconfig {joined} has no current context", hint="pass --context NAME "
                          f"(one of: {', '.join(names) or 'none'})")
    if chosen not in names:
        raise ConfigError(f"context {chosen!r} is not in the kubeconfig ({joined})",
                          hint=f"contexts: {', '.join(names) or 'none'}")
    kconfig.load_kube_config(config_file=joined, context=chosen, client_configuration=cfg, persist_config=False)
    entry = next(c for c in contexts if c["name"] == chosen)
    return chosen, (entry.get("context") or {}).get("namespace")


def _first_current_context(paths):
    """kubectl's rule for KUBECONFIG=a:b: the first file that sets current-context wins (the Python client
    lets the last one win)."""
    import yaml
    for path in paths:
        with open(path) as fh:
            doc = yaml.safe_load(fh) or {}
        if isinstance(doc, dict) and doc.get("current-context"):
            return doc["current-context"]
    return None


def _load_in_cluster(cfg, context):
    from kubernetes.config.incluster_config import InClusterConfigLoader
    if context:
        raise ConfigError(f"context {context!r} asked for, but there is no kubeconfig (in-cluster config only)")
    folder = os.environ.get("ONCALL_K8S_SERVICEACCOUNT_DIR", SERVICE_ACCOUNT_DIR)
    InClusterConfigLoader(token_filename=os.path.join(folder, "token"),
                          cert_filename=os.path.join(folder, "ca.crt")).load_and_set(cfg)
    namespace = None
    try:
        with open(os.path.join(folder, "namespace")) as fh:
            namespace = fh.read().strip() or None
    except OSError:
        pass
    return "in-cluster", namespace


def _retry_policy():
    """Idempotent reads retry 429 and 5xx (Retry-After honoured, capped) before the error reaches the user."""
    from urllib3.util.retry import Retry

    class CappedRetry(Retry):
        def get_retry_after(self, response):
            value = super().get_retry_after(response)
            return None if value is None else min(value, 10.0)

    return CappedRetry(total=4, connect=2, read=0, status=3, backoff_factor=0.25,
                       status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                       raise_on_status=False, respect_retry_after_header=True)


def transport_errors():
    """The exceptions a dropped or unreachable connection raises while reading a response."""
    global STREAM_ERRORS
    if not STREAM_ERRORS:
        import http.client
        import ssl

        import urllib3
        STREAM_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, ssl.SSLError, OSError)
    return STREAM_ERRORS


class Kube:
    """One cluster: its API server URL, credentials, default namespace; JSON in, plain dicts out."""

    def __init__(self, cfg, *, context, namespace, source):
        self.cfg = cfg
        self.host = cfg.host.rstrip("/")
        self.context = context
        self.default_namespace = namespace
        self.source = source
        self._pool = None
        self._lock = threading.Lock()
        self.last_resource_version = None

    # ------------------------------------------------------------------ plumbing

    @property
    def pool(self):
        with self._lock:
            if self._pool is None:
                from kubernetes.client.rest import RESTClientObject
                self._pool = RESTClientObject(self.cfg).pool_manager
            return self._pool

    def namespace(self, explicit=None):
        return explicit or self.default_namespace

    def auth_header(self):
        """The Authorization header value (refreshed by the client's hook for expiring tokens), or None."""
        setting = self.cfg.auth_settings().get("BearerToken") or {}
        value = setting.get("value")
        if value:
            from oncall_common import redact
            redact.register_secret(value)
            redact.register_secret(value.split(" ", 1)[-1])
        return value or None

    def headers(self, accept="application/json"):
        headers = {"Accept": accept, "User-Agent": "oncall-k8s"}
        auth = self.auth_header()
        if auth:
            headers["authorization"] = auth
        return headers

    def url(self, path, params=None):
        query = urllib.parse.urlencode([(k, _param(v)) for k, v in (params or {}).items() if v is not None])
        return self.host + path + (("?" + query) if query else "")

    def open(self, path, params=None, *, method="GET", stream=False, read_timeout=60.0, accept="application/json"):
        """Send one request; the raw urllib3 response (body unread) of a 2xx, else the mapped error."""
        import urllib3
        url = self.url(path, params)
        logger.debug("%s %s", method, url)
        timeout = urllib3.Timeout(connect=10.0, read=None if stream else read_timeout)
        try:
            resp = self.pool.request(method, url, headers=self.headers(accept), preload_content=False,
                                     timeout=timeout)
        except urllib3.exceptions.HTTPError as ex:
            raise self.unreachable(ex) from None
        if resp.status >= 300:
            raise self.http_error(resp, method, path)
        return resp

    def get(self, path, params=None):
        """GET a JSON document."""
        data = self.get_bytes(path, params)
        try:
            return json.loads(data)
        except ValueError:
            raise ServiceError(f"the Kubernetes API sent something that is not JSON for {path}") from None

    def get_bytes(self, path, params=None, accept="application/json"):
        """GET a whole body; a body cut short is fetched again once."""
        for attempt in (1, 2):
            resp = self.open(path, params, accept=accept)
            try:
                data = resp.read()
            except transport_errors() as ex:
                close_quietly(resp)
                if attempt == 2:
                    raise self.unreachable(ex, while_reading=path) from None
                logger.debug("retrying %s after a broken response: %s", path, ex)
            else:
                resp.release_conn()
                return data

    def list(self, path, params=None, page=PAGE_SIZE):
        """Every item of a list, page by page (one list call per scope, memory bounded by a page)."""
        params = dict(params or {})
        params["limit"] = page
        while True:
            doc = self.get(path, params)
            self.last_resource_version = (doc.get("metadata") or {}).get("resourceVersion")
            items = doc.get("items") or []
            cont = (doc.get("metadata") or {}).get("continue")
            del doc
            yield from items
            if not cont:
                return
            params["continue"] = cont

    def watch(self, path, params, resource_version, timeout_seconds=290, on_open=None):
        """Yield watch events (type, object) until the server ends the watch; 410 Gone raises ``Expired``.

        ``on_open(response)`` lets a caller keep the response to abort the watch from another thread.
        """
        params = dict(params or {}, watch="true", resourceVersion=resource_version, allowWatchBookmarks="true",
                      timeoutSeconds=timeout_seconds)
        resp = self.open(path, params, stream=True)
        if on_open:
            on_open(resp)
        try:
            for line in iter_lines(resp):
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    if status.get("code") == 410:
                        raise Expired(status.get("message") or "resource version too old")
                    raise ServiceError(f"the watch of {path} failed: {status.get('message') or status}")
                yield event["type"], event.get("object") or {}
        finally:
            close_quietly(resp)

    # ------------------------------------------------------------------ errors

    def http_error(self, resp, method, path):
        try:
            body = resp.read()
            resp.release_conn()
        except transport_errors():
            body = b""
            close_quietly(resp)
        message = _status_message(body)
        text = f"the Kubernetes API answered {resp.status} {resp.reason or ''}".rstrip() + f" for {method} {path}"
        text += f": {message}" if message else ""
        if resp.status == 401:
            return AuthError(text, hint=f"the credentials of context {self.context!r} were refused: log in again")
        if resp.status == 410:
            return Expired(text)
        return from_http_status(resp.status, text)

    def unreachable(self, ex, while_reading=None):
        reason = getattr(ex, "reason", None) or ex
        what = f"the connection to the Kubernetes API broke while reading {while_reading}" if while_reading else \
            f"cannot reach the Kubernetes API at {self.host}"
        return UnreachableError(f"{what} (context {self.context}): {_one_line(reason)}")


class Expired(ServiceError):
    """410 Gone: a watch's resource version (or a list's continue token) is too old: list again."""


def iter_lines(resp, chunk=64 * 1024):
    """Lines (bytes, without the newline) of a streamed response, as they arrive."""
    buffered = b""
    for data in iter_chunks(resp, chunk):
        buffered += data
        if b"\n" not in data:
            continue
        *lines, buffered = buffered.split(b"\n")
        yield from lines
    if buffered:
        yield buffered


def iter_chunks(resp, chunk=64 * 1024):
    if getattr(resp, "chunked", False) and getattr(resp, "supports_chunked_reads", lambda: False)():
        yield from resp.read_chunked(decode_content=True)
        return
    read = getattr(resp, "read1", None)
    while True:
        data = read(chunk) if read else resp.read(1024)
        if not data:
            return
        yield data


def close_quietly(resp):
    """Close a response, possibly half read, possibly from another thread than the reader's (that read ends)."""
    import socket
    try:
        resp.shutdown()
    except Exception:  # noqa: BLE001 - older urllib3, or already released: shut the socket down directly
        conn = getattr(resp, "connection", None) or getattr(resp, "_connection", None)
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    try:
        resp.close()  # closes the connection: a half-read one must never go back to the pool
    except Exception:  # noqa: BLE001
        pass


def _status_message(body):
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
        if isinstance(doc, dict):
            text = doc.get("message") or doc.get("reason") or text
    except ValueError:
        pass
    return " ".join(str(text).split())[:300]


def _param(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _one_line(value):
    return " ".join(str(value).split())[:300]
