"""devops workitem: created, moved on the board, assigned, shown, commented, listed and queried —
through the real CLI against the spec-validated Azure DevOps simulator."""
import time

import pytest

PBI = "Product Backlog Item"


def test_create_files_a_pbi_in_its_initial_state_with_every_option(sim, devops):
    feature = sim.add_work_item("Bug", {"System.Title": "payments epic"})
    r = devops("workitem", "create", "--type", PBI, "--title", "payments pod crash-loops",
               "--description", "Restarted **5 times** in 10 min\n\n- `OOMKilled`\n- exit 137",
               "--assigned-to", "jamal@contoso.com", "--area", "Web", "--iteration", "@current",
               "--tags", "oncall,payments", "crash", "--parent", feature.id,
               "--field", "Priority=1", "--field", "Microsoft.VSTS.Scheduling.Effort=3")
    assert r.code == 0, r
    item = r.json
    stored = sim.work_items[item["id"]]
    f = stored.fields
    assert (stored.rev, f["System.State"], f["System.Reason"]) == (1, "New", "New backlog item")
    assert f["System.Title"] == "payments pod crash-loops"
    assert f["System.Description"] == ("<p>Restarted <strong>5 times</strong> in 10 min</p>"
                                       "<ul><li><code>OOMKilled</code></li><li>exit 137</li></ul>")
    assert f["System.AssignedTo"]["uniqueName"] == "jamal@contoso.com"
    assert (f["System.AreaPath"], f["System.IterationPath"]) == ("Fabrikam\\Web", "Fabrikam\\Sprint 2")
    assert f["System.Tags"] == "crash; oncall; payments"
    assert (f["Microsoft.VSTS.Common.Priority"], f["Microsoft.VSTS.Scheduling.Effort"]) == (1, 3.0)
    assert f["System.Parent"] == feature.id and f["System.BoardColumn"] == "New"
    # the output is the service's work item, with the vendor's keys
    assert item["fields"]["System.Title"] == "payments pod crash-loops" and item["rev"] == 1
    assert [rel["rel"] for rel in item["relations"]] == ["System.LinkTypes.Hierarchy-Reverse"]


def test_create_as_a_table_and_in_html(sim, devops):
    r = devops("workitem", "create", "--type", "Bug", "--title", "checkout 500s", "--description",
               "<p>already <b>HTML</b></p>", "--assigned-to", "@me", "-o", "table")
    assert r.code == 0, r
    header = r.out.splitlines()[0].split()
    assert header == ["ID", "Type", "Title", "State", "Column", "AssignedTo", "Iteration", "Tags", "Rev", "Changed"]
    assert "checkout 500s" in r.out and "On-Call Engineer" in r.out
    [item] = sim.work_items.values()
    assert item.fields["System.Description"] == "<p>already <b>HTML</b></p>"


def test_create_dry_run_shows_the_exact_request_and_creates_nothing(sim, devops, writes):
    r = devops("workitem", "create", "--type", "Bug", "--title", "dry", "--tags", "a", "--dry-run")
    assert r.code == 0, r
    request = r.json["request"]
    assert r.json["dryRun"] is True
    assert request["method"] == "POST" and request["url"].startswith(f"{sim.url}/Fabrikam/_apis/wit/workItems/$Bug")
    assert request["contentType"] == "application/json-patch+json" and request["apiVersion"].startswith("7.1")
    assert request["body"] == [{"op": "add", "path": "/fields/System.Title", "value": "dry"},
                               {"op": "add", "path": "/fields/System.Tags", "value": "a"}]
    assert sim.work_items == {} and writes(sim) == []


