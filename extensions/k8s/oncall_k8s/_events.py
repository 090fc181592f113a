"""Events of a pod, a workload and its pods, or a namespace: newest first, in the core/v1 Event's own keys."""
from ._targets import KINDS, namespaced


def event_time(event):
    meta = event.get("metadata") or {}
    series = event.get("series") or {}
    return (event.get("lastTimestamp") or series.get("lastObservedTime") or event.get("eventTime")
            or event.get("firstTimestamp") or meta.get("creationTimestamp"))


def event_row(event):
    ref = event.get("involvedObject") or {}
    source = event.get("source") or {}
    return {
        "namespace": (event.get("metadata") or {}).get("namespace"),
        "lastTimestamp": _second(event_time(event)),
        "firstTimestamp": _second(event.get("firstTimestamp") or event.get("eventTime")),
        "count": event.get("count") or (event.get("series") or {}).get("count") or 1,
        "type": event.get("type"),
        "reason": event.get("reason"),
        "object": f"{ref.get('kind')}/{ref.get('name')}",
        "involvedObject": {k: ref.get(k) for k in ("kind", "name", "namespace", "uid", "fieldPath") if ref.get(k)},
        "message": " ".join((event.get("message") or "").split()),
        "source": source.get("component") or event.get("reportingComponent") or None,
        "name": (event.get("metadata") or {}).get("name"),
    }


def _second(ts):
    """Event times are RFC 3339 at second (lastTimestamp) or micro-second (eventTime) precision: show seconds."""
    if not ts:
        return ts
    if "." in ts:
        ts = ts.split(".")[0] + "Z"
    return ts


def events_path(namespace):
    return namespaced("/api/v1", "events", namespace)


def related_objects(kube, target, pods):
    """(kind, name) pairs whose events belong to a workload: itself, its ReplicaSets, its pods."""
    related = {(target.kind, target.name)}
    related.update(("Pod", (p.get("metadata") or {}).get("name")) for p in pods)
    if target.kind == "Service":
        related.add(("Endpoints", target.name))
    if target.kind == "Deployment":
        uid = (target.obj.get("metadata") or {}).get("uid")
        path = namespaced(KINDS["replicaset"][1], "replicasets", target.namespace)
        for rs in kube.list(path, {"labelSelector": target.selector}):
            meta = rs.get("metadata") or {}
            if any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or []):
                related.add(("ReplicaSet", meta.get("name")))
    return related
