"""The Alertmanager API v2 client, built from a URL or, with --in-cluster, the API server's service proxy."""
from typing import Annotated

from oncall_common import Arg, ConfigError, connection
from oncall_common.http import HttpClient


class AlertmanagerClient:
    def __init__(self, http):
        self.http = http

    def alerts(self, *, filters=(), active=True, silenced=True, inhibited=True, unprocessed=True, receiver=None):
        return self.http.get("/api/v2/alerts", params={
            "filter": list(filters), "active": active, "silenced": silenced, "inhibited": inhibited,
            "unprocessed": unprocessed, "receiver": receiver})

    def groups(self, *, filters=(), active=True, silenced=True, inhibited=True, receiver=None):
        return self.http.get("/api/v2/alerts/groups", params={
            "filter": list(filters), "active": active, "silenced": silenced, "inhibited": inhibited,
            "receiver": receiver})

    def silences(self, *, filters=()):
        return self.http.get("/api/v2/silences", params={"filter": list(filters)})

    def silence(self, silence_id):
        return self.http.get(f"/api/v2/silence/{silence_id}")

    def create_silence(self, body):
        return self.http.post("/api/v2/silences", body)

    def expire_silence(self, silence_id):
        return self.http.delete(f"/api/v2/silence/{silence_id}", expect_json=False)

    def status(self):
        return self.http.get("/api/v2/status")


@connection("alerts")
def alertmanager(ctx,
                 url: Annotated[str, Arg(metavar="URL")] = None,
                 token: Annotated[str, Arg(secret=True, metavar="TOKEN")] = None,
                 username: str = None,
                 password: Annotated[str, Arg(secret=True, metavar="PASSWORD")] = None,
                 ca_file: str = None,
                 insecure: bool = False,
                 timeout: float = 30.0,
                 in_cluster: bool = False,
                 kubeconfig: str = None,
                 context: str = None,
                 namespace: Annotated[str, Arg(options=("-n",), metavar="NAMESPACE")] = None,
                 service: Annotated[str, Arg(metavar="NAME")] = None):
    """Alertmanager connection.

    :param url: Alertmanager base URL (config alerts.url, env ONCALL_ALERTS_URL).
    :param token: Bearer token (env ONCALL_ALERTS_TOKEN); never printed.
    :param username: Basic-auth user name.
    :param password: Basic-auth password (env ONCALL_ALERTS_PASSWORD); never printed.
    :param ca_file: CA bundle to verify the server's certificate.
    :param insecure: Skip TLS verification.
    :param timeout: Seconds to wait for the server.
    :param in_cluster: Reach Alertmanager inside a Kubernetes cluster through the API server's service proxy (no port-forward).
    :param kubeconfig: With --in-cluster: kubeconfig file (default KUBECONFIG or ~/.kube/config).
    :param context: With --in-cluster: kubeconfig context.
    :param namespace: With --in-cluster: namespace to search (default all namespaces).
    :param service: With --in-cluster: the Alertmanager service name (found by well-known labels otherwise).
    """
    if in_cluster:
        try:
            from oncall_k8s.proxy import service_proxy_http
        except ImportError:
            raise ConfigError("--in-cluster needs the k8s extension", hint="pip install oncall-k8s") from None
        http = service_proxy_http(ctx, kubeconfig=kubeconfig, context=context, namespace=namespace,
                                  service=service, purpose="alertmanager", timeout=timeout)
        return AlertmanagerClient(http)
    if not url:
        raise ConfigError("no Alertmanager URL", hint="pass --url, set ONCALL_ALERTS_URL, "
                                                      "run 'oncall configure set alerts.url=URL', or use --in-cluster")
    return AlertmanagerClient(HttpClient(url, token=token, username=username, password=password, timeout=timeout,
                                         ca_file=ca_file, insecure=insecure, service="Alertmanager"))