@pytest.mark.parametrize("args, code, message", [
    (["--type", "Epic"], 2, "work item type 'Epic' does not exist in project Fabrikam: Product Backlog Item, Bug, Task"),
    (["--type", "Bug", "--field", "No.Such.Field=1"], 2, "TF51535: Cannot find field No.Such.Field"),
    (["--type", "Bug", "--field", "Priority"], 2, "--field 'Priority' is not NAME=VALUE"),
    (["--type", "Bug", "--assigned-to", "Jamal"], 2, "'Jamal' matches 2 identities: Jamal Hartnett <jamal@contoso.com>; "
                                                   "Jamal Smith <jsmith@contoso.com>"),
    (["--type", "Bug", "--assigned-to", "chen.wu@contoso.com"], 5, "no Azure DevOps identity matches "
                                                                  "'chen.wu@contoso.com'; candidates: Chen Wei"),
    (["--type", "Bug", "--assigned-to", "Nobody Here"], 5, "no Azure DevOps identity matches 'Nobody Here'"),
    (["--type", "Bug", "--area", "Nowhere"], 2, "TF401347: Invalid tree name"),
    (["--type", "Bug", "--parent", "999"], 5, "TF401232: Work item 999 does not exist"),
    (["--type", "Bug", "--description", "@/no/such/file.md"], 2, "cannot read /no/such/file.md"),
])
def test_create_refuses_bad_input_in_one_line_and_creates_nothing(sim, devops, args, code, message):
    r = devops("workitem", "create", "--title", "t", *args)
    assert r.code == code, r
    assert message in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert sim.work_items == {}


@pytest.fixture
def board(sim):
    """The team's board gets a Doing column (mapped to Committed) between Committed and In Review."""
    sim.add_board_column("Doing", {PBI: "Committed", "Bug": "Committed"}, after="Committed")
    return sim.teams[0].column_field


def test_move_to_a_board_column_sets_the_kanban_field_and_the_mapped_state(sim, devops, board, writes):
    item = sim.add_work_item(PBI, {"System.Title": "payments crash"})
    r = devops("workitem", "move", item.id, "--column", "doing", "--comment", "picked up by on-call")
    assert r.code == 0, r
    f = sim.work_items[item.id].fields
    assert (f[board], f["System.BoardColumn"], f["System.State"]) == ("Doing", "Doing", "Committed")
    assert f["System.History"] == "<p>picked up by on-call</p>" and sim.work_items[item.id].rev == 2
    [patch] = [r for r in sim.requests if r.method == "PATCH"]
    assert patch.json[0] == {"op": "test", "path": "/rev", "value": 1}
    assert {"op": "add", "path": f"/fields/{board}", "value": "Doing"} in patch.json
    assert not any(op["path"] == "/fields/System.BoardColumn" for op in patch.json)  # read-only: never sent
    # a column mapped to the same state changes only the column
    r = devops("workitem", "move", item.id, "--column", "In Review", "-o", "table")
    assert r.code == 0, r
    assert "In Review" in r.out.splitlines()[2]
    assert sim.work_items[item.id].fields["System.State"] == "Committed"
    patch = [r for r in sim.requests if r.method == "PATCH"][-1]
    assert not any(op["path"] == "/fields/System.State" for op in patch.json)


def test_move_to_a_state_with_a_reason(sim, devops):
    item = sim.add_work_item("Task", {"System.Title": "renew TLS"})
    r = devops("workitem", "move", item.id, "--state", "in progress", "--reason", "Work started")
    assert r.code == 0, r
    f = sim.work_items[item.id].fields
    assert (f["System.State"], f["System.Reason"]) == ("In Progress", "Work started")


@pytest.mark.parametrize("args, message", [
    (["--state", "Shipped"], "Product Backlog Item {id} cannot take state 'Shipped'; its states are: New, Approved, "
                             "Committed, Done, Removed (nothing was changed)"),
    (["--column", "Blocked"], "'Blocked' is not a column of the 'Backlog items' board of Fabrikam Team; its columns "
                              "are: New, Approved, Committed, Doing, In Review, Done"),
    (["--column", "Done", "--state", "Committed"], "column 'Done' maps to state 'Done' for Product Backlog Item, "
                                                   "not 'Committed'"),
    ([], "give --state or --column"),
])
def test_move_refuses_what_the_item_cannot_take_and_lists_the_valid_ones(sim, devops, board, writes, args, message):
    item = sim.add_work_item(PBI, {"System.Title": "t"})
    r = devops("workitem", "move", item.id, *args)
    assert r.code == 2, r
    assert message.format(id=item.id) in r.err and len(r.err.strip().splitlines()) == 1
    assert sim.work_items[item.id].rev == 1 and writes(sim) == []


