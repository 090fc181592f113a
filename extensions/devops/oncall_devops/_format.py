"""Table shapes for the devops commands: what an on-call engineer scans first."""
import datetime as dt

from oncall_common.convert import format_age, parse_datetime



def to_text(value, limit=None):
    from ._markdown import to_text as convert
    return convert(value, limit)

# reference name -> table column for the fields a list shows
SHORT = {"System.Id": "ID", "System.WorkItemType": "Type", "System.Title": "Title", "System.State": "State",
         "System.BoardColumn": "Column", "System.AssignedTo": "AssignedTo", "System.IterationPath": "Iteration",
         "System.AreaPath": "Area", "System.Tags": "Tags", "System.ChangedDate": "Changed",
         "System.CreatedDate": "Created", "Microsoft.VSTS.Common.Priority": "Priority", "System.Reason": "Reason"}


def age(ts):
    if not ts:
        return ""
    try:
        return format_age(dt.datetime.now(dt.timezone.utc) - parse_datetime(str(ts))) + " ago"
    except ValueError:
        return str(ts)


def person(value):
    if isinstance(value, dict):
        return value.get("displayName") or value.get("uniqueName") or ""
    return value or ""


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def workitem_rows(items):
    rows = []
    for w in _as_list(items):
        f = w.get("fields") or {}
        rows.append({
            "ID": w.get("id"), "Type": f.get("System.WorkItemType", ""), "Title": (f.get("System.Title") or "")[:70],
            "State": f.get("System.State", ""), "Column": f.get("System.BoardColumn", ""),
            "AssignedTo": person(f.get("System.AssignedTo")), "Iteration": f.get("System.IterationPath", ""),
            "Tags": f.get("System.Tags", ""), "Rev": w.get("rev", ""), "Changed": age(f.get("System.ChangedDate")),
        })
    return rows


def workitem_detail(item):
    f = item.get("fields") or {}
    parent = next((r for r in item.get("relations") or [] if r.get("rel") == "System.LinkTypes.Hierarchy-Reverse"), None)
    comments = item.get("comments") or []
    last = comments[-1] if comments else None
    return [{
        "ID": item.get("id"), "Type": f.get("System.WorkItemType", ""), "Title": f.get("System.Title", ""),
        "State": f.get("System.State", ""), "Column": f.get("System.BoardColumn", ""),
        "AssignedTo": person(f.get("System.AssignedTo")), "Area": f.get("System.AreaPath", ""),
        "Iteration": f.get("System.IterationPath", ""), "Tags": f.get("System.Tags", ""),
        "Parent": (parent or {}).get("url", "").rsplit("/", 1)[-1] if parent else "",
        "Relations": len(item.get("relations") or []), "Comments": f.get("System.CommentCount", len(comments)),
        "LastComment": (f"{person(last.get('createdBy'))}: {to_text(last.get('text'), 60)}" if last else ""),
        "Description": to_text(f.get("System.Description"), 80),
    }]


def query_rows(items):
    rows = []
    for w in _as_list(items):
        row = {"ID": w.get("id")}
        for ref, value in (w.get("fields") or {}).items():
            if ref == "System.Id":
                continue
            label = SHORT.get(ref, ref.rsplit(".", 1)[-1])
            if ref in ("System.ChangedDate", "System.CreatedDate"):
                value = age(value)
            row[label] = person(value) if isinstance(value, dict) else value
        rows.append(row)
    return rows


def comment_rows(comments):
    return [{"ID": c.get("id"), "By": person(c.get("createdBy")), "When": age(c.get("createdDate")),
             "Text": to_text(c.get("text"), 100)} for c in _as_list(comments)]


def context_rows(info):
    rows = [{"Setting": "organization", "Value": info.get("organization"),
             "Source": (info.get("sources") or {}).get("organization", "")},
            {"Setting": "project", "Value": info.get("project") or "", "Source": (info.get("sources") or {}).get("project", "")},
            {"Setting": "team", "Value": info.get("team") or "", "Source": (info.get("sources") or {}).get("team", "")},
            {"Setting": "auth", "Value": info.get("auth"), "Source": ""}]
    if info.get("user"):
        user = info["user"]
        rows.append({"Setting": "user", "Value": f"{user.get('displayName')} <{user.get('uniqueName')}>",
                     "Source": "connectionData"})
    return rows


def _envs_cell(release):
    return " ".join(f"{e.get('name')}:{e.get('status')}" for e in release.get("environments") or [])


def release_rows(releases):
    return [{"ID": r.get("id"), "Name": r.get("name"), "Definition": (r.get("releaseDefinition") or {}).get("name", ""),
             "Status": r.get("status", ""), "Environments": _envs_cell(r), "Created": age(r.get("createdOn")),
             "CreatedBy": person(r.get("createdBy")), "Description": (r.get("description") or "")[:50]}
            for r in _as_list(releases)]


def _approvals_cell(env):
    return ", ".join(f"{a.get('approvalType', '')}:{person(a.get('approver'))}" for a in env.get("pendingApprovals") or [])


def _deployment_cells(env):
    last = env.get("lastDeployment") or {}
    return {"Attempt": last.get("attempt", ""), "Deployment": last.get("status", ""),
            "Operation": last.get("operationStatus", ""), "RequestedBy": person(last.get("requestedBy")),
            "Modified": age(last.get("lastModifiedOn"))}


def environment_rows(envs, release_name=""):
    return [{"Release": release_name or (e.get("release") or {}).get("name", ""), "Environment": e.get("name"),
             "Status": e.get("status"), "PendingApprovals": _approvals_cell(e), **_deployment_cells(e)}
            for e in _as_list(envs)]


def release_detail(release):
    return environment_rows(release.get("environments") or [], release.get("name", ""))


def deploy_rows(env):
    rows = environment_rows([env])
    for row in rows:
        row["Outcome"] = env.get("outcome", "")
    return rows


def approve_rows(env):
    rows = deploy_rows(env)
    for row in rows:
        row["Approved"] = ", ".join(f"{a.get('id')}:{a.get('status')}" for a in env.get("approvals") or [])
    return rows


def create_rows(release):
    return release_rows([release])
