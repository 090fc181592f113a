"""alerts against the real Alertmanager, with amtool as the peer."""
import http.server
import json
import subprocess
import threading

import pytest

ALERTS = [
    {"labels": {"alertname": "HighLatency", "severity": "critical", "service": "api", "cluster": "prod"},
     "annotations": {"summary": "p99 latency above 2s"}, "generatorURL": "http://prometheus/graph?g0.expr=x"},
    {"labels": {"alertname": "HighLatency", "severity": "warning", "service": "web", "cluster": "prod"},
     "annotations": {"summary": "p99 latency above 1s"}},
    {"labels": {"alertname": "DiskFull", "severity": "warning", "instance": "db1", "cluster": "stage"},
     "annotations": {"description": "disk 97% full"}},
    {"labels": {"alertname": "PodCrashLooping", "severity": "critical", "service": "payments", "cluster": "prod"}},
]


def amtool(am, *args):
    out = subprocess.run(["amtool", f"--alertmanager.url={am.url}", *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def am(alertmanager, monkeypatch):
    alertmanager.post_alerts(ALERTS)
    monkeypatch.setenv("ONCALL_ALERTS_URL", alertmanager.url)
    return alertmanager


def fingerprints(items):
    return sorted(a["fingerprint"] for a in items)


@pytest.mark.parametrize("matchers", [
    [], ["HighLatency"], ["severity=critical"], ["service=~a.*"], ["service!~a.*"], ["severity!=critical"],
    ["alertname=HighLatency", "cluster=prod"], ["service=~'api|web'"],
])
def test_alert_filters_match_amtool(am, oncall, matchers):
    r = oncall("alerts", "list", *matchers)
    assert r.code == 0, r
    ours = fingerprints(r.json)
    peer = fingerprints(json.loads(amtool(am, "alert", "query", "-o", "json", *[m.replace("'", '"') for m in matchers])))
    assert ours == peer
    assert ours, "every case selects at least one alert"


def test_brace_matchers_select_like_separate_ones(am, oncall):
    braces = oncall("alerts", "list", '{severity="warning",cluster=~"st.*"}').json
    separate = json.loads(amtool(am, "alert", "query", "-o", "json", "severity=warning", "cluster=~st.*"))
    assert fingerprints(braces) == fingerprints(separate) != []


def test_alert_items_keep_the_api_fields(am, oncall):
    r = oncall("alerts", "list", "severity=critical", "service=api")
    (alert,) = r.json
    for key in ("fingerprint", "labels", "annotations", "startsAt", "endsAt", "status", "receivers", "generatorURL"):
        assert key in alert
    assert alert["status"]["state"] == "active"
    assert alert["receivers"] == [{"name": "pager"}]
    assert set(alert["status"]) >= {"silencedBy", "inhibitedBy"}


def test_table_shows_the_on_call_columns_without_dropping_any(am, oncall):
    r = oncall("alerts", "list", "-o", "table")
    header = r.out.splitlines()[0].split()
    assert header == ["Alertname", "Severity", "State", "Age", "Summary", "Fingerprint"]
    assert "p99 latency above 2s" in r.out and "disk 97% full" in r.out
    # with --query the chosen data is shown whole, nested values as JSON, no column hidden
    r = oncall("alerts", "list", "HighLatency", "--query", "[].{id: fingerprint, labels: labels}", "-o", "table")
    assert r.out.splitlines()[0].split() == ["id", "labels"]
    assert '"service":"api"' in r.out


@pytest.mark.parametrize("fmt", ["csv", "md", "tsv", "yaml", "jsonc", "none"])
def test_every_output_format(am, oncall, fmt):
    query = ["--query", "[].labels.alertname"] if fmt == "tsv" else []
    r = oncall("alerts", "list", "HighLatency", "-o", fmt, *query)
    assert r.code == 0, r
    if fmt == "none":
        assert r.out == ""
    elif fmt == "csv":
        assert r.out.splitlines()[0] == "Alertname,Severity,State,Age,Summary,Fingerprint"
        assert len(r.out.splitlines()) == 3
    elif fmt == "md":
        assert r.out.startswith("| Alertname")
    else:
        assert "HighLatency" in r.out


def test_state_filters(am, oncall):
    silence = oncall("alerts", "silence", "add", "DiskFull", "--comment", "known", "--yes")
    assert silence.code == 0, silence
    active = oncall("alerts", "list").json
    assert "DiskFull" not in {a["labels"]["alertname"] for a in active}
    silenced = oncall("alerts", "list", "--silenced").json
    assert [a["labels"]["alertname"] for a in silenced] == ["DiskFull"]
    assert silenced[0]["status"]["silencedBy"] == [silence.json["id"]]
    assert len(oncall("alerts", "list", "--all").json) == len(ALERTS)
    assert fingerprints(oncall("alerts", "list", "--silenced").json) == fingerprints(
        json.loads(amtool(am, "alert", "query", "-s", "-o", "json")))
    pager = oncall("alerts", "list", "--all", "--receiver", "pager").json
    assert {a["labels"]["severity"] for a in pager} == {"critical"}


def test_groups_and_show(am, oncall):
    groups = oncall("alerts", "groups").json
    names = {g["labels"].get("alertname") for g in groups}
    assert names == {"HighLatency", "DiskFull", "PodCrashLooping"}
    table = oncall("alerts", "groups", "-o", "table").out
    assert "alertname=HighLatency" in table
    one = oncall("alerts", "list", "DiskFull").json[0]
    shown = oncall("alerts", "show", one["fingerprint"][:6])
    assert shown.code == 0, shown
    assert shown.json["fingerprint"] == one["fingerprint"]
    missing = oncall("alerts", "show", "ffffffffffffffff")
    assert missing.code == 5 and "no alert" in missing.err


def test_silence_made_by_oncall_is_seen_by_amtool(am, oncall):
    r = oncall("alerts", "silence", "add", "service=~pay.*", "severity=critical", "--comment", "INC-7 payments deploy",
               "--duration", "2h", "--author", "alice", "--yes")
    assert r.code == 0, r
    sid = r.json["id"]
    peer = json.loads(amtool(am, "silence", "query", "-o", "json"))
    (theirs,) = [s for s in peer if s["id"] == sid]
    assert theirs["createdBy"] == "alice" and theirs["comment"] == "INC-7 payments deploy"
    assert {(m["name"], m["value"], m["isRegex"]) for m in theirs["matchers"]} == {
        ("service", "pay.*", True), ("severity", "critical", False)}
    assert r.json["coveredAlerts"] == [a["fingerprint"] for a in oncall("alerts", "list", "PodCrashLooping", "--all").json]
    # covered alert is now silenced, per amtool too
    silenced = json.loads(amtool(am, "alert", "query", "-s", "-o", "json"))
    assert {a["labels"]["alertname"] for a in silenced} == {"PodCrashLooping"}


def test_silence_made_by_amtool_is_listed_and_expired_by_oncall(am, oncall):
    sid = amtool(am, "silence", "add", "alertname=DiskFull", "--comment=from amtool", "--author=bob", "-d", "1h").strip()
    listed = oncall("alerts", "silence", "list", "--created-by", "bob").json
    assert [s["id"] for s in listed] == [sid]
    assert oncall("alerts", "silence", "list", "--comment", "FROM AMTOOL").json[0]["id"] == sid
    expired = oncall("alerts", "silence", "expire", sid)
    assert expired.code == 0, expired
    assert expired.json[0]["status"]["state"] == "expired"
    assert json.loads(amtool(am, "silence", "query", "-o", "json")) == []
    assert [s["id"] for s in json.loads(amtool(am, "silence", "query", "--expired", "-o", "json"))] == [sid]
    assert [s["id"] for s in oncall("alerts", "silence", "list", "--expired").json] == [sid]
    again = oncall("alerts", "silence", "expire", sid)
    assert again.code == 6 and "already expired" in again.err


def test_silence_from_alert_uses_exactly_its_labels(am, oncall):
    target = oncall("alerts", "list", "HighLatency", "service=web").json[0]
    r = oncall("alerts", "silence", "add", "--from-alert", target["fingerprint"], "--comment", "just this one", "--yes")
    assert r.code == 0, r
    assert {m["name"]: m["value"] for m in r.json["matchers"]} == target["labels"]
    assert r.json["coveredAlerts"] == [target["fingerprint"]]
    still_active = oncall("alerts", "list", "HighLatency").json
    assert [a["labels"]["service"] for a in still_active] == ["api"]


def test_dry_run_previews_and_changes_nothing(am, oncall):
    r = oncall("alerts", "silence", "add", "cluster=prod", "--comment", "maintenance", "--dry-run")
    assert r.code == 0, r
    assert r.json["dryRun"] is True
    assert r.json["request"]["method"] == "POST" and r.json["request"]["url"].endswith("/api/v2/silences")
    assert len(r.json["wouldSilence"]) == 3
    assert am.api("/silences") == []
    table = oncall("alerts", "silence", "add", "cluster=prod", "--comment", "maintenance", "--dry-run", "-o", "table")
    assert table.out.count("prod") == 0 or "HighLatency" in table.out


def test_silence_add_without_terminal_needs_yes(am, oncall, isolated_home):
    r = oncall("alerts", "silence", "add", "DiskFull", "--comment", "x")
    assert r.code == 2 and "--yes" in r.err
    assert "covers 1 current alert" in r.err
    assert am.api("/silences") == []


def test_silence_window_and_validation(am, oncall):
    r = oncall("alerts", "silence", "add", "DiskFull", "--comment", "window", "--start", "2030-01-01T22:00:00Z",
               "--end", "2030-01-02T02:00:00Z", "--yes")
    assert r.code == 0, r
    assert r.json["status"]["state"] == "pending"
    assert r.json["startsAt"].startswith("2030-01-01T22:00")
    assert oncall("alerts", "silence", "list", "--active").json == []
    bad = oncall("alerts", "silence", "add", "DiskFull", "--comment", "x", "--duration", "soon", "--yes")
    assert bad.code == 2 and "invalid duration" in bad.err
    backwards = oncall("alerts", "silence", "add", "DiskFull", "--comment", "x", "--start", "2030-01-02T00:00:00Z",
                       "--end", "2030-01-01T00:00:00Z", "--yes")
    assert backwards.code == 2 and "before it starts" in backwards.err
    no_comment = oncall("alerts", "silence", "add", "DiskFull", "--yes")
    assert no_comment.code == 2


def test_mutations_are_audited(am, oncall):
    sid = oncall("alerts", "silence", "add", "DiskFull", "--comment", "audit me", "--yes").json["id"]
    oncall("alerts", "silence", "add", "DiskFull", "--comment", "preview only", "--dry-run")
    oncall("alerts", "silence", "expire", sid)
    log = oncall("audit", "list").json
    assert [(e["command"], e["result"]) for e in log] == [("alerts silence add", "ok"), ("alerts silence expire", "ok")]
    assert log[1]["target"] == sid
    assert all(e["user"] and e["time"].endswith("Z") and e["profile"] == "default" for e in log)
    assert oncall("audit", "list", "--command", "alerts silence expire", "--query", "length(@)").out.strip() == "1"


@pytest.mark.parametrize("args, code, message", [
    (["alerts", "list", "foo=~("], 2, "malformed matcher"),
    (["alerts", "list", "a", "b~c"], 2, "malformed matcher"),
    (["alerts", "list", "--url", "http://127.0.0.1:9"], 8, "cannot reach Alertmanager"),
    (["alerts", "list", "--url", "not a url"], 3, "invalid Alertmanager URL"),
    (["alerts", "silence", "show", "not-a-uuid"], 5, "no silence"),
    (["alerts", "silence", "show", "0b8a1b6e-0000-4000-8000-000000000000"], 5, "404"),
    (["alerts", "list", "-o", "bogus"], 2, "not a valid value for '--output/-o'"),
    (["alerts", "list", "--query", "[."], 2, "--query"),
    (["alerts", "list", "--query", "abs(labels)"], 2, "invalid --query"),
])
def test_bad_input_gives_one_line_and_exit_code(am, oncall, args, code, message):
    r = oncall(*args)
    assert r.code == code, r
    assert message in r.err
    assert "Traceback" not in r.err and "Traceback" not in r.out


class _Failing(http.server.BaseHTTPRequestHandler):
    status = 500

    def do_GET(self):
        body = json.dumps({"code": self.status, "message": "boom from the server"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, code", [(500, 7), (503, 7), (401, 4), (403, 4), (429, 9), (400, 2)])
def test_server_errors_map_to_exit_codes(oncall, status, code):
    handler = type("H", (_Failing,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = oncall("alerts", "list", "--url", f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert r.code == code, r
    assert f"answered {status}" in r.err and "boom from the server" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_secrets_never_print_even_with_debug(am, oncall, tmp_path):
    token, password = "planted-Token-8c1f2e9d", "planted-Pass-77aa31"
    r = oncall("alerts", "list", "--token", token, "--debug")
    r2 = oncall("alerts", "silence", "list", "--username", "ops", "--password", password, "--debug", "-o", "table")
    r3 = oncall("alerts", "list", "--url", "http://127.0.0.1:9", "--password", password, "--username", "x", "--debug")
    for res in (r, r2, r3):
        assert token not in res.out + res.err and password not in res.out + res.err
    assert r.code == 0 and r2.code == 0 and r3.code == 8
    assert "DEBUG" in r.err or "debug" in r.err.lower()
    (tmp_path / "c").write_text("")
    oncall("configure", "set", f"alerts.token={token}")
    shown = oncall("configure", "show")
    assert token not in shown.out and "***" in shown.out
    assert token not in (tmp_path / "home" / ".oncall" / "audit.jsonl").read_text() if (tmp_path / "home" / ".oncall" / "audit.jsonl").exists() else True
