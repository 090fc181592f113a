"""The blob connection (account, endpoint, credential) and the one place where the engine's and
the SDK's errors become the suite's.

Credentials, first match wins:

1. ``--container-url`` (a container URL, usually with a SAS in its query string);
2. ``--connection-string``;
3. ``--account`` (or the endpoint's own account) with ``--account-key`` or ``--sas-token``;
4. ``--account`` alone: Microsoft Entra ID through azure-identity's ``DefaultAzureCredential``
   (``az login``, managed identity, ``AZURE_CLIENT_*`` variables).

Each value comes from its flag, then ``ONCALL_BLOB_<NAME>`` / the config file's ``[blob]`` section, then
the environment az reads: ``AZURE_STORAGE_CONNECTION_STRING`` (only when no account or container URL was
named), ``AZURE_STORAGE_ACCOUNT``, ``AZURE_STORAGE_KEY``, ``AZURE_STORAGE_SAS_TOKEN``. Secrets are
registered for redaction as soon as they are read.

Nothing here imports the SDK at module level.
"""
from __future__ import annotations

import contextlib
import os
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from oncall_common import (Arg, AuthError, CancelledError, ConfigError, ConflictError, IntegrityError,
                           NotFoundError, OncallError, ServiceError, ThrottledError, UnreachableError, UsageError,
                           connection)
from oncall_common import redact

ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
ENV_ACCOUNT = "AZURE_STORAGE_ACCOUNT"
ENV_KEY = "AZURE_STORAGE_KEY"
ENV_SAS = "AZURE_STORAGE_SAS_TOKEN"
DEFAULT_RETRIES = 3
POOL_CONNECTIONS = 64          # >= the largest --max-concurrency: a request never waits for, or discards, a socket
CONNECTION_TIMEOUT = 20        # seconds to connect
READ_TIMEOUT = 60              # seconds without a byte before a read fails (and is retried)
BLOCK_SIZE = 1024 * 1024       # bytes per socket read of a download (measured: 256 KiB 247 MB/s, 1 MiB 310 MB/s)


class BlobConnection:
    """What a command needs to reach a container: `container(name)` gives an SDK ContainerClient."""

    def __init__(self, *, account_url=None, credential=None, container_url=None, connection_string=None,
                 auth, account=None, retries=DEFAULT_RETRIES):
        self.account_url = account_url
        self.container_url = container_url
        self.connection_string = connection_string
        self.credential = credential
        self.auth = auth                  # "connection string" | "account key" | "SAS" | "Microsoft Entra ID"
        self.account = account
        self.retries = retries
        self._session = None

    # -- the SDK client ----------------------------------------------------------------------------
    def _options(self):
        """Client keyword arguments: our own requests session (proxies and CA bundle read once, not on every
        request as requests does with `trust_env`: 12% more throughput here), a pool as large as any
        concurrency, and retries that give up within seconds, not minutes."""
        import requests
        from azure.core.pipeline.transport import RequestsTransport
        try:
            from azure.core.pipeline.transport._bigger_block_size_http_adapters import (
                BiggerBlockSizeHTTPAdapter as Adapter)
        except ImportError:  # pragma: no cover - an azure-core without it
            from requests.adapters import HTTPAdapter as Adapter
        from urllib3.util.retry import Retry

        if self._session is None:
            session = requests.Session()
            session.trust_env = False
            endpoint = self.container_url or self.account_url or ""
            session.proxies = requests.utils.get_environ_proxies(endpoint) if endpoint else {}
            adapter = Adapter(pool_connections=4, pool_maxsize=POOL_CONNECTIONS,
                              max_retries=Retry(total=False, redirect=False, raise_on_status=False))
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._session = session
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        # a transport we give the client keeps its own connection settings: set them all here (its default
        # block size, 4 KiB, made downloads three times slower than the SDK's own 256 KiB)
        transport = RequestsTransport(session=self._session, session_owner=False,
                                      connection_timeout=CONNECTION_TIMEOUT, read_timeout=READ_TIMEOUT,
                                      connection_verify=ca_bundle or True, connection_data_block_size=BLOCK_SIZE)
        return {"transport": transport, "retry_policy": _retry_policy(self.retries)}

    def container(self, name=None):
        """The ContainerClient for container `name` (or the one --container-url names)."""
        from azure.storage.blob import ContainerClient

        with translated(None, self):
            if self.container_url:
                named = container_of_url(self.container_url)
                if name and name != named:
                    raise UsageError(f"--container {name!r} differs from the container of --container-url "
                                     f"({named!r}): give one of them")
                return ContainerClient.from_container_url(self.container_url, credential=self.credential,
                                                          **self._options())
            if not name:
                raise UsageError("which container? give --container NAME (or --container-url)")
            if self.connection_string:
                return ContainerClient.from_connection_string(self.connection_string, name, **self._options())
            return ContainerClient(self.account_url, name, credential=self.credential, **self._options())

    def describe(self):
        return {"account": self.account, "endpoint": self.account_url or _without_query(self.container_url),
                "auth": self.auth}