def test_move_a_task_by_column_says_it_is_not_on_the_board(sim, devops, writes):
    task = sim.add_work_item("Task", {"System.Title": "t"})
    r = devops("workitem", "move", task.id, "--column", "Done")
    assert r.code == 2 and "Task work items are not on a Kanban board of team Fabrikam Team" in r.err
    assert writes(sim) == []


def test_a_concurrent_change_is_a_conflict_and_the_item_stays_as_the_other_writer_left_it(sim, devops, board):
    item = sim.add_work_item(PBI, {"System.Title": "payments crash"})
    # someone else edits the item between our read and our update
    hook = sim.on_request(rf"/_apis/wit/workItems/{item.id}$", method="PATCH",
                          callback=lambda request: sim.update_work_item(item.id, {"System.Title": "renamed by Jamal"},
                                                                        by="jamal@contoso.com"))
    r = devops("workitem", "move", item.id, "--column", "Doing")
    assert hook["hits"] == 1
    assert r.code == 6, r
    assert f"work item {item.id} was changed by someone else since it was read (rev 1)" in r.err
    assert len(r.err.strip().splitlines()) == 1
    stored = sim.work_items[item.id]
    assert (stored.rev, stored.fields["System.Title"], stored.fields["System.State"]) == (2, "renamed by Jamal", "New")
    assert stored.fields["System.ChangedBy"]["uniqueName"] == "jamal@contoso.com"
    # read again, the same move applies on top of their change
    assert devops("workitem", "move", item.id, "--column", "Doing").code == 0
    assert (sim.work_items[item.id].rev, sim.work_items[item.id].fields["System.Title"]) == (3, "renamed by Jamal")


def test_assign_by_email_name_me_and_unassign(sim, devops):
    item = sim.add_work_item("Bug", {"System.Title": "500s on /login"})

    def assignee():
        value = sim.work_items[item.id].fields.get("System.AssignedTo")
        return value and value["uniqueName"]
    assert devops("workitem", "assign", item.id, "jsmith@contoso.com").code == 0
    assert assignee() == "jsmith@contoso.com"
    assert devops("workitem", "assign", item.id, "Jamal Hartnett").code == 0
    assert assignee() == "jamal@contoso.com"
    assert devops("workitem", "assign", item.id, "Chen Wei <chen@contoso.com>").code == 0
    assert assignee() == "chen@contoso.com"
    r = devops("workitem", "assign", item.id, "@me", "--comment", "taking it", "-o", "table")
    assert r.code == 0 and "On-Call Engineer" in r.out
    assert assignee() == "oncall@contoso.com"
    assert devops("workitem", "assign", item.id, "--unassign").code == 0
    assert assignee() is None


def test_assign_to_an_ambiguous_or_unknown_user_lists_the_candidates_and_changes_nothing(sim, devops, writes):
    item = sim.add_work_item("Bug", {"System.Title": "t", "System.AssignedTo": "chen@contoso.com"})
    r = devops("workitem", "assign", item.id, "jamal")
    assert r.code == 2, r
    assert ("'jamal' matches 2 identities: Jamal Hartnett <jamal@contoso.com>; Jamal Smith <jsmith@contoso.com> "
            "(give the e-mail address; nothing was changed)") in r.err
    r = devops("workitem", "assign", item.id, "jamal.h@contoso.com")
    assert r.code == 5 and "candidates: Jamal Hartnett <jamal@contoso.com>; Jamal Smith" in r.err
    r = devops("workitem", "assign", item.id, "zed@contoso.com")
    assert r.code == 5 and "no Azure DevOps identity matches 'zed@contoso.com'" in r.err
    assert devops("workitem", "assign", item.id).code == 2  # neither a user nor --unassign
    assert writes(sim) == [] and sim.work_items[item.id].rev == 1
    assert sim.work_items[item.id].fields["System.AssignedTo"]["uniqueName"] == "chen@contoso.com"


