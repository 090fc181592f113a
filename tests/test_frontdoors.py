"""Every operation builds in every front door, and the three doors give the same data."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.cli import ROOT, VENV_BIN, run_process

from oncall_common.frontdoor import commands as fd
from oncall_common.registry import REGISTRY

REGISTRY.load_extensions()
OPERATIONS = sorted(REGISTRY.operations)
EXTENSION_OPS = [n for n in OPERATIONS if REGISTRY.operations[n].extension not in (None, "core")]


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_has_help_and_an_example(name):
    spec = REGISTRY.operations[name]
    assert spec.summary, f"{name}: no summary (first docstring line)"
    assert spec.examples, f"{name}: no example"
    for title, line in spec.examples:
        assert title and line.startswith(f"oncall {name}") or line.startswith("oncall "), line
    for p in spec.params:
        assert p.help, f"{name}: parameter {p.name} has no help"


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_builds_in_knack(oncall, name):
    r = oncall(*name.split(), "--help")
    assert r.code == 0, r
    assert f"oncall {name}" in r.out
    spec = REGISTRY.operations[name]
    for p in spec.params:
        if not p.arg.positional and not p.arg.hidden:
            expected = "--no-" + p.name.replace("_", "-") if p.type is bool and p.default is True else p.option
            assert expected in r.out, f"{expected} missing from help of {name}"
    assert "Examples" in r.out


def test_knack_arguments_follow_the_annotations():
    args = dict(fd.build_arguments(REGISTRY.operations["alerts silence add"], REGISTRY))
    assert args["matchers"].type.settings["options_list"] == []
    assert args["matchers"].type.settings["nargs"] == "*"
    assert args["comment"].type.settings["required"] is True
    assert "-c" in args["comment"].type.settings["options_list"]
    assert args["dry_run"].type.settings["action"] == "store_true"
    assert args["timeout"].type.settings["type"]("2.5") == 2.5
    assert args["url"].type.settings["arg_group"] == "Alerts"


def test_az_loader_builds_every_extension_operation(az):
    r = az.python(Path(ROOT / "tests" / "support" / "az_loader_check.py").read_text())
    assert r.code == 0, r
    report = json.loads(r.out)
    assert set(report) == {f"oncall {n}" for n in EXTENSION_OPS}
    for name in EXTENSION_OPS:
        entry = report[f"oncall {name}"]
        spec = REGISTRY.operations[name]
        assert entry["summary"] == spec.summary
        assert entry["examples"] and all(e.startswith("az oncall ") for e in entry["examples"])
        assert {p.name for p in spec.params} <= set(entry["arguments"])


@pytest.fixture
def am(alertmanager, monkeypatch):
    alertmanager.post_alerts([
        {"labels": {"alertname": "HighLatency", "severity": "critical", "service": "api"},
         "annotations": {"summary": "p99 above 2s"}},
        {"labels": {"alertname": "DiskFull", "severity": "warning", "instance": "db1"}},
    ])
    monkeypatch.setenv("ONCALL_ALERTS_URL", alertmanager.url)
    return alertmanager


QUERY = "sort_by(@, &fingerprint)[].{fingerprint: fingerprint, labels: labels, state: status.state}"


def test_same_json_through_oncall_kubectl_and_az(am, az):
    args = ["alerts", "list", "--all", "--query", QUERY, "-o", "json"]
    direct = run_process([VENV_BIN / "oncall", *args])
    plugin = run_process([VENV_BIN / "kubectl", "oncall", *args])
    azure = az.run("oncall", *args)
    for r in (direct, plugin, azure):
        assert r.code == 0, r
    assert json.loads(direct.out) == json.loads(plugin.out) == json.loads(azure.out)
    assert len(json.loads(direct.out)) == 2
    # the table shape is the same in every door
    tables = [run_process([VENV_BIN / "oncall", "alerts", "list", "-o", "table"]).out,
              run_process([VENV_BIN / "kubectl", "oncall", "alerts", "list", "-o", "table"]).out,
              az.run("oncall", "alerts", "list", "-o", "table").out]
    headers = [t.splitlines()[0].split() for t in tables]
    assert headers[0] == headers[1] == headers[2] == ["Alertname", "Severity", "State", "Age", "Summary", "Fingerprint"]


def test_az_keeps_the_suites_exit_codes_and_one_line_errors(am, az):
    r = az.run("oncall", "alerts", "list", "foo=~(")
    assert r.code == 2 and "malformed matcher" in r.err and "Traceback" not in r.err
    r = az.run("oncall", "alerts", "list", "--url", "http://127.0.0.1:9")
    assert r.code == 8 and "cannot reach Alertmanager" in r.err
    r = az.run("oncall", "alerts", "silence", "add", "DiskFull", "--comment", "az made this", "--yes",
               "--query", "createdBy")
    assert r.code == 0, r
    seen = am.api("/silences")
    assert [s["comment"] for s in seen] == ["az made this"]


def test_az_secret_from_environment_never_prints_with_debug(am, az):
    token = "planted-az-token-5f1e22"
    r = az.run("oncall", "alerts", "list", "--debug", env={"ONCALL_ALERTS_TOKEN": token})
    assert r.code == 0, r
    assert token not in r.out + r.err


def test_kubectl_plugin_usage_says_kubectl_oncall(am):
    r = run_process([VENV_BIN / "kubectl", "oncall", "alerts", "list", "--help"])
    assert r.code == 0, r
    assert "kubectl oncall alerts list" in r.out
    assert "Active alerts as a table" in r.out  # help entries are found under the plugin's name too
    bad = run_process([VENV_BIN / "kubectl", "oncall", "alerts", "list", "--bogus"])
    assert bad.code == 2 and "kubectl oncall" in bad.err


def test_help_is_served_from_cache_and_stays_true(tmp_path):
    first = run_process([VENV_BIN / "oncall", "alerts", "--help"])
    second = run_process([VENV_BIN / "oncall", "alerts", "--help"])
    assert first.code == second.code == 0
    assert first.out == second.out and "silence" in first.out
    cache = list((Path(os.environ["ONCALL_CONFIG_DIR"]) / "cache").glob("help-*.json"))
    assert len(cache) == 1
    # a cached answer is only reused while its sources are unchanged
    entry = json.loads(cache[0].read_text())
    some_file = next(p for p in entry["files"] if p.endswith("operations.py"))
    assert "oncall_alerts" in some_file
    entry["files"][some_file] = [0, 0]
    cache[0].write_text(json.dumps(dict(entry, text="STALE")))
    third = run_process([VENV_BIN / "oncall", "alerts", "--help"])
    assert third.out == first.out


def test_piping_into_head_exits_quietly(am):
    proc = subprocess.run(f"'{VENV_BIN}/oncall' alerts list --all -o json | head -n 1", shell=True,
                          capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert proc.stdout.strip() == "["
    assert proc.stderr == ""


def test_a_broken_extension_warns_in_one_line_and_the_rest_works(am, tmp_path):
    site = tmp_path / "site"
    dist = site / "oncall_broken-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: oncall-broken\nVersion: 0.0.1\n")
    (dist / "entry_points.txt").write_text("[oncall.extensions]\nbroken = oncall_broken_missing.operations\n")
    env = {"PYTHONPATH": str(site), "ONCALL_NO_HELP_CACHE": "1"}
    r = run_process([VENV_BIN / "oncall", "alerts", "list", "--query", "length(@)"], env=env)
    assert r.code == 0, r
    assert r.out.strip() == "2"
    assert r.err == ""  # a command of another group does not even import the broken one
    r = run_process([VENV_BIN / "oncall", "--help"], env=env)
    assert r.code == 0 and "alerts" in r.out
    warnings = [line for line in r.err.splitlines() if "broken" in line]
    assert len(warnings) == 1 and "failed to load" in warnings[0]
    versions = run_process([VENV_BIN / "oncall", "version"], env=env)
    broken = [v for v in json.loads(versions.out) if v["name"] == "broken"]
    assert broken[0]["status"].startswith("error:")


def test_version_lists_core_and_extensions(oncall):
    rows = oncall("version").json
    names = {r["name"] for r in rows}
    assert {"core", "alerts"} <= names
    assert all(r["version"] for r in rows)
