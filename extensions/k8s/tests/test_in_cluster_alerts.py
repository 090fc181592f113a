"""`oncall alerts ... --in-cluster`: the real Alertmanager behind the simulated API server's service proxy."""
import pytest

ALERTS = [
    {"labels": {"alertname": "PodCrashLooping", "severity": "critical", "namespace": "shop", "pod": "payments-0"},
     "annotations": {"summary": "payments is crash looping"}},
    {"labels": {"alertname": "HighLatency", "severity": "warning", "service": "api"}},
]


@pytest.fixture
def am(alertmanager):
    alertmanager.post_alerts(ALERTS)
    return alertmanager


def operated(sim, am, ns="monitoring"):
    """The services the prometheus-operator makes: a headless 'operated' one and the chart's ClusterIP one."""
    sim.add_service(ns, "alertmanager-operated", labels={"operated-alertmanager": "true"}, selector={"app": "am"},
                    ports=[{"name": "web", "port": 9093, "targetPort": "web"},
                           {"name": "tcp-mesh", "port": 9094, "targetPort": 9094}])
    sim.add_service(ns, "kube-prometheus-stack-alertmanager", labels={"app": "kube-prometheus-stack-alertmanager"},
                    selector={"app": "am"}, ports=[{"name": "http-web", "port": 9093, "targetPort": 9093}])
    sim.proxy_targets[(ns, "alertmanager-operated")] = am.url
    sim.proxy_targets[(ns, "kube-prometheus-stack-alertmanager")] = am.url


def proxied(sim):
    return [r.path for r in sim.requests if "/proxy/" in r.path]


def test_alerts_list_in_cluster_is_the_same_as_direct(sim, kubeconfig, am, oncall):
    operated(sim, am)
    r = oncall("alerts", "list", "--in-cluster", "--context", "sim", "severity=critical")
    assert r.code == 0, r
    direct = oncall("alerts", "list", "--url", am.url, "severity=critical")
    assert r.json == direct.json and [a["labels"]["alertname"] for a in r.json] == ["PodCrashLooping"]
    assert proxied(sim) == ["/api/v1/namespaces/monitoring/services/alertmanager-operated:9093/proxy/api/v2/alerts"]
    request = next(q for q in sim.requests if "/proxy/" in q.path)
    assert request.query["filter"] == ['severity="critical"']
    assert request.headers["Authorization"] == f"Bearer {sim.token}"


def test_silence_add_in_cluster_creates_it_in_alertmanager(sim, kubeconfig, am, oncall):
    operated(sim, am)
    preview = oncall("alerts", "silence", "add", "PodCrashLooping", "--comment", "INC-9 payments OOM",
                     "--in-cluster", "--dry-run")
    assert preview.code == 0, preview
    assert preview.json["request"]["url"] == \
        f"{sim.url}/api/v1/namespaces/monitoring/services/alertmanager-operated:9093/proxy/api/v2/silences"
    assert am.api("/silences") == []
    r = oncall("alerts", "silence", "add", "PodCrashLooping", "--comment", "INC-9 payments OOM", "--in-cluster",
               "-n", "monitoring", "--yes")
    assert r.code == 0, r
    (made,) = am.api("/silences")
    assert made["id"] == r.json["id"] and made["comment"] == "INC-9 payments OOM"
    assert len(r.json["coveredAlerts"]) == 1
    expired = oncall("alerts", "silence", "expire", made["id"], "--in-cluster")
    assert expired.code == 0 and am.api("/silences")[0]["status"]["state"] == "expired"


def test_in_cluster_as_the_profile_default(sim, kubeconfig, am, oncall):
    operated(sim, am)
    oncall("configure", "set", "alerts.in_cluster=true")
    oncall("configure", "set", "alerts.namespace=monitoring")
    r = oncall("alerts", "list", "--all")
    assert r.code == 0, r
    assert len(r.json) == 2 and len(proxied(sim)) == 1


def test_service_discovery_by_names_labels_and_override(sim, kubeconfig, am, oncall):
    # one plain 'alertmanager' service with an http port: found by name
    sim.add_service("ops", "alertmanager", ports=[{"name": "http", "port": 80, "targetPort": 9093}])
    sim.proxy_targets[("ops", "alertmanager")] = am.url
    assert oncall("alerts", "list", "--in-cluster").code == 0
    assert proxied(sim)[-1].startswith("/api/v1/namespaces/ops/services/alertmanager:80/proxy/")
    # a second one elsewhere: ambiguous, both named
    sim.add_service("tenant", "team-alertmanager", ports=[{"name": "web", "port": 9093}])
    sim.proxy_targets[("tenant", "team-alertmanager")] = am.url
    many = oncall("alerts", "list", "--in-cluster")
    assert many.code == 2 and "ops/alertmanager" in many.err and "tenant/team-alertmanager" in many.err
    assert "--service" in many.err
    assert oncall("alerts", "list", "--in-cluster", "-n", "tenant").code == 0
    assert proxied(sim)[-1].startswith("/api/v1/namespaces/tenant/services/team-alertmanager:9093/proxy/")
    assert oncall("alerts", "list", "--in-cluster", "--service", "alertmanager").code == 0
    assert proxied(sim)[-1].startswith("/api/v1/namespaces/ops/services/alertmanager:80/proxy/")


def test_the_operated_service_wins(sim, kubeconfig, am, oncall):
    operated(sim, am)
    assert oncall("alerts", "list", "--in-cluster").code == 0
    assert "/services/alertmanager-operated:9093/" in proxied(sim)[0]
    r = oncall("alerts", "list", "--in-cluster", "--service", "kube-prometheus-stack-alertmanager")
    assert r.code == 0, r
    assert "/services/kube-prometheus-stack-alertmanager:9093/" in proxied(sim)[-1]


@pytest.mark.parametrize("case, code, message", [
    ("none", 5, "no Alertmanager service found in any namespace"),
    ("missing-name", 5, "no service named 'nope'"),
    ("no-endpoints", 7, "answered 503"),
    ("bad-token", 4, "answered 401"),
])
def test_in_cluster_failures_are_one_line(sim, kubeconfig, am, oncall, isolated_home, case, code, message):
    sim.add_service("web", "frontend")
    args = ["alerts", "list", "--in-cluster"]
    if case == "missing-name":
        args += ["--service", "nope"]
    if case == "no-endpoints":
        sim.add_service("monitoring", "alertmanager", ports=[{"name": "web", "port": 9093}])
    if case == "bad-token":
        operated(sim, am)
        sim.write_kubeconfig(isolated_home / ".kube" / "config", token="expired-token")
    r = oncall(*args)
    assert r.code == code, r
    assert message in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    if case == "none":
        assert "--service" in r.err
