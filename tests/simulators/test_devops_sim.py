"""The Azure DevOps simulator, driven only through the official azure-devops SDK."""

from __future__ import annotations

import os
import tempfile
import time

# The SDK reads its on-disk OPTIONS/ResourceAreas cache folder when first imported.
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", tempfile.mkdtemp(prefix="oncall-ado-cache-"))

import pytest
from azure.devops import _file_cache
from azure.devops.connection import Connection
from azure.devops.exceptions import AzureDevOpsAuthenticationError, AzureDevOpsClientRequestError, \
    AzureDevOpsServiceError
from azure.devops.v7_1.release.release_client import ReleaseClient
from azure.devops.v7_1.release.models import ReleaseApproval, ReleaseEnvironmentUpdateMetadata, \
    ReleaseStartMetadata
from azure.devops.v7_1.work.models import TeamContext as WorkTeamContext
from azure.devops.v7_1.work_item_tracking.models import CommentCreate, JsonPatchOperation, TeamContext, Wiql, \
    WorkItemBatchGetRequest
from msrest.authentication import BasicAuthentication

from simulators.devops import DevOpsSimulator

PROJECT, TEAM = "Fabrikam", "Fabrikam Team"


@pytest.fixture(autouse=True, scope="module")
def _isolated_sdk_cache(tmp_path_factory):
    # if azure.devops was imported before this module, point its disk caches at a temp folder
    folder = tmp_path_factory.mktemp("ado-cache")
    for cache in (_file_cache.OPTIONS_CACHE, _file_cache.RESOURCE_CACHE):
        if not cache.file_name.startswith(os.environ["AZURE_DEVOPS_CACHE_DIR"]):
            cache.file_name = str(folder / os.path.basename(cache.file_name))
            cache.data, cache.initial_load_occurred = {}, False


@pytest.fixture
def sim():
    with DevOpsSimulator(org="contoso", project=PROJECT, pat="test-pat-0000") as server:
        yield server


@pytest.fixture
def conn(sim):
    return Connection(base_url=sim.url, creds=BasicAuthentication("", sim.pat))


@pytest.fixture
def wit(conn):
    return conn.clients_v7_1.get_work_item_tracking_client()


def op(kind, path, value=None):
    return JsonPatchOperation(op=kind, path=path, value=value)


