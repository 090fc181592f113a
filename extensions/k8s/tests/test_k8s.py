"""oncall k8s restarts / events / logs through the real CLI against the spec-validated Kubernetes simulator."""
import datetime as dt
import json
import subprocess
import sys

import pytest

from support.cli import VENV_BIN, run_process

def ago(**kw):
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(**kw)


def pod_requests(sim):
    return [r for r in sim.requests if "/pods" in r.path]


# ---------------------------------------------------------------------- the module stays light


def test_operations_module_does_not_import_the_sdk():
    code = ("import sys, oncall_k8s.operations; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'urllib3', 'websocket')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------- restarts


def test_restarts_of_a_crash_looping_pod_say_why_it_died(sim, kubeconfig, oncall, crash_looping):
    pod = crash_looping(owner=("ReplicaSet", "payments-7d9f8c6b5d"), labels={"app": "payments",
                                                                             "pod-template-hash": "7d9f8c6b5d"})
    sim.add_deployment("team", "web", replicas=2)  # never restarted: not listed
    r = oncall("k8s", "restarts")
    assert r.code == 0, r
    (row,) = r.json
    assert row == {
        "namespace": "team", "pod": "payments-7d9f8c6b5d-x2x4q", "container": "app", "initContainer": False,
        "restartCount": 4, "lastRestart": row["lastRestart"], "reason": "OOMKilled", "exitCode": 137, "signal": 9,
        "message": None, "state": "waiting", "stateReason": "CrashLoopBackOff", "ready": False,
        "podPhase": "Running", "node": "node-1", "owner": "Deployment/payments"}
    finished = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["finishedAt"]
    assert row["lastRestart"] == finished
    assert abs((dt.datetime.fromisoformat(finished.replace("Z", "+00:00")) - ago(minutes=5)).total_seconds()) < 60


def test_restarts_sorted_by_most_recent_and_filtered(sim, kubeconfig, oncall, crash_looping):
    crash_looping(minutes_ago=5)
    sim.add_pod("team", "old-job", restarts=1, owner=("Job", "nightly"),
                last_terminated={"reason": "Error", "exitCode": 2, "finishedAt": ago(days=2)})
    sim.add_pod("team", "flappy", restarts=9, init_containers=["migrate"],
                last_terminated={"app": {"reason": "Error", "exitCode": 1, "finishedAt": ago(minutes=30)}})
    sim.add_pod("team", "sts-0", restarts=2, owner=("StatefulSet", "db"), labels={"app": "db"},
                last_terminated={"reason": "Completed", "exitCode": 0, "finishedAt": ago(hours=3)})
    sim.add_pod("elsewhere", "far", restarts=3, last_terminated={"reason": "OOMKilled", "exitCode": 137,
                                                                 "finishedAt": ago(minutes=1)})
    names = [(x["pod"], x["container"]) for x in oncall("k8s", "restarts").json]
    assert names == [("payments-7d9f8c6b5d-x2x4q", "app"), ("flappy", "app"), ("sts-0", "app"), ("old-job", "app")]
    everywhere = oncall("k8s", "restarts", "-A").json
    assert [x["pod"] for x in everywhere][0] == "far" and len(everywhere) == 5
    assert [x["pod"] for x in oncall("k8s", "restarts", "--min", "4").json] == ["payments-7d9f8c6b5d-x2x4q", "flappy"]
    assert [x["pod"] for x in oncall("k8s", "restarts", "--since", "1h").json] == ["payments-7d9f8c6b5d-x2x4q",
                                                                                    "flappy"]
    assert [x["pod"] for x in oncall("k8s", "restarts", "-l", "app=db").json] == ["sts-0"]
    owners = {x["pod"]: x["owner"] for x in oncall("k8s", "restarts").json}
    assert owners["sts-0"] == "StatefulSet/db" and owners["old-job"] == "Job/nightly" and owners["flappy"] is None
    assert [x["pod"] for x in oncall("k8s", "restarts", "-n", "elsewhere").json] == ["far"]
    # --min 0 lists every container, init containers marked
    every = oncall("k8s", "restarts", "--min", "0", "-l", "!app").json
    assert ("flappy", "migrate", True) in {(x["pod"], x["container"], x["initContainer"]) for x in every}


def test_restarts_make_one_list_call_per_scope(sim, kubeconfig, oncall):
    sim.bulk_pods(1200, namespaces=4)
    before = len(sim.requests)
    r = oncall("k8s", "restarts", "-A")
    assert r.code == 0, r
    calls = sim.requests[before:]
    assert {c.path for c in calls} == {"/api/v1/pods"}  # pages of one list: never a call per pod
    assert len(calls) == 3 and all(c.query["limit"] == ["500"] for c in calls)
    assert len(r.json) == len([i for i in range(1200) if i % 7 == 0])
    assert r.json[0]["reason"] in ("OOMKilled", "Error")


def test_restarts_table_shows_every_on_call_column(sim, kubeconfig, oncall, crash_looping):
    crash_looping()
    r = oncall("k8s", "restarts", "-o", "table")
    assert r.code == 0, r
    header = r.out.splitlines()[0].split()
    assert header == ["Namespace", "Pod", "Container", "Restarts", "LastRestart", "Age", "Reason", "Exit", "Signal",
                      "State", "Node", "Owner"]
    row = r.out.splitlines()[2].split()
    assert row[:4] == ["team", "payments-7d9f8c6b5d-x2x4q", "app", "4"]
    assert row[5:] == ["5m", "OOMKilled", "137", "9", "CrashLoopBackOff", "node-1"]


def test_kubectl_plugin_gives_the_same_json(sim, kubeconfig, oncall, crash_looping, tmp_path):
    crash_looping()
    sim.add_pod("prod", "api-0", restarts=3, last_terminated={"reason": "Error", "exitCode": 1,
                                                              "finishedAt": ago(hours=1)})
    # a second context in a second kubeconfig file: KUBECONFIG lists both
    other = sim.write_kubeconfig(tmp_path / "second", context="prod-admin", namespace="default")
    env = {"KUBECONFIG": f"{kubeconfig}:{other}"}
    peer = run_process([VENV_BIN / "kubectl", "oncall", "k8s", "restarts", "-n", "prod", "--context", "prod-admin"],
                       env=env)
    assert peer.code == 0, peer
    ours = run_process([VENV_BIN / "oncall", "k8s", "restarts", "-n", "prod", "--context", "prod-admin"], env=env)
    assert json.loads(peer.out) == json.loads(ours.out) != []
    assert [x["pod"] for x in json.loads(ours.out)] == ["api-0"]


# ---------------------------------------------------------------------- cluster selection


def test_context_namespace_and_several_kubeconfig_files(sim, kubeconfig, oncall, tmp_path, monkeypatch):
    sim.add_pod("team", "t", restarts=1)
    sim.add_pod("ops", "o", restarts=1)
    second = sim.write_kubeconfig(tmp_path / "ops.yaml", context="ops", namespace="ops")
    monkeypatch.setenv("KUBECONFIG", f"{kubeconfig}:{second}")
    assert [x["pod"] for x in oncall("k8s", "restarts").json] == ["t"]           # current context: sim/team
    assert [x["pod"] for x in oncall("k8s", "restarts", "--context", "ops").json] == ["o"]  # its namespace
    assert [x["pod"] for x in oncall("k8s", "restarts", "--kubeconfig", str(second)).json] == ["o"]
    oncall("configure", "set", "k8s.context=ops")
    assert [x["pod"] for x in oncall("k8s", "restarts").json] == ["o"]           # config default for a profile
    missing = oncall("k8s", "restarts", "--context", "nope")
    assert missing.code == 3 and "context 'nope' is not in the kubeconfig" in missing.err and "ops" in missing.err


def test_in_cluster_service_account(sim, oncall, tmp_path, monkeypatch):
    sim.add_pod("apps", "inside", restarts=2)
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text(sim.token)
    (account / "ca.crt").write_text(open(sim.ca_file).read())
    (account / "namespace").write_text("apps")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(sim.port))
    monkeypatch.setenv("ONCALL_K8S_SERVICEACCOUNT_DIR", str(account))
    r = oncall("k8s", "restarts")
    assert r.code == 0, r
    assert [x["pod"] for x in r.json] == ["inside"]