def test_assign_dry_run_shows_the_guarded_patch(sim, devops, writes):
    item = sim.add_work_item("Bug", {"System.Title": "t"})
    r = devops("workitem", "assign", item.id, "@me", "--dry-run")
    assert r.code == 0, r
    request = r.json["request"]
    assert request["method"] == "PATCH" and request["url"].startswith(f"{sim.url}/Fabrikam/_apis/wit/workItems/{item.id}")
    assert request["body"] == [{"op": "test", "path": "/rev", "value": 1},
                               {"op": "add", "path": "/fields/System.AssignedTo", "value": "oncall@contoso.com"}]
    assert writes(sim) == [] and "System.AssignedTo" not in sim.work_items[item.id].fields


def test_show_gives_fields_relations_and_the_last_comments(sim, devops):
    parent = sim.add_work_item("Bug", {"System.Title": "parent"})
    r = devops("workitem", "create", "--type", PBI, "--title", "child", "--parent", parent.id)
    child = r.json["id"]
    for text in ("first look", "restarted the pod", "**fix** deployed"):
        assert devops("workitem", "comment", "add", child, text).code == 0
    r = devops("workitem", "show", child, "--comments", "2")
    assert r.code == 0, r
    shown = r.json
    assert shown["fields"]["System.Title"] == "child" and shown["fields"]["System.CommentCount"] == 3
    assert [x["rel"] for x in shown["relations"]] == ["System.LinkTypes.Hierarchy-Reverse"]
    assert [c["text"] for c in shown["comments"]] == ["<p>restarted the pod</p>", "<p><strong>fix</strong> deployed</p>"]
    table = devops("workitem", "show", child, "-o", "table").out
    assert table.splitlines()[0].split()[:4] == ["ID", "Type", "Title", "State"]
    assert f"{parent.id}" in table.splitlines()[2] and "fix deployed" in table
    assert devops("workitem", "show", 4242).code == 5


def test_comments_add_and_list(sim, devops, writes):
    item = sim.add_work_item("Bug", {"System.Title": "flaky probe"})
    r = devops("workitem", "comment", "add", item.id, "Mitigated, see [runbook](https://runbooks/probe)")
    assert r.code == 0, r
    assert r.json["text"] == '<p>Mitigated, see <a href="https://runbooks/probe">runbook</a></p>'
    assert devops("workitem", "comment", "add", item.id, "second").code == 0
    listed = devops("workitem", "comment", "list", item.id).json
    assert [c["text"] for c in listed] == [r.json["text"], "<p>second</p>"]
    table = devops("workitem", "comment", "list", item.id, "-o", "table").out
    assert table.splitlines()[0].split() == ["ID", "By", "When", "Text"] and "Mitigated, see runbook" in table
    before = len(writes(sim))
    dry = devops("workitem", "comment", "add", item.id, "not sent", "--dry-run")
    assert dry.json["request"]["body"] == {"text": "<p>not sent</p>"} and dry.json["request"]["method"] == "POST"
    assert len(writes(sim)) == before and len(sim.work_items[item.id].comments) == 2
    assert devops("workitem", "comment", "add", item.id, "  ").code == 2


@pytest.fixture
def backlog(sim):
    me, jamal = "oncall@contoso.com", "jamal@contoso.com"
    items = {
        "mine_bug": sim.add_work_item("Bug", {"System.Title": "pager storm", "System.AssignedTo": me,
                                             "System.Tags": "oncall", "System.IterationPath": "Fabrikam\\Sprint 2"}),
        "mine_done": sim.add_work_item(PBI, {"System.Title": "old", "System.AssignedTo": me, "System.State": "Done"}),
        "jamal_pbi": sim.add_work_item(PBI, {"System.Title": "dashboards", "System.AssignedTo": jamal,
                                             "System.Tags": "oncall; ui", "System.AreaPath": "Fabrikam\\Web"}),
        "task": sim.add_work_item("Task", {"System.Title": "renew TLS", "System.IterationPath": "Fabrikam\\Sprint 2",
                                           "System.State": "In Progress"}),
    }
    return {k: v.id for k, v in items.items()}


