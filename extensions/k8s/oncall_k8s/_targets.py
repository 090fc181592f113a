"""What a TARGET names — a pod, ``deployment/NAME``, ``service/NAME``… or ``-l SELECTOR`` — and its pods."""
from __future__ import annotations

import dataclasses
import urllib.parse

from oncall_common import NotFoundError, UsageError

# kind key -> (Kind, API prefix, plural); aliases as kubectl spells them
KINDS = {
    "pod": ("Pod", "/api/v1", "pods"),
    "deployment": ("Deployment", "/apis/apps/v1", "deployments"),
    "statefulset": ("StatefulSet", "/apis/apps/v1", "statefulsets"),
    "daemonset": ("DaemonSet", "/apis/apps/v1", "daemonsets"),
    "replicaset": ("ReplicaSet", "/apis/apps/v1", "replicasets"),
    "job": ("Job", "/apis/batch/v1", "jobs"),
    "service": ("Service", "/api/v1", "services"),
}
ALIASES = {
    "po": "pod", "pods": "pod",
    "deploy": "deployment", "deployments": "deployment", "deployment.apps": "deployment",
    "sts": "statefulset", "statefulsets": "statefulset", "statefulset.apps": "statefulset",
    "ds": "daemonset", "daemonsets": "daemonset", "daemonset.apps": "daemonset",
    "rs": "replicaset", "replicasets": "replicaset", "replicaset.apps": "replicaset",
    "jobs": "job", "job.batch": "job",
    "svc": "service", "services": "service",
}


@dataclasses.dataclass
class Target:
    kind: str                   # "Pod", "Deployment", ... or "Selector"
    name: str | None
    namespace: str | None       # None: every namespace
    selector: str | None = None  # label selector of its pods (None for one pod)
    obj: dict | None = None

    @property
    def pod_name(self):
        return self.name if self.kind == "Pod" else None

    def __str__(self):
        if self.kind == "Selector":
            where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
            return f"pods matching {self.selector!r} in {where}"
        return f"{self.kind.lower()}/{self.name}"

    def pods_path(self):
        return namespaced("/api/v1", "pods", self.namespace)

    def pod_params(self):
        if self.pod_name:
            return {"fieldSelector": f"metadata.name={self.pod_name}"}
        return {"labelSelector": self.selector} if self.selector else {}


def namespaced(prefix, plural, namespace, name=None):
    path = prefix + (f"/namespaces/{_quote(namespace)}" if namespace else "") + f"/{plural}"
    return path + (f"/{_quote(name)}" if name else "")


def _quote(value):
    return urllib.parse.quote(str(value), safe="")


def parse_target(text, allowed=tuple(KINDS)):
    """'web-1' -> ('pod', 'web-1'); 'deploy/web' -> ('deployment', 'web')."""
    kind, sep, name = text.partition("/")
    if not sep:
        return "pod", text
    key = ALIASES.get(kind.lower(), kind.lower())
    if key not in KINDS or key not in allowed or not name or "/" in name:
        kinds = ", ".join(f"{k}/NAME" for k in allowed if k != "pod")
        raise UsageError(f"cannot use {text!r} as a target: give a pod name or one of {kinds}")
    return key, name


def resolve(kube, target=None, selector=None, namespace=None, all_namespaces=False, allowed=tuple(KINDS)):
    """The Target a command was given (reads the workload to learn its pod selector)."""
    if target and selector:
        raise UsageError("give a TARGET or -l SELECTOR, not both")
    if not target and not selector:
        raise UsageError("give a TARGET (a pod, deployment/NAME, service/NAME, ...) or -l SELECTOR")
    if all_namespaces and namespace:
        raise UsageError("-A/--all-namespaces and -n/--namespace exclude each other")
    if selector:
        return Target("Selector", None, None if all_namespaces else kube.namespace(namespace), selector)
    if all_namespaces:
        raise UsageError("-A/--all-namespaces goes with -l SELECTOR only: a named target lives in one namespace")
    key, name = parse_target(target, allowed)
    ns = kube.namespace(namespace)
    kind, prefix, plural = KINDS[key]
    obj = get_object(kube, key, ns, name)
    if key == "pod":
        return Target("Pod", name, ns, None, obj)
    spec = obj.get("spec") or {}
    if key == "service":
        labels = spec.get("selector") or {}
        if not labels:
            raise UsageError(f"service {name} has no selector: kubectl cannot find its pods either")
        sel = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    else:
        sel = selector_string(spec.get("selector") or {})
        if not sel:
            raise UsageError(f"{key} {name} has no pod selector")
    return Target(kind, name, ns, sel, obj)


def get_object(kube, key, namespace, name):
    kind, prefix, plural = KINDS[key]
    try:
        return kube.get(namespaced(prefix, plural, namespace, name))
    except NotFoundError:
        raise NotFoundError(f"{key} {name!r} not found in namespace {namespace!r} (context {kube.context})",
                            hint="check -n/--namespace and --context") from None


def selector_string(label_selector):
    """A LabelSelector object (matchLabels, matchExpressions) as the string the API's labelSelector takes."""
    terms = [f"{k}={v}" for k, v in sorted((label_selector.get("matchLabels") or {}).items())]
    for expr in label_selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            terms.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            terms.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            terms.append(key)
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)


def list_pods(kube, target):
    return list(kube.list(target.pods_path(), target.pod_params()))


# ---------------------------------------------------------------------- pod facts


def is_ready(pod):
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if (pod.get("status") or {}).get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def pod_key(pod):
    meta = pod.get("metadata") or {}
    return meta.get("namespace"), meta.get("name")


def owner_of(pod):
    """'Deployment/web' for a pod of ReplicaSet web-6d4cf56db6 (from the pod-template-hash: no extra call)."""
    meta = pod.get("metadata") or {}
    refs = meta.get("ownerReferences") or []
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    if not ref:
        return None
    kind, name = ref.get("kind"), ref.get("name") or ""
    template_hash = (meta.get("labels") or {}).get("pod-template-hash")
    if kind == "ReplicaSet" and template_hash and name.endswith("-" + template_hash):
        return f"Deployment/{name[:-len(template_hash) - 1]}"
    return f"{kind}/{name}"


def container_names(pod, init=False):
    spec = pod.get("spec") or {}
    names = [c["name"] for c in spec.get("initContainers") or []] if init else []
    return names + [c["name"] for c in spec.get("containers") or []]


def container_status(pod, name):
    status = pod.get("status") or {}
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if cs.get("name") == name:
            return cs
    return None


def container_port(pod, name):
    """The number of the container port named ``name`` in this pod, or None."""
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == name:
                return int(p["containerPort"])
    return None
