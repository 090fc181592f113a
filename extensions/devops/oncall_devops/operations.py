"""Azure DevOps chores of an on-call shift: work items created, moved on the board, assigned and found;
classic releases deployed to an environment, followed and approved.

Every call goes through the official ``azure-devops`` SDK, imported only when a command runs (see
``_client`` and ``_sdk``). Work item updates are guarded by the item's revision (a JSON Patch ``test``
on ``/rev``): if someone else changed the item since it was read, nothing is written and the command
fails with a conflict (exit 6).
"""
import datetime as dt
import time
from typing import Annotated

from oncall_common import (Arg, ConflictError, NotFoundError, OutcomeError, UsageError, group, operation)
from oncall_common.convert import isoformat, parse_datetime

from . import _client  # noqa: F401 - declares the "devops" connection
from ._format import (approve_rows, comment_rows, context_rows, create_rows, deploy_rows, query_rows, release_detail,
                      release_rows, workitem_detail, workitem_rows)


def to_html(text):
    from ._markdown import to_html as convert  # imported on use: its regexes cost every oncall start
    return convert(text)

group("devops", "Azure DevOps: work items on the board, classic release deployments and approvals.")
group("devops workitem", "Create, move on the board, assign, show and find work items.")
group("devops workitem comment", "Add and list the discussion comments of a work item.")
group("devops release", "Classic release pipelines: list, show, create, deploy to an environment, approve.")

WorkItemId = Annotated[int, Arg(positional=True, metavar="ID", help="The work item id.")]
ReleaseId = Annotated[int, Arg(positional=True, metavar="ID", help="The release id.")]
Team = Annotated[str, Arg(metavar="TEAM", help="Team whose board, iterations and @CurrentIteration are used "
                                               "(default config devops.team, else the project's default team).")]

LIST_FIELDS = ["System.Id", "System.WorkItemType", "System.Title", "System.State", "System.BoardColumn",
               "System.AssignedTo", "System.IterationPath", "System.Tags", "System.ChangedDate",
               "Microsoft.VSTS.Common.Priority"]
BATCH = 200  # the most work items one batch request may ask for
CLOSED_STATES = ("Done", "Closed", "Removed", "Resolved", "Completed")
FINAL_ENV_STATES = ("succeeded", "partiallySucceeded", "rejected", "canceled")


# --------------------------------------------------------------------------- helpers

def _team(ctx, client, team):
    return team or ctx.setting("devops", "team") or client.default_team()


def _text(value):
    """A text argument; @FILE reads the file (for long descriptions, e.g. pasted evidence)."""
    if value and value.startswith("@") and len(value) > 1:
        try:
            with open(value[1:], encoding="utf-8") as fh:
                return fh.read()
        except OSError as ex:
            raise UsageError(f"cannot read {value[1:]}: {ex.strerror}") from None
    return value


def _pairs(values, what):
    out = []
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{what} {item!r} is not NAME=VALUE")
        out.append((name.strip(), value))
    return out


def _split_words(values):
    out = []
    for value in values or []:
        out.extend(v.strip() for v in value.replace(";", ",").split(",") if v.strip())
    return out


def _tree_path(project, path):
    """'Web' -> 'Fabrikam\\Web'; 'Fabrikam/Web' and 'Fabrikam\\Web' kept (separators normalised)."""
    path = path.strip().strip("\\/").replace("/", "\\")
    if path.lower() == project.lower() or path.lower().startswith(project.lower() + "\\"):
        return path
    return f"{project}\\{path}"


def _wiql_literal(value):
    return "'" + str(value).replace("'", "''") + "'"


def _patch(client, ops):
    JsonPatchOperation = client.models("wit").JsonPatchOperation
    return [JsonPatchOperation(op=op, path=path, value=value) for op, path, value in ops]


def _get_item(client, item_id, expand=None):
    return client.data(client.wit.get_work_item(item_id, client.project, expand=expand))


def _type_of(item):
    return (item.get("fields") or {}).get("System.WorkItemType")


def _update(ctx, client, item, ops, what):
    """PATCH the item guarded by the revision it had when read; --dry-run shows the request instead."""
    ops = [("test", "/rev", item["rev"])] + ops
    document = _patch(client, ops)
    if ctx.dry_run:
        request = client.preview("wit", lambda wit: wit.update_work_item(document, item["id"], client.project,
                                                                         expand="Relations"))
        return {"dryRun": True, "request": request, "workItem": _brief(item)}
    try:
        updated = client.wit.update_work_item(document, item["id"], client.project, expand="Relations")
    except ConflictError as ex:
        raise ConflictError(f"work item {item['id']} was changed by someone else since it was read (rev "
                            f"{item['rev']}): {what} was not applied and the item is as they left it",
                            hint="look at it with 'oncall devops workitem show' and run the command again") from ex
    return client.data(updated)


def _brief(item):
    f = item.get("fields") or {}
    return {"id": item.get("id"), "rev": item.get("rev"), "type": f.get("System.WorkItemType"),
            "title": f.get("System.Title"), "state": f.get("System.State"), "column": f.get("System.BoardColumn")}


def _identity_name(ident):
    return f"{ident.get('displayName')} <{ident.get('uniqueName')}>"