@pytest.mark.parametrize("setup, args, code, message", [
    ("none", ["k8s", "restarts"], 3, "no Kubernetes configuration"),
    ("token", ["k8s", "restarts"], 4, "answered 401"),
    ("stopped", ["k8s", "restarts"], 8, "cannot reach the Kubernetes API"),
    ("ok", ["k8s", "logs", "nope"], 5, "pod 'nope' not found in namespace 'team'"),
    ("ok", ["k8s", "events", "deployment/nope"], 5, "deployment 'nope' not found"),
    ("ok", ["k8s", "logs", "cronjob/x"], 2, "cannot use 'cronjob/x' as a target"),
    ("ok", ["k8s", "logs"], 2, "give a TARGET"),
    ("ok", ["k8s", "logs", "-l", "app=x", "-A", "-n", "a"], 2, "exclude each other"),
    ("ok", ["k8s", "logs", "x", "-p", "-f"], 2, "cannot be followed"),
    ("ok", ["k8s", "logs", "-l", "a=(", "--grep", "("], 2, "invalid --grep regular expression"),
])
def test_bad_setup_or_input_gives_one_line_and_exit_code(sim, oncall, isolated_home, setup, args, code, message):
    if setup != "none":
        path = isolated_home / ".kube" / "config"
        path.parent.mkdir(parents=True, exist_ok=True)
        sim.write_kubeconfig(path, namespace="team", token="wrong-token" if setup == "token" else None)
    if setup == "stopped":
        sim.stop()
    r = oncall(*args)
    assert r.code == code, r
    assert message in r.err
    assert "Traceback" not in r.err + r.out
    assert len(r.err.strip().splitlines()) == 1, r.err


