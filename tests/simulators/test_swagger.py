"""Swagger2Spec and SimServer against the real vendor specs."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from simulators.base import Response, SimServer
from simulators.swagger import SpecViolation, Swagger2Spec

SPECS = Path(__file__).resolve().parents[2] / ".." / "shared" / "specs"
ALERTMANAGER = SPECS / "alertmanager" / "openapi-v0.25.0.yaml"
K8S = SPECS / "kubernetes" / "swagger-release-1.36.json"
ADO = [SPECS / "azure-devops" / d / "7.1" / f for d, f in
       (("wit", "workItemTracking.json"), ("release", "release.json"), ("core", "core.json"),
        ("work", "work.json"))]
LOG_ANALYTICS = SPECS / "azure-log-analytics" / "OperationalInsights-2022-10-27.json"
BLOB = SPECS / "azure-blob-storage" / "blob-2026-10-06.json"

SILENCE = {"matchers": [{"name": "alertname", "value": "Down", "isRegex": False}],
           "startsAt": "2024-01-01T00:00:00Z", "endsAt": "2024-01-02T00:00:00Z",
           "createdBy": "oncall", "comment": "maintenance"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def am():
    return Swagger2Spec(ALERTMANAGER)


@pytest.fixture(scope="module")
def k8s():
    return Swagger2Spec(K8S, relax={"trailing_slash": True, "slash_params": {"path"}})


def test_alertmanager_silence_body(am):
    op = am.validate_request("POST", "/api/v2/silences", {}, JSON, json.dumps(SILENCE).encode())
    assert op.operation_id == "postSilences"
    bad = {k: v for k, v in SILENCE.items() if k != "matchers"}
    with pytest.raises(SpecViolation, match="postSilences.*matchers"):
        am.validate_request("POST", "/api/v2/silences", {}, JSON, json.dumps(bad).encode())
    with pytest.raises(SpecViolation, match="not valid JSON"):
        am.validate_request("POST", "/api/v2/silences", {}, JSON, b"{")


def test_alertmanager_base_path_params_and_responses(am):
    op = am.validate_request("GET", "/api/v2/alerts", {"filter": ["a=b", "c=~d"], "active": ["true"]}, {}, None)
    assert op.params == {"filter": ["a=b", "c=~d"], "active": True}
    with pytest.raises(SpecViolation, match="not a boolean"):
        am.validate_request("GET", "/api/v2/alerts", {"active": ["maybe"]}, {}, None)
    op = am.validate_request("DELETE", "/api/v2/silence/0c7ee47b-7d2a-4b5c-9a49-5a3d4f2d1a11", {}, {}, None)
    assert op.path_params == {"silenceID": "0c7ee47b-7d2a-4b5c-9a49-5a3d4f2d1a11"}
    with pytest.raises(SpecViolation, match="uuid"):
        am.validate_request("DELETE", "/api/v2/silence/not-a-uuid", {}, {}, None)
    am.validate_response(op, 200, {}, b"")
    with pytest.raises(SpecViolation, match="status 418 not declared"):
        am.validate_response(op, 418, {}, b"")
    op = am.match("GET", "/api/v2/status")
    with pytest.raises(SpecViolation, match="cluster"):
        am.validate_response(op, 200, JSON, b'{"uptime": "2024-01-01T00:00:00Z"}')
    with pytest.raises(SpecViolation, match="no operation"):
        am.match("GET", "/alerts")


def test_k8s_loads_fast_and_validates_queries(k8s):
    started = time.perf_counter()
    Swagger2Spec(K8S)  # document is cached per path
    assert time.perf_counter() - started < 0.5
    op = k8s.validate_request("GET", "/api/v1/namespaces/default/pods",
                              {"labelSelector": ["a=b"], "watch": ["True"]}, {}, None)
    assert op.operation_id == "listCoreV1NamespacedPod"
    assert op.params["labelSelector"] == "a=b" and op.params["watch"] is True
    with pytest.raises(SpecViolation, match="limit.*not an integer"):
        k8s.validate_request("GET", "/api/v1/namespaces/default/pods", {"limit": ["ten"]}, {}, None)
    assert k8s.match("GET", "/api").operation_id == "getCoreAPIVersions"
    assert k8s.match("GET", "/api/v1/pods").operation_id == "listCoreV1PodForAllNamespaces"
    proxied = k8s.match("GET", "/api/v1/namespaces/mon/services/am:9093/proxy/api/v2/alerts")
    assert proxied.path_params == {"namespace": "mon", "name": "am:9093", "path": "api/v2/alerts"}


def test_k8s_response_schema_and_int_or_string(k8s):
    op = k8s.match("GET", "/api/v1/namespaces/default/services/web")
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}}
    k8s.validate_response(op, 200, JSON, json.dumps(service).encode())
    service["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(SpecViolation, match="spec/ports/0/port"):
        k8s.validate_response(op, 200, JSON, json.dumps(service).encode())
    log = k8s.match("GET", "/api/v1/namespaces/default/pods/p/log")
    k8s.validate_response(log, 200, {}, b"plain text", "text/plain")
    with pytest.raises(SpecViolation, match="Content-Type"):
        k8s.validate_response(log, 200, {}, b"<x/>", "application/xml")


def test_azure_devops_relaxations():
    strict = Swagger2Spec(ADO, case_insensitive=True)
    accept = {"Accept": "application/json;api-version=7.1-preview.3"}
    with pytest.raises(SpecViolation, match="api-version"):
        strict.validate_request("GET", "/org/proj/_apis/wit/workitems", {"ids": ["1,2"]}, accept, None)
    ado = Swagger2Spec(ADO, case_insensitive=True, relax={
        "api_version_in_accept": True, "wrapped_lists": True, "enum_case_insensitive": True})
    op = ado.validate_request("GET", "/org/proj/_apis/WIT/workItems", {"ids": ["1,2"], "$expand": ["Relations"]},
                              accept, None)
    assert op.operation_id == "Work Items_List" and op.params["api-version"] == "7.1-preview.3"
    ado.validate_response(op, 200, JSON, b'{"count": 1, "value": [{"id": 1, "fields": {}}]}')
    with pytest.raises(SpecViolation):
        ado.validate_response(op, 200, JSON, b'{"count": 1, "value": [{"id": "one"}]}')
    # plain "get release" lives in x-ms-paths; the `paths` entry needs definitionSnapshotRevision
    op = ado.validate_request("GET", "/org/proj/_apis/release/releases/7", {}, accept, None)
    assert op.path_template.endswith("{releaseId}?") and op.params["releaseId"] == 7


def test_json_patch_body_validated():
    ado = Swagger2Spec(ADO, case_insensitive=True, relax={"api_version_in_accept": True, "untyped_objects": True})
    headers = {"Accept": "application/json;api-version=7.1-preview.3",
               "Content-Type": "application/json-patch+json"}
    patch = [{"op": "add", "path": "/fields/System.Title", "value": "x"}]
    op = ado.validate_request("POST", "/org/proj/_apis/wit/workitems/$Bug", {}, headers, json.dumps(patch).encode())
    assert op.path_params["type"] == "Bug"
    with pytest.raises(SpecViolation, match="request body"):
        ado.validate_request("POST", "/org/proj/_apis/wit/workitems/$Bug", {}, headers, b'{"op": 1}')


def test_x_ms_paths_and_skip_url_encoding():
    la = Swagger2Spec(LOG_ANALYTICS)
    op = la.match("POST", "/v1/subscriptions/s/resourceGroups/g/providers/p/query")
    assert op.path_params["resourceId"] == "subscriptions/s/resourceGroups/g/providers/p"
    assert la.match("POST", "/v1/workspaces/w/query").operation_id == "Query_Execute"
    blob = Swagger2Spec(BLOB, relax={"param_patterns": {"blob": None}, "slash_params": {"blob"}})
    flat = blob.match("GET", "/c", {"restype": ["container"], "comp": ["list"]})
    tree = blob.match("GET", "/c", {"restype": ["container"], "comp": ["list"], "delimiter": ["/"]})
    assert flat.path_template.endswith("flat") and tree.path_template.endswith("hierarchy")
    op = blob.validate_request("GET", "/c/logs/2024-01-01_app.log", {}, {"x-ms-version": "2026-10-06"}, None)
    assert op.path_params["blob"] == "logs/2024-01-01_app.log"
    with pytest.raises(SpecViolation, match="x-ms-version"):
        blob.validate_request("GET", "/c/a.txt", {}, {}, None)


def test_unknown_relaxation_refused():
    with pytest.raises(ValueError, match="unknown relaxations"):
        Swagger2Spec(ALERTMANAGER, relax={"everything": True})


class _Alertmanager(SimServer):
    spec = Swagger2Spec(ALERTMANAGER)

    def handle(self, request):
        if request.path.endswith("/status"):
            return Response.json({"uptime": "x"})  # invalid on purpose
        if request.path.endswith("/receivers"):
            return Response(200, iter([b'[{"name":', b'"null"}]']), content_type="application/json")
        return Response.json([])


def _call(sim, method, path, body=None, context=None):
    req = urllib.request.Request(sim.url + path, method=method, data=body, headers=JSON)
    try:
        with urllib.request.urlopen(req, context=context, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_sim_server_tls_streaming_violations_faults():
    with _Alertmanager(tls=True) as sim:
        context = ssl.create_default_context(cafile=sim.ca_file)
        assert _call(sim, "GET", "/api/v2/receivers", context=context)[2] == b'[{"name":"null"}]'
        assert _call(sim, "POST", "/api/v2/silences", b"{}", context)[0] == 400
        assert _call(sim, "GET", "/api/v2/nowhere", context=context)[0] == 404
        _call(sim, "GET", "/api/v2/status", context=context)
        assert len(sim.violations) == 3 and "getStatus" in sim.violations[2]
        with pytest.raises(AssertionError, match="3 spec violation"):
            sim.assert_clean()
        sim.violations.clear()
        sim.faults.append({"path": "/alerts$", "status": 429, "headers": {"Retry-After": "3"}})
        sim.add_fault("/alerts$", status=503, times=1)
        status, headers, _ = _call(sim, "GET", "/api/v2/alerts", context=context)
        assert (status, headers["Retry-After"]) == (429, "3")
        assert _call(sim, "GET", "/api/v2/alerts", context=context)[0] == 503
        assert _call(sim, "GET", "/api/v2/alerts", context=context)[0] == 200
        sim.add_fault("/alerts$", drop=True)
        with pytest.raises(Exception):
            _call(sim, "GET", "/api/v2/alerts", context=context)
        assert [r.path for r in sim.requests][-1] == "/api/v2/alerts"
        assert sim.requests[1].json == {} and sim.requests[1].method == "POST"
        sim.assert_clean()