def resolve_identity(client, text):
    """One identity for a display name, e-mail or @me; ambiguous or unknown -> an error naming the candidates."""
    from ._client import identity_summary
    text = (text or "").strip()
    if not text:
        raise UsageError("an empty user name")
    if text.lower() in ("@me", "me"):
        return client.me()
    wanted = text
    if "<" in text and text.endswith(">"):  # "Display Name <e-mail>"
        wanted = text[text.index("<") + 1:-1].strip()
    identities = client.client("identity").read_identities(search_filter="General", filter_value=wanted)
    candidates = [identity_summary(client.data(i)) for i in identities or [] if not getattr(i, "is_container", False)]
    low = wanted.lower()
    exact = [c for c in candidates if low in (str(c["uniqueName"]).lower(), str(c["displayName"]).lower())]
    if len(exact) == 1:
        return exact[0]
    if len(candidates) == 1 and not exact:
        return candidates[0]
    if len(exact) > 1 or len(candidates) > 1:
        shown = exact or candidates
        raise UsageError(f"{text!r} matches {len(shown)} identities: " + "; ".join(_identity_name(c) for c in shown[:8]),
                         hint="give the e-mail address; nothing was changed")
    # unknown: suggest people whose name starts like it (first word, or the e-mail's local part)
    stem = low.split("@")[0].replace(".", " ").split()[0] if low.split("@")[0].strip() else ""
    suggestions = []
    if stem and stem != low:
        found = client.client("identity").read_identities(search_filter="General", filter_value=stem)
        suggestions = [identity_summary(client.data(i)) for i in found or [] if not getattr(i, "is_container", False)]
    if suggestions:
        raise NotFoundError(f"no Azure DevOps identity matches {text!r}; candidates: "
                            + "; ".join(_identity_name(c) for c in suggestions[:8]), hint="nothing was changed")
    raise NotFoundError(f"no Azure DevOps identity matches {text!r} (search by display name or e-mail)",
                        hint="nothing was changed")


def _current_iteration(client, team):
    work = client.work
    iterations = work.get_team_iterations(client.team_context(team, "work"), timeframe="current")
    if not iterations:
        raise UsageError(f"team {team!r} has no current iteration", hint="give --iteration PATH")
    return iterations[0].path


def _field_refs(client, wi_type, names):
    """Friendly field names ('Priority') -> reference names, from the work item type's fields."""
    if all("." in n for n in names):
        return {n: n for n in names}
    wtype = client.data(client.wit.get_work_item_type(client.project, wi_type))
    by_name = {}
    for f in (wtype.get("fieldInstances") or wtype.get("fields") or []):
        by_name[str(f.get("name", "")).lower()] = f.get("referenceName")
        by_name[str(f.get("referenceName", "")).lower()] = f.get("referenceName")
    return {n: by_name.get(n.lower(), n) for n in names}


def _wi_target(kwargs, result):
    if isinstance(result, dict) and result.get("id") and not result.get("dryRun"):
        return f"{result['id']} ({(result.get('fields') or {}).get('System.Title', '')})"
    return kwargs.get("title") or str(kwargs.get("work_item_id", ""))


# --------------------------------------------------------------------------- context


@operation("devops context", uses="devops", table=context_rows, examples=[
    ("Which organization, project and credentials the commands will use", "oncall devops context -o table"),
    ("Also sign in and show who the credentials belong to", "oncall devops context --check"),
])
def show_context(ctx, check: Annotated[bool, Arg(help="Connect and show the authenticated user.")] = False,
                 team: Team = None):
    """Show the Azure DevOps organization, project, team and credentials in use, and where each comes from.

    Organization and project come from --org/--project, then config devops.org/devops.project (per profile),
    then the Azure Repos remote of the current Git repository. Nothing is sent unless --check is given.
    """
    client = ctx.client("devops")
    info = client.describe()
    configured = team or ctx.setting("devops", "team")
    info["team"] = configured
    if configured:
        info["sources"]["team"] = "argument" if team else "config devops.team"
    if check:
        info["user"] = client.me()
        if not configured and info.get("project"):
            info["team"] = client.default_team()
            info["sources"]["team"] = "the project's default team"
    return info


# --------------------------------------------------------------------------- work items


@operation("devops workitem create", uses="devops", mutating=True, target=_wi_target, table=workitem_rows, examples=[
    ("File a backlog item for the crashing pod, evidence in the description",
     "oncall devops workitem create --type 'Product Backlog Item' --title 'payments crash-loops on OOM' "
     "--description @evidence.md --tags oncall payments"),
    ("A bug for this sprint, assigned to me, under a parent feature",
     "oncall devops workitem create --type Bug --title 'checkout 500s' --assigned-to @me --iteration @current "
     "--parent 1234"),
    ("Set any field", "oncall devops workitem create --type Task --title 'rotate certs' --field Priority=1 "
                      "--field Microsoft.VSTS.Scheduling.RemainingWork=2"),
    ("Show the exact request without creating anything",
     "oncall devops workitem create --type Bug --title test --dry-run"),
])
def create_workitem(ctx,
                    type: Annotated[str, Arg(required=True, metavar="TYPE")] = None,  # noqa: A002
                    title: Annotated[str, Arg(required=True)] = None,
                    description: Annotated[str, Arg(metavar="TEXT|@FILE")] = None,
                    assigned_to: Annotated[str, Arg(metavar="USER")] = None,
                    area: Annotated[str, Arg(metavar="PATH")] = None,
                    iteration: Annotated[str, Arg(metavar="PATH|@current")] = None,
                    tags: Annotated[list[str], Arg(metavar="TAG")] = None,
                    parent: Annotated[int, Arg(metavar="ID")] = None,
                    field: Annotated[list[str], Arg(repeat=True, metavar="NAME=VALUE")] = None,
                    team: Team = None):
    """Create a work item (in its type's initial state).

    :param type: Work item type, e.g. 'Product Backlog Item', Bug, Task.
    :param title: Title.
    :param description: Description in Markdown or HTML; @FILE reads it from a file.
    :param assigned_to: Assignee: display name, e-mail or @me (an ambiguous name fails with the candidates).
    :param area: Area path, e.g. Web or Fabrikam\\Web (default the project's root area).
    :param iteration: Iteration path, or @current for the team's current iteration.
    :param tags: Tags (space or comma separated).
    :param parent: Id of the parent work item (a Parent link is added).
    :param field: Any other field as NAME=VALUE (reference or display name); repeatable.
    """
    client = ctx.client("devops")
    project = client.project
    if not title or not title.strip():
        raise UsageError("--title must not be empty")
    fields = _pairs(field, "--field")
    ops = [("add", "/fields/System.Title", title.strip())]
    if description:
        ops.append(("add", "/fields/System.Description", to_html(_text(description))))
    if assigned_to:
        ops.append(("add", "/fields/System.AssignedTo", resolve_identity(client, assigned_to)["uniqueName"]))
    if area:
        ops.append(("add", "/fields/System.AreaPath", _tree_path(project, area)))
    if iteration:
        path = (_current_iteration(client, _team(ctx, client, team)) if iteration.strip().lower() == "@current"
                else _tree_path(project, iteration))
        ops.append(("add", "/fields/System.IterationPath", path))
    words = _split_words(tags)
    if words:
        ops.append(("add", "/fields/System.Tags", "; ".join(words)))
    if fields:
        refs = _field_refs(client, type, [n for n, _ in fields])
        ops.extend(("add", f"/fields/{refs[n]}", v) for n, v in fields)
    if parent is not None:
        parent_item = _get_item(client, parent)
        ops.append(("add", "/relations/-", {"rel": "System.LinkTypes.Hierarchy-Reverse", "url": parent_item["url"],
                                            "attributes": {"comment": "parent"}}))
    document = _patch(client, ops)
    if ctx.dry_run:
        return {"dryRun": True, "request": client.preview(
            "wit", lambda wit: wit.create_work_item(document, project, type, expand="Relations"))}
    try:
        created = client.wit.create_work_item(document, project, type, expand="Relations")
    except NotFoundError:
        known = [t.name for t in client.wit.get_work_item_types(project)]
        if type.lower() not in (k.lower() for k in known):
            raise UsageError(f"work item type {type!r} does not exist in project {project}: " + ", ".join(known)) from None
        raise
    return client.data(created)