def test_argument_errors_are_usage_errors(sim, kubeconfig, oncall):
    r = oncall("k8s", "restarts", "--since", "soon")
    assert r.code == 2 and "--since" in r.err and "Traceback" not in r.err
    r = oncall("k8s", "events", "--type", "Bad")
    assert r.code == 2 and "Normal, Warning" in r.err


@pytest.mark.parametrize("status, times, code", [(500, None, 7), (503, None, 7), (429, None, 9), (403, 1, 4)])
def test_api_errors_after_retries(sim, kubeconfig, oncall, status, times, code):
    sim.add_pod("team", "p", restarts=1)
    sim.add_fault(r"/pods$", status=status, times=times, headers={"Retry-After": "0"},
                  body={"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status,
                        "message": f"planted failure {status}"})
    r = oncall("k8s", "restarts")
    assert r.code == code, r
    assert f"answered {status}" in r.err and f"planted failure {status}" in r.err
    assert len(r.err.strip().splitlines()) == 1
    sim.faults.clear()


def test_transient_api_errors_are_retried(sim, kubeconfig, oncall):
    sim.add_pod("team", "p", restarts=1)
    sim.add_fault(r"/pods$", status=429, times=1, headers={"Retry-After": "0"})
    sim.add_fault(r"/pods$", status=503, times=1)
    before = len(sim.requests)
    r = oncall("k8s", "restarts")
    assert r.code == 0, r
    assert [x["pod"] for x in r.json] == ["p"]
    assert len(sim.requests) - before == 3