def _retry_policy(retries):
    """The storage SDK's exponential retry (waits about 3, 5, 9 s), except for a credential that could not
    sign in: the SDK would ask it again after each wait, and it would fail again."""
    from azure.core.exceptions import ClientAuthenticationError
    from azure.storage.blob import ExponentialRetry

    class Retry(ExponentialRetry):
        def increment(self, settings, request, response=None, error=None):
            if isinstance(error, ClientAuthenticationError) and getattr(error, "response", None) is None:
                return False
            return super().increment(settings, request, response=response, error=error)

    return Retry(initial_backoff=1, increment_base=2, retry_total=retries, random_jitter_range=1)


# --------------------------------------------------------------------------------- building it


def container_of_url(url):
    """`c` from `https://acct.blob.core.windows.net/c?sv=...` or `http://127.0.0.1:10000/devstoreaccount1/c`."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    path_style = _is_ip_or_local(parts.hostname or "")
    want = 2 if path_style else 1
    if len(segments) != want:
        raise UsageError(f"--container-url {_without_query(url)!r} does not name one container",
                         hint="expected https://ACCOUNT.blob.core.windows.net/CONTAINER?SAS")
    return segments[-1]


def _is_ip_or_local(host):
    import ipaddress
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _without_query(url):
    if not url:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment=""))


def _account_of_endpoint(endpoint):
    parts = urlsplit(endpoint)
    if _is_ip_or_local(parts.hostname or ""):
        segments = [s for s in parts.path.split("/") if s]
        return segments[0] if segments else None
    return (parts.hostname or "").split(".")[0] or None


def _connection_string_fields(text):
    fields = {}
    for part in text.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            fields[key.strip().lower()] = value.strip()
    return fields


def _secret(value):
    if value:
        redact.register_secret(value)
    return value


def _entra_credential(endpoint):
    if urlsplit(endpoint).scheme != "https":
        raise ConfigError(f"Microsoft Entra ID needs an https endpoint, not {_without_query(endpoint)}",
                          hint="for an http endpoint such as Azurite give --account-key, --sas-token or "
                               "--connection-string")
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:  # pragma: no cover - a dependency of this distribution
        raise ConfigError("azure-identity is not installed", hint="pip install azure-identity") from None
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


@connection("blob")
def blob_connection(ctx,
                    account: Annotated[str, Arg(metavar="NAME")] = None,
                    connection_string: Annotated[str, Arg(secret=True, metavar="STRING")] = None,
                    account_key: Annotated[str, Arg(secret=True, metavar="KEY")] = None,
                    sas_token: Annotated[str, Arg(secret=True, metavar="SAS")] = None,
                    container_url: Annotated[str, Arg(metavar="URL")] = None,
                    blob_endpoint: Annotated[str, Arg(metavar="URL")] = None,
                    retries: Annotated[int, Arg(metavar="N")] = None):
    """Azure Storage account connection.

    :param account: Storage account name (config blob.account, env ONCALL_BLOB_ACCOUNT or AZURE_STORAGE_ACCOUNT).
        With no key or SAS, Microsoft Entra ID is used (az login, managed identity, AZURE_CLIENT_* variables).
    :param connection_string: Storage connection string (env AZURE_STORAGE_CONNECTION_STRING, as az; config
        blob.connection_string); never printed.
    :param account_key: Storage account key (env AZURE_STORAGE_KEY); never printed.
    :param sas_token: Shared access signature, account or container (env AZURE_STORAGE_SAS_TOKEN); never printed.
    :param container_url: A whole container URL, usually with a SAS: https://ACCOUNT.blob.core.windows.net/CONTAINER?sv=...
        (instead of --account and --container); its SAS is never printed.
    :param blob_endpoint: Blob service endpoint, for emulators and sovereign clouds (default
        https://ACCOUNT.blob.core.windows.net; Azurite: http://127.0.0.1:10000/devstoreaccount1).
    :param retries: How many times a failed request is retried, with backoff (default 3).
    """
    retries = DEFAULT_RETRIES if retries is None else retries
    if retries < 0:
        raise UsageError("--retries must be 0 or more")
    if container_url:
        parts = urlsplit(container_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--container-url must be an http(s) URL, not {_without_query(container_url)!r}")
        _secret(parts.query)  # the SAS: redacted wherever the URL would show
        container_of_url(container_url)
        if parts.query:  # the URL carries its SAS
            credential, auth = None, "SAS"
        elif sas_token or account_key:
            if sas_token:
                credential, auth = sas_token.lstrip("?"), "SAS"
            else:
                name = account or _account_of_endpoint(container_url)
                credential, auth = {"account_name": name, "account_key": account_key}, "account key"
        else:
            credential, auth = _entra_credential(container_url), "Microsoft Entra ID"
        return BlobConnection(container_url=container_url, credential=credential, auth=auth,
                              account=account or _account_of_endpoint(container_url), retries=retries)

    if not connection_string and not account and not blob_endpoint:
        connection_string = _secret(os.environ.get(ENV_CONNECTION_STRING))
    if connection_string:
        if blob_endpoint:
            raise UsageError("--blob-endpoint goes with --account; a connection string names its own endpoint",
                             hint="put BlobEndpoint=URL in the connection string")
        fields = _connection_string_fields(connection_string)
        named = fields.get("accountname")
        if account and named and account != named:
            raise UsageError(f"--account {account!r} differs from the connection string's account ({named!r})")
        if not (fields.get("accountkey") or fields.get("sharedaccesssignature") or fields.get("blobendpoint")
                or named or fields.get("usedevelopmentstorage")):
            raise UsageError("the connection string is malformed: it names no account or endpoint",
                             hint="expected AccountName=...;AccountKey=...;EndpointSuffix=... or BlobEndpoint=...")
        auth = "SAS" if fields.get("sharedaccesssignature") else "connection string"
        endpoint = fields.get("blobendpoint") or (
            f"{fields.get('defaultendpointsprotocol') or 'https'}://{named}.blob."
            f"{fields.get('endpointsuffix') or 'core.windows.net'}" if named else None)
        return BlobConnection(connection_string=connection_string, auth=auth, retries=retries,
                              account_url=endpoint, account=named or (_account_of_endpoint(endpoint)
                                                                      if endpoint else None))

    account = account or os.environ.get(ENV_ACCOUNT) or (_account_of_endpoint(blob_endpoint) if blob_endpoint else None)
    if not account and not blob_endpoint:
        raise ConfigError("no storage account", hint="pass --account NAME (with --account-key, --sas-token or an "
                                                     "az login), --connection-string, or --container-url; or set "
                                                     f"{ENV_CONNECTION_STRING}")
    if blob_endpoint:
        parts = urlsplit(blob_endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"--blob-endpoint must be an http(s) URL, not {blob_endpoint!r}")
        account_url = blob_endpoint.rstrip("/")
    else:
        account_url = f"https://{account}.blob.core.windows.net"
    if account_key and sas_token:
        raise UsageError("give --account-key or --sas-token, not both")
    # a flag beats the environment: --sas-token wins over AZURE_STORAGE_KEY, --account-key over the SAS variable
    key = account_key or (None if sas_token else _secret(os.environ.get(ENV_KEY)))
    sas = sas_token or (None if account_key else _secret(os.environ.get(ENV_SAS)))
    if key:
        if not account:
            raise UsageError("an account key needs the account's name: pass --account NAME")
        credential, auth = {"account_name": account, "account_key": key}, "account key"
    elif sas:
        credential, auth = sas.lstrip("?"), "SAS"
    else:
        credential, auth = _entra_credential(account_url), "Microsoft Entra ID"
    return BlobConnection(account_url=account_url, credential=credential, auth=auth, account=account,
                          retries=retries)


# --------------------------------------------------------------------------------- errors: the one place

_AUTH_HINTS = {
    "account key": "check the account key (--account-key, AZURE_STORAGE_KEY) and the account name",
    "connection string": "check the connection string's AccountName and AccountKey",
    "SAS": "check the SAS token: its expiry, and that it grants read (r) and list (l)",
    "Microsoft Entra ID": "run 'az login'; reading blobs needs the 'Storage Blob Data Reader' role on the account "
                          "or container",
}


def _network_cause(exc):
    """Whether an SDK exception is the network failing: no answer, or an answer cut short (azure-core
    reports a body cut mid-stream as an HttpResponseError without a status)."""
    from azure.core.exceptions import (HttpResponseError, IncompleteReadError, ServiceRequestError,
                                       ServiceResponseError)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, IncompleteReadError)):
        return True
    return isinstance(exc, HttpResponseError) and getattr(exc, "status_code", None) is None \
        and getattr(exc, "response", None) is None


def _first_line(text):
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def translate(exc, conn=None):
    """The suite's error for an engine or SDK exception; None when `exc` is none of theirs (a bug)."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    from . import _zipstream as zs

    auth = getattr(conn, "auth", None)
    cause = exc.__cause__ if isinstance(exc, zs.BlobZipError) else exc
    message = _first_line(exc)
    if isinstance(exc, zs.TargetExistsError):
        message = message.replace(" (use overwrite to replace it)", "")
        return ConflictError(message, hint="pass --overwrite to replace it" if "directory" not in message else None)
    if isinstance(exc, zs.SourceNotFoundError):
        return NotFoundError(message)
    if isinstance(exc, zs.AuthError) or isinstance(exc, ClientAuthenticationError):
        if isinstance(cause, ClientAuthenticationError) and not isinstance(cause, HttpResponseError) \
                or (isinstance(cause, ClientAuthenticationError) and getattr(cause, "status_code", None) is None):
            return AuthError(f"Microsoft Entra ID sign-in failed: {_first_line(cause)}",
                             hint=_AUTH_HINTS["Microsoft Entra ID"])
        return AuthError(message, hint=_AUTH_HINTS.get(auth))
    if isinstance(exc, (zs.SourceChangedError, zs.IntegrityError)):
        return IntegrityError(message, hint="nothing was written; run it again" if isinstance(
            exc, zs.SourceChangedError) else "nothing was written; --no-verify-md5 takes the blob as it is")
    if isinstance(exc, zs.DownloadCancelled):
        return CancelledError("cancelled: nothing was written")
    if isinstance(exc, (zs.DownloadError, AzureError)):
        if isinstance(cause, AzureError) and _network_cause(cause):
            where = (conn.describe()["endpoint"] if conn else None) or "the storage endpoint"
            return UnreachableError(f"{message}" if isinstance(exc, zs.DownloadError)
                                    else f"cannot reach {where}: {message}")
        status = getattr(cause, "status_code", None)
        code = str(getattr(getattr(cause, "error_code", None), "value", getattr(cause, "error_code", "")) or "")
        if status == 429 or code == "ServerBusy" or status == 503:
            return ThrottledError(message, hint="the account is throttling: retry later or lower --max-concurrency")
        if status == 400:
            return UsageError(message)
        if status == 404:
            return NotFoundError(message)
        return ServiceError(message)
    return None


@contextlib.contextmanager
def translated(target=None, conn=None):
    """Run a block with engine/SDK errors turned into the suite's (one line, a distinct exit code)."""
    try:
        yield
    except OncallError:
        raise
    except ValueError as exc:  # from our arguments: a malformed connection string, key or URL
        raise UsageError(_first_line(exc) or "invalid argument") from exc
    except NotImplementedError as exc:
        raise UsageError(_first_line(exc)) from exc
    except BrokenPipeError:
        raise  # the reader of --zip - left: the front door exits quietly
    except OSError as exc:
        from . import _zipstream as zs
        if isinstance(exc, zs.BlobZipError):  # pragma: no cover - BlobZipError is not an OSError
            raise
        where = f" {target}" if target else ""
        if isinstance(exc, (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError)):
            raise UsageError(f"cannot write{where}: {exc.strerror or exc}") from exc
        raise OncallError(f"cannot write{where}: {exc.strerror or exc}") from exc
    except Exception as exc:
        mapped = translate(exc, conn)
        if mapped is None:
            raise
        raise mapped from exc