def wait_for(predicate, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_create_pbi_starts_new_and_on_the_board(sim, wit):
    item = wit.create_work_item([op("add", "/fields/System.Title", "Checkout latency > 2s"),
                                 op("add", "/fields/System.Tags", "perf; Oncall;perf")],
                                PROJECT, "Product Backlog Item")
    assert (item.rev, item.fields["System.State"], item.fields["System.Reason"]) == (1, "New", "New backlog item")
    assert item.fields["System.BoardColumn"] == "New" and item.fields["System.Tags"] == "Oncall; perf"
    assert item.fields["System.CreatedBy"]["uniqueName"] == sim.me.unique_name
    # $expand is matched ignoring case, as the live service does
    again = wit.get_work_item(item.id, PROJECT, expand="All")
    assert again.fields["System.Title"] == "Checkout latency > 2s" and again.url.endswith(f"/workItems/{item.id}")
    assert sim.work_items[item.id].state == "New"
    sim.assert_clean()


def test_state_change_guarded_by_rev_is_atomic(sim, wit):
    item = sim.add_work_item("Product Backlog Item", {"System.Title": "Rotate certs"})
    moved = wit.update_work_item([op("test", "/rev", item.rev), op("add", "/fields/System.State", "Approved"),
                                  op("add", "/fields/System.History", "approved in triage")], item.id, PROJECT)
    assert (moved.rev, moved.fields["System.State"]) == (2, "Approved")

    # someone else edits the item: our rev 2 is now stale; nothing of our patch may stick
    sim.update_work_item(item.id, {"Microsoft.VSTS.Common.Priority": 1})
    with pytest.raises(AzureDevOpsServiceError) as err:
        wit.update_work_item([op("add", "/fields/System.Title", "changed"), op("test", "/rev", 2),
                              op("add", "/fields/System.State", "Committed")], item.id, PROJECT)
    assert err.value.type_key == "TestOperationFailedException"
    current = wit.get_work_item(item.id, PROJECT)
    assert (current.rev, current.fields["System.State"], current.fields["System.Title"]) == \
           (3, "Approved", "Rotate certs")

    # an unknown state is refused without listing values; the type's states endpoint lists them
    with pytest.raises(AzureDevOpsServiceError, match=r"TF401320: Rule Error for field State") as err:
        wit.update_work_item([op("test", "/rev", 3), op("add", "/fields/System.State", "Shipped")], item.id, PROJECT)
    assert "Done" not in err.value.message
    states = wit.get_work_item_type_states(PROJECT, "Product Backlog Item")
    assert [s.name for s in states] == ["New", "Approved", "Committed", "Done", "Removed"]
    with pytest.raises(AzureDevOpsServiceError, match="TF401326.*System.BoardColumn"):
        wit.update_work_item([op("add", "/fields/System.BoardColumn", "Done")], item.id, PROJECT)
    assert sim.work_items[item.id].rev == 3

    # validateOnly checks without saving; bypassRules lets any value through
    preview = wit.update_work_item([op("add", "/fields/System.Title", "dry run")], item.id, PROJECT,
                                   validate_only=True)
    assert preview.fields["System.Title"] == "dry run"
    assert sim.work_items[item.id].fields["System.Title"] == "Rotate certs"
    sim.assert_clean()


def test_assign_by_display_name_and_identity_lookup(sim, conn, wit):
    sim.add_identity("Jamal Hartnett", "jamal@contoso.com")
    item = sim.add_work_item("Bug", {"System.Title": "500s on /login"})
    done = wit.update_work_item([op("add", "/fields/System.AssignedTo", "Jamal Hartnett")], item.id, PROJECT)
    assert done.fields["System.AssignedTo"]["uniqueName"] == "jamal@contoso.com"
    done = wit.update_work_item([op("replace", "/fields/System.AssignedTo", "oncall@contoso.com")], item.id, PROJECT)
    assert done.fields["System.AssignedTo"]["displayName"] == sim.me.display_name
    with pytest.raises(AzureDevOpsServiceError, match="'Nobody Here' for field 'Assigned To' is an unknown identity"):
        wit.update_work_item([op("add", "/fields/System.AssignedTo", "Nobody Here")], item.id, PROJECT)

    found = conn.clients_v7_1.get_identity_client().read_identities(search_filter="General", filter_value="jamal")
    assert [(i.provider_display_name, i.properties["Account"]["$value"]) for i in found] == \
           [("Jamal Hartnett", "jamal@contoso.com")]
    me = conn.clients_v7_1.get_location_client().get_connection_data().authenticated_user
    assert me.provider_display_name == sim.me.display_name
    sim.assert_clean()


def test_wiql_query_and_saved_query(sim, wit):
    sim.add_identity("Jamal Hartnett", "jamal@contoso.com")
    a = sim.add_work_item("Bug", {"System.Title": "pager storm", "System.AssignedTo": "oncall@contoso.com",
                                  "System.Tags": "oncall", "System.AreaPath": "Fabrikam\\Web",
                                  "System.IterationPath": "Fabrikam\\Sprint 2", "Microsoft.VSTS.Common.Priority": 1})
    b = sim.add_work_item("Product Backlog Item", {"System.Title": "dashboards", "System.AssignedTo": "Jamal Hartnett",
                                                   "System.AreaPath": "Fabrikam\\Web"})
    c = sim.add_work_item("Task", {"System.Title": "renew TLS", "System.AssignedTo": "oncall@contoso.com",
                                   "System.IterationPath": "Fabrikam\\Sprint 2", "Microsoft.VSTS.Common.Priority": 3})
    ctx = TeamContext(project=PROJECT, team=TEAM)

    def ids(query, **kw):
        return [w.id for w in wit.query_by_wiql(Wiql(query=query), team_context=ctx, **kw).work_items]

    assert ids("SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
               "AND [System.AssignedTo] = @Me ORDER BY [Microsoft.VSTS.Common.Priority] DESC") == [c.id, a.id]
    assert ids("SELECT [System.Id] FROM WorkItems WHERE [System.AreaPath] UNDER 'Fabrikam\\Web' "
               "AND [System.WorkItemType] IN ('Bug', 'Product Backlog Item')") == [a.id, b.id]
    assert ids("SELECT [System.Id] FROM WorkItems WHERE [System.Tags] CONTAINS 'oncall' "
               "AND [System.State] <> 'Done'") == [a.id]
    assert ids("SELECT [System.Id], [System.Title] FROM WorkItems WHERE [System.IterationPath] = @CurrentIteration "
               "ORDER BY [System.Id]", top=1) == [a.id]
    with pytest.raises(AzureDevOpsServiceError, match="TF51005"):
        ids("SELECT [System.Id] FROM WorkItems WHERE [No.Such.Field] = 1")

    batch = wit.get_work_items_batch(WorkItemBatchGetRequest(ids=[a.id, c.id], fields=["System.Title", "System.State"]),
                                     PROJECT)
    assert [(w.id, w.fields) for w in batch] == [(a.id, {"System.Title": "pager storm", "System.State": "New"}),
                                                 (c.id, {"System.Title": "renew TLS", "System.State": "To Do"})]
    saved = wit.get_query(PROJECT, "Shared Queries/Active Bugs", expand="wiql")
    assert "[System.WorkItemType] = 'Bug'" in saved.wiql
    assert [w.id for w in wit.query_by_id(saved.id, team_context=ctx).work_items] == [a.id]
    sim.assert_clean()


def test_board_column_move_through_kanban_field(sim, conn, wit):
    work = conn.clients_v7_1.get_work_client()
    team = WorkTeamContext(project=PROJECT, team=TEAM)
    board = work.get_board(team, work.get_boards(team)[0].id)
    column_field = board.fields.column_field.reference_name
    assert column_field.startswith("WEF_") and column_field.endswith("_Kanban.Column")
    mapping = {c.name: c.state_mappings["Product Backlog Item"] for c in board.columns}
    assert mapping["In Review"] == "Committed"
    current = work.get_team_iterations(team, timeframe="current")
    assert [i.path for i in current] == ["Fabrikam\\Sprint 2"]

    item = sim.add_work_item("Product Backlog Item", {"System.Title": "Move me"})
    moved = wit.update_work_item([op("add", f"/fields/{column_field}", "Committed"),
                                  op("add", "/fields/System.State", mapping["Committed"])], item.id, PROJECT)
    assert (moved.fields["System.State"], moved.fields["System.BoardColumn"]) == ("Committed", "Committed")
    moved = wit.update_work_item([op("add", f"/fields/{column_field}", "In Review")], item.id, PROJECT)
    assert (moved.fields["System.State"], moved.fields["System.BoardColumn"]) == ("Committed", "In Review")
    # a column whose state differs from the item's must come with that state
    with pytest.raises(AzureDevOpsServiceError, match="maps to state 'Done'"):
        wit.update_work_item([op("add", f"/fields/{column_field}", "Done")], item.id, PROJECT)
    # changing the state alone moves the card to that state's first column
    moved = wit.update_work_item([op("add", "/fields/System.State", "Done")], item.id, PROJECT)
    assert moved.fields[column_field] == moved.fields["System.BoardColumn"] == "Done"
    sim.assert_clean()


def test_comments_add_and_list(sim, wit):
    item = sim.add_work_item("Bug", {"System.Title": "flaky probe"})
    first = wit.add_comment(CommentCreate(text="Looking into it"), PROJECT, item.id)
    wit.add_comment(CommentCreate(text="Mitigated by restart"), PROJECT, item.id)
    listing = wit.get_comments(PROJECT, item.id, order="asc")
    assert [c.text for c in listing.comments] == ["Looking into it", "Mitigated by restart"]
    assert listing.total_count == 2 and first.created_by.unique_name == sim.me.unique_name
    updated = wit.get_work_item(item.id, PROJECT)
    assert updated.rev == 3 and updated.fields["System.CommentCount"] == 2  # comments are revisions
    sim.assert_clean()


def test_release_deploy_approve_succeed(sim, conn):
    rm = conn.clients_v7_1.get_release_client()
    assert "/vsrm/" in rm.config.base_url  # found through ResourceAreas, like vsrm.dev.azure.com
    definition = sim.add_release_definition("web-frontend", envs=["Dev", "QA", "Prod"],
                                            approvals={"Prod": [sim.me.display_name]})
    release = rm.create_release(ReleaseStartMetadata(definition_id=definition.id, description="hotfix 1.2.3"),
                                PROJECT)
    assert [(e.name, e.status) for e in release.environments] == \
           [("Dev", "notStarted"), ("QA", "notStarted"), ("Prod", "notStarted")]
    env = {e.name: e.id for e in release.environments}

    dev = rm.update_release_environment(ReleaseEnvironmentUpdateMetadata(status="inProgress", comment="ship"),
                                        PROJECT, release.id, env["Dev"])
    assert dev.status == "inProgress"
    wait_for(lambda: rm.get_release_environment(PROJECT, release.id, env["Dev"]).status == "succeeded")

    prod = rm.update_release_environment(ReleaseEnvironmentUpdateMetadata(status="inProgress"),
                                         PROJECT, release.id, env["Prod"])
    assert prod.status == "queued"
    pending = rm.get_approvals(PROJECT, status_filter="pending", release_ids_filter=[release.id])
    assert [(a.release_environment.name, a.approver.unique_name) for a in pending] == [("Prod", sim.me.unique_name)]
    approval = rm.update_release_approval(ReleaseApproval(status="approved", comments="LGTM"), PROJECT, pending[0].id)
    assert approval.status == "approved" and approval.approved_by.display_name == sim.me.display_name
    wait_for(lambda: rm.get_release(PROJECT, release.id).environments[2].status == "succeeded")

    assert [r.id for r in rm.get_releases(PROJECT, definition_id=definition.id, status_filter="active", top=10)] == \
           [release.id]
    deployments = rm.get_deployments(PROJECT, definition_id=definition.id)
    assert sorted((d.release_environment.name, d.deployment_status) for d in deployments) == \
           [("Dev", "succeeded"), ("Prod", "succeeded")]
    assert sim.releases[release.id].env("Prod").status == "succeeded"
    sim.assert_clean()


def test_release_failure_and_rejection(sim, conn):
    rm = conn.clients_v7_1.get_release_client()
    jamal = sim.add_identity("Jamal Hartnett", "jamal@contoso.com")
    sim.add_pat("jamal-pat", jamal)
    definition = sim.add_release_definition("api", envs=["Dev", "Prod"], approvals={"Prod": ["jamal@contoso.com"]})
    release = rm.create_release(ReleaseStartMetadata(definition_id=definition.id), PROJECT)
    dev, prod = (e.id for e in release.environments)
    sim.set_env_outcome("failed", definition="api", env="Dev")  # applies to existing releases too
    rm.update_release_environment(ReleaseEnvironmentUpdateMetadata(status="inProgress"), PROJECT, release.id, dev)
    with pytest.raises(AzureDevOpsServiceError, match="already inProgress"):
        rm.update_release_environment(ReleaseEnvironmentUpdateMetadata(status="inProgress"), PROJECT, release.id, dev)
    wait_for(lambda: rm.get_release_environment(PROJECT, release.id, dev).status == "rejected")
    assert [d.deployment_status for d in rm.get_deployments(PROJECT, definition_id=definition.id)] == ["failed"]

    rm.update_release_environment(ReleaseEnvironmentUpdateMetadata(status="inProgress"), PROJECT, release.id, prod)
    [approval] = rm.get_approvals(PROJECT, release_ids_filter=[release.id])  # statusFilter defaults to pending
    with pytest.raises(AzureDevOpsServiceError, match="VS402904"):  # only the assigned approver may act
        rm.update_release_approval(ReleaseApproval(status="approved"), PROJECT, approval.id)
    as_jamal = Connection(base_url=sim.url, creds=BasicAuthentication("", "jamal-pat"))
    as_jamal = as_jamal.clients_v7_1.get_release_client()
    as_jamal.update_release_approval(ReleaseApproval(status="rejected", comments="not today"), PROJECT, approval.id)
    assert rm.get_release_environment(PROJECT, release.id, prod).status == "rejected"
    assert rm.get_approvals(PROJECT, status_filter="pending") == []
    sim.assert_clean()


def test_auth_faults_and_spec_violations(sim, conn, wit):
    bad = Connection(base_url=sim.url, creds=BasicAuthentication("", "wrong-pat"))
    with pytest.raises(AzureDevOpsAuthenticationError):
        bad.clients_v7_1.get_work_item_tracking_client().get_work_item(1, PROJECT)
    item = sim.add_work_item("Task", {"System.Title": "t"})

    throttled = {"message": "TF400733: The request has been throttled.", "typeKey": "ThrottledException"}
    # the SDK (urllib3 Retry) waits out Retry-After on a 429 and retries by itself
    fault = sim.add_fault(r"/_apis/wit/workItems/\d+$", status=429, headers={"Retry-After": "0"}, body=throttled)
    assert wit.get_work_item(item.id, PROJECT).id == item.id and fault.hits == 1
    sim.add_fault(r"/_apis/wit/workItems/\d+$", status=503)  # and 5xx
    assert wit.get_work_item(item.id, PROJECT).id == item.id
    sim.add_fault(r"/_apis/wit/workItems/\d+$", status=429, body=throttled)  # no Retry-After: surfaces
    with pytest.raises(AzureDevOpsServiceError, match="throttled"):
        wit.get_work_item(item.id, PROJECT)
    sim.add_fault(r"/_apis/wit/workItems/\d+$", method="PATCH", status=409, body={
        "message": "TF26071: This work item has been changed by someone else since you opened it.",
        "typeKey": "WorkItemRevisionMismatchException"})
    with pytest.raises(AzureDevOpsServiceError, match="TF26071"):
        wit.update_work_item([op("add", "/fields/System.Title", "u")], item.id, PROJECT)
    sim.assert_clean()

    # release APIs live on the vsrm host only: a client built on the org URL finds no route
    with pytest.raises(ValueError, match="not registered"):
        ReleaseClient(sim.url, BasicAuthentication("", sim.pat)).get_releases(PROJECT)
    with pytest.raises(AzureDevOpsServiceError, match="maximum in one request is 200"):
        wit.get_work_items_batch(WorkItemBatchGetRequest(ids=list(range(1, 202))), PROJECT)

    # requests the live service would refuse are violations and 4xx
    with pytest.raises(AzureDevOpsClientRequestError):
        wit.get_work_item(item.id, PROJECT, expand="everything")  # not in the $expand enum
    with pytest.raises(AzureDevOpsClientRequestError):
        wit.get_work_item(item.id)  # org-level route: live, but not in the 7.1 spec
    assert len(sim.violations) == 2 and "expand" in sim.violations[0]
    sim.violations.clear()
    sim.assert_clean()