def test_a_token_never_prints_even_with_debug(oncall, isolated_home):
    from simulators.k8s import K8sSimulator
    token = "planted-k8s-Token-31f9c0"
    with K8sSimulator(token=token) as sim:
        path = isolated_home / ".kube" / "config"
        path.parent.mkdir(parents=True)
        sim.write_kubeconfig(path, namespace="team")
        sim.add_pod("team", "p", restarts=1)
        sim.append_log("team", "p", "app", "hello")
        for args in (["k8s", "restarts", "--debug"], ["k8s", "logs", "p", "--debug"],
                     ["k8s", "events", "--debug", "-o", "table"]):
            r = oncall(*args)
            assert r.code == 0, r
            assert token not in r.out + r.err
        assert "DEBUG" in r.err or "debug" in r.err.lower()
        sim.stop()
        r = oncall("k8s", "restarts", "--debug")
        assert r.code == 8 and token not in r.out + r.err


# ---------------------------------------------------------------------- events


def test_events_of_a_pod_a_workload_and_a_namespace(sim, kubeconfig, oncall, crash_looping):
    deploy = sim.add_deployment("team", "web", replicas=2)
    web_pods = [p for (ns, _), p in sim.objects["pods"].items() if p["metadata"]["name"].startswith("web-")]
    rs = next(iter(sim.objects["replicasets"].values()))
    crash = crash_looping()
    sim.add_event("team", deploy, "ScalingReplicaSet", "Scaled up replica set web-x to 2", last_timestamp=ago(hours=2))
    sim.add_event("team", rs, "SuccessfulCreate", "Created pod", last_timestamp=ago(hours=2) + dt.timedelta(seconds=1))
    sim.add_event("team", web_pods[0], "Unhealthy", "Readiness probe failed: 503", type="Warning",
                  last_timestamp=ago(minutes=20), count=12)
    sim.add_event("team", crash, "OOMKilling", "Memory cgroup out of memory", type="Warning",
                  last_timestamp=ago(minutes=6))
    sim.add_event("team", crash, "BackOff", "Back-off restarting failed container app", type="Warning",
                  last_timestamp=ago(minutes=1), first_timestamp=ago(minutes=5), count=7)
    sim.add_event("other", ("Pod", "x"), "Pulled", "Pulled image", last_timestamp=ago(minutes=2))

    pod = oncall("k8s", "events", crash["metadata"]["name"]).json
    assert [e["reason"] for e in pod] == ["BackOff", "OOMKilling"]  # newest first
    assert pod[0]["count"] == 7 and pod[0]["type"] == "Warning" and pod[0]["object"] == f"Pod/{crash['metadata']['name']}"
    assert pod[0]["firstTimestamp"] < pod[0]["lastTimestamp"]
    workload = oncall("k8s", "events", "deployment/web").json
    assert [e["reason"] for e in workload] == ["Unhealthy", "SuccessfulCreate", "ScalingReplicaSet"]
    assert {e["involvedObject"]["kind"] for e in workload} == {"Deployment", "ReplicaSet", "Pod"}
    namespace = oncall("k8s", "events").json
    assert [e["reason"] for e in namespace] == ["BackOff", "OOMKilling", "Unhealthy", "SuccessfulCreate",
                                                "ScalingReplicaSet"]
    assert [e["reason"] for e in oncall("k8s", "events", "--type", "Warning").json] == ["BackOff", "OOMKilling",
                                                                                          "Unhealthy"]
    assert [e["reason"] for e in oncall("k8s", "events", "--since", "10m").json] == ["BackOff", "OOMKilling"]
    assert len(oncall("k8s", "events", "-A").json) == 6
    assert oncall("k8s", "events", "-A").json[1]["namespace"] == "other"
    table = oncall("k8s", "events", "--type", "Warning", "-o", "table")
    assert table.out.splitlines()[0].split() == ["Namespace", "LastSeen", "Type", "Reason", "Object", "Count",
                                                 "Message"]
    assert "Back-off restarting failed container app" in table.out
    pod_calls = [r for r in sim.requests if r.path == "/api/v1/namespaces/team/events"
                 and "involvedObject.name" in (r.query.get("fieldSelector") or [""])[0]]
    assert pod_calls, "a pod's events are selected by the API, not filtered here"


