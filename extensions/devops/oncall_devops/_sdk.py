"""The azure-devops SDK, as oncall uses it. Imported only when a command talks to Azure DevOps.

Only the v7_1 client modules a command needs are imported (each costs tens of milliseconds), never
the whole ``azure.devops.v7_1`` tree nor ``azure.devops.connection`` (which pulls every client
factory). The SDK's own clients are used unchanged, through subclasses that add three things:

- the HTTP status and Retry-After of a failed call, kept on the SDK's exception for the suite's
  error mapping (``_client.translate``);
- a capture mode for ``--dry-run``: the first request that would change something is recorded,
  exactly as the SDK built it, and not sent;
- retries that never repeat a non-idempotent request the server may have applied (5xx on POST or
  PATCH), and give up instead of sleeping through a long Retry-After.
"""
import importlib
import logging

from azure.devops import _file_cache
from azure.devops.client import Client
from urllib3.util.retry import Retry

logger = logging.getLogger("oncall.devops")

# kind -> (module, class); resource areas are the classes' own resource_area_identifier
CLIENTS = {
    "wit": ("azure.devops.v7_1.work_item_tracking.work_item_tracking_client", "WorkItemTrackingClient"),
    "work": ("azure.devops.v7_1.work.work_client", "WorkClient"),
    "core": ("azure.devops.v7_1.core.core_client", "CoreClient"),
    "release": ("azure.devops.v7_1.release.release_client", "ReleaseClient"),
    "identity": ("azure.devops.v7_1.identity.identity_client", "IdentityClient"),
    "location": ("azure.devops.v7_1.location.location_client", "LocationClient"),
}
MODELS = {
    "wit": "azure.devops.v7_1.work_item_tracking.models",
    "work": "azure.devops.v7_1.work.models",
    "release": "azure.devops.v7_1.release.models",
}
READ_METHODS = ("GET", "OPTIONS", "HEAD")
# Areas the organization's own host serves (dev.azure.com/ORG, ORG.visualstudio.com, a server's collection):
# wit, work and core. Their clients are built on the organization URL without asking ResourceAreas, which
# saves a round trip and the location client on a cold cache; releases (vsrm) and identities (vssps) live
# on other hosts and are looked up.
COLLECTION_AREAS = {"5264459e-e5e0-4bd8-b118-0985e68a4ec5", "1d4f49f9-02b9-4e26-b826-2cdb6195f2a9",
                    "79134c72-4a58-4b42-976c-04e7115f32bf"}
MAX_RETRY_AFTER = 30.0


class Captured(Exception):
    """Raised instead of sending a request in capture (dry-run) mode; ``request`` is what would be sent."""

    def __init__(self, request):
        super().__init__(f"{request['method']} {request['url']}")
        self.request = request


class OncallRetry(Retry):
    """urllib3's Retry as msrest configures it, less the risky parts: a POST or PATCH is retried only
    on a 429 that says when (the request was refused, not applied); a Retry-After over 30 s is not
    slept through (the 429 surfaces and the caller is told when to come back)."""

    BACKOFF_MAX = 8  # msrest reads this urllib3 1.x name when it configures a session (urllib3 2: backoff_max)

    def is_retry(self, method, status_code, has_retry_after=False):
        if method and method.upper() not in READ_METHODS + ("PUT", "DELETE"):
            if not (status_code == 429 and has_retry_after):
                return False
            return self.total is None or self.total > 0
        return super().is_retry(method, status_code, has_retry_after)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if response is not None and self.respect_retry_after_header:
            wait = Retry.get_retry_after(self, response)
            if wait is not None and wait > MAX_RETRY_AFTER:
                # with raise_on_status=False urllib3 hands the response back unretried: the SDK then
                # raises with its status and headers, and the caller is told when to come back
                from urllib3.exceptions import MaxRetryError
                raise MaxRetryError(_pool, url, f"Retry-After {wait:.0f}s is too long to wait")
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _retry_policy():
    # 3 tries for reads (0 s, 0.5 s, 1 s apart); one reconnect: an unreachable host fails fast
    return OncallRetry(total=3, connect=1, read=2, status=3, backoff_factor=0.25, backoff_max=8,
                       raise_on_status=False, status_forcelist=[500, 502, 503, 504], respect_retry_after_header=True)