@operation("devops workitem show", uses="devops", table=workitem_detail, examples=[
    ("A work item with its relations and last comments", "oncall devops workitem show 42"),
    ("Just the state and the board column", "oncall devops workitem show 42 --query \"fields.['System.State', "
                                            "'System.BoardColumn']\""),
])
def show_workitem(ctx, work_item_id: WorkItemId,
                  comments: Annotated[int, Arg(metavar="N", help="How many of the latest comments to include.")] = 5):
    """Show a work item: every field, its relations and its last comments (oldest first)."""
    client = ctx.client("devops")
    item = _get_item(client, work_item_id, expand="All")
    item["comments"] = []
    if comments > 0 and (item.get("fields") or {}).get("System.CommentCount", 1):
        listing = client.wit.get_comments(client.project, work_item_id, top=comments, order="desc")
        item["comments"] = list(reversed(client.data(listing.comments) or []))
    return item


@operation("devops workitem move", uses="devops", mutating=True, target="work_item_id", table=workitem_rows, examples=[
    ("Move a card to the Doing column of the team's board", "oncall devops workitem move 42 --column Doing"),
    ("Change the state", "oncall devops workitem move 42 --state Done --reason 'Work finished'"),
    ("Move and say why in the discussion", "oncall devops workitem move 42 --column 'In Review' --comment 'fix in PR 77'"),
])
def move_workitem(ctx, work_item_id: WorkItemId,
                  state: Annotated[str, Arg(metavar="STATE")] = None,
                  column: Annotated[str, Arg(metavar="COLUMN")] = None,
                  reason: Annotated[str, Arg(metavar="REASON")] = None,
                  comment: Annotated[str, Arg(metavar="TEXT")] = None,
                  team: Team = None):
    """Move a work item to another state, or to a column of the team's Kanban board.

    A board column is set through the board's own Kanban column field (System.BoardColumn is read-only),
    together with the state the column maps to. A state or column the item cannot take fails with the
    valid ones listed, and nothing is changed.
    :param state: New state (e.g. Committed, Done).
    :param column: Board column (e.g. Doing); the item's state follows the column's mapping.
    :param reason: Reason for the state change (default the process's reason).
    :param comment: A discussion comment added in the same revision (Markdown or HTML).
    """
    if not state and not column:
        raise UsageError("give --state or --column")
    client = ctx.client("devops")
    item = _get_item(client, work_item_id)
    wi_type = _type_of(item)
    current = (item.get("fields") or {}).get("System.State")
    ops = []
    target_state = None
    if state:
        states = [s.name for s in client.wit.get_work_item_type_states(client.project, wi_type)]
        target_state = next((s for s in states if s.lower() == state.strip().lower()), None)
        if target_state is None:
            raise UsageError(f"{wi_type} {work_item_id} cannot take state {state!r}; its states are: "
                             + ", ".join(states), hint="nothing was changed")
    if column:
        team_name = _team(ctx, client, team)
        board, column_field = _board_for(client, team_name, wi_type)
        col = next((c for c in board["columns"] if c["name"].lower() == column.strip().lower()), None)
        if col is None:
            raise UsageError(f"{column!r} is not a column of the {board['name']!r} board of {team_name}; its columns "
                             "are: " + ", ".join(c["name"] for c in board["columns"]), hint="nothing was changed")
        mapped = (col.get("stateMappings") or {}).get(wi_type)
        if target_state and mapped and mapped != target_state:
            raise UsageError(f"column {col['name']!r} maps to state {mapped!r} for {wi_type}, not {target_state!r}",
                             hint="give --column alone, or a --state that matches it")
        target_state = mapped or target_state
        ops.append(("add", f"/fields/{column_field}", col["name"]))
    if target_state and target_state != current:
        ops.append(("add", "/fields/System.State", target_state))
    if reason:
        ops.append(("add", "/fields/System.Reason", reason))
    if comment:
        ops.append(("add", "/fields/System.History", to_html(_text(comment))))
    what = f"the move to {column or target_state}"
    return _update(ctx, client, item, ops, what)


