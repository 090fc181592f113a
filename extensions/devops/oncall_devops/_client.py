"""The Azure DevOps connection: organization, project and credentials; the SDK's errors mapped in one place.

Nothing here imports the SDK at module level: ``_sdk`` is imported the first time a command really
talks to Azure DevOps (``oncall --help`` and argument errors never pay for it).
"""
import enum
import logging
import os
import re
from typing import Annotated

from oncall_common import (Arg, AuthError, ConfigError, ConflictError, NotFoundError, OncallError, ServiceError,
                           ThrottledError, UnreachableError, UsageError, connection)

logger = logging.getLogger("oncall.devops")
PAT_ENV = "AZURE_DEVOPS_EXT_PAT"          # what az devops reads
KEYRING_USER = "Personal Access Token"     # az devops login stores PATs under this user name


class Auth(enum.Enum):
    AUTO = "auto"
    PAT = "pat"
    ENTRA = "entra"


# --------------------------------------------------------------------------- error mapping (the one place)

def _one_line(text, limit=400):
    return " ".join(str(text or "").split())[:limit]


def translate(ex, org_url=None):
    """The suite's error for an exception raised by the SDK (or its transport), or None when ``ex`` is
    not one of theirs (a bug: let it surface)."""
    from msrest.exceptions import AuthenticationError, ClientException, ClientRequestError

    status = getattr(ex, "oncall_status", None)
    message = _one_line(getattr(ex, "message", None) or str(ex))
    where = f" ({org_url})" if org_url else ""
    if isinstance(ex, AuthenticationError) or status == 401:
        return AuthError(f"Azure DevOps refused the credentials (401){where}",
                         hint=f"set {PAT_ENV} to a valid personal access token, run 'oncall configure set "
                              "devops.pat=...', or 'az login' and use --auth entra")
    if status is not None:
        text = f"Azure DevOps answered {status}: {message}"
        if status == 403:
            return AuthError(text)
        if status == 404:
            return NotFoundError(text)
        if status in (409, 412):
            return ConflictError(text)
        if status == 429:
            retry = getattr(ex, "oncall_retry_after", None)
            return ThrottledError(text, hint=f"retry after {retry} s" if retry else "retry in a minute")
        if 400 <= status < 500:
            return UsageError(text)
        return ServiceError(text)
    if isinstance(ex, ClientRequestError):
        inner = getattr(ex, "inner_exception", None) or ex.__cause__ or ex.__context__
        detail = _one_line(inner or message)
        try:
            import requests
        except ImportError:  # pragma: no cover - msrest depends on requests
            requests = None
        if requests is not None and isinstance(inner, requests.exceptions.RetryError):
            m = re.search(r"too many (\d{3}) error", detail)
            code = int(m.group(1)) if m else None
            if code == 429:
                return ThrottledError(f"Azure DevOps kept answering 429 (throttled){where}", hint="retry in a minute")
            return ServiceError(f"Azure DevOps kept failing{where}: {detail}")
        if requests is not None and isinstance(inner, (requests.exceptions.ConnectionError,
                                                       requests.exceptions.Timeout)):
            reason = _connection_reason(inner)
            return UnreachableError(f"cannot reach Azure DevOps at {org_url or 'the organization'}: {reason}")
        return ServiceError(f"Azure DevOps request failed{where}: {detail}")
    if isinstance(ex, ClientException):
        return ServiceError(f"Azure DevOps client error{where}: {message}")
    if isinstance(ex, ValueError) and "is not registered on" in str(ex):
        return ConfigError(f"{org_url or 'the URL'} does not serve this Azure DevOps API: is it an organization URL?",
                           hint="pass --org https://dev.azure.com/ORG (or just ORG)")
    return _identity_error(ex)


def _identity_error(ex):
    try:
        from azure.core.exceptions import ClientAuthenticationError
        if isinstance(ex, ClientAuthenticationError):
            text = _one_line(getattr(ex, "message", None) or ex, 1000).split(" Attempted credentials:")[0]
            return AuthError(f"Microsoft Entra ID sign-in failed: {text[:300]}",
                             hint=f"run 'az login', or set {PAT_ENV} to a personal access token")
    except ImportError:
        pass
    return None


def _connection_reason(ex):
    text = str(ex)
    for pattern, reason in ((r"Connection refused", "connection refused"), (r"timed out|Timeout", "timed out"),
                            (r"Name or service not known|nodename nor servname|getaddrinfo", "host not found"),
                            (r"CERTIFICATE_VERIFY_FAILED|SSLError", "TLS verification failed")):
        if re.search(pattern, text):
            return reason
    return _one_line(text, 200)


