"""A stateful Kubernetes API server simulator for tests, driven by the official Python
client and by the real kubectl.

Every request is checked against the upstream Swagger document for release-1.36
(../shared/specs/kubernetes/swagger-release-1.36.json) before it is served, and every
response after. Deliberate departures are listed in ``RELAX`` and ``unvalidated``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import http.client
import itertools
import json
import random
import re
import socket
import string
import struct
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml

from simulators.base import Request, Response, SimServer, WebSocket
from simulators.swagger import SpecViolation, Swagger2Spec

SPEC_PATH = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs" / "kubernetes" / "swagger-release-1.36.json"

RELAX = {
    # The spec declares the discovery and version endpoints as /api/, /apis/, /version/ ...;
    # every client (kubectl, the Python client) calls them without the trailing slash.
    "trailing_slash": True,
    # services/{name}/proxy/{path}: {path} is the rest of the URL and holds slashes.
    "slash_params": {"path"},
    # pods/{name}/portforward declares `ports` as one integer; clients send several ports,
    # repeated (kubectl) or comma-joined (the Python client's portforward()).
    "param_overrides": {"ports": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535},
                                  "collectionFormat": "multi+csv"}},
}
STATUS_REF = "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Status"

# meta.k8s.io/v1 Table is a content-negotiated rendering (Accept: ...;as=Table) and is not
# in the Swagger document, so it is checked against this hand-written subset of its schema.
TABLE_SCHEMA = {
    "type": "object",
    "required": ["kind", "apiVersion", "columnDefinitions", "rows"],
    "properties": {
        "kind": {"enum": ["Table"]},
        "apiVersion": {"enum": ["meta.k8s.io/v1"]},
        "columnDefinitions": {"type": "array", "items": {
            "type": "object", "required": ["name", "type", "format", "description", "priority"],
            "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                           "priority": {"type": "integer"}}}},
        "rows": {"type": "array", "items": {"type": "object", "required": ["cells"],
                                            "properties": {"cells": {"type": "array"}}}},
    },
}

# (group, version, plural) -> (Kind, namespaced, short names)
RESOURCES: dict[tuple[str, str, str], tuple[str, bool, list[str]]] = {
    ("", "v1", "namespaces"): ("Namespace", False, ["ns"]),
    ("", "v1", "nodes"): ("Node", False, ["no"]),
    ("", "v1", "pods"): ("Pod", True, ["po"]),
    ("", "v1", "services"): ("Service", True, ["svc"]),
    ("", "v1", "endpoints"): ("Endpoints", True, ["ep"]),
    ("", "v1", "events"): ("Event", True, ["ev"]),
    ("apps", "v1", "deployments"): ("Deployment", True, ["deploy"]),
    ("apps", "v1", "replicasets"): ("ReplicaSet", True, ["rs"]),
    ("apps", "v1", "statefulsets"): ("StatefulSet", True, ["sts"]),
    ("apps", "v1", "daemonsets"): ("DaemonSet", True, ["ds"]),
    ("batch", "v1", "jobs"): ("Job", True, []),
    ("events.k8s.io", "v1", "events"): ("Event", True, ["ev"]),  # a view of the core/v1 events
}
SUBRESOURCES = {"pods": ["log", "portforward"], "services": ["proxy"]}
FIELD_SELECTORS = {
    "pods": {"spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName", "spec.hostNetwork"},
    "events": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
               # events.k8s.io/v1 names for the same fields
               "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
               "regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath",
               "reportingController", "deprecatedSource"},
    "namespaces": {"status.phase"},
}
_PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
                   r"(?:/namespaces/(?P<ns>[^/]+)(?=/))?/(?P<plural>[a-z]+)"
                   r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>[a-z]+))?(?:/(?P<rest>.*))?$")
HISTORY_LIMIT = 20000


def _ts(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts_nano(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace("Z", "000Z")


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _dig(obj: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


# ----------------------------------------------------------------------------- selectors


class SelectorError(ValueError):
    pass


def parse_label_selector(text: str) -> Callable[[dict], bool]:
    """Compile a label selector (=, ==, !=, in, notin, exists, !exists) to a predicate."""
    terms: list[Callable[[dict], bool]] = []
    for raw in re.findall(r"(?:[^,(]|\([^)]*\))+", text or ""):
        term = raw.strip()
        if not term:
            continue
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                terms.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                terms.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(!=|==|=)\s*([\w.-]*)", term)
        if m:
            key, op, value = m.groups()
            if op == "!=":
                terms.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                terms.append(lambda labels, k=key, v=value: labels.get(k) == v)
            continue
        m = re.fullmatch(r"(!?)([\w./-]+)", term)
        if m:
            negate, key = m.groups()
            terms.append((lambda labels, k=key: k not in labels) if negate else (lambda labels, k=key: k in labels))
            continue
        raise SelectorError(f"unable to parse requirement: {term!r}")
    return lambda obj: all(t((obj.get("metadata") or {}).get("labels") or {}) for t in terms)


def parse_field_selector(text: str, plural: str) -> Callable[[dict], bool]:
    allowed = {"metadata.name", "metadata.namespace"} | FIELD_SELECTORS.get(plural, set())
    terms = []
    for term in filter(None, (t.strip() for t in (text or "").split(","))):
        m = re.fullmatch(r"([\w.]+)\s*(!=|==|=)\s*(.*)", term)
        if not m:
            raise SelectorError(f"invalid selector: {term!r}")
        key, op, value = m.groups()
        if key not in allowed:
            raise SelectorError(f'field label not supported: {key}')
        want = op != "!="
        terms.append(lambda obj, k=key, v=value, w=want: (str(_dig(obj, k) if _dig(obj, k) is not None else "") == v) == w)
    return lambda obj: all(t(obj) for t in terms)


# ----------------------------------------------------------------------------- simulator


class K8sSimulator(SimServer):
    """Kubernetes API simulator. Start with ``with K8sSimulator() as sim:``."""

    spec = None  # loaded lazily once per process (see _spec())
    unvalidated = [
        # kubectl asks for OpenAPI documents for validation/explain; this simulator has none
        # and answers 404, which kubectl accepts (client-side validation is then skipped).
        ("GET", r"/openapi/v[23](/.*)?", "no OpenAPI endpoint served; real clients cope with 404"),
    ]
    # The spec declares only 200/201/202/401 for most operations, while the live apiserver
    # answers 400/404/409/410 ... with a meta/v1 Status body: allow those, check the Status.
    allow_undeclared_errors = True
    error_schema = STATUS_REF

    _shared_spec: Swagger2Spec | None = None
    #: list pages longer than 2*list_sample items are checked on their first and last
    #: list_sample items only (5,000-pod benchmarks would otherwise spend seconds validating)
    list_sample = 10

    # TLS by default: kubectl (client-go) will not send a bearer token to an http:// server.
    def __init__(self, *, token: str = "sim-token", tls: bool = True, spec: Swagger2Spec | None = None):
        super().__init__(spec or self._spec(), tls=tls)
        self.token = token
        self.objects: dict[str, dict[tuple[str | None, str], dict]] = {p: {} for (_, _, p) in RESOURCES}
        # core/v1 events are stored once; events.k8s.io/v1 serves them converted
        self.logs: dict[tuple[str, str, str, bool], list[tuple[dt.datetime, str]]] = {}
        self.proxy_targets: dict[tuple[str, str], str] = {}
        self.portforward_targets: dict[tuple[str, str], dict[int, tuple[str, int]]] = {}
        # (ns, pod, container) -> lines: the next follow stream of that container is cut after them
        self.log_cuts: dict[tuple[str, str, str], int] = {}
        self._rv = itertools.count(1000)
        self.resource_version = 1000
        self._history: list[tuple[int, str, str, dict]] = []  # (rv, plural, type, object)
        self._state = threading.Condition()
        self._node = "node-1"
        self.add_namespace("default")
        self.add_namespace("kube-system")
        self._add(("", "v1", "nodes"), None, {"metadata": {"name": self._node, "labels": {
            "kubernetes.io/hostname": self._node}}, "status": {"conditions": [
                {"type": "Ready", "status": "True"}]}})

    @classmethod
    def _spec(cls) -> Swagger2Spec:
        if K8sSimulator._shared_spec is None:
            K8sSimulator._shared_spec = Swagger2Spec(SPEC_PATH, relax=RELAX)
        return K8sSimulator._shared_spec

    # ================================================================ state (Python API)

    def _bump(self) -> int:
        self.resource_version = next(self._rv)
        return self.resource_version

    def _add(self, gvr: tuple[str, str, str], ns: str | None, obj: dict, *, record: bool = True) -> dict:
        kind, namespaced, _ = RESOURCES[gvr]
        group, version, plural = gvr
        meta = obj.setdefault("metadata", {})
        meta["name"] = meta.get("name") or f"{plural}-{uuid.uuid4().hex[:5]}"
        if namespaced:
            meta["namespace"] = ns
            if ns not in {k[1] for k in self.objects["namespaces"]} and plural != "namespaces":
                self.add_namespace(ns)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _ts(_now()))
        obj["apiVersion"] = f"{group}/{version}" if group else version
        obj["kind"] = kind
        with self._state:
            rv = self._bump()
            meta["resourceVersion"] = str(rv)
            key = (ns if namespaced else None, meta["name"])
            event = "MODIFIED" if key in self.objects[plural] else "ADDED"
            self.objects[plural][key] = obj
            if record:
                self._record(rv, plural, event, obj)
        return obj

    def _record(self, rv: int, plural: str, event: str, obj: dict) -> None:
        self._history.append((rv, plural, event, copy.deepcopy(obj)))
        if len(self._history) > HISTORY_LIMIT:
            del self._history[: len(self._history) - HISTORY_LIMIT]
        self._state.notify_all()

    def add_namespace(self, name: str, labels: dict | None = None) -> dict:
        return self._add(("", "v1", "namespaces"), None, {
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    @staticmethod
    def _container(c: str | dict) -> dict:
        c = {"name": c} if isinstance(c, str) else dict(c)
        c.setdefault("image", f"registry.example/{c['name']}:1.0")
        c.setdefault("imagePullPolicy", "IfNotPresent")
        return c

    def _owner_ref(self, owner: Any) -> dict:
        if isinstance(owner, dict) and "uid" in owner:
            return owner
        if isinstance(owner, dict) and "metadata" in owner:
            group_version, kind, meta = owner["apiVersion"], owner["kind"], owner["metadata"]
            return {"apiVersion": group_version, "kind": kind, "name": meta["name"], "uid": meta["uid"],
                    "controller": True, "blockOwnerDeletion": True}
        kind, name = owner  # ("ReplicaSet", "web-abc")
        api = {"ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "Job": "batch/v1",
               "Deployment": "apps/v1"}.get(kind, "v1")
        return {"apiVersion": api, "kind": kind, "name": name, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                "controller": True, "blockOwnerDeletion": True}

    def add_pod(self, ns: str, name: str, *, labels: dict | None = None, containers: list | None = None,
                init_containers: list | None = None, restarts: int | dict = 0,
                last_terminated: dict | None = None, owner: Any = None, node: str | None = None,
                phase: str = "Running", ready: bool | None = None, waiting_reason: str | None = None,
                terminated: dict | None = None, annotations: dict | None = None,
                created: dt.datetime | None = None, pod_ip: str | None = None, record: bool = True) -> dict:
        """Add a pod. ``restarts``/``last_terminated`` may be per-container dicts keyed by name.

        ``last_terminated``: {"reason": "OOMKilled", "exitCode": 137, "signal": 9,
        "startedAt": datetime|str, "finishedAt": datetime|str}; ``waiting_reason`` e.g.
        "CrashLoopBackOff" puts the containers in state waiting.
        """
        specs = [self._container(c) for c in (containers or ["app"])]
        inits = [self._container(c) for c in (init_containers or [])]
        created = created or _now()
        started = _ts(created + dt.timedelta(seconds=2))
        if ready is None:
            ready = phase == "Running" and not waiting_reason and not terminated

        def per(value, cname, default):
            if isinstance(value, dict) and (cname in value or all(k in {c["name"] for c in specs + inits}
                                                                 for k in value)):
                return value.get(cname, default)
            return value if value is not None else default

        def term(info: dict | None) -> dict | None:
            if not info:
                return None
            info = dict(info)
            for k in ("startedAt", "finishedAt"):
                if isinstance(info.get(k), dt.datetime):
                    info[k] = _ts(info[k])
            info.setdefault("exitCode", 1)
            info.setdefault("containerID", f"containerd://{uuid.uuid4().hex}")
            return info

        statuses = []
        for c in specs:
            restart_count = int(per(restarts, c["name"], 0) or 0)
            last = term(per(last_terminated, c["name"], None)) if last_terminated else None
            if waiting_reason:
                state = {"waiting": {"reason": waiting_reason,
                                     "message": f"back-off restarting failed container {c['name']}"}}
            elif terminated:
                state = {"terminated": term(terminated)}
            elif phase == "Running":
                state = {"running": {"startedAt": started}}
            elif phase in ("Succeeded", "Failed"):
                state = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1,
                                        "reason": "Completed" if phase == "Succeeded" else "Error",
                                        "startedAt": started, "finishedAt": started}}
            else:
                state = {"waiting": {"reason": "ContainerCreating"}}
            statuses.append({
                "name": c["name"], "image": c["image"], "imageID": f"{c['image']}@sha256:{'0' * 64}",
                "containerID": f"containerd://{hashlib.sha1((ns + name + c['name']).encode()).hexdigest()}",
                "ready": bool(ready), "started": "running" in state, "restartCount": restart_count,
                "state": state, "lastState": {"terminated": last} if last else {}})
        init_statuses = [{
            "name": c["name"], "image": c["image"], "imageID": f"{c['image']}@sha256:{'0' * 64}",
            "ready": True, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                     "finishedAt": started}}} for c in inits]
        cond = "True" if ready else "False"
        pod = {
            "metadata": {"name": name, "labels": dict(labels or {}), "creationTimestamp": _ts(created),
                         **({"annotations": annotations} if annotations else {}),
                         **({"ownerReferences": [self._owner_ref(owner)]} if owner else {})},
            "spec": {"containers": specs, **({"initContainers": inits} if inits else {}),
                     "nodeName": node or self._node, "restartPolicy": "Always",
                     "schedulerName": "default-scheduler", "serviceAccountName": "default",
                     "terminationGracePeriodSeconds": 30},
            "status": {
                "phase": phase, "hostIP": "10.0.0.1",
                "podIP": pod_ip or f"10.244.{random.randint(0, 255)}.{random.randint(1, 254)}",
                "startTime": _ts(created),
                "conditions": [{"type": t, "status": s, "lastTransitionTime": _ts(created)} for t, s in
                               (("Initialized", "True"), ("Ready", cond), ("ContainersReady", cond),
                                ("PodScheduled", "True"))],
                "containerStatuses": statuses,
                **({"initContainerStatuses": init_statuses} if inits else {}),
                "qosClass": "BestEffort"},
        }
        if pod["status"]["podIP"]:
            pod["status"]["podIPs"] = [{"ip": pod["status"]["podIP"]}]
        return self._add(("", "v1", "pods"), ns, pod, record=record)

    def update_pod(self, ns: str, name: str, mutate: Callable[[dict], None]) -> dict:
        """Change a pod in place (e.g. its status); watchers see MODIFIED."""
        with self._state:
            pod = self.objects["pods"][(ns, name)]
            mutate(pod)
            rv = self._bump()
            pod["metadata"]["resourceVersion"] = str(rv)
            self._record(rv, "pods", "MODIFIED", pod)
        return pod

    def delete_pod(self, ns: str, name: str) -> dict:
        return self._delete("pods", ns, name)

    def _delete(self, plural: str, ns: str | None, name: str) -> dict:
        with self._state:
            obj = self.objects[plural].pop((ns, name))
            rv = self._bump()
            obj["metadata"]["resourceVersion"] = str(rv)
            obj["metadata"].setdefault("deletionTimestamp", _ts(_now()))
            self._record(rv, plural, "DELETED", obj)
        return obj

    def append_log(self, ns: str, pod: str, container: str, line: str, previous: bool = False,
                   timestamp: dt.datetime | None = None) -> None:
        with self._state:
            self.logs.setdefault((ns, pod, container, previous), []).append((timestamp or _now(), line))
            self._state.notify_all()

    def cut_log_stream(self, ns: str, pod: str, container: str, after_lines: int = 0) -> None:
        """Cut the ``logs -f`` stream of this container (the open one, else the next) after it sent
        ``after_lines`` more lines, as a dropped connection does: no end of the chunked body, socket closed."""
        with self._state:
            self.log_cuts[(ns, pod, container)] = after_lines

    def _workload(self, gvr, ns, name, replicas, labels, containers, spec_extra, status) -> dict:
        labels = dict(labels or {"app": name})
        template = {"metadata": {"labels": labels},
                    "spec": {"containers": [self._container(c) for c in (containers or ["app"])]}}
        obj = {"metadata": {"name": name, "labels": labels, "generation": 1},
               "spec": {"selector": {"matchLabels": labels}, "template": template, **spec_extra},
               "status": status}
        return self._add(gvr, ns, obj)

    def add_deployment(self, ns: str, name: str, *, replicas: int = 2, labels: dict | None = None,
                       containers: list | None = None, **pod_kw) -> dict:
        """A Deployment, its ReplicaSet and ``replicas`` pods (pod_kw goes to add_pod)."""
        ready = replicas if pod_kw.get("ready", True) and not pod_kw.get("waiting_reason") else 0
        deploy = self._workload(("apps", "v1", "deployments"), ns, name, replicas, labels, containers,
                                {"replicas": replicas, "strategy": {"type": "RollingUpdate"}},
                                {"observedGeneration": 1, "replicas": replicas, "readyReplicas": ready,
                                 "availableReplicas": ready, "updatedReplicas": replicas})
        pod_hash = hashlib.sha1(name.encode()).hexdigest()[:10]
        labels = {**deploy["spec"]["selector"]["matchLabels"], "pod-template-hash": pod_hash}
        rs = self._workload(("apps", "v1", "replicasets"), ns, f"{name}-{pod_hash}", replicas, labels,
                            containers, {"replicas": replicas},
                            {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready})
        rs["metadata"]["ownerReferences"] = [self._owner_ref(deploy)]
        for _ in range(replicas):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            self.add_pod(ns, f"{rs['metadata']['name']}-{suffix}", labels=labels, containers=containers,
                         owner=rs, **pod_kw)
        return deploy

    def add_statefulset(self, ns: str, name: str, *, replicas: int = 1, labels: dict | None = None,
                        containers: list | None = None, **pod_kw) -> dict:
        sts = self._workload(("apps", "v1", "statefulsets"), ns, name, replicas, labels, containers,
                             {"replicas": replicas, "serviceName": name},
                             {"replicas": replicas, "readyReplicas": replicas})
        for i in range(replicas):
            self.add_pod(ns, f"{name}-{i}", labels=sts["spec"]["selector"]["matchLabels"],
                         containers=containers, owner=sts, **pod_kw)
        return sts

    def add_daemonset(self, ns: str, name: str, *, labels: dict | None = None, containers: list | None = None,
                      **pod_kw) -> dict:
        ds = self._workload(("apps", "v1", "daemonsets"), ns, name, 1, labels, containers, {},
                            {"currentNumberScheduled": 1, "numberMisscheduled": 0,
                             "desiredNumberScheduled": 1, "numberReady": 1})
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        self.add_pod(ns, f"{name}-{suffix}", labels=ds["spec"]["selector"]["matchLabels"],
                     containers=containers, owner=ds, **pod_kw)
        return ds

    def add_job(self, ns: str, name: str, *, labels: dict | None = None, containers: list | None = None,
                succeeded: bool = True, **pod_kw) -> dict:
        job = self._workload(("batch", "v1", "jobs"), ns, name, 1, labels or {"job-name": name}, containers,
                             {"backoffLimit": 6, "completions": 1, "parallelism": 1},
                             {"succeeded": 1} if succeeded else {"failed": 1})
        job["spec"]["template"]["spec"]["restartPolicy"] = "Never"
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        pod_kw.setdefault("phase", "Succeeded" if succeeded else "Failed")
        self.add_pod(ns, f"{name}-{suffix}", labels=job["spec"]["selector"]["matchLabels"],
                     containers=containers, owner=job, **pod_kw)
        return job

    def add_service(self, ns: str, name: str, *, selector: dict | None = None, ports: list | None = None,
                    type: str = "ClusterIP", labels: dict | None = None) -> dict:
        """ports: [{"name": "http", "port": 80, "targetPort": "http" | 8080}]"""
        ports = [dict({"protocol": "TCP"}, **p) for p in (ports or [{"name": "http", "port": 80,
                                                                      "targetPort": 8080}])]
        return self._add(("", "v1", "services"), ns, {
            "metadata": {"name": name, "labels": dict(labels or {})},
            "spec": {"selector": dict(selector if selector is not None else {"app": name}), "ports": ports,
                     "type": type, "clusterIP": f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}"},
            "status": {"loadBalancer": {}}})

    def add_event(self, ns: str, involved: Any, reason: str, message: str, *, type: str = "Normal",
                  count: int = 1, last_timestamp: dt.datetime | None = None,
                  first_timestamp: dt.datetime | None = None, component: str = "kubelet",
                  name: str | None = None) -> dict:
        """involved: an object dict (pod, deployment...) or (kind, name)."""
        if isinstance(involved, dict):
            ref = {"apiVersion": involved.get("apiVersion", "v1"), "kind": involved["kind"],
                   "name": involved["metadata"]["name"], "namespace": involved["metadata"].get("namespace", ns),
                   "uid": involved["metadata"]["uid"], "resourceVersion": involved["metadata"]["resourceVersion"]}
        else:
            kind, obj_name = involved
            ref = {"apiVersion": "v1", "kind": kind, "name": obj_name, "namespace": ns}
        last = last_timestamp or _now()
        first = first_timestamp or last
        return self._add(("", "v1", "events"), ns, {
            "metadata": {"name": name or f"{ref['name']}.{uuid.uuid4().hex[:16]}"},
            "involvedObject": ref, "reason": reason, "message": message, "type": type, "count": count,
            "firstTimestamp": _ts(first), "lastTimestamp": _ts(last), "source": {"component": component},
            "reportingComponent": component, "reportingInstance": self._node})

    def bulk_pods(self, n: int, *, namespaces: int = 10, prefix: str = "bench",
                  restart_every: int = 7) -> None:
        """Add ``n`` pods fast (benchmarks): spread over namespaces, every Nth one restarting."""
        created = _now() - dt.timedelta(hours=1)
        finished = _ts(created + dt.timedelta(minutes=30))
        template = self.add_pod(f"{prefix}-0", f"{prefix}-template", containers=["app", "sidecar"],
                                created=created, record=False)
        self.objects["pods"].pop((f"{prefix}-0", f"{prefix}-template"))
        for i in range(namespaces):
            if (f"{prefix}-{i}") not in {k[1] for k in self.objects["namespaces"]}:
                self.add_namespace(f"{prefix}-{i}")
        with self._state:
            for i in range(n):
                ns = f"{prefix}-{i % namespaces}"
                name = f"{prefix}-pod-{i:05d}"
                pod = json.loads(json.dumps(template))
                meta = pod["metadata"]
                meta.update(name=name, namespace=ns, uid=str(uuid.UUID(int=i + 1)),
                            resourceVersion=str(self._bump()), labels={"app": f"svc-{i % 50}"})
                if restart_every and i % restart_every == 0:
                    status = pod["status"]["containerStatuses"][0]
                    status["restartCount"] = i % 13 + 1
                    status["lastState"] = {"terminated": {
                        "reason": "OOMKilled" if i % 2 else "Error", "exitCode": 137 if i % 2 else 1,
                        "startedAt": _ts(created), "finishedAt": finished}}
                self.objects["pods"][(ns, name)] = pod
            self._state.notify_all()

    def write_kubeconfig(self, path: str | Path, context: str = "sim", namespace: str = "default",
                         token: str | None = None) -> Path:
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls and self.ca_file:
            cluster["certificate-authority"] = self.ca_file
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": {"token": token or self.token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                       "namespace": namespace}}],
            "current-context": context,
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config))
        return path

    # ================================================================ HTTP

    def error_response(self, status: int, message: str, reason: str | None = None,
                       details: dict | None = None) -> Response:
        reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                   405: "MethodNotAllowed", 406: "NotAcceptable", 409: "AlreadyExists", 410: "Expired",
                   422: "Invalid", 500: "InternalError"}
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                "reason": reason or reasons.get(status, "Unknown"), "code": status}
        if details:
            body["details"] = details
        return Response.json(body, status)

    def authorize(self, request: Request) -> Response | None:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        # the auth scheme is case-insensitive (RFC 7235; the in-cluster loader sends "bearer")
        if scheme.lower() != "bearer" or token != self.token:
            return self.error_response(401, "Unauthorized")
        return None

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == "/version":
            return Response.json({"major": "1", "minor": "36", "gitVersion": "v1.36.0-sim",
                                  "gitCommit": "0" * 40, "gitTreeState": "clean",
                                  "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0",
                                  "compiler": "gc", "platform": "linux/amd64"})
        if path.startswith("/openapi/"):
            return self.error_response(404, "the server could not find the requested resource")
        if path == "/api":
            return Response.json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}]})
        if path == "/apis":
            return Response.json({"kind": "APIGroupList", "apiVersion": "v1",
                                  "groups": [self._api_group(g) for g in self._groups()]})
        m = re.fullmatch(r"/apis/([^/]+)", path)
        if m and m.group(1) in self._groups():
            return Response.json({"kind": "APIGroup", "apiVersion": "v1", **self._api_group(m.group(1))})
        m = re.fullmatch(r"/api/(v1)|/apis/([^/]+)/(v1)", path)
        if m:
            group = m.group(2) or ""
            if group and group not in self._groups():
                return self.error_response(404, "the server could not find the requested resource")
            return Response.json(self._resource_list(group))
        m = _PATH.match(request.path)
        if not m:
            return self.error_response(404, "the server could not find the requested resource")
        group = m.group("group") or ""
        version = m.group("core") or m.group("version")
        plural = m.group("plural")
        ns = urllib.parse.unquote(m.group("ns")) if m.group("ns") else None
        name = urllib.parse.unquote(m.group("name")) if m.group("name") else None
        if (group, version, plural) not in RESOURCES:
            return self.error_response(404, "the server could not find the requested resource")
        sub = m.group("sub")
        if sub:
            return self._subresource(request, plural, ns, name, sub, m.group("rest") or "")
        if request.method == "GET" and name is None:
            return self._list(request, (group, version, plural), ns)
        if request.method == "GET":
            return self._get(request, plural, ns, name, group)
        if request.method == "DELETE" and name is not None:
            return self._delete_request(plural, ns, name)
        return self.error_response(405, f"{request.method} on {plural} is not supported by the simulator")

    # ---------------------------------------------------------------- discovery

    def _groups(self) -> list[str]:
        return sorted({g for (g, _, _) in RESOURCES if g})

    @staticmethod
    def _api_group(group: str) -> dict:
        gv = {"groupVersion": f"{group}/v1", "version": "v1"}
        return {"name": group, "versions": [gv], "preferredVersion": gv}

    def _resource_list(self, group: str) -> dict:
        resources = []
        for (g, v, plural), (kind, namespaced, short) in RESOURCES.items():
            if g != group:
                continue
            verbs = ["get", "list", "watch"] + (["delete"] if plural == "pods" else [])
            resources.append({"name": plural, "singularName": kind.lower(), "namespaced": namespaced,
                              "kind": kind, "verbs": verbs, **({"shortNames": short} if short else {})})
            for sub in SUBRESOURCES.get(plural, []):
                resources.append({"name": f"{plural}/{sub}", "singularName": "", "namespaced": True,
                                  "kind": {"log": "Pod", "portforward": "PodPortForwardOptions",
                                           "proxy": "ServiceProxyOptions"}[sub],
                                  "verbs": ["get"] if sub == "log" else ["create", "get"]})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/v1" if group else "v1", "resources": resources}

    # ---------------------------------------------------------------- read

    def _select(self, request: Request, plural: str, ns: str | None) -> tuple[Callable[[dict], bool], Response | None]:
        try:
            labels = parse_label_selector(request.arg("labelSelector", ""))
            fields = parse_field_selector(request.arg("fieldSelector", ""), plural)
        except SelectorError as exc:
            return (lambda o: False), self.error_response(400, str(exc))

        def match(obj: dict) -> bool:
            return (ns is None or obj["metadata"].get("namespace") == ns) and labels(obj) and fields(obj)
        return match, None

    def _all(self, plural: str, group: str = "") -> Iterable[dict]:
        if plural == "endpoints":
            return [self._endpoints(svc) for svc in self.objects["services"].values()]
        if group == "events.k8s.io":
            return [self._event_v1(e) for e in self.objects["events"].values()]
        return self.objects[plural].values()

    @staticmethod
    def _event_v1(core: dict) -> dict:
        """A core/v1 Event as events.k8s.io/v1 shows it."""
        meta = core["metadata"]
        return {
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta,
            "eventTime": core.get("eventTime") or core["lastTimestamp"].replace("Z", ".000000Z"),
            "regarding": core["involvedObject"], "reason": core.get("reason"), "note": core.get("message"),
            "type": core.get("type"), "reportingController": core.get("reportingComponent"),
            "reportingInstance": core.get("reportingInstance"), "deprecatedCount": core.get("count"),
            "deprecatedFirstTimestamp": core.get("firstTimestamp"),
            "deprecatedLastTimestamp": core.get("lastTimestamp"), "deprecatedSource": core.get("source")}

    def _endpoints(self, svc: dict) -> dict:
        ns = svc["metadata"]["namespace"]
        selector = svc["spec"].get("selector") or {}
        ready, not_ready = [], []
        for pod in self.objects["pods"].values():
            labels = pod["metadata"].get("labels") or {}
            if pod["metadata"]["namespace"] != ns or not selector or any(labels.get(k) != v for k, v in selector.items()):
                continue
            address = {"ip": pod["status"].get("podIP", "10.244.0.1"), "nodeName": pod["spec"].get("nodeName"),
                       "targetRef": {"kind": "Pod", "namespace": ns, "name": pod["metadata"]["name"],
                                     "uid": pod["metadata"]["uid"]}}
            is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
            (ready if is_ready else not_ready).append(address)
        ports = []
        for p in svc["spec"].get("ports", []):
            target = p.get("targetPort", p["port"])
            ports.append({"name": p.get("name", ""), "port": target if isinstance(target, int) else p["port"],
                          "protocol": p.get("protocol", "TCP")})
        subsets = [{"addresses": ready, **({"notReadyAddresses": not_ready} if not_ready else {}),
                    "ports": ports}] if (ready or not_ready) else []
        return {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": svc["metadata"]["name"], "namespace": ns, "uid": svc["metadata"]["uid"],
                             "resourceVersion": svc["metadata"]["resourceVersion"],
                             "creationTimestamp": svc["metadata"]["creationTimestamp"]},
                "subsets": subsets}

    def _get(self, request: Request, plural: str, ns: str | None, name: str, group: str = "") -> Response:
        with self._state:
            if plural == "endpoints":
                svc = self.objects["services"].get((ns, name))
                obj = self._endpoints(svc) if svc else None
            else:
                obj = self.objects[plural].get((ns, name))
                if obj and group == "events.k8s.io":
                    obj = self._event_v1(obj)
            body = json.dumps(obj).encode() if obj else None
        if body is None:
            return self._not_found(plural, name)
        if self._wants_table(request):
            return self._table_response(plural, [json.loads(body)])
        return Response(200, body, content_type="application/json")

    def _not_found(self, plural: str, name: str) -> Response:
        return self.error_response(404, f'{plural} "{name}" not found',
                                   details={"name": name, "kind": plural})

    def _list(self, request: Request, gvr: tuple[str, str, str], ns: str | None) -> Response:
        plural = gvr[2]
        match, error = self._select(request, plural, ns)
        if error:
            return error
        if (request.arg("watch") or "").lower() in ("true", "1"):
            return self._watch(request, gvr, ns, match)
        with self._state:
            items = sorted((o for o in self._all(plural, gvr[0]) if match(o)),
                           key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
            rv = str(self.resource_version)
            start = 0
            token = request.arg("continue")
            if token:
                try:
                    start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["start"])
                except (ValueError, KeyError, TypeError):
                    return self.error_response(400, "continue key is not valid")
            limit = int(request.arg("limit") or 0)
            end = start + limit if limit > 0 else len(items)
            page, more = items[start:end], end < len(items)
            meta: dict[str, Any] = {"resourceVersion": rv}
            if more:
                meta["continue"] = base64.urlsafe_b64encode(json.dumps({"start": end, "rv": rv}).encode()).decode()
                meta["remainingItemCount"] = len(items) - end
            if self._wants_table(request):
                return self._table_response(plural, page, meta)
            kind = RESOURCES[gvr][0]
            body = json.dumps({"apiVersion": f"{gvr[0]}/{gvr[1]}" if gvr[0] else gvr[1],
                               "kind": f"{kind}List", "metadata": meta, "items": page}).encode()
            sample = None
            if len(page) > 2 * self.list_sample:  # checking costs ~1.5 ms per pod: sample big pages
                half = self.list_sample
                sample = json.dumps({"kind": f"{kind}List", "metadata": meta,
                                     "items": page[:half] + page[-half:]}).encode()
        return Response(200, body, content_type="application/json", validate_body=sample)

    @staticmethod
    def _wants_table(request: Request) -> bool:
        return "as=Table" in (request.headers.get("Accept") or "")

    # ---------------------------------------------------------------- tables (kubectl get)

    def _table_response(self, plural: str, objects: list[dict], meta: dict | None = None) -> Response:
        return Response.json(self._table(plural, objects, meta), validate_as=TABLE_SCHEMA)

    def _table(self, plural: str, objects: list[dict], meta: dict | None = None) -> dict:
        now = _now()

        def age(obj: dict) -> str:
            seconds = int((now - _parse_time(obj["metadata"]["creationTimestamp"])).total_seconds())
            for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
                if seconds >= size:
                    return f"{seconds // size}{unit}"
            return f"{max(seconds, 0)}s"

        def col(name, kind="string", fmt="", priority=0):
            return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}

        columns = [col("Name", fmt="name")]
        if plural == "pods":
            columns += [col("Ready"), col("Status"), col("Restarts", "string"), col("Age"),
                        col("IP", priority=1), col("Node", priority=1)]
        else:
            columns += [col("Age")]
        rows = []
        for obj in objects:
            cells: list[Any] = [obj["metadata"]["name"]]
            if plural == "pods":
                statuses = obj["status"].get("containerStatuses", [])
                ready = sum(1 for s in statuses if s.get("ready"))
                reason = obj["status"].get("phase", "Unknown")
                for s in statuses:
                    state = s.get("state", {})
                    if "waiting" in state and state["waiting"].get("reason"):
                        reason = state["waiting"]["reason"]
                    elif "terminated" in state and state["terminated"].get("reason"):
                        reason = state["terminated"]["reason"]
                restarts = sum(s.get("restartCount", 0) for s in statuses)
                cells += [f"{ready}/{len(obj['spec']['containers'])}", reason, str(restarts), age(obj),
                          obj["status"].get("podIP", "<none>"), obj["spec"].get("nodeName", "<none>")]
            else:
                cells.append(age(obj))
            rows.append({"cells": cells, "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}})
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta or {},
                "columnDefinitions": columns, "rows": rows}

    # ---------------------------------------------------------------- watch

    def _watch(self, request: Request, gvr: tuple[str, str, str], ns: str | None,
               match: Callable[[dict], bool]) -> Response:
        plural = gvr[2]
        timeout = float(request.arg("timeoutSeconds") or 1800)
        since = request.arg("resourceVersion") or ""
        definition = f"#/definitions/io.k8s.api.{'core' if not gvr[0] else gvr[0].split('.')[0]}.v1.{RESOURCES[gvr][0]}"
        with self._state:
            if since in ("", "0"):
                initial = [("ADDED", copy.deepcopy(o)) for o in self._all(plural, gvr[0]) if match(o)]
                cursor = self.resource_version
            else:
                initial, cursor = [], int(since)
                if self._history and cursor < self._history[0][0] - 1 and len(self._history) >= HISTORY_LIMIT:
                    initial = [("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                          "status": "Failure", "reason": "Expired", "code": 410,
                                          "message": f"too old resource version: {since}"})]

        as_table = self._wants_table(request)

        def frame(kind: str, obj: dict) -> bytes:
            if kind != "ERROR":
                try:
                    self.spec.validate_instance(definition, obj, f"watch {plural} event object")
                except SpecViolation as exc:
                    self._violation(str(exc))
                if as_table:  # kubectl get -w: each event carries a one-row Table
                    obj = self._table(plural, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion")})
            return json.dumps({"type": kind, "object": obj}).encode() + b"\n"

        def stream() -> Iterator[bytes]:
            nonlocal cursor
            deadline = time.monotonic() + timeout
            for kind, obj in initial:
                yield frame(kind, obj)
            if initial and initial[0][0] == "ERROR":
                return
            while not self.stopping.is_set():
                with self._state:
                    fresh = [(rv, t, o) for rv, p, t, o in self._history if rv > cursor and p == plural]
                    if not fresh:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return
                        self._state.wait(min(remaining, 0.2))
                        continue
                    cursor = fresh[-1][0]
                for _rv, kind, obj in fresh:
                    if gvr[0] == "events.k8s.io":
                        obj = self._event_v1(obj)
                    if match(obj):
                        yield frame(kind, obj)

        return Response(200, stream(), content_type="application/json;stream=watch")

    # ---------------------------------------------------------------- delete

    def _delete_request(self, plural: str, ns: str | None, name: str) -> Response:
        if plural != "pods":
            return self.error_response(405, f"delete {plural} is not supported by the simulator")
        if (ns, name) not in self.objects["pods"]:
            return self._not_found(plural, name)
        return Response.json(self.delete_pod(ns, name))

    # ---------------------------------------------------------------- subresources

    def _subresource(self, request: Request, plural: str, ns: str | None, name: str | None, sub: str,
                     rest: str) -> Response:
        if plural == "pods" and sub == "log" and request.method == "GET":
            return self._log(request, ns, name)
        if plural == "pods" and sub == "portforward":
            return self._portforward(request, ns, name)
        if plural == "services" and sub == "proxy":
            return self._proxy(request, ns, name, rest)
        return self.error_response(404, "the server could not find the requested resource")

    def _log(self, request: Request, ns: str, name: str) -> Response:
        pod = self.objects["pods"].get((ns, name))
        if pod is None:
            return self._not_found("pods", name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        all_names = names + [c["name"] for c in pod["spec"].get("initContainers", [])]
        container = request.arg("container")
        if not container:
            if len(names) != 1:
                return self.error_response(400, f"a container name must be specified for pod {name}, "
                                                f"choose one of: [{' '.join(names)}]")
            container = names[0]
        if container not in all_names:
            return self.error_response(400, f"container {container} is not valid for pod {name}")
        previous = (request.arg("previous") or "").lower() == "true"
        key = (ns, name, container, previous)
        if previous and key not in self.logs:
            return self.error_response(400, f'previous terminated container "{container}" in pod "{name}" not found')
        timestamps = (request.arg("timestamps") or "").lower() == "true"
        follow = (request.arg("follow") or "").lower() == "true" and not previous
        since: dt.datetime | None = None
        if request.arg("sinceSeconds"):
            since = _now() - dt.timedelta(seconds=int(request.arg("sinceSeconds")))
        elif request.arg("sinceTime"):
            since = _parse_time(request.arg("sinceTime"))
        tail = request.arg("tailLines")
        limit_bytes = int(request.arg("limitBytes") or 0)

        def render(entry: tuple[dt.datetime, str]) -> bytes:
            when, line = entry
            return ((f"{_ts_nano(when)} " if timestamps else "") + line.rstrip("\n") + "\n").encode()

        with self._state:
            lines = [e for e in self.logs.get(key, []) if since is None or e[0] >= since]
            seen = len(self.logs.get(key, []))
        if tail is not None:
            lines = lines[-int(tail):] if int(tail) > 0 else []
        if not follow:
            body = b"".join(render(e) for e in lines)
            return Response(200, body[:limit_bytes] if limit_bytes else body, content_type="text/plain")

        def cut() -> None:
            with self._state:
                left = self.log_cuts.get((ns, name, container))
                if left is None:
                    return
                if left > 0:
                    self.log_cuts[(ns, name, container)] = left - 1
                    return
                del self.log_cuts[(ns, name, container)]
            raise ConnectionAbortedError("simulated cut of the log stream")  # _send drops the connection

        def stream() -> Iterator[bytes]:
            nonlocal seen
            for entry in lines:
                cut()
                yield render(entry)
            while not self.stopping.is_set():
                with self._state:
                    current = self.logs.get(key, [])
                    fresh = current[seen:]
                    seen = len(current)
                    gone = (ns, name) not in self.objects["pods"]
                    if not fresh and not gone:
                        self._state.wait(0.2)
                        continue
                for entry in fresh:
                    cut()
                    yield render(entry)
                if gone:
                    return

        return Response(200, stream(), content_type="text/plain")

    def _proxy(self, request: Request, ns: str, name: str, rest: str) -> Response:
        parts = name.split(":")
        svc = parts[1] if len(parts) == 3 else parts[0]
        if (ns, svc) not in self.objects["services"]:
            return self._not_found("services", svc)
        target = self.proxy_targets.get((ns, svc))
        if target is None:
            return self.error_response(503, f'no endpoints available for service "{svc}"',
                                       reason="ServiceUnavailable")
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.urlencode([(k, v) for k, vs in request.query.items() for v in vs])
        path = url.path.rstrip("/") + "/" + rest + (f"?{query}" if query else "")
        skip = {"authorization", "host", "connection", "content-length", "transfer-encoding",
                "accept-encoding", "upgrade"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        conn_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(url.hostname, url.port, timeout=30)
        try:
            conn.request(request.method, path, body=request.body or None, headers=headers)
            upstream = conn.getresponse()
            body = upstream.read()
        except OSError as exc:
            return self.error_response(503, f"error trying to reach service: {exc}", reason="ServiceUnavailable")
        finally:
            conn.close()
        out_headers = {k: v for k, v in upstream.getheaders()
                       if k.lower() not in {"content-length", "transfer-encoding", "connection"}}
        return Response(upstream.status, body, out_headers,
                        skip_validation="proxied response comes from the target service, not the apiserver")

    # ---------------------------------------------------------------- port-forward (WebSocket)

    def _portforward(self, request: Request, ns: str, name: str) -> Response:
        if (ns, name) not in self.objects["pods"]:
            return self._not_found("pods", name)
        ports: list[int] = (request.operation.params.get("ports") if request.operation else None) or []
        if not ports:
            return self.error_response(400, "at least one port must be specified")
        offered = [p.strip() for p in (request.headers.get("Sec-WebSocket-Protocol") or "").split(",")]
        protocol = next((p for p in ("v4.channel.k8s.io", "portforward.k8s.io") if p in offered), None)
        targets = self.portforward_targets.get((ns, name), {})

        def bridge(ws: WebSocket) -> None:
            conns: dict[int, socket.socket] = {}
            pumps: list[threading.Thread] = []
            for ix, port in enumerate(ports):
                for channel in (2 * ix, 2 * ix + 1):
                    ws.send(bytes([channel]) + struct.pack("<H", port))
                target = targets.get(port)
                try:
                    if target is None:
                        raise OSError(f"connection refused (no target for port {port} in the simulator)")
                    conns[ix] = socket.create_connection(target, timeout=5)
                    conns[ix].settimeout(None)
                except OSError as exc:
                    ws.send(bytes([2 * ix + 1]) + f"error forwarding port {port} to pod {name}: {exc}".encode())
                    continue
                pump = threading.Thread(target=self._pump, args=(conns[ix], ws, 2 * ix), daemon=True)
                pump.start()
                pumps.append(pump)
            closer = threading.Thread(target=lambda: ([p.join() for p in pumps], ws.close()), daemon=True)
            if pumps:
                closer.start()
            try:
                while True:
                    message = ws.recv()
                    if message is None:
                        break
                    data = message[1]
                    if len(data) < 2 or data[0] % 2:
                        continue
                    sock = conns.get(data[0] // 2)
                    if sock is not None:
                        try:
                            sock.sendall(data[1:])
                        except OSError:
                            pass
            finally:
                for sock in conns.values():
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    sock.close()

        return Response.upgrade(bridge, protocol)

    @staticmethod
    def _pump(sock: socket.socket, ws: WebSocket, channel: int) -> None:
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                ws.send(bytes([channel]) + data)
        except OSError:
            return