def _board_for(client, team, wi_type):
    """(board with its columns, the board's Kanban column field) of the team's board showing ``wi_type``."""
    context = client.team_context(team, "work")
    boards = client.work.get_boards(context)
    seen = []
    for ref in boards or []:
        board = client.data(client.work.get_board(context, ref.id))
        seen.append(board.get("name"))
        columns = board.get("columns") or []
        if columns and any(wi_type in (c.get("stateMappings") or {}) for c in columns):
            field = ((board.get("fields") or {}).get("columnField") or {}).get("referenceName")
            return board, field
    raise UsageError(f"{wi_type} work items are not on a Kanban board of team {team} (boards: "
                     f"{', '.join(map(str, seen)) or 'none'})", hint="move them with --state")


@operation("devops workitem assign", uses="devops", mutating=True, target="work_item_id", table=workitem_rows, examples=[
    ("Assign to someone by e-mail", "oncall devops workitem assign 42 jamal@contoso.com"),
    ("Take it", "oncall devops workitem assign 42 @me"),
    ("By display name (fails with the candidates if the name is ambiguous)", "oncall devops workitem assign 42 'Jamal Hartnett'"),
    ("Unassign", "oncall devops workitem assign 42 --unassign"),
])
def assign_workitem(ctx, work_item_id: WorkItemId,
                    user: Annotated[str, Arg(positional=True, metavar="USER")] = None,
                    unassign: Annotated[bool, Arg(help="Clear the assignee.")] = False,
                    comment: Annotated[str, Arg(metavar="TEXT")] = None):
    """Assign a work item to a user (display name, e-mail or @me), or unassign it.

    An ambiguous or unknown user fails with the candidates, and nothing is changed.
    :param user: Display name, e-mail, or @me.
    :param comment: A discussion comment added in the same revision.
    """
    if bool(user) == bool(unassign):
        raise UsageError("give a USER or --unassign")
    client = ctx.client("devops")
    item = _get_item(client, work_item_id)
    if unassign:
        ops, what = [("add", "/fields/System.AssignedTo", "")], "unassigning"
    else:
        who = resolve_identity(client, user)
        ops, what = [("add", "/fields/System.AssignedTo", who["uniqueName"])], f"the assignment to {_identity_name(who)}"
    if comment:
        ops.append(("add", "/fields/System.History", to_html(_text(comment))))
    return _update(ctx, client, item, ops, what)


@operation("devops workitem comment add", uses="devops", mutating=True, target="work_item_id", table=comment_rows,
           examples=[("Add a comment (Markdown)", "oncall devops workitem comment add 42 'Mitigated: rolled back to **1.4.2**'"),
                     ("A long note from a file", "oncall devops workitem comment add 42 @notes.md")])
def add_comment(ctx, work_item_id: WorkItemId, text: Annotated[str, Arg(positional=True, metavar="TEXT|@FILE")]):
    """Add a discussion comment to a work item.

    :param text: The comment, in Markdown or HTML; @FILE reads it from a file.
    """
    body = _text(text)
    if not body or not body.strip():
        raise UsageError("the comment is empty")
    client = ctx.client("devops")
    CommentCreate = client.models("wit").CommentCreate
    request = CommentCreate(text=to_html(body))
    if ctx.dry_run:
        return {"dryRun": True, "request": client.preview(
            "wit", lambda wit: wit.add_comment(request, client.project, work_item_id))}
    return client.data(client.wit.add_comment(request, client.project, work_item_id))


@operation("devops workitem comment list", uses="devops", table=comment_rows, examples=[
    ("The discussion of a work item", "oncall devops workitem comment list 42 -o table"),
])
def list_comments(ctx, work_item_id: WorkItemId,
                  top: Annotated[int, Arg(metavar="N", help="How many of the latest comments.")] = 20):
    """List the discussion comments of a work item, oldest first."""
    client = ctx.client("devops")
    listing = client.wit.get_comments(client.project, work_item_id, top=top, order="desc")
    return list(reversed(client.data(listing.comments) or []))


def _run_wiql(client, team, query, top):
    context = client.team_context(team)
    Wiql = client.models("wit").Wiql
    return client.wit.query_by_wiql(Wiql(query=query), team_context=context, top=top)


def _ids_of(result):
    if getattr(result, "work_items", None) is not None:
        return [w.id for w in result.work_items]
    ids = []
    for rel in getattr(result, "work_item_relations", None) or []:
        for end in (rel.source, rel.target):
            if end is not None and end.id not in ids:
                ids.append(end.id)
    return ids


def fetch_items(client, ids, fields):
    """The work items ``ids`` (in that order) with ``fields``, fetched in batches of 200."""
    WorkItemBatchGetRequest = client.models("wit").WorkItemBatchGetRequest
    found = {}
    for start in range(0, len(ids), BATCH):
        chunk = ids[start:start + BATCH]
        batch = client.wit.get_work_items_batch(
            WorkItemBatchGetRequest(ids=chunk, fields=fields, error_policy="omit"), client.project)
        for item in client.data(batch) or []:
            if item:
                found[item["id"]] = item
    return [found[i] for i in ids if i in found]