def test_events_of_a_service_include_its_pods(sim, kubeconfig, oncall):
    sim.add_statefulset("team", "db", replicas=2, labels={"app": "db"})
    sim.add_service("team", "db", selector={"app": "db"})
    sim.add_event("team", ("Pod", "db-1"), "Killing", "Stopping container db", type="Normal")
    sim.add_event("team", ("Pod", "cache-0"), "Killing", "Stopping container cache")
    r = oncall("k8s", "events", "svc/db")
    assert r.code == 0, r
    assert [e["object"] for e in r.json] == ["Pod/db-1"]


# ---------------------------------------------------------------------- logs


@pytest.fixture
def web(sim):
    """A deployment of two pods (app + sidecar containers) with a few log lines each, a second later each."""
    sim.add_deployment("team", "web", replicas=2, labels={"app": "web"}, containers=["app", "sidecar"])
    pods = sorted(p["metadata"]["name"] for (ns, _), p in sim.objects["pods"].items() if ns == "team")
    base = ago(minutes=30)
    for i in range(4):
        for j, pod in enumerate(pods):
            sim.append_log("team", pod, "app", f"{pod} request {i}", timestamp=base + dt.timedelta(seconds=2 * i + j))
    for pod in pods:
        sim.append_log("team", pod, "sidecar", "sidecar ready", timestamp=base)
    return pods


def test_logs_of_a_deployment_every_pod_every_container(sim, kubeconfig, oncall, web):
    r = oncall("k8s", "logs", "deployment/web")
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert len(lines) == 10
    assert lines[:5] == [f"[{web[0]}/app] {web[0]} request {i}" for i in range(4)] + [f"[{web[0]}/sidecar] sidecar ready"]
    only_app = oncall("k8s", "logs", "deploy/web", "-c", "app", "--tail", "1", "--no-prefix").out.splitlines()
    assert only_app == [f"{web[0]} request 3", f"{web[1]} request 3"]
    assert oncall("k8s", "logs", "-l", "app=web", "-c", "sidecar").out.count("sidecar ready") == 2
    assert oncall("k8s", "logs", web[1], "--grep", "request [12]", "--grep-v", "2$", "--no-prefix").out == \
        f"{web[1]} request 1\n"


def test_logs_with_timestamps_merge_pods_in_time_order(sim, kubeconfig, oncall, web):
    r = oncall("k8s", "logs", "service/web" if False else "deployment/web", "-c", "app", "--timestamps")
    lines = r.out.splitlines()
    texts = [line.split(" ", 2)[2] for line in lines]
    assert texts == [f"{web[i % 2]} request {i // 2}" for i in range(8)]
    stamps = [line.split(" ", 2)[1] for line in lines]
    assert stamps == sorted(stamps) and stamps[0].endswith("Z")