class _Guarded:
    """An SDK client whose every call raises the suite's errors instead of the SDK's."""

    def __init__(self, target, org_url):
        self._target, self._org_url = target, org_url

    def __getattr__(self, name):
        value = getattr(self._target, name)
        if not callable(value) or name.startswith("_"):
            return value
        org_url = self._org_url

        def call(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            except OncallError:
                raise
            except Exception as ex:  # noqa: BLE001 - translated, or re-raised as it is
                mapped = translate(ex, org_url)
                if mapped is None:
                    raise
                logger.debug("%s: %r", name, ex, exc_info=True)
                raise mapped from None
        return call


def guarded(func, org_url=None):
    """Run ``func()`` with the SDK's errors translated."""
    try:
        return func()
    except OncallError:
        raise
    except Exception as ex:  # noqa: BLE001
        mapped = translate(ex, org_url)
        if mapped is None:
            raise
        logger.debug("%r", ex, exc_info=True)
        raise mapped from None


# --------------------------------------------------------------------------- the client

class DevOpsClient:
    """One organization and project; SDK clients created on first use."""

    def __init__(self, org_url, project, creds_factory, *, auth_label, sources, timeout=30.0):
        self.org_url = org_url
        self._project = project
        self._creds_factory = creds_factory
        self.auth_label = auth_label
        self.sources = sources
        self.timeout = timeout
        self._sdk = None
        self._clients = {}
        self._cache = {}

    # -- connection facts
    @property
    def project(self):
        if not self._project:
            raise ConfigError("no Azure DevOps project", hint="pass --project, run 'oncall configure set "
                                                              "devops.project=NAME', or run inside a clone of an "
                                                              "Azure Repos repository")
        return self._project

    def describe(self):
        return {"organization": self.org_url, "project": self._project, "auth": self.auth_label,
                "sources": dict(self.sources)}

    # -- SDK access
    @property
    def sdk(self):
        if self._sdk is None:
            from . import _sdk
            creds = guarded(self._creds_factory, self.org_url)
            self._sdk = _sdk.Sdk(self.org_url, creds, timeout=self.timeout)
        return self._sdk

    def client(self, kind):
        if kind not in self._clients:
            self._clients[kind] = guarded(lambda: self.sdk.client(kind), self.org_url)
        return _Guarded(self._clients[kind], self.org_url)

    @property
    def wit(self):
        return self.client("wit")

    @property
    def work(self):
        return self.client("work")

    @property
    def release(self):
        return self.client("release")

    def models(self, kind):
        from . import _sdk
        return _sdk.models(kind)

    @staticmethod
    def data(value):
        from . import _sdk
        return _sdk.to_data(value)

    def preview(self, kind, func):
        """The request ``func`` would send through client ``kind``, captured and not sent (--dry-run)."""
        from . import _sdk
        guarded_client = self.client(kind)
        raw = self._clients[kind]
        raw.oncall_capture = True
        try:
            func(guarded_client)
        except _sdk.Captured as captured:
            return captured.request
        finally:
            raw.oncall_capture = False
        return None

    # -- lookups shared by several commands (cached for the invocation)
    def me(self):
        """The authenticated user: {"id", "displayName", "uniqueName"}."""
        if "me" not in self._cache:
            data = self.client("location").get_connection_data()
            user = data.authenticated_user
            self._cache["me"] = identity_summary(self.data(user))
        return self._cache["me"]

    def default_team(self):
        if "team" not in self._cache:
            project = self.client("core").get_project(self.project)
            team = getattr(project, "default_team", None)
            self._cache["team"] = team.name if team is not None else f"{self.project} Team"
        return self._cache["team"]

    def team_context(self, team, kind="wit"):
        models = self.models(kind)
        return models.TeamContext(project=self.project, team=team)


def identity_summary(identity):
    """{"id", "displayName", "uniqueName"} from an identity (vssps) as plain data."""
    props = identity.get("properties") or {}

    def prop(name):
        value = props.get(name)
        return value.get("$value") if isinstance(value, dict) else value
    return {"id": identity.get("id"),
            "displayName": identity.get("providerDisplayName") or identity.get("customDisplayName"),
            "uniqueName": prop("Account") or prop("Mail")}


# --------------------------------------------------------------------------- credentials

def _keyring_pat(org_url):
    """A PAT stored by 'az devops login' in the system keyring (only when the keyring package exists)."""
    try:
        import keyring  # optional: not a dependency
    except ImportError:
        return None
    key = "azdevops-cli:" + _keyring_key(org_url)
    try:
        return keyring.get_password(key, KEYRING_USER) or keyring.get_password("azdevops-cli: default", KEYRING_USER)
    except Exception as ex:  # noqa: BLE001 - no usable keyring backend is not an error
        logger.debug("keyring: %s", ex)
        return None


def _keyring_key(org_url):
    from urllib.parse import urlsplit
    parts = urlsplit(org_url)
    key = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
    path = parts.path.lower().strip("/")
    if path and "visualstudio.com" not in org_url.lower():
        key += "/" + path.split("/")[0]
    return key


def _credentials(ctx, org_url, auth):
    """(factory returning msrest credentials, label saying which kind and where it came from)."""
    from oncall_common import redact
    pat, source = None, None
    if auth in (Auth.AUTO, Auth.PAT):
        for source, value in ((f"env {PAT_ENV}", os.environ.get(PAT_ENV)),
                              ("config devops.pat", ctx.setting("devops", "pat", secret=True))):
            if value:
                pat = value
                break
        if not pat:
            pat = _keyring_pat(org_url)
            source = "keyring (az devops login)"
    if pat:
        redact.register_secret(pat)

        def from_pat():
            from ._sdk import pat_credentials
            return pat_credentials(pat)
        return from_pat, f"pat ({source})"
    if auth is Auth.PAT:
        raise ConfigError("no Azure DevOps personal access token",
                          hint=f"set {PAT_ENV}, or run 'oncall configure set devops.pat=TOKEN'")

    def from_entra():
        try:
            from ._sdk import entra_credentials
        except ImportError as ex:  # pragma: no cover - azure-identity is a dependency
            raise ConfigError(f"Microsoft Entra ID sign-in needs azure-identity ({ex})") from None
        return entra_credentials()
    return from_entra, "entra (azure-identity: az login, managed identity, environment)"


# --------------------------------------------------------------------------- the connection


@connection("devops")
def devops(ctx,
           org: Annotated[str, Arg(metavar="URL|NAME")] = None,
           project: Annotated[str, Arg(options=("-p",), metavar="NAME")] = None,
           auth: Annotated[str, Arg(choices=tuple(a.value for a in Auth))] = "auto",
           request_timeout: Annotated[float, Arg(metavar="SECONDS")] = 30.0):
    """Azure DevOps connection.

    :param org: Organization URL (https://dev.azure.com/ORG) or name; default config devops.org, env
        ONCALL_DEVOPS_ORG, else the Azure Repos remote of the current Git repository.
    :param project: Project name; default config devops.project, else the Git remote's project.
    :param auth: Credentials: pat (env AZURE_DEVOPS_EXT_PAT, config devops.pat or the az devops keyring), entra
        (Microsoft Entra ID through azure-identity: az login, managed identity), or auto (a PAT when there is one).
    :param request_timeout: Seconds to wait for each request.
    """
    from . import _remote
    sources = {}
    org_url = None
    if org:
        org_url = _remote.organization_url(org)
        if not org_url:
            raise UsageError(f"--org {org!r} is neither an organization URL nor a name",
                             hint="pass https://dev.azure.com/ORG or ORG")
        given = (ctx.connection_values.get("devops") or {}).get("org")
        sources["organization"] = "argument --org" if given else (ctx.config.source("devops", "org") or "config")
    remote = None
    if not org_url or not project:
        remote = _remote.remote_of_cwd()
    if not org_url and remote:
        org_url = remote["organization"]
        sources["organization"] = f"git remote {remote['remoteName']} ({remote['remote']})"
    if not org_url:
        raise ConfigError("no Azure DevOps organization",
                          hint="pass --org https://dev.azure.com/ORG, run 'oncall configure set devops.org=ORG', or "
                               "run inside a clone of an Azure Repos repository")
    org_url, project_in_url = _remote.split_project_url(org_url)
    project_given = (ctx.connection_values.get("devops") or {}).get("project")
    if project_in_url and not project_given:  # a project URL is more specific than a configured project
        project = project_in_url
        sources["project"] = "organization URL"
    elif project:
        sources["project"] = "argument --project" if project_given else (ctx.config.source("devops", "project")
                                                                         or "config")
    elif remote and _remote.same_organization(remote["organization"], org_url):
        project = remote["project"]
        sources["project"] = f"git remote {remote['remoteName']}"
    try:
        auth = auth if isinstance(auth, Auth) else Auth(str(auth or "auto").lower())
    except ValueError:
        raise UsageError(f"--auth {auth!r}: use auto, pat or entra") from None
    factory, label = _credentials(ctx, org_url, auth)
    return DevOpsClient(org_url, project, factory, auth_label=label, sources=sources, timeout=request_timeout)