@operation("devops workitem list", uses="devops", table=workitem_rows, examples=[
    ("My open work items", "oncall devops workitem list --mine -o table"),
    ("Bugs in the current sprint", "oncall devops workitem list --current-sprint --type Bug"),
    ("Items tagged oncall that are being worked on", "oncall devops workitem list --tag oncall --state Committed"),
    ("Someone else's", "oncall devops workitem list --assigned-to jamal@contoso.com --include-closed"),
])
def list_workitems(ctx, mine: Annotated[bool, Arg(help="Only work items assigned to me.")] = False,
                   current_sprint: Annotated[bool, Arg(help="Only the team's current iteration.")] = False,
                   state: Annotated[list[str], Arg(metavar="STATE")] = None,
                   type: Annotated[list[str], Arg(metavar="TYPE")] = None,  # noqa: A002
                   tag: Annotated[list[str], Arg(metavar="TAG")] = None,
                   assigned_to: Annotated[str, Arg(metavar="USER")] = None,
                   area: Annotated[str, Arg(metavar="PATH")] = None,
                   include_closed: Annotated[bool, Arg(help="Include Done, Closed and Removed items.")] = False,
                   top: Annotated[int, Arg(metavar="N")] = 100,
                   team: Team = None):
    """List work items, newest change first (WIQL underneath; fields fetched in batches of 200).

    :param state: Only these states (space or comma separated).
    :param type: Only these work item types.
    :param tag: Only items carrying every one of these tags.
    :param assigned_to: Only items assigned to this user (display name, e-mail or @me).
    :param area: Only items under this area path.
    :param top: At most this many items.
    """
    if mine and assigned_to:
        raise UsageError("--mine and --assigned-to exclude each other")
    if top < 1:
        raise UsageError("--top must be at least 1")
    client = ctx.client("devops")
    project = client.project
    where = ["[System.TeamProject] = @project"]
    if mine or (assigned_to and assigned_to.strip().lower() == "@me"):
        where.append("[System.AssignedTo] = @Me")
    elif assigned_to:
        where.append(f"[System.AssignedTo] = {_wiql_literal(resolve_identity(client, assigned_to)['uniqueName'])}")
    if current_sprint:
        where.append("[System.IterationPath] = @CurrentIteration")
    states = _split_words(state)
    if states:
        where.append("[System.State] IN (" + ", ".join(map(_wiql_literal, states)) + ")")
    elif not include_closed:
        where.append("[System.State] NOT IN (" + ", ".join(map(_wiql_literal, CLOSED_STATES)) + ")")
    types = _split_words(type)
    if types:
        where.append("[System.WorkItemType] IN (" + ", ".join(map(_wiql_literal, types)) + ")")
    for t in _split_words(tag):
        where.append(f"[System.Tags] CONTAINS {_wiql_literal(t)}")
    if area:
        where.append(f"[System.AreaPath] UNDER {_wiql_literal(_tree_path(project, area))}")
    query = ("SELECT [System.Id] FROM WorkItems WHERE " + " AND ".join(where)
             + " ORDER BY [System.ChangedDate] DESC")
    result = _run_wiql(client, _team(ctx, client, team), query, top)
    return fetch_items(client, _ids_of(result)[:top], LIST_FIELDS)


@operation("devops workitem query", uses="devops", table=query_rows, examples=[
    ("Run WIQL", "oncall devops workitem query --wiql \"SELECT [System.Id], [System.Title] FROM WorkItems "
                 "WHERE [System.Tags] CONTAINS 'oncall' ORDER BY [System.ChangedDate] DESC\""),
    ("Run a saved query", "oncall devops workitem query --saved-query 'Shared Queries/Active Bugs' -o table"),
])
def query_workitems(ctx, wiql: Annotated[str, Arg(metavar="WIQL")] = None,
                    saved_query: Annotated[str, Arg(metavar="PATH|ID")] = None,
                    top: Annotated[int, Arg(metavar="N")] = 200,
                    team: Team = None):
    """Run a WIQL query or a saved query; the items come back with the query's columns.

    :param wiql: The query text (SELECT [field], ... FROM WorkItems WHERE ...).
    :param saved_query: Path of a saved query (e.g. 'Shared Queries/Active Bugs') or its id.
    :param top: At most this many items.
    """
    if bool(wiql) == bool(saved_query):
        raise UsageError("give --wiql or --saved-query")
    client = ctx.client("devops")
    team_name = _team(ctx, client, team)
    if wiql:
        result = _run_wiql(client, team_name, wiql, top)
    else:
        saved = client.wit.get_query(client.project, saved_query, expand="wiql")
        if getattr(saved, "is_folder", False):
            raise UsageError(f"{saved_query!r} is a folder of queries, not a query")
        result = client.wit.query_by_id(saved.id, team_context=client.team_context(team_name), top=top)
    columns = [c.reference_name for c in getattr(result, "columns", None) or []] or ["System.Id", "System.Title"]
    if "System.Id" not in columns:
        columns.insert(0, "System.Id")
    return fetch_items(client, _ids_of(result)[:top], columns)


# --------------------------------------------------------------------------- releases


def _definition(client, definition):
    """A release definition (as data) by id or exact name."""
    project = client.project
    text = str(definition).strip()
    if text.isdigit():
        return client.data(client.release.get_release_definition(project, int(text)))
    found = client.release.get_release_definitions(project, search_text=text, is_exact_name_match=True)
    found = [d for d in found or [] if d.name.lower() == text.lower()]
    if not found:
        names = [d.name for d in client.release.get_release_definitions(project) or []]
        raise NotFoundError(f"no release pipeline named {text!r} in {project}"
                            + (f"; there are: {', '.join(names[:15])}" if names else ""))
    return client.data(client.release.get_release_definition(project, found[0].id))


def _identity_brief(ref):
    if not isinstance(ref, dict):
        return ref
    return {"displayName": ref.get("displayName"), "uniqueName": ref.get("uniqueName")}