class _OncallClientMixin:
    """Added in front of an SDK client class (see module docstring)."""

    oncall_capture = False
    oncall_timeout = 30.0

    def __init__(self, base_url=None, creds=None):
        super().__init__(base_url, creds)
        self.config.retry_policy.policy = _retry_policy()
        self.config.connection.timeout = self.oncall_timeout
        # msrest applied its default retries to the requests session while the client was built;
        # re-setting the session (msrest's own setter) applies ours to its adapters
        driver = getattr(getattr(self.config.pipeline, "_sender", None), "driver", None)
        if driver is not None and hasattr(driver, "session"):
            driver.session = driver.session
        self.config.add_user_agent("oncall-devops")

    def _send_request(self, request, headers=None, content=None, media_type=None, **operation_config):
        if self.oncall_capture and request.method not in READ_METHODS:
            sent = dict(headers or {})
            out = {"method": request.method, "url": request.url}
            if media_type:
                out["contentType"] = media_type
            accept = sent.get("Accept", "")
            if "api-version=" in accept:
                out["apiVersion"] = accept.split("api-version=", 1)[1]
            out["body"] = content
            raise Captured(out)
        return super()._send_request(request, headers=headers, content=content, media_type=media_type,
                                     **operation_config)

    def _handle_error(self, request, response):
        try:
            super()._handle_error(request, response)
        except Exception as ex:
            ex.oncall_status = response.status_code
            ex.oncall_retry_after = response.headers.get("Retry-After")
            ex.oncall_request = f"{request.method} {request.url}"
            raise


_classes = {}


def client_class(kind):
    if kind not in _classes:
        module, name = CLIENTS[kind]
        base = getattr(importlib.import_module(module), name)
        _classes[kind] = type(f"Oncall{name}", (_OncallClientMixin, base), {"__module__": __name__})
    return _classes[kind]


def models(kind):
    return importlib.import_module(MODELS[kind])


class Sdk:
    """The organization's SDK clients, built on demand (what azure.devops.connection.Connection does,
    with the clients above). Resource areas (which host serves which API: vsrm for releases, vssps for
    identities) come from the SDK's own disk cache, as Connection finds them."""

    def __init__(self, org_url, creds, timeout=30.0):
        self.org_url = org_url.rstrip("/")
        self.creds = creds
        self.timeout = timeout
        self._clients = {}

    def client(self, kind):
        if kind not in self._clients:
            cls = client_class(kind)
            url = self._area_url(cls.resource_area_identifier)
            client = cls(url, self.creds)
            client.config.connection.timeout = self.timeout
            self._clients[kind] = client
        return self._clients[kind]

    def _area_url(self, area_id):
        if area_id is None or area_id.lower() in COLLECTION_AREAS:
            return self.org_url
        areas = self._resource_areas()
        if not areas:  # on-premises servers answer an empty list: everything is on the base URL
            return self.org_url
        for area in areas:
            if str(area.get("id", "")).lower() == area_id.lower():
                return area.get("locationUrl") or self.org_url
        return self.org_url

    def _resource_areas(self, force=False):
        key = Client._normalize_url(self.org_url)
        cached = None if force else _file_cache.RESOURCE_CACHE[key]
        if cached:
            logger.debug("resource areas of %s from the SDK's cache", self.org_url)
            return cached
        location = self.client("location")
        found = location.get_resource_areas() or []
        serialized = location._base_serialize.serialize_data(found, "[ResourceAreaInfo]") or []
        try:
            _file_cache.RESOURCE_CACHE[key] = serialized
        except Exception as ex:  # noqa: BLE001 - a cache that cannot be written is not an error
            logger.debug("could not cache resource areas: %s", ex)
        return serialized


def to_data(value):
    """SDK models -> plain data with the REST API's own (camelCase) keys."""
    if value is None:
        return None
    if isinstance(value, list):
        return [to_data(v) for v in value]
    if hasattr(value, "serialize") and hasattr(value, "_attribute_map"):
        return _drop_empty_links(value.serialize(keep_readonly=True))
    return value


def _drop_empty_links(value):
    # the SDK's ReferenceLinks model does not keep the links it reads: leave out the empty "_links" it gives back
    if isinstance(value, dict):
        return {k: _drop_empty_links(v) for k, v in value.items() if not (k == "_links" and not v)}
    if isinstance(value, list):
        return [_drop_empty_links(v) for v in value]
    return value


def pat_credentials(pat):
    from msrest.authentication import BasicAuthentication
    return BasicAuthentication("", pat)


ENTRA_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"


def entra_credentials(credential=None):
    """Bearer tokens for Azure DevOps from Microsoft Entra ID (azure-identity: az login, managed
    identity, environment, workload identity...), refreshed before they expire."""
    import time

    from msrest.authentication import Authentication

    from oncall_common import redact

    if credential is None:
        from azure.identity import DefaultAzureCredential
        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)

    class EntraAuthentication(Authentication):
        def __init__(self):
            self.scheme = "Bearer"
            self._token = None

        def token(self):
            if self._token is None or self._token.expires_on - time.time() < 300:
                self._token = credential.get_token(ENTRA_SCOPE)
                redact.register_secret(self._token.token)
            return self._token.token

        def signed_session(self, session=None):
            session = super().signed_session(session)
            session.headers["Authorization"] = f"Bearer {self.token()}"
            return session

    auth = EntraAuthentication()
    auth.token()  # fail now, with the credential chain's message, rather than inside a request
    return auth
