"""devops release: classic releases listed, shown, created, deployed to an environment (followed to the end
with --wait, exit code by outcome) and approved — through the real CLI against the simulator."""
import json
import subprocess
import time

import pytest

from support.cli import VENV_BIN


@pytest.fixture
def pipelines(sim):
    sim.add_release_definition("payments-api", envs=["Dev", "QA", "Prod"],
                               approvals={"Prod": [sim.me.display_name]}, artifacts=["_payments-ci", "_config"])
    sim.add_release_definition("web-frontend", envs=["Dev", "Prod"], approvals={"Prod": ["jamal@contoso.com"]})
    sim.add_pat("jamal-pat-0000-xyz", "jamal@contoso.com")
    return sim


def make_release(devops, definition="payments-api", *args):
    r = devops("release", "create", "--definition", definition, *args)
    assert r.code == 0, r
    return r.json


def env_of(sim, release_id, name):
    return sim.releases[release_id].env(name)


def test_create_with_pinned_artifacts_then_list_and_show(pipelines, devops):
    sim = pipelines
    created = make_release(devops, "payments-api", "--description", "INC-4711 hotfix",
                           "--artifact", "_payments-ci=20240601.3")
    assert (created["name"], created["description"], created["status"]) == ("Release-1", "INC-4711 hotfix", "active")
    assert {a["alias"]: a["version"] for a in created["artifacts"]}["_payments-ci"] == "20240601.3"
    assert [(e["name"], e["status"]) for e in created["environments"]] == \
           [("Dev", "notStarted"), ("QA", "notStarted"), ("Prod", "notStarted")]
    stored = sim.releases[created["id"]]
    assert stored.description == "INC-4711 hotfix"
    assert stored.artifacts[0]["definitionReference"]["version"]["id"] == "20240601.3"
    make_release(devops, "web-frontend")
    make_release(devops, str(sim.release_definitions[1].id))  # by id

    listed = devops("release", "list").json
    assert [(r["name"], r["releaseDefinition"]["name"]) for r in listed] == \
           [("Release-2", "payments-api"), ("Release-1", "web-frontend"), ("Release-1", "payments-api")]
    only = devops("release", "list", "--definition", "payments-api", "--top", "1").json
    assert [r["id"] for r in only] == [3]
    table = devops("release", "list", "-o", "table").out.splitlines()
    assert table[0].split() == ["ID", "Name", "Definition", "Status", "Environments", "Created", "CreatedBy", "Description"]
    assert "Dev:notStarted QA:notStarted Prod:notStarted" in table[-1]
    assert devops("release", "list", "--status", "abandoned").json == []
    r = devops("release", "list", "--definition", "nope")
    assert r.code == 5 and "no release pipeline named 'nope' in Fabrikam; there are: payments-api, web-frontend" in r.err

    shown = devops("release", "show", created["id"])
    assert shown.code == 0, shown
    assert [e["name"] for e in shown.json["environments"]] == ["Dev", "QA", "Prod"]
    assert shown.json["environments"][0]["lastDeployment"] is None
    rows = devops("release", "show", created["id"], "-o", "table").out.splitlines()
    assert rows[0].split()[:4] == ["Release", "Environment", "Status", "PendingApprovals"] and len(rows) == 5
    assert devops("release", "show", 99).code == 5


def test_create_refuses_unknown_artifacts_and_environments_before_creating_anything(pipelines, devops, writes):
    sim = pipelines
    r = devops("release", "create", "--definition", "payments-api", "--artifact", "_nope=1")
    assert r.code == 2 and "has no artifact '_nope'; its artifacts are: _payments-ci, _config" in r.err
    r = devops("release", "create", "--definition", "payments-api", "--deploy-to", "Staging")
    assert r.code == 2 and "has no environment 'Staging'; its environments are: Dev, QA, Prod" in r.err
    r = devops("release", "create", "--definition", "payments-api", "--deploy-to", "Dev", "--dry-run")
    assert r.code == 0 and r.json["requests"][0]["method"] == "POST"
    assert r.json["requests"][0]["body"] == {"definitionId": 1}
    assert writes(sim) == [] and sim.releases == {}