def environment_summary(env):
    """A release environment as an on-call engineer reads it: status, approvals pending, last deployment."""
    approvals = (env.get("preDeployApprovals") or []) + (env.get("postDeployApprovals") or [])
    pending = [{"id": a.get("id"), "approvalType": a.get("approvalType"), "approver": _identity_brief(a.get("approver")),
                "createdOn": a.get("createdOn")} for a in approvals if a.get("status") == "pending"
               and not a.get("isAutomated")]
    steps = env.get("deploySteps") or []
    last = steps[-1] if steps else None
    out = {"id": env.get("id"), "name": env.get("name"), "status": env.get("status"), "rank": env.get("rank"),
           "release": {"id": (env.get("release") or {}).get("id", env.get("releaseId")),
                       "name": (env.get("release") or {}).get("name")},
           "pendingApprovals": pending,
           "lastDeployment": None if last is None else {
               "id": last.get("deploymentId", last.get("id")), "attempt": last.get("attempt"), "status": last.get("status"),
               "operationStatus": last.get("operationStatus"), "requestedBy": _identity_brief(last.get("requestedBy")),
               "queuedOn": last.get("queuedOn"), "lastModifiedOn": last.get("lastModifiedOn")}}
    if env.get("scheduledDeploymentTime"):
        out["scheduledDeploymentTime"] = env["scheduledDeploymentTime"]
    return out


def release_summary(release):
    keep = ("id", "name", "status", "description", "reason", "createdOn", "modifiedOn", "createdBy",
            "releaseDefinition", "artifacts", "url", "_links")
    out = {k: release[k] for k in keep if k in release}
    if "releaseDefinition" in out:
        out["releaseDefinition"] = {k: out["releaseDefinition"].get(k) for k in ("id", "name")}
    if "createdBy" in out:
        out["createdBy"] = _identity_brief(out["createdBy"])
    if "artifacts" in out:
        out["artifacts"] = [{"alias": a.get("alias"), "type": a.get("type"),
                             "version": ((a.get("definitionReference") or {}).get("version") or {}).get("name")}
                            for a in out["artifacts"] or []]
    envs = sorted(release.get("environments") or [], key=lambda e: e.get("rank") or 0)
    out["environments"] = [environment_summary(dict(e, release=e.get("release") or {"id": release.get("id"),
                                                                                     "name": release.get("name")}))
                           for e in envs]
    return out


def _get_release(client, release_id):
    return client.data(client.release.get_release(client.project, release_id))


def _pick_env(release, name):
    envs = sorted(release.get("environments") or [], key=lambda e: e.get("rank") or 0)
    if name.strip().lower() == "next":
        for env in envs:
            if env.get("status") not in ("succeeded", "partiallySucceeded"):
                return env
        raise UsageError(f"every environment of {release.get('name')} has already succeeded")
    for env in envs:
        if env.get("name", "").lower() == name.strip().lower():
            return env
    raise UsageError(f"{release.get('name')} has no environment {name!r}; its environments are: "
                     + ", ".join(e.get("name", "") for e in envs))


def _outcome(env):
    status = env.get("status")
    last = env.get("lastDeployment") or {}
    if status == "succeeded":
        return "succeeded"
    if status == "rejected":
        return "rejected" if last.get("operationStatus") == "rejected" else "failed"
    return status


def follow(ctx, client, release_id, env_id, timeout):
    """Poll a release environment until its deployment ends; progress on stderr; the final summary."""
    project = client.project
    deadline = time.monotonic() + timeout.total_seconds()
    started = time.monotonic()
    delay, last_line = 0.2, None
    with ctx.progress(unit="s", description="deploying") as progress:
        while True:
            env = environment_summary(client.data(client.release.get_release_environment(project, release_id, env_id)))
            status = env.get("status")
            waiting = ", ".join(f"{a['approvalType']} approval by {(a.get('approver') or {}).get('displayName')}"
                                for a in env["pendingApprovals"])
            line = f"{env['release'].get('name') or release_id} -> {env['name']}: {status}" + (
                f" (waiting for {waiting})" if waiting else "")
            if line != last_line:
                ctx.info(line)
                last_line = line
            progress.description = line
            elapsed = int(time.monotonic() - started)
            progress.update(max(0, elapsed - progress.done))
            if status in FINAL_ENV_STATES:
                env["outcome"] = _outcome(env)
                return env
            if time.monotonic() >= deadline:
                env["outcome"] = "timedOut"
                raise OutcomeError(f"gave up waiting after {int(timeout.total_seconds())} s: {env['name']} of "
                                   f"{env['release'].get('name')} is still {status}", result=env,
                                   hint="follow it with 'oncall devops release show'")
            time.sleep(min(delay, max(0.05, deadline - time.monotonic())))
            delay = min(delay * 1.5, 5.0)


def _finish(env):
    """Exit code by outcome: succeeded returns; anything else fails with exit 12 after printing the result."""
    if env.get("outcome") == "succeeded":
        return env
    raise OutcomeError(f"deployment of {env['release'].get('name')} to {env['name']} {env['outcome']}"
                       + (f" (deployment {env['lastDeployment'].get('status')})" if env.get("lastDeployment") else ""),
                       result=env)


def _env_target(kwargs, result):
    return f"release {kwargs.get('release_id')} env {kwargs.get('env')}"


@operation("devops release list", uses="devops", table=release_rows, examples=[
    ("Latest releases", "oncall devops release list -o table"),
    ("Active releases of one pipeline", "oncall devops release list --definition payments-api --status active --top 5"),
])
def list_releases(ctx, definition: Annotated[str, Arg(metavar="NAME|ID")] = None,
                  status: Annotated[str, Arg(choices=("active", "abandoned", "draft"))] = None,
                  top: Annotated[int, Arg(metavar="N")] = 25):
    """List releases of classic release pipelines, newest first, with each environment's status.

    :param definition: Only releases of this release pipeline (name or id).
    :param status: Only releases in this state.
    :param top: At most this many releases.
    """
    client = ctx.client("devops")
    definition_id = _definition(client, definition)["id"] if definition else None
    releases = client.release.get_releases(client.project, definition_id=definition_id, status_filter=status,
                                           top=top, expand="environments")
    return [release_summary(r) for r in client.data(releases) or []]