def test_logs_since_and_since_time(sim, kubeconfig, oncall, web):
    sim.append_log("team", web[0], "app", "fresh line")
    assert oncall("k8s", "logs", "deployment/web", "--since", "5m", "--no-prefix").out == "fresh line\n"
    since = (ago(minutes=30) + dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = oncall("k8s", "logs", web[0], "-c", "app", "--since-time", since, "--no-prefix").out.splitlines()
    assert out == [f"{web[0]} request 3", "fresh line"]


def test_logs_of_services_statefulsets_daemonsets_jobs(sim, kubeconfig, oncall):
    sim.add_statefulset("team", "db", replicas=1, labels={"app": "db"})
    sim.add_service("team", "db-svc", selector={"app": "db"})
    sim.add_daemonset("team", "agent", labels={"app": "agent"})
    sim.add_job("team", "migrate")
    for (ns, name), pod in list(sim.objects["pods"].items()):
        sim.append_log(ns, name, "app", f"hello from {name}")
    assert oncall("k8s", "logs", "statefulset/db").out == "[db-0/app] hello from db-0\n"
    assert oncall("k8s", "logs", "svc/db-svc").out == "[db-0/app] hello from db-0\n"
    assert oncall("k8s", "logs", "ds/agent").out.startswith("[agent-")
    assert oncall("k8s", "logs", "job/migrate").out.startswith("[migrate-")


def test_previous_logs_of_the_crash_looping_container(sim, kubeconfig, oncall, crash_looping):
    pod = crash_looping()["metadata"]["name"]
    sim.append_log("team", pod, "app", "starting payments")
    sim.append_log("team", pod, "app", "allocating cache: 2GiB", previous=True)
    sim.append_log("team", pod, "app", "fatal error: runtime: out of memory", previous=True)
    r = oncall("k8s", "logs", "-l", "app=payments", "--previous")
    assert r.code == 0, r
    assert r.out.splitlines() == [f"[{pod}/app] allocating cache: 2GiB", f"[{pod}/app] fatal error: runtime: out of memory"]
    none = oncall("k8s", "logs", pod, "-c", "proxy", "--previous")  # never restarted: the API says so
    assert none.code == 2 and 'previous terminated container "proxy"' in none.err


def test_logs_guards_and_choices(sim, kubeconfig, oncall, web):
    many = oncall("k8s", "logs", "-l", "app=web", "--max-pods", "1")
    assert many.code == 2 and "2 pods match" in many.err and "--max-pods" in many.err
    bad = oncall("k8s", "logs", "deployment/web", "-c", "nginx")
    assert bad.code == 2 and "no pod has a container named 'nginx'" in bad.err and "app, sidecar" in bad.err
    nothing = oncall("k8s", "logs", "-l", "app=none")
    assert nothing.code == 0 and nothing.out == "" and "no pod matches" in nothing.err
    no_previous = oncall("k8s", "logs", "deployment/web", "--previous")
    assert no_previous.code == 5 and "no container of these pods has a previous" in no_previous.err


def test_init_containers_with_init(sim, kubeconfig, oncall):
    sim.add_pod("team", "boot", init_containers=["migrate"], containers=["app"])
    sim.append_log("team", "boot", "migrate", "migrated 3 tables")
    sim.append_log("team", "boot", "app", "serving")
    assert oncall("k8s", "logs", "boot").out == "[boot/app] serving\n"
    assert oncall("k8s", "logs", "boot", "--init").out == "[boot/migrate] migrated 3 tables\n[boot/app] serving\n"


def test_a_log_body_cut_short_is_read_again(sim, kubeconfig, oncall, web):
    sim.add_fault(r"/log$", status=200, drop=True, body="2026-01-01T00:00:00.000000000Z partial li", times=1)
    r = oncall("k8s", "logs", web[0], "-c", "app", "--no-prefix")
    assert r.code == 0, r
    assert r.out.splitlines() == [f"{web[0]} request {i}" for i in range(4)]


def test_one_failing_container_is_reported_and_the_others_printed(sim, kubeconfig, oncall, web):
    sim.add_fault(rf"/pods/{web[1]}/log$", status=500, times=None,
                  body={"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "message": "kubelet down"})
    r = oncall("k8s", "logs", "deployment/web", "-c", "app", "--no-prefix")
    assert r.code == 0, r
    assert r.out.splitlines() == [f"{web[0]} request {i}" for i in range(4)]
    assert f"{web[1]}/app" in r.err and "kubelet down" in r.err
    sim.faults.clear()


def test_az_gives_the_same_json(sim, kubeconfig, oncall, crash_looping, az):
    crash_looping()
    sim.add_pod("team", "api-0", restarts=2, last_terminated={"reason": "Error", "exitCode": 1,
                                                              "finishedAt": ago(hours=2)})
    theirs = az.run("oncall", "k8s", "restarts", "-n", "team", "--context", "sim", "-o", "json")
    assert theirs.code == 0, theirs
    ours = oncall("k8s", "restarts", "-n", "team", "--context", "sim")
    assert json.loads(theirs.out) == ours.json
    assert [x["pod"] for x in ours.json] == ["payments-7d9f8c6b5d-x2x4q", "api-0"]