def test_create_and_deploy_at_once_and_follow(pipelines, devops):
    r = devops("release", "create", "--definition", "payments-api", "--deploy-to", "dev", "--wait")
    assert r.code == 0, r
    assert r.json["deployment"]["outcome"] == "succeeded"
    assert [e["status"] for e in r.json["environments"]] == ["succeeded", "notStarted", "notStarted"]
    assert "Release-1 -> Dev: succeeded" in r.err


def test_deploy_sends_comment_schedule_and_variables(pipelines, devops):
    sim = pipelines
    rel = make_release(devops)
    r = devops("release", "deploy", rel["id"], "--env", "QA", "--comment", "INC-4711 fix", "--scheduled-time", "+2h",
               "--variable", "FEATURE_X=off", "--variable", "REPLICAS=3")
    assert r.code == 0, r
    assert (r.json["name"], r.json["status"]) == ("QA", "scheduled") and r.json["scheduledDeploymentTime"]
    env = env_of(sim, rel["id"], "QA")
    assert (env.status, env.comment, env.variables) == ("scheduled", "INC-4711 fix", {"FEATURE_X": "off", "REPLICAS": "3"})
    assert env.scheduled_for - time.time() == pytest.approx(7200, abs=60)
    patch = [q for q in sim.requests if q.method == "PATCH"][-1]
    assert patch.path.endswith(f"/_apis/Release/releases/{rel['id']}/environments/{env.id}")
    assert "/vsrm/" in patch.path  # found through ResourceAreas, as vsrm.dev.azure.com
    # already scheduled: the service refuses a second deployment (409) -> conflict
    again = devops("release", "deploy", rel["id"], "--env", "QA")
    assert again.code == 6 and "already scheduled" in again.err
    assert devops("release", "deploy", rel["id"], "--env", "QA", "--scheduled-time", "2001-01-01T00:00:00Z").code == 2


def test_deploy_dry_run_shows_the_patch_and_changes_nothing(pipelines, devops, writes):
    sim = pipelines
    rel = make_release(devops)
    before = len(writes(sim))
    r = devops("release", "deploy", rel["id"], "--env", "Prod", "--comment", "go", "--variable", "A=1", "--dry-run")
    assert r.code == 0, r
    request = r.json["request"]
    assert request["method"] == "PATCH" and "/vsrm/contoso/Fabrikam/_apis/Release/releases/" in request["url"]
    assert request["body"] == {"status": "inProgress", "comment": "go", "variables": {"A": {"value": "1"}}}
    assert len(writes(sim)) == before and env_of(sim, rel["id"], "Prod").status == "notStarted"


def test_deploy_wait_exit_codes_follow_the_outcome(pipelines, devops):
    sim = pipelines
    rel = make_release(devops)
    ok = devops("release", "deploy", rel["id"], "--env", "next", "--wait", "--comment", "ship")
    assert ok.code == 0, ok
    assert (ok.json["name"], ok.json["outcome"], ok.json["lastDeployment"]["status"]) == ("Dev", "succeeded", "succeeded")
    sim.set_env_outcome("failed", definition="payments-api", env="QA")
    failed = devops("release", "deploy", rel["id"], "--env", "next", "--wait", "-o", "json")
    assert failed.code == 12, failed
    # the final state is printed before the one-line error
    assert json.loads(failed.out)["outcome"] == "failed" and json.loads(failed.out)["name"] == "QA"
    assert failed.err.strip().splitlines()[-1] == "ERROR: deployment of Release-1 to QA failed (deployment failed)"
    sim.set_env_outcome("canceled", release_id=rel["id"], env="QA")
    canceled = devops("release", "deploy", rel["id"], "--env", "QA", "--wait", "-o", "table")
    assert canceled.code == 12 and "canceled" in canceled.out.splitlines()[2]
    sim.set_env_outcome("partiallySucceeded", release_id=rel["id"], env="QA")
    partial = devops("release", "deploy", rel["id"], "--env", "QA", "--wait")
    assert partial.code == 12 and json.loads(partial.out)["outcome"] == "partiallySucceeded"
    r = devops("release", "deploy", rel["id"], "--env", "Staging")
    assert r.code == 2 and "Release-1 has no environment 'Staging'; its environments are: Dev, QA, Prod" in r.err