@operation("devops release show", uses="devops", table=release_detail, examples=[
    ("A release: every environment, approvals pending, last deployment", "oncall devops release show 17 -o table"),
])
def show_release(ctx, release_id: ReleaseId):
    """Show a release: every environment with its status, the approvals pending and the last deployment."""
    client = ctx.client("devops")
    return release_summary(_get_release(client, release_id))


def _deploy(ctx, client, release, env, comment, scheduled_time, variables):
    """PATCH the release environment to inProgress (or return the request under --dry-run)."""
    models = client.models("release")
    when = None
    if scheduled_time:
        try:
            when = parse_datetime(scheduled_time)
        except ValueError as ex:
            raise UsageError(str(ex)) from None
        if when <= dt.datetime.now(dt.timezone.utc):
            raise UsageError(f"--scheduled-time {isoformat(when)} is in the past")
    pairs = _pairs(variables, "--variable")
    body = models.ReleaseEnvironmentUpdateMetadata(
        status="inProgress", comment=comment, scheduled_deployment_time=when,
        variables={n: models.ConfigurationVariableValue(value=v) for n, v in pairs} or None)
    project = client.project
    if ctx.dry_run:
        return client.preview("release", lambda rm: rm.update_release_environment(body, project, release["id"], env["id"]))
    updated = client.release.update_release_environment(body, project, release["id"], env["id"])
    data = client.data(updated)
    data.setdefault("release", {"id": release["id"], "name": release.get("name")})
    return environment_summary(data)


@operation("devops release deploy", uses="devops", mutating=True, target=_env_target, table=deploy_rows, examples=[
    ("Deploy a release to QA", "oncall devops release deploy 17 --env QA --comment 'INC-4711 fix'"),
    ("Deploy to the next environment and follow it to the end (exit 12 if it fails)",
     "oncall devops release deploy 17 --env next --wait"),
    ("Tonight, with a variable", "oncall devops release deploy 17 --env Prod --scheduled-time 2024-06-01T22:00:00Z "
                                 "--variable FEATURE_FLAG=off"),
    ("Show the exact request only", "oncall devops release deploy 17 --env Prod --dry-run"),
])
def deploy_release(ctx, release_id: ReleaseId,
                   env: Annotated[str, Arg(required=True, metavar="NAME", help="The environment (stage) to deploy "
                                                                               "to, or 'next': the first one not yet "
                                                                               "succeeded.")] = None,
                   comment: Annotated[str, Arg(metavar="TEXT")] = None,
                   scheduled_time: Annotated[str, Arg(metavar="TIME")] = None,
                   variable: Annotated[list[str], Arg(repeat=True, metavar="NAME=VALUE")] = None,
                   wait: Annotated[bool, Arg(help="Follow the deployment until it ends; exit 12 unless it succeeded.")] = False,
                   timeout: Annotated[dt.timedelta, Arg(metavar="DURATION")] = dt.timedelta(hours=1)):
    """Deploy a release to an environment (the release environment is set to inProgress).

    With --wait, progress is shown until the deployment ends and the exit code says how it ended:
    succeeded 0; failed, rejected, canceled or partially succeeded 12 (the final state is printed first).
    :param comment: Why (shown in the release's history).
    :param scheduled_time: Deploy later: ISO-8601 time, or +2h.
    :param variable: A release variable for this deployment as NAME=VALUE; repeatable.
    :param timeout: With --wait: how long to follow it (e.g. 30m, 2h).
    """
    client = ctx.client("devops")
    release = _get_release(client, release_id)
    target = _pick_env(release, env)
    result = _deploy(ctx, client, release, target, comment, scheduled_time, variable)
    if ctx.dry_run:
        return {"dryRun": True, "request": result,
                "environment": environment_summary(dict(target, release={"id": release["id"], "name": release["name"]}))}
    if not wait:
        return result
    return _finish(follow(ctx, client, release_id, target["id"], timeout))


@operation("devops release approve", uses="devops", mutating=True, target=_env_target, table=approve_rows, examples=[
    ("Approve the pending deployment to Prod", "oncall devops release approve 17 --env Prod --comment 'INC-4711 verified'"),
    ("Approve and follow the deployment", "oncall devops release approve 17 --env Prod --wait"),
    ("Reject it", "oncall devops release approve 17 --env Prod --reject --comment 'not during the incident'"),
])
def approve_release(ctx, release_id: ReleaseId,
                    env: Annotated[str, Arg(required=True, metavar="NAME", help="The environment whose pending "
                                                                                "approvals to act on.")] = None,
                    comment: Annotated[str, Arg(metavar="TEXT")] = None,
                    reject: Annotated[bool, Arg(help="Reject instead of approving.")] = False,
                    wait: Annotated[bool, Arg(help="After approving, follow the deployment until it ends; exit 12 "
                                                   "unless it succeeded.")] = False,
                    timeout: Annotated[dt.timedelta, Arg(metavar="DURATION")] = dt.timedelta(hours=1)):
    """Approve (or reject) the pending pre- or post-deployment approvals of a release environment.

    The approvals assigned to you are acted on; if none is, every pending one is tried (Azure DevOps
    refuses with 403 what you may not approve).
    :param comment: The approval's comment.
    :param timeout: With --wait: how long to follow the deployment.
    """
    client = ctx.client("devops")
    project = client.project
    release = _get_release(client, release_id)
    target = _pick_env(release, env)
    pending = [a for a in client.release.get_approvals(project, status_filter="pending", release_ids_filter=[release_id])
               or [] if a.release_environment is not None and a.release_environment.id == target["id"]]
    if not pending:
        state = target.get("status")
        raise NotFoundError(f"no approval is pending for {target['name']} of {release['name']} (it is {state})",
                            hint=None if state in ("queued", "inProgress") else
                            f"deploy it first: oncall devops release deploy {release_id} --env {target['name']}")
    me = client.me()
    mine = [a for a in pending if a.approver is not None and (str(a.approver.id).lower() == str(me["id"]).lower()
                                                            or str(a.approver.unique_name).lower()
                                                            == str(me["uniqueName"]).lower())]
    chosen = mine or pending
    ReleaseApproval = client.models("release").ReleaseApproval
    status = "rejected" if reject else "approved"
    body = ReleaseApproval(status=status, comments=comment)
    if ctx.dry_run:
        requests = [client.preview("release", lambda rm, a=a: rm.update_release_approval(body, project, a.id))
                    for a in chosen]
        return {"dryRun": True, "requests": requests,
                "environment": environment_summary(dict(target, release={"id": release["id"], "name": release["name"]}))}
    done = [client.data(client.release.update_release_approval(body, project, a.id)) for a in chosen]
    if wait and not reject:
        env_summary = follow(ctx, client, release_id, target["id"], timeout)
        env_summary["approvals"] = [_approval_brief(a) for a in done]
        return _finish(env_summary)
    env_summary = environment_summary(client.data(client.release.get_release_environment(project, release_id,
                                                                                         target["id"])))
    env_summary["approvals"] = [_approval_brief(a) for a in done]
    return env_summary


