"""A service inside a cluster reached through the API server's service proxy — no port-forward.

``service_proxy_http`` is how ``oncall alerts ... --in-cluster`` talks to Alertmanager: it finds the service
(well-known labels and names, or ``--service NAME``) and returns an ``oncall_common.http.HttpClient`` whose
base URL is ``{server}/api/v1/namespaces/NS/services/[https:]NAME:PORT/proxy``, with the kubeconfig's
credentials (bearer token, client certificate, CA).
"""
from __future__ import annotations

import dataclasses
import logging
from urllib.parse import quote

from oncall_common import NotFoundError, UsageError
from oncall_common.http import HttpClient

from ._client import connect
from ._targets import namespaced

logger = logging.getLogger("oncall.k8s")


@dataclasses.dataclass(frozen=True)
class Purpose:
    title: str
    labels: tuple          # (key, value) pairs any of which marks the service
    names: tuple           # exact service names
    suffix: str            # e.g. release-alertmanager
    port_names: tuple
    port: int
    preferred: tuple = ()  # (key, value) labels or names that win when several match


PURPOSES = {
    "alertmanager": Purpose(
        title="Alertmanager",
        labels=(("app.kubernetes.io/name", "alertmanager"), ("app", "alertmanager"), ("operated-alertmanager", "true")),
        names=("alertmanager-operated", "alertmanager"),
        suffix="-alertmanager",
        port_names=("web", "http", "http-web"),
        port=9093,
        preferred=(("operated-alertmanager", "true"), ("name", "alertmanager-operated")),
    ),
}


def service_proxy_http(ctx=None, *, kubeconfig=None, context=None, namespace=None, service=None,
                       purpose="alertmanager", timeout=30.0):
    """An HttpClient for the ``purpose`` service of the cluster, through the API server's service proxy."""
    wanted = PURPOSES.get(purpose) or Purpose(purpose, (), (purpose,), f"-{purpose}", ("http", "web"), 80)
    if ctx is not None:  # the k8s group's own settings fill what the alerts command left out
        kubeconfig = kubeconfig or ctx.setting("k8s", "kubeconfig")
        context = context or ctx.setting("k8s", "context")
    kube = connect(kubeconfig=kubeconfig, context=context)
    svc = find_service(kube, wanted, namespace=namespace, service=service)
    meta = svc["metadata"]
    port = pick_port(svc, wanted)
    scheme = "https:" if _is_https(port) else ""
    # NS/services/[https:]NAME:PORT/proxy - the colons are part of the API's syntax, not to be escaped
    base = (kube.host + namespaced("/api/v1", "services", meta["namespace"])
            + f"/{scheme}{quote(meta['name'], safe='')}:{port['port']}/proxy")
    logger.debug("%s through the service proxy: %s", wanted.title, base)
    cfg = kube.cfg
    auth = kube.auth_header()
    token, headers = None, {}
    if auth and auth.lower().startswith("bearer "):
        token = auth.split(" ", 1)[1]
    elif auth:
        headers["Authorization"] = auth
    return HttpClient(base, token=token, headers=headers, timeout=timeout, ca_file=cfg.ssl_ca_cert,
                      insecure=not cfg.verify_ssl, client_cert=cfg.cert_file, client_key=cfg.key_file,
                      service=f"{wanted.title} (service {meta['namespace']}/{meta['name']} via the API server)")


def find_service(kube, wanted, namespace=None, service=None):
    """The one service that is ``wanted``: by name when given, else by well-known labels and names."""
    path = namespaced("/api/v1", "services", namespace)
    where = f"namespace {namespace!r}" if namespace else "any namespace"
    if service:
        found = [s for s in kube.list(path, {"fieldSelector": f"metadata.name={service}"})]
        if not found:
            raise NotFoundError(f"no service named {service!r} in {where} (context {kube.context})",
                                hint="check --service and -n/--namespace")
    else:
        found = [s for s in kube.list(path) if _looks_like(s, wanted)]
        if not found:
            raise NotFoundError(f"no {wanted.title} service found in {where} (context {kube.context})",
                                hint="pass --service NAME (and -n NAMESPACE), or check --context")
    if len(found) > 1:
        preferred = [s for s in found if _preferred(s, wanted)]
        if len(preferred) == 1:
            return preferred[0]
        names = ", ".join(f"{s['metadata']['namespace']}/{s['metadata']['name']}" for s in found)
        raise UsageError(f"several {wanted.title} services match: {names}", hint="choose one with --service NAME "
                                                                               "and -n NAMESPACE")
    return found[0]


def _looks_like(svc, wanted):
    meta = svc.get("metadata") or {}
    labels = meta.get("labels") or {}
    name = meta.get("name") or ""
    return (any(labels.get(k) == v for k, v in wanted.labels) or name in wanted.names
            or name.endswith(wanted.suffix))


def _preferred(svc, wanted):
    meta = svc.get("metadata") or {}
    labels = meta.get("labels") or {}
    return any((labels.get(k) == v) or (k == "name" and meta.get("name") == v) for k, v in wanted.preferred)


def pick_port(svc, wanted):
    ports = (svc.get("spec") or {}).get("ports") or []
    for choose in (lambda p: p.get("name") in wanted.port_names,
                   lambda p: p.get("port") == wanted.port or p.get("targetPort") == wanted.port):
        hit = next((p for p in ports if choose(p)), None)
        if hit:
            return hit
    tcp = [p for p in ports if (p.get("protocol") or "TCP") == "TCP"]
    if len(tcp) == 1:
        return tcp[0]
    meta = svc.get("metadata") or {}
    raise UsageError(f"service {meta.get('namespace')}/{meta.get('name')} has no {wanted.title} port "
                     f"(named {'/'.join(wanted.port_names)} or {wanted.port})",
                     hint="ports: " + ", ".join(f"{p.get('name') or '-'}:{p.get('port')}" for p in ports))


def _is_https(port):
    return str(port.get("name") or "").startswith("https") or str(port.get("appProtocol") or "").lower() == "https"