def test_approve_a_pending_deployment_and_follow_it(pipelines, devops, writes):
    sim = pipelines
    rel = make_release(devops)
    queued = devops("release", "deploy", rel["id"], "--env", "Prod")
    assert queued.code == 0, queued
    assert queued.json["status"] == "queued"
    assert [a["approver"]["uniqueName"] for a in queued.json["pendingApprovals"]] == ["oncall@contoso.com"]
    table = devops("release", "show", rel["id"], "-o", "table").out
    assert "preDeploy:On-Call Engineer" in table
    dry = devops("release", "approve", rel["id"], "--env", "prod", "--dry-run", "--comment", "ok")
    assert dry.code == 0 and dry.json["requests"][0]["body"] == {"status": "approved", "comments": "ok"}
    assert dry.json["requests"][0]["method"] == "PATCH" and "/_apis/Release/approvals/" in dry.json["requests"][0]["url"]
    assert sim.approvals[1].status == "pending"
    r = devops("release", "approve", rel["id"], "--env", "prod", "--comment", "INC-4711 verified", "--wait")
    assert r.code == 0, r
    assert (r.json["outcome"], [a["status"] for a in r.json["approvals"]]) == ("succeeded", ["approved"])
    approval = sim.approvals[1]
    assert (approval.status, approval.comments, approval.approved_by.unique_name) == \
           ("approved", "INC-4711 verified", "oncall@contoso.com")
    assert env_of(sim, rel["id"], "Prod").status == "succeeded"
    r = devops("release", "approve", rel["id"], "--env", "Prod")
    assert r.code == 5 and "no approval is pending for Prod of Release-1 (it is succeeded)" in r.err


def test_approve_what_is_not_yours_is_refused(pipelines, devops):
    sim = pipelines
    rel = make_release(devops, "web-frontend")
    assert devops("release", "deploy", rel["id"], "--env", "Prod").code == 0
    r = devops("release", "approve", rel["id"], "--env", "Prod")
    assert r.code == 4 and "VS402904" in r.err and len(r.err.strip().splitlines()) == 1
    assert sim.approvals[1].status == "pending"


def test_a_waiting_deploy_ends_when_the_approver_rejects_it(pipelines, devops, monkeypatch):
    sim = pipelines
    rel = make_release(devops, "web-frontend")
    proc = subprocess.Popen([str(VENV_BIN / "oncall"), "devops", "release", "deploy", str(rel["id"]), "--env", "Prod",
                             "--wait", "--comment", "needs Jamal"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 30
        while env_of(sim, rel["id"], "Prod").status != "queued":
            assert time.time() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "timeout"
            time.sleep(0.05)
        monkeypatch.setenv("AZURE_DEVOPS_EXT_PAT", "jamal-pat-0000-xyz")  # Jamal, the approver
        r = devops("release", "approve", rel["id"], "--env", "Prod", "--reject", "--comment", "not during the incident")
        assert r.code == 0, r
        assert (r.json["status"], r.json["approvals"][0]["status"]) == ("rejected", "rejected")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 12, err
    assert json.loads(out)["outcome"] == "rejected"
    assert "waiting for preDeploy approval by Jamal Hartnett" in err
    assert err.strip().splitlines()[-1] == "ERROR: deployment of Release-1 to Prod rejected (deployment notDeployed)"


def test_deploy_wait_gives_up_after_its_timeout(pipelines, devops):
    rel = make_release(devops, "web-frontend")
    r = devops("release", "deploy", rel["id"], "--env", "Prod", "--wait", "--timeout", "1s")
    assert r.code == 12, r
    assert "gave up waiting after 1 s: Prod of Release-1 is still queued" in r.err
    assert json.loads(r.out)["outcome"] == "timedOut"


def test_next_is_the_first_environment_not_yet_succeeded(pipelines, devops):
    sim = pipelines
    rel = make_release(devops)
    sim.complete_deployment(rel["id"], "Dev")
    sim.complete_deployment(rel["id"], "QA", outcome="failed")
    r = devops("release", "deploy", rel["id"], "--env", "next", "--dry-run")
    assert r.code == 0, r
    assert r.json["environment"]["name"] == "QA" and r.json["environment"]["status"] == "rejected"
    for env in ("QA", "Prod"):
        sim.complete_deployment(rel["id"], env)
    r = devops("release", "deploy", rel["id"], "--env", "next")
    assert r.code == 2 and "every environment of Release-1 has already succeeded" in r.err