def _approval_brief(a):
    return {"id": a.get("id"), "approvalType": a.get("approvalType"), "status": a.get("status"),
            "approver": _identity_brief(a.get("approver")), "approvedBy": _identity_brief(a.get("approvedBy")),
            "comments": a.get("comments")}


@operation("devops release create", uses="devops", mutating=True,
           target=lambda kw, r: (f"{r.get('name')} of {kw.get('definition')}" if isinstance(r, dict) and r.get("name")
                                 else str(kw.get("definition"))),
           table=create_rows, examples=[
               ("A release of the latest artifacts", "oncall devops release create --definition payments-api "
                                                     "--description 'INC-4711 hotfix'"),
               ("Pin an artifact version and deploy it to Dev at once",
                "oncall devops release create --definition payments-api --artifact _payments-ci=20240601.3 --deploy-to Dev"),
           ])
def create_release(ctx, definition: Annotated[str, Arg(required=True, metavar="NAME|ID")] = None,
                   description: Annotated[str, Arg(metavar="TEXT")] = None,
                   artifact: Annotated[list[str], Arg(repeat=True, metavar="ALIAS=VERSION")] = None,
                   deploy_to: Annotated[str, Arg(metavar="ENV")] = None,
                   wait: Annotated[bool, Arg(help="With --deploy-to: follow the deployment; exit 12 unless it "
                                                  "succeeded.")] = False,
                   timeout: Annotated[dt.timedelta, Arg(metavar="DURATION")] = dt.timedelta(hours=1)):
    """Create a release of a classic release pipeline, optionally deploying it to an environment.

    :param definition: The release pipeline (name or id).
    :param description: The release's description.
    :param artifact: Artifact version as ALIAS=VERSION (the build id for build artifacts); repeatable. Unpinned
        artifacts take the pipeline's default (latest) version.
    :param deploy_to: After creating it, deploy the release to this environment.
    :param timeout: With --wait: how long to follow the deployment.
    """
    if wait and not deploy_to:
        raise UsageError("--wait needs --deploy-to")
    client = ctx.client("devops")
    project = client.project
    d = _definition(client, definition)
    aliases = [a.get("alias") for a in d.get("artifacts") or []]
    pinned = _pairs(artifact, "--artifact")
    for alias, _ in pinned:
        if alias.lower() not in (a.lower() for a in aliases):
            raise UsageError(f"release pipeline {d['name']!r} has no artifact {alias!r}; its artifacts are: "
                             + (", ".join(aliases) or "none"))
    env_names = [e.get("name") for e in sorted(d.get("environments") or [], key=lambda e: e.get("rank") or 0)]
    if deploy_to and deploy_to.lower() not in (n.lower() for n in env_names):
        raise UsageError(f"release pipeline {d['name']!r} has no environment {deploy_to!r}; its environments are: "
                         + ", ".join(env_names))
    models = client.models("release")
    body = models.ReleaseStartMetadata(
        definition_id=d["id"], description=description,
        artifacts=[models.ArtifactMetadata(alias=next(a for a in aliases if a.lower() == alias.lower()),
                                           instance_reference=models.BuildVersion(id=version, name=version))
                   for alias, version in pinned] or None)
    if ctx.dry_run:
        requests = [client.preview("release", lambda rm: rm.create_release(body, project))]
        if deploy_to:
            requests.append({"method": "PATCH", "url": "(then) the new release's environment " + deploy_to,
                             "body": {"status": "inProgress"}})
        return {"dryRun": True, "requests": requests}
    created = client.data(client.release.create_release(body, project))
    if deploy_to:
        target = _pick_env(created, deploy_to)
        try:
            _deploy(ctx, client, created, target, description, None, None)
        except Exception as ex:
            if hasattr(ex, "hint"):
                ex.hint = (f"{created['name']} (id {created['id']}) was created; deploy it with "
                           f"'oncall devops release deploy {created['id']} --env {target['name']}'")
            raise
        if wait:
            env_summary = _finish(follow(ctx, client, created["id"], target["id"], timeout))
            created = _get_release(client, created["id"])
            out = release_summary(created)
            out["deployment"] = env_summary
            return out
        created = _get_release(client, created["id"])
    return release_summary(created)