@pytest.mark.parametrize("args, expected", [
    ([], ["task", "jamal_pbi", "mine_bug"]),                       # open items
    (["--include-closed"], ["task", "jamal_pbi", "mine_done", "mine_bug"]),
    (["--mine"], ["mine_bug"]),
    (["--assigned-to", "@me", "--include-closed"], ["mine_done", "mine_bug"]),
    (["--assigned-to", "Jamal Hartnett"], ["jamal_pbi"]),
    (["--current-sprint"], ["task", "mine_bug"]),
    (["--state", "Done,In Progress"], ["task", "mine_done"]),
    (["--type", "Bug", "Task"], ["task", "mine_bug"]),
    (["--tag", "oncall"], ["jamal_pbi", "mine_bug"]),
    (["--tag", "oncall", "--tag", "ui"], ["jamal_pbi"]),
    (["--area", "Web"], ["jamal_pbi"]),
])
def test_list_filters(sim, devops, backlog, args, expected):
    r = devops("workitem", "list", *args)
    assert r.code == 0, r
    assert sorted(w["id"] for w in r.json) == sorted(backlog[name] for name in expected)
    assert all(set(w["fields"]) <= {"System.Id", "System.WorkItemType", "System.Title", "System.State",
                                    "System.BoardColumn", "System.AssignedTo", "System.IterationPath", "System.Tags",
                                    "System.ChangedDate", "Microsoft.VSTS.Common.Priority"} for w in r.json)


def test_list_shows_the_latest_change_first(sim, devops, backlog):
    time.sleep(0.01)
    sim.update_work_item(backlog["mine_bug"], {"Microsoft.VSTS.Common.Priority": 1})
    r = devops("workitem", "list", "--top", "2", "-o", "table")
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[2].split()[0] == str(backlog["mine_bug"]) and len(lines) == 4


def test_list_fetches_fields_in_batches_of_200(sim, devops):
    for i in range(230):
        sim.add_work_item("Task", {"System.Title": f"task {i}"})
    sim.requests.clear()
    r = devops("workitem", "list", "--top", "500", "--query", "length(@)")
    assert r.code == 0, r
    assert r.out.strip() == "230"
    batches = [q.json["ids"] for q in sim.requests if q.path.lower().endswith("/workitemsbatch")]
    assert [len(b) for b in batches] == [200, 30]
    wiql = [q for q in sim.requests if q.path.lower().endswith("/wiql")]
    assert len(wiql) == 1 and "/Fabrikam/Fabrikam%20Team/" in wiql[0].path
    assert wiql[0].query.get("$top") == ["500"]


def test_query_by_wiql_and_saved_query(sim, devops, backlog):
    r = devops("workitem", "query", "--wiql", "SELECT [System.Id], [System.Title], [System.State] FROM WorkItems "
                                              "WHERE [System.Tags] CONTAINS 'oncall' ORDER BY [System.Id]")
    assert r.code == 0, r
    assert [(w["id"], sorted(w["fields"])) for w in r.json] == [
        (backlog["mine_bug"], ["System.Id", "System.State", "System.Title"]),
        (backlog["jamal_pbi"], ["System.Id", "System.State", "System.Title"])]
    saved = devops("workitem", "query", "--saved-query", "Shared Queries/Active Bugs", "-o", "table")
    assert saved.code == 0, saved
    assert saved.out.splitlines()[0].split() == ["ID", "Title", "State"] and "pager storm" in saved.out
    assert devops("workitem", "query", "--saved-query", "Shared Queries/Nope").code == 5
    bad = devops("workitem", "query", "--wiql", "SELECT [System.Id] FROM WorkItems WHERE [No.Field] = 1")
    assert bad.code == 2 and "TF51005" in bad.err
    assert devops("workitem", "query").code == 2
