"""A stateful Azure DevOps simulator: Boards (work items, WIQL, boards, comments) and classic Releases.

Real HTTP on 127.0.0.1, driven by the official ``azure-devops`` SDK exactly as against
dev.azure.com. One server plays three hosts, told apart by a path prefix:

    {url}                 = http://127.0.0.1:PORT/{org}          dev.azure.com/{org}   (wit, work, core, location)
    {url}/../vsrm/{org}   = http://127.0.0.1:PORT/vsrm/{org}     vsrm.dev.azure.com    (release)
    {url}/../vssps/{org}  = http://127.0.0.1:PORT/vssps/{org}    vssps.dev.azure.com   (identities)

The SDK finds those hosts itself, through ``_apis/ResourceAreas``, then learns each host's
routes from ``OPTIONS {host}/_apis``; an API asked of the wrong host gets a 404, as live.

Every request and response is checked against the published 7.1 specs (wit, work, release,
core) by ``SimServer``; the relaxations used, each with its reason, are in ``RELAX`` and
``_HostedSpec``. The few endpoints no spec describes are listed in ``unvalidated``.

Python API for tests: see ``DevOpsSimulator``.
"""

from __future__ import annotations

import base64
import copy
import datetime as _dt
import itertools
import json
import os
import re
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from simulators.base import Request, Response, SimServer
from simulators.swagger import Swagger2Spec

__all__ = ["DevOpsSimulator", "DevOpsError", "WorkItem", "Identity", "SPECS_DIR"]

SPECS_DIR = Path(os.environ.get("ONCALL_SPECS_DIR")
                 or Path(__file__).resolve().parents[3] / "shared" / "specs") / "azure-devops"
_SPEC_FILES = ("wit/7.1/workItemTracking.json", "work/7.1/work.json",
               "release/7.1/release.json", "core/7.1/core.json")

# Deliberate departures from the published specs (see simulators.swagger.RELAXATIONS).
RELAX = {
    # The SDK sends `Accept: application/json;api-version=7.1-preview.3`, never the query
    # parameter the spec marks required; the live service accepts either.
    "api_version_in_accept": True,
    # Lists go over the wire as {"count": n, "value": [...]} (live service, httpExamples, the
    # SDK's _unwrap_collection); the spec declares bare arrays. `value` is still checked.
    "wrapped_lists": True,
    # Enums such as $expand are declared lower case (relations, all); the SDK passes the
    # caller's string through (Relations, All) and the live service ignores case.
    "enum_case_insensitive": True,
    # The specs are generated from C#: a value typed `object` (work item field values, the
    # JSON-Patch `value`, relation attributes) is written {"type": "object"}, yet carries
    # strings and numbers ("System.Title": "x"). A bare {"type": "object"} means any value.
    "untyped_objects": True,
}
# Not relaxed on purpose: org-level routes without {project} (live, but not in the specs),
# WIQL without {team}: a CLI must always send the project (and team for WIQL/boards).


_SPEC_LOCK = threading.Lock()
_SPEC_CACHE: dict[str, Swagger2Spec] = {}


def devops_spec() -> Swagger2Spec:
    with _SPEC_LOCK:
        if "spec" not in _SPEC_CACHE:
            # Paths mix `workitems`/`workItems`, `release`/`Release`: the live service ignores case.
            _SPEC_CACHE["spec"] = Swagger2Spec([SPECS_DIR / f for f in _SPEC_FILES], case_insensitive=True,
                                               relax=RELAX)
        return _SPEC_CACHE["spec"]


HOST_PREFIXES = ("vsrm", "vssps")
# Query parameters whose enum is a [Flags] enum server-side (ReleaseExpands,
# ReleaseDefinitionExpands, ApprovalFilters): the live service takes a comma-joined
# list ("environments,artifacts"); the spec declares a single value.
FLAG_ENUM_PARAMS = ("$expand", "approvalFilters")


def _split_host(path: str) -> tuple[str, str]:
    """'/vsrm/contoso/x' -> ('vsrm', '/contoso/x'); '/contoso/x' -> ('dev', '/contoso/x')."""
    parts = path.split("/", 2)
    if len(parts) > 2 and parts[1].lower() in HOST_PREFIXES:
        return parts[1].lower(), "/" + parts[2]
    return "dev", path


class _HostedSpec:
    """The spec as seen by one server playing three hosts: the host prefix is not part of the
    service's path, so it is removed before matching."""

    def __init__(self, inner: Swagger2Spec):
        self.inner = inner
        self.docs = inner.docs

    def match(self, method, path, query=None):
        return self.inner.match(method, _split_host(path)[1], query)

    def validate_request(self, method, path, query, headers, body):
        path = _split_host(path)[1]
        flags = {}
        for name in FLAG_ENUM_PARAMS:
            values = (query or {}).get(name)
            if values and len(values) == 1 and "," in values[0]:
                flags[name] = [v.strip() for v in values[0].split(",") if v.strip()]
        if not flags:
            return self.inner.validate_request(method, path, query, headers, body)
        # each flag is checked against the declared enum on its own, then the whole list is kept
        query = dict(query)
        for name, pieces in flags.items():
            for piece in pieces:
                self.inner.validate_request(method, path, {**query, name: [piece]}, headers, body)
            query[name] = [pieces[0]]
        op = self.inner.validate_request(method, path, query, headers, body)
        for name, pieces in flags.items():
            op.params[name] = [p.lower() for p in pieces]
        return op

    def validate_response(self, *args, **kw):
        return self.inner.validate_response(*args, **kw)

    def validate_instance(self, *args, **kw):
        return self.inner.validate_instance(*args, **kw)


# --------------------------------------------------------------------------- resource locations
# (id, area, resourceName, routeTemplate, resourceVersion, host). Ids and versions are the ones
# the SDK's v7_1 clients send (work_item_tracking_client.py, work_client.py, release_client.py,
# core_client.py, identity_client.py, location_client.py); templates are the live service's.
_LOCATION_ROWS = [
    ("00d9565f-ed9c-4a06-9a50-00e7896ccab4", "Location", "connectionData", "_apis/{resource}", 1, "*"),
    ("e81700f7-3be2-46de-8624-2eb35882fcaa", "Location", "ResourceAreas", "_apis/{resource}/{areaId}", 1, "*"),
    # core
    ("603fe2ac-9723-48b9-88ad-09305aa6c6e1", "core", "projects", "_apis/{resource}/{*projectId}", 4, "dev"),
    ("d30a3dd1-f8ba-442a-b86a-bd0c0c383e59", "core", "teams", "_apis/projects/{projectId}/{resource}/{*teamId}", 3, "dev"),
    ("7a4d9ee9-3433-4347-b47a-7a80f1cf307e", "core", "teams", "_apis/{resource}", 3, "dev"),
    # wit
    ("62d3d110-0047-428c-ad3c-4fe872c91c74", "wit", "workItems", "{project}/_apis/{area}/{resource}/${type}", 3, "dev"),
    ("72c7ddf8-2cdc-4f60-90cd-ab71c14a399b", "wit", "workItems", "{project}/_apis/{area}/{resource}/{id}", 3, "dev"),
    ("908509b6-4248-4475-a1cd-829139ba419f", "wit", "workItemsBatch", "{project}/_apis/{area}/{resource}", 1, "dev"),
    ("a00c85a5-80fa-4565-99c3-bcd2181434bb", "wit", "revisions", "{project}/_apis/{area}/workItems/{id}/{resource}/{revisionNumber}", 3, "dev"),
    ("6570bf97-d02c-4a91-8d93-3abe9895b1a9", "wit", "updates", "{project}/_apis/{area}/workItems/{id}/{resource}/{updateNumber}", 3, "dev"),
    ("608aac0a-32e1-4493-a863-b9cf4566d257", "wit", "comments", "{project}/_apis/{area}/workItems/{workItemId}/{resource}/{commentId}", 4, "dev"),
    ("1a9c53f7-f243-4447-b110-35ef023636e4", "wit", "wiql", "{project}/{team}/_apis/{area}/{resource}", 2, "dev"),
    ("a02355f5-5f8a-4671-8e32-369d23aac83d", "wit", "wiql", "{project}/{team}/_apis/{area}/{resource}/{id}", 2, "dev"),
    ("a67d190c-c41f-424b-814d-0e906f659301", "wit", "queries", "{project}/_apis/{area}/{resource}/{*query}", 2, "dev"),
    ("7c8d7a76-4a09-43e8-b5df-bd792f4ac6aa", "wit", "workItemTypes", "{project}/_apis/{area}/{resource}/{type}", 2, "dev"),
    ("7c9d7a76-4a09-43e8-b5df-bd792f4ac6aa", "wit", "states", "{project}/_apis/{area}/workitemtypes/{type}/{resource}", 1, "dev"),
    ("a70579d1-f53a-48ee-a5be-7be8659023b9", "wit", "classificationNodes", "{project}/_apis/{area}/{resource}", 2, "dev"),
    ("5a172953-1b41-49d3-840a-33f79c3ce89f", "wit", "classificationNodes", "{project}/_apis/{area}/{resource}/{structureGroup}/{*path}", 2, "dev"),
    # work
    ("c3c1012b-bea7-49d7-b45e-1664e566f84c", "work", "teamsettings", "{project}/{team}/_apis/{area}/{resource}", 1, "dev"),
    ("c9175577-28a1-4b06-9197-8636af9f64ad", "work", "iterations", "{project}/{team}/_apis/{area}/teamsettings/{resource}/{id}", 1, "dev"),
    ("23ad19fc-3b8e-4877-8462-b3f92bc06b40", "work", "boards", "{project}/{team}/_apis/{area}/{resource}/{id}", 1, "dev"),
    ("c555d7ff-84e1-47df-9923-a3fe0cd8751b", "work", "columns", "{project}/{team}/_apis/{area}/boards/{board}/{resource}", 1, "dev"),
    # release (vsrm host)
    ("d8f96f24-8ea7-4cb6-baab-2df8fc515665", "Release", "definitions", "{project}/_apis/{area}/{resource}/{definitionId}", 4, "vsrm"),
    ("a166fde7-27ad-408e-ba75-703c2cc9d500", "Release", "releases", "{project}/_apis/{area}/{resource}/{releaseId}", 8, "vsrm"),
    ("a7e426b1-03dc-48af-9dfe-c98bac612dcb", "Release", "environments", "{project}/_apis/{area}/releases/{releaseId}/{resource}/{environmentId}", 7, "vsrm"),
    ("b47c6458-e73b-47cb-a770-4df1e8813a91", "Release", "approvals", "{project}/_apis/{area}/{resource}", 3, "vsrm"),
    ("9328e074-59fb-465a-89d9-b09c82ee5109", "Release", "approvals", "{project}/_apis/{area}/{resource}/{approvalId}", 3, "vsrm"),
    ("b005ef73-cddc-448e-9ba2-5193bf36b19f", "Release", "deployments", "{project}/_apis/{area}/{resource}", 2, "vsrm"),
    # identities (vssps host)
    ("28010c54-d0c0-4c89-a5b0-1c9e188b9fb7", "IMS", "Identities", "_apis/{resource}/{identityId}", 1, "vssps"),
]

# Resource areas: the client classes' resource_area_identifier -> (name, host).
_RESOURCE_AREAS = [
    ("79134c72-4a58-4b42-976c-04e7115f32bf", "core", "dev"),
    ("5264459e-e5e0-4bd8-b118-0985e68a4ec5", "wit", "dev"),
    ("1d4f49f9-02b9-4e26-b826-2cdb6195f2a9", "work", "dev"),
    ("efc2f575-36ef-48e9-b672-0c6fb4a48ac5", "Release", "vsrm"),
    ("8a3d49b8-91f0-46ef-b33d-dda338c25db3", "IMS", "vssps"),
]


def _locations_for(host: str, area: str | None = None) -> list[dict]:
    out = []
    for lid, a, res, template, rv, where in _LOCATION_ROWS:
        if where not in ("*", host) or (area and a.lower() != area.lower()):
            continue
        out.append({"id": lid, "area": a, "resourceName": res, "routeTemplate": template,
                    "resourceVersion": rv, "minVersion": "1.0", "maxVersion": "7.1",
                    "releasedVersion": "7.0"})
    return out


# --------------------------------------------------------------------------- process template (Scrum)

@dataclass
class WorkItemType:
    name: str
    reference_name: str
    states: list[tuple[str, str, str]]  # (name, category, color)
    initial_reason: str
    color: str
    on_board: bool  # shown on the team's "Backlog items" Kanban board


WORK_ITEM_TYPES = [
    WorkItemType("Product Backlog Item", "Microsoft.VSTS.WorkItemTypes.ProductBacklogItem",
                 [("New", "Proposed", "b2b2b2"), ("Approved", "Proposed", "5688e0"),
                  ("Committed", "InProgress", "007acc"), ("Done", "Completed", "339933"),
                  ("Removed", "Removed", "ffffff")], "New backlog item", "009CCC", True),
    WorkItemType("Bug", "Microsoft.VSTS.WorkItemTypes.Bug",
                 [("New", "Proposed", "b2b2b2"), ("Approved", "Proposed", "5688e0"),
                  ("Committed", "InProgress", "007acc"), ("Done", "Completed", "339933"),
                  ("Removed", "Removed", "ffffff")], "New defect reported", "CC293D", True),
    WorkItemType("Task", "Microsoft.VSTS.WorkItemTypes.Task",
                 [("To Do", "Proposed", "b2b2b2"), ("In Progress", "InProgress", "007acc"),
                  ("Done", "Completed", "339933"), ("Removed", "Removed", "ffffff")],
                 "New task", "F2CB1D", False),
]

# refName -> (friendly name, type, writability). Writability: "rw"; "ro" = never writable
# (TF401326); "sys" = only with bypassRules (history import tools set these).
FIELDS: dict[str, tuple[str, str, str]] = {
    "System.Id": ("ID", "integer", "ro"),
    "System.Rev": ("Rev", "integer", "ro"),
    "System.Title": ("Title", "string", "rw"),
    "System.State": ("State", "string", "rw"),
    "System.Reason": ("Reason", "string", "rw"),
    "System.AssignedTo": ("Assigned To", "identity", "rw"),
    "System.CreatedBy": ("Created By", "identity", "sys"),
    "System.ChangedBy": ("Changed By", "identity", "sys"),
    "System.CreatedDate": ("Created Date", "dateTime", "sys"),
    "System.ChangedDate": ("Changed Date", "dateTime", "sys"),
    "System.AreaPath": ("Area Path", "treePath", "rw"),
    "System.IterationPath": ("Iteration Path", "treePath", "rw"),
    "System.TeamProject": ("Team Project", "string", "ro"),
    "System.WorkItemType": ("Work Item Type", "string", "ro"),
    "System.Description": ("Description", "html", "rw"),
    "System.History": ("History", "history", "rw"),
    "System.Tags": ("Tags", "plainText", "rw"),
    "System.BoardColumn": ("Board Column", "string", "ro"),
    "System.BoardColumnDone": ("Board Column Done", "boolean", "ro"),
    "System.BoardLane": ("Board Lane", "string", "ro"),
    "System.CommentCount": ("Comment Count", "integer", "ro"),
    "System.AuthorizedAs": ("Authorized As", "identity", "ro"),
    "System.RevisedDate": ("Revised Date", "dateTime", "ro"),
    "System.AreaId": ("Area ID", "integer", "ro"),
    "System.IterationId": ("Iteration ID", "integer", "ro"),
    "System.Parent": ("Parent", "integer", "ro"),
    "Microsoft.VSTS.Common.Priority": ("Priority", "integer", "rw"),
    "Microsoft.VSTS.Common.Severity": ("Severity", "string", "rw"),
    "Microsoft.VSTS.Common.BacklogPriority": ("Backlog Priority", "double", "rw"),
    "Microsoft.VSTS.Common.StateChangeDate": ("State Change Date", "dateTime", "sys"),
    "Microsoft.VSTS.Common.AcceptanceCriteria": ("Acceptance Criteria", "html", "rw"),
    "Microsoft.VSTS.Common.Activity": ("Activity", "string", "rw"),
    "Microsoft.VSTS.TCM.ReproSteps": ("Repro Steps", "html", "rw"),
    "Microsoft.VSTS.Scheduling.Effort": ("Effort", "double", "rw"),
    "Microsoft.VSTS.Scheduling.RemainingWork": ("Remaining Work", "double", "rw"),
}

LINK_TYPES = {  # rel -> reciprocal rel on the target work item (None: not a work item link)
    "System.LinkTypes.Hierarchy-Forward": "System.LinkTypes.Hierarchy-Reverse",
    "System.LinkTypes.Hierarchy-Reverse": "System.LinkTypes.Hierarchy-Forward",
    "System.LinkTypes.Related": "System.LinkTypes.Related",
    "System.LinkTypes.Dependency-Forward": "System.LinkTypes.Dependency-Reverse",
    "System.LinkTypes.Dependency-Reverse": "System.LinkTypes.Dependency-Forward",
    "Hyperlink": None, "ArtifactLink": None, "AttachedFile": None,
}
LINK_NAMES = {"System.LinkTypes.Hierarchy-Forward": "Child", "System.LinkTypes.Hierarchy-Reverse": "Parent",
              "System.LinkTypes.Related": "Related", "System.LinkTypes.Dependency-Forward": "Successor",
              "System.LinkTypes.Dependency-Reverse": "Predecessor"}

# EnvironmentStatus flag values, for releases?environmentStatusFilter=<int>
ENV_STATUS_FLAGS = {"undefined": 0, "notStarted": 1, "inProgress": 2, "succeeded": 4, "canceled": 8,
                    "rejected": 16, "queued": 32, "scheduled": 64, "partiallySucceeded": 128}
ENV_OUTCOMES = ("succeeded", "failed", "canceled", "partiallySucceeded")


# --------------------------------------------------------------------------- errors


class DevOpsError(Exception):
    """An error the service answers with a WrappedException body."""

    def __init__(self, status: int, message: str, type_key: str = "InvalidOperationException",
                 type_name: str | None = None, custom: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type_key = status, message, type_key
        self.type_name = type_name or (f"Microsoft.VisualStudio.Services.WebApi.{type_key}, "
                                       "Microsoft.VisualStudio.Services.WebApi")
        self.custom = custom

    def body(self) -> dict:
        out = {"$id": "1", "innerException": None, "message": self.message, "typeName": self.type_name,
               "typeKey": self.type_key, "errorCode": 0, "eventId": 3000}
        if self.custom:
            out["customProperties"] = self.custom
        return out


_WIT_NS = "Microsoft.TeamFoundation.WorkItemTracking.Server"


def _rule_error(field_name: str, ref: str, flags: str, detail: str) -> DevOpsError:
    # TF401320 is the live service's rule-validation message; it names the failed rule
    # flags but never lists the allowed values (callers read them from .../states).
    return DevOpsError(400, f"TF401320: Rule Error for field {field_name}. Error code: {flags}.",
                       "RuleValidationException", f"{_WIT_NS}.RuleValidationException, {_WIT_NS}",
                       {"FieldReferenceName": ref, "FieldStatusFlags": flags, "ErrorMessage": detail})


def _read_only(ref: str) -> DevOpsError:
    return DevOpsError(400, f"TF401326: Invalid field status 'ReadOnly' for field '{ref}'.",
                       "RuleValidationException", f"{_WIT_NS}.RuleValidationException, {_WIT_NS}")


def _bad_request(message: str, type_key: str = "VssPropertyValidationException") -> DevOpsError:
    return DevOpsError(400, message, type_key)


def _not_found(message: str, type_key: str = "NotFoundException") -> DevOpsError:
    return DevOpsError(404, message, type_key)


# --------------------------------------------------------------------------- entities


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_time(text: str) -> float:
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = _dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.timestamp()


@dataclass
class Identity:
    id: str
    display_name: str
    unique_name: str

    @property
    def descriptor(self) -> str:
        return "aad." + base64.b64encode(self.id.encode()).decode().rstrip("=")

    def names(self) -> set[str]:
        return {self.display_name.lower(), self.unique_name.lower(),
                f"{self.display_name} <{self.unique_name}>".lower(),
                f"{self.display_name}<{self.unique_name}>".lower()}


@dataclass
class Revision:
    rev: int
    fields: dict
    relations: list
    changed_at: float


@dataclass
class WorkItem:
    """One work item; ``fields`` holds the current values exactly as the service returns them."""

    id: int
    rev: int
    fields: dict
    relations: list = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)
    comments: list[dict] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.fields.get("System.State")

    @property
    def type(self) -> str:
        return self.fields.get("System.WorkItemType")

    @property
    def assigned_to(self) -> str | None:
        value = self.fields.get("System.AssignedTo")
        return value.get("displayName") if isinstance(value, dict) else value


@dataclass
class Team:
    id: str
    name: str
    board_id: str
    kanban_prefix: str  # WEF_<hex>_Kanban

    @property
    def column_field(self) -> str:
        return self.kanban_prefix + ".Column"

    @property
    def done_field(self) -> str:
        return self.kanban_prefix + ".Column.Done"

    @property
    def lane_field(self) -> str:
        return self.kanban_prefix + ".Lane"


@dataclass
class Iteration:
    id: str
    identifier: int
    name: str
    start: float | None
    finish: float | None


@dataclass
class BoardColumn:
    id: str
    name: str
    column_type: str  # incoming / inProgress / outgoing
    state_mappings: dict[str, str]
    item_limit: int = 0


@dataclass
class ApprovalStep:
    id: int
    approver: Identity
    rank: int


@dataclass
class DefinitionEnvironment:
    id: int
    name: str
    rank: int
    approvals: list[ApprovalStep]


@dataclass
class ReleaseDefinition:
    id: int
    name: str
    environments: list[DefinitionEnvironment]
    artifacts: list[str]
    created_at: float
    created_by: Identity
    revision: int = 1
    release_counter: int = 0


@dataclass
class Approval:
    id: int
    env: "ReleaseEnvironment"
    approver: Identity
    rank: int
    attempt: int
    created_at: float
    status: str = "pending"
    comments: str = ""
    approved_by: Identity | None = None
    modified_at: float = 0.0
    revision: int = 1


@dataclass
class Deployment:
    id: int
    env: "ReleaseEnvironment"
    attempt: int
    requested_by: Identity
    queued_at: float
    status: str = "notDeployed"  # DeploymentStatus
    operation_status: str = "queued"  # DeploymentOperationStatus
    started_at: float | None = None
    completed_at: float | None = None
    modified_at: float = 0.0


@dataclass
class ReleaseEnvironment:
    id: int
    release: "Release"
    definition_env: DefinitionEnvironment
    status: str = "notStarted"
    outcome: str | None = None  # set_env_outcome(release_id=...) override for the next runs
    run_until: float | None = None
    scheduled_for: float | None = None
    comment: str | None = None
    variables: dict = field(default_factory=dict)
    modified_at: float = 0.0
    approvals: list[Approval] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.definition_env.name


@dataclass
class Release:
    id: int
    name: str
    definition: ReleaseDefinition
    description: str
    created_by: Identity
    created_at: float
    artifacts: list[dict]
    environments: list[ReleaseEnvironment] = field(default_factory=list)
    status: str = "active"
    modified_at: float = 0.0

    def env(self, name_or_id) -> ReleaseEnvironment:
        for env in self.environments:
            if env.id == name_or_id or (isinstance(name_or_id, str) and env.name.lower() == name_or_id.lower()):
                return env
        raise KeyError(name_or_id)


# --------------------------------------------------------------------------- WIQL (subset)

_WIQL_TOKEN = re.compile(r"""
    \s*(?:
      (?P<field>\[[^\]]+\])
    | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<macro>@[A-Za-z]+)
    | (?P<op><>|>=|<=|=|<|>)
    | (?P<punct>[(),+\-])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""", re.X)


class WiqlError(DevOpsError):
    def __init__(self, message: str):
        super().__init__(400, message, "QuerySyntaxException",
                         f"{_WIT_NS}.QuerySyntaxException, {_WIT_NS}")


def _tokenize(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _WIQL_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise WiqlError("TF51006: The query statement contains an unexpected character near "
                            f"«{text[pos:pos + 12]}».")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _WiqlParser:
    """SELECT [f], ... FROM WorkItems [WHERE cond {AND|OR cond}] [ORDER BY [f] [ASC|DESC], ...]
    cond: [f] (=|<>|<|>|<=|>=|[NOT] IN|[NOT] CONTAINS [WORDS]|[NOT] UNDER) value, NOT cond, ( ... )
    values: 'text', numbers, @Me, @project, @CurrentIteration, @Today [+|- n], [field]."""

    def __init__(self, text: str, resolve_field: Callable[[str], str]):
        self.tokens = _tokenize(text)
        self.i = 0
        self.resolve_field = resolve_field

    def peek(self, offset=0):
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else (None, None)

    def word(self, *words) -> bool:
        kind, value = self.peek()
        return kind == "word" and value.upper() in words

    def take(self, kind=None, *words):
        tok = self.peek()
        if tok[0] is None or (kind and tok[0] != kind) or (words and tok[1].upper() not in words):
            want = " or ".join(words) if words else kind
            got = tok[1] if tok[0] else "end of query"
            raise WiqlError(f"TF51006: Expecting {want}, found «{got}».")
        self.i += 1
        return tok[1]

    def field(self) -> str:
        return self.resolve_field(self.take("field")[1:-1])

    def parse(self) -> dict:
        self.take("word", "SELECT")
        columns = [self.field()]
        while self.peek()[1] == ",":
            self.i += 1
            columns.append(self.field())
        self.take("word", "FROM")
        source = self.take("word")
        if source.lower() != "workitems":
            raise WiqlError(f"TF51006: The simulator supports FROM WorkItems only, not «{source}».")
        where = None
        if self.word("WHERE"):
            self.i += 1
            where = self.expr()
        order = []
        if self.word("ORDER"):
            self.i += 1
            self.take("word", "BY")
            while True:
                ref = self.field()
                desc = False
                if self.word("ASC", "DESC"):
                    desc = self.take("word").upper() == "DESC"
                order.append((ref, desc))
                if self.peek()[1] != ",":
                    break
                self.i += 1
        if self.word("ASOF"):
            raise WiqlError("TF51006: ASOF is not supported by the simulator.")
        if self.peek()[0] is not None:
            raise WiqlError(f"TF51006: Unexpected «{self.peek()[1]}» in the query.")
        return {"columns": columns, "where": where, "order": order}

    def expr(self):
        node = self.term()
        while self.word("OR"):
            self.i += 1
            node = ("or", node, self.term())
        return node

    def term(self):
        node = self.factor()
        while self.word("AND"):
            self.i += 1
            node = ("and", node, self.factor())
        return node

    def factor(self):
        if self.word("NOT") and self.peek(1)[0] != "word":
            self.i += 1
            return ("not", self.factor())
        if self.peek()[1] == "(":
            self.i += 1
            node = self.expr()
            self.take("punct")
            return node
        ref = self.field()
        negate = False
        if self.word("NOT"):
            self.i += 1
            negate = True
        kind, value = self.peek()
        if kind == "op":
            op = self.take("op")
        elif self.word("IN", "CONTAINS", "UNDER", "EVER"):
            op = self.take("word").upper()
            if op == "CONTAINS" and self.word("WORDS"):
                self.i += 1
        else:
            raise WiqlError(f"TF51006: Expecting an operator after [{ref}], found «{value}».")
        if op == "IN":
            self.take("punct")
            values = [self.value()]
            while self.peek()[1] == ",":
                self.i += 1
                values.append(self.value())
            if self.take("punct") != ")":
                raise WiqlError("TF51006: Expecting ) to close the IN list.")
            operand = ("list", values)
        else:
            operand = self.value()
        node = ("cmp", ref, op, operand)
        return ("not", node) if negate else node

    def value(self):
        kind, value = self.peek()
        if kind == "string":
            self.i += 1
            quote = value[0]
            return ("lit", value[1:-1].replace(quote * 2, quote))
        if kind == "number":
            self.i += 1
            return ("lit", float(value) if "." in value else int(value))
        if kind == "macro":
            self.i += 1
            name = value[1:].lower()
            offset = 0
            if name == "today" and self.peek()[1] in ("+", "-"):
                sign = 1 if self.take("punct") == "+" else -1
                offset = sign * int(self.take("number"))
            if name not in ("me", "project", "currentiteration", "today"):
                raise WiqlError(f"TF51006: The macro «{value}» is not supported by the simulator.")
            return ("macro", name, offset)
        if kind == "field":
            return ("field", self.field())
        raise WiqlError(f"TF51006: Expecting a value, found «{value if kind else 'end of query'}».")


# --------------------------------------------------------------------------- the simulator


def _drop_nulls(value: Any) -> Any:
    """The live service sometimes sends `"x": null`, but no schema in the specs is x-nullable;
    the SDK treats a missing key and a null alike, so nulls are left out of responses."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _guid(*parts: Any) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "oncall-devops-sim/" + "/".join(map(str, parts))))


class DevOpsSimulator(SimServer):
    """Stateful Azure DevOps (Boards + classic Releases), driven through the azure-devops SDK.

        with DevOpsSimulator(org="contoso", project="Fabrikam", pat="s3cret") as sim:
            conn = Connection(base_url=sim.url, creds=BasicAuthentication("", sim.pat))

    State is plain Python objects, readable and seedable from tests:
    ``work_items`` {id: WorkItem}, ``identities``, ``teams``, ``release_definitions``,
    ``releases`` {id: Release}, ``approvals``, ``queries``. Faults: ``sim.faults`` /
    ``sim.add_fault(path_regex, status=429, headers={"Retry-After": "1"})`` (base class).
    Another writer between a client's calls: ``sim.on_request(path_regex, callback, method="PATCH")``.
    More board columns: ``sim.add_board_column("Doing", {"Product Backlog Item": "Committed"})``.
    Release history: ``sim.complete_deployment(release_id, "Dev")`` (a deployment that already ran).
    """

    # Endpoints the published specs do not describe (base class skips their checks).
    unvalidated = [
        ("OPTIONS", r".*", "resource-location discovery (OPTIONS {host}/_apis) is in no published spec"),
        ("GET", r"(?i)(/vsrm|/vssps)?/[^/]+/_apis/(resourceareas|connectiondata)(/[^/]*)?",
         "location service (ResourceAreas, connectionData) is in no published spec"),
        ("GET", r"(?i)/vssps/[^/]+/_apis/identities(/[^/]*)?",
         "identity service (vssps) has no spec in shared/specs"),
    ]
    # The specs declare only 200 for every operation, but the live service answers 400, 401,
    # 404, 409 and 412 with a WrappedException body: those bodies are checked against this.
    allow_undeclared_errors = True
    error_schema = {
        "type": "object", "required": ["message", "typeKey"],
        "properties": {"message": {"type": "string"}, "typeKey": {"type": "string"},
                       "typeName": {"type": "string"}, "errorCode": {"type": "integer"},
                       "eventId": {"type": "integer"}, "$id": {"type": "string"}},
    }

    def __init__(self, org: str = "contoso", project: str = "Fabrikam", pat: str = "sim-pat-5f2a9c",
                 *, me: tuple[str, str] = ("On-Call Engineer", "oncall@contoso.com"),
                 team: str | None = None, run_seconds: float = 0.2, tls: bool = False):
        super().__init__(_HostedSpec(devops_spec()), tls=tls)
        self.org, self.project, self.pat = org, project, pat
        self.pats: dict[str, Identity] = {}  # extra PATs -> their owner (add_pat)
        self.project_id = _guid(org, project)
        self.run_seconds = run_seconds
        self.state_lock = threading.RLock()
        self._ids = {k: itertools.count(1) for k in ("wi", "comment", "def", "defenv", "rel", "relenv",
                                                      "approval", "step", "deployment", "iteration")}
        self._last_ts = 0.0
        # identities
        self.identities: list[Identity] = []
        self.me = self.add_identity(*me)
        # work
        self.work_items: dict[int, WorkItem] = {}
        self.types = {t.name.lower(): t for t in WORK_ITEM_TYPES}
        self.fields = dict(FIELDS)
        self.areas: list[str] = [project]
        self.iterations: list[Iteration] = []
        self.queries: dict[str, dict] = {}
        self.teams: list[Team] = []
        self.team_iterations: dict[str, list[str]] = {}
        self.board_columns: list[BoardColumn] = []
        self.add_team(team or f"{project} Team")
        for area in ("Web", "Ops"):
            self.add_area(area)
        day = 86400.0
        today = (time.time() // day) * day
        self.add_iteration("Sprint 1", today - 21 * day, today - 7 * day)
        self.add_iteration("Sprint 2", today - 7 * day, today + 7 * day)
        self.add_iteration("Sprint 3", today + 7 * day, today + 21 * day)
        self.board_columns = [
            BoardColumn(_guid(project, "col", "New"), "New", "incoming", {"Product Backlog Item": "New", "Bug": "New"}),
            BoardColumn(_guid(project, "col", "Approved"), "Approved", "inProgress",
                        {"Product Backlog Item": "Approved", "Bug": "Approved"}, 5),
            BoardColumn(_guid(project, "col", "Committed"), "Committed", "inProgress",
                        {"Product Backlog Item": "Committed", "Bug": "Committed"}, 5),
            # a second column mapped to the same state: moving here changes the column only
            BoardColumn(_guid(project, "col", "In Review"), "In Review", "inProgress",
                        {"Product Backlog Item": "Committed", "Bug": "Committed"}, 5),
            BoardColumn(_guid(project, "col", "Done"), "Done", "outgoing",
                        {"Product Backlog Item": "Done", "Bug": "Done"}),
        ]
        self.add_query("Shared Queries/Active Bugs",
                       "SELECT [System.Id], [System.Title], [System.State] FROM WorkItems "
                       "WHERE [System.TeamProject] = @project AND [System.WorkItemType] = 'Bug' "
                       "AND [System.State] <> 'Done' AND [System.State] <> 'Removed' ORDER BY [System.Id]")
        self.add_query("My Queries/Assigned to me",
                       "SELECT [System.Id], [System.Title], [System.State] FROM WorkItems "
                       "WHERE [System.AssignedTo] = @Me ORDER BY [System.ChangedDate] DESC")
        # releases
        self.release_definitions: dict[int, ReleaseDefinition] = {}
        self._releases: dict[int, Release] = {}
        self.approvals: dict[int, Approval] = {}
        self.deployments: dict[int, Deployment] = {}
        self.env_outcomes: dict[tuple[str, str], str] = {}  # (definition name, env name) -> outcome
        self.hooks: list[dict] = []  # on_request(): another writer acting between a client's calls

    # ================================================================== URLs

    @property
    def server_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def url(self) -> str:  # what a user would type: https://dev.azure.com/{org}
        return f"{self.server_url}/{self.org}"

    def host_url(self, host: str) -> str:
        return self.url if host == "dev" else f"{self.server_url}/{host}/{self.org}"

    @property
    def vsrm_url(self) -> str:
        return self.host_url("vsrm")

    @property
    def vssps_url(self) -> str:
        return self.host_url("vssps")

    # ================================================================== Python API: seeding

    @property
    def releases(self) -> dict[int, Release]:
        """{id: Release}, with simulated deployments moved along to the present."""
        self.advance()
        return self._releases

    def _now(self) -> float:
        """Strictly increasing wall-clock time (revision dates must increase)."""
        now = time.time()
        if now <= self._last_ts:
            now = self._last_ts + 0.001
        self._last_ts = now
        return now

    def add_identity(self, display_name: str, unique_name: str) -> Identity:
        ident = Identity(_guid(self.org, "identity", unique_name.lower()), display_name, unique_name)
        with self.state_lock:
            self.identities.append(ident)
        return ident

    def add_pat(self, pat: str, who: Identity | str) -> Identity:
        """Another valid PAT, owned by `who` (e.g. a second approver). `pat` belongs to `me`."""
        ident = self._identity(who)
        self.pats[pat] = ident
        return ident

    def add_area(self, path: str) -> str:
        full = path if path.lower().startswith(self.project.lower() + "\\") else f"{self.project}\\{path}"
        self.areas.append(full)
        return full

    def add_iteration(self, name: str, start: float | None = None, finish: float | None = None,
                      teams: Iterable[str] | None = None) -> Iteration:
        it = Iteration(_guid(self.project, "iteration", name), next(self._ids["iteration"]) + 100, name, start, finish)
        self.iterations.append(it)
        for team in (teams if teams is not None else [t.name for t in self.teams]):
            self.team_iterations.setdefault(team.lower(), []).append(it.id)
        return it

    def add_team(self, name: str) -> Team:
        hexid = uuid.UUID(_guid(self.project, "kanban", name.lower())).hex.upper()
        team = Team(_guid(self.project, "team", name.lower()), name,
                    _guid(self.project, "board", name.lower()), f"WEF_{hexid}_Kanban")
        self.teams.append(team)
        for ref, fname, ftype in ((team.column_field, "Kanban Column", "string"),
                                  (team.done_field, "Kanban Column Done", "boolean"),
                                  (team.lane_field, "Kanban Lane", "string")):
            self.fields[ref] = (fname, ftype, "rw")
        self.team_iterations.setdefault(name.lower(), [it.id for it in self.iterations])
        return team

    def add_field(self, ref: str, name: str, ftype: str = "string") -> None:
        """A custom field (e.g. Custom.Severity) that patches may set."""
        self.fields[ref] = (name, ftype, "rw")

    def add_board_column(self, name: str, state_mappings: dict[str, str], *, column_type: str = "inProgress",
                         after: str | None = None, item_limit: int = 5) -> BoardColumn:
        """Another column on every team's board (e.g. a "Doing" column mapped to Committed), placed
        after the column `after` (default: before the last, outgoing, column)."""
        col = BoardColumn(_guid(self.project, "col", name), name, column_type, dict(state_mappings), item_limit)
        with self.state_lock:
            names = [c.name.lower() for c in self.board_columns]
            index = names.index(after.lower()) + 1 if after else len(self.board_columns) - 1
            self.board_columns.insert(index, col)
        return col

    def on_request(self, path: str, callback: Callable[[Request], None], *, method: str | None = None,
                   times: int | None = 1) -> dict:
        """Run `callback(request)` just before a matching request is handled (path regex searched in
        the request path, as faults are) — e.g. someone else editing a work item between a client's
        read and its guarded update. Returns the hook; its "hits" counts the calls."""
        hook = {"path": path, "method": method, "callback": callback, "times": times, "hits": 0}
        self.hooks.append(hook)
        return hook

    def _run_hooks(self, request: Request) -> None:
        for hook in list(self.hooks):
            if hook["times"] is not None and hook["hits"] >= hook["times"]:
                continue
            if hook["method"] and hook["method"].upper() != request.method:
                continue
            if re.search(hook["path"], request.path):
                hook["hits"] += 1
                hook["callback"](request)

    def add_query(self, path: str, wiql: str) -> dict:
        query = {"id": _guid(self.project, "query", path.lower()), "path": path, "wiql": wiql,
                 "name": path.rsplit("/", 1)[-1]}
        self.queries[path.lower()] = query
        return query

    def add_work_item(self, type: str, fields: dict | None = None, *, by: Identity | str | None = None,
                      bypass_rules: bool = False) -> WorkItem:
        """Create a work item as the service would (same rules as the REST create)."""
        ops = [{"op": "add", "path": f"/fields/{k}", "value": v} for k, v in (fields or {}).items()]
        actor = self._identity(by) if by is not None else self.me
        with self.state_lock:
            return self._save_work_item(None, type, ops, bypass_rules, False, actor)

    def update_work_item(self, id: int, fields: dict, *, by: Identity | str | None = None) -> WorkItem:
        """Change a work item behind the client's back (e.g. to make its rev stale)."""
        ops = [{"op": "add", "path": f"/fields/{k}", "value": v} for k, v in fields.items()]
        actor = self._identity(by) if by is not None else self.me
        with self.state_lock:
            return self._save_work_item(self._work_item(id), None, ops, False, False, actor)

    def add_release_definition(self, name: str, envs: Iterable[str] = ("Dev", "QA", "Prod"),
                               approvals: dict[str, list[str]] | None = None,
                               artifacts: Iterable[str] | None = None) -> ReleaseDefinition:
        """approvals: env name -> approvers (display or unique names of added identities)."""
        with self.state_lock:
            environments = []
            for rank, env_name in enumerate(envs, 1):
                steps = [ApprovalStep(next(self._ids["step"]), self._identity(who), i)
                         for i, who in enumerate((approvals or {}).get(env_name, []), 1)]
                environments.append(DefinitionEnvironment(next(self._ids["defenv"]), env_name, rank, steps))
            definition = ReleaseDefinition(next(self._ids["def"]), name, environments,
                                           list(artifacts) if artifacts is not None else [f"_{name}-ci"],
                                           self._now(), self.me)
            self.release_definitions[definition.id] = definition
            return definition

    def set_env_outcome(self, outcome: str, *, definition: str | None = None, env: str | None = None,
                        release_id: int | None = None) -> None:
        """How simulated deployments end: succeeded / failed / canceled / partiallySucceeded.
        Scope: one environment of one release (release_id + env), every release of a definition
        (definition + env), or every environment called `env` (env only)."""
        if outcome not in ENV_OUTCOMES:
            raise ValueError(f"outcome must be one of {ENV_OUTCOMES}")
        with self.state_lock:
            if release_id is not None:
                self._releases[release_id].env(env).outcome = outcome
            else:
                self.env_outcomes[((definition or "*").lower(), (env or "*").lower())] = outcome

    def complete_deployment(self, release_id: int, env: str, outcome: str = "succeeded") -> None:
        """Seed history: a deployment of a release environment that already ran (no approval asked)."""
        with self.state_lock:
            target = self._releases[release_id].env(env)
            now = self._now()
            dep = Deployment(next(self._ids["deployment"]), target, len(target.deployments) + 1, self.me, now,
                             modified_at=now)
            target.deployments.append(dep)
            self.deployments[dep.id] = dep
            self._start_run(target, now)
            saved, target.outcome = target.outcome, outcome
            self._finish_deployment(target, self._now())
            target.outcome = saved

    # ================================================================== Python API: lookups

    def _identity(self, who: Identity | str | dict) -> Identity:
        if isinstance(who, Identity):
            return who
        found = self._find_identities(who)
        if len(found) != 1:
            raise KeyError(f"{len(found)} identities match {who!r}")
        return found[0]

    def _find_identities(self, value: Any) -> list[Identity]:
        if isinstance(value, dict):
            for key in ("id", "uniqueName", "displayName"):
                if value.get(key):
                    found = [i for i in self.identities
                             if (i.id if key == "id" else i.unique_name if key == "uniqueName"
                                 else i.display_name).lower() == str(value[key]).lower()]
                    if found:
                        return found
            return []
        text = str(value).strip().lower()
        by_unique = [i for i in self.identities if i.unique_name.lower() == text]
        if by_unique:
            return by_unique
        return [i for i in self.identities if text in i.names()]

    def _work_item(self, id: int) -> WorkItem:
        item = self.work_items.get(int(id))
        if item is None:
            raise _not_found(f"TF401232: Work item {id} does not exist, or you do not have permissions to read it.",
                             "WorkItemUnauthorizedAccessException")
        return item

    def _team(self, name_or_id: str | None) -> Team:
        if name_or_id is None:
            return self.teams[0]
        for team in self.teams:
            if name_or_id.lower() in (team.name.lower(), team.id.lower()):
                return team
        raise _not_found(f"The team with id '{name_or_id}' does not exist.", "TeamNotFoundException")

    def _check_project(self, name_or_id: str | None) -> None:
        if name_or_id is None or name_or_id.lower() not in (self.project.lower(), self.project_id.lower()):
            raise _not_found(f"TF200016: The following project does not exist: {name_or_id}. Verify that the "
                             "name of the project is correct and that the project exists on the specified "
                             "Azure DevOps Server.", "ProjectDoesNotExistWithNameException")

    def _type(self, name: str) -> WorkItemType:
        wtype = self.types.get(name.lower())
        if wtype is None:
            raise _not_found(f"VS402323: Work item type {name} does not exist in project {self.project} "
                             "or you do not have permission to access it.", "WorkItemTypeNotFoundException")
        return wtype

    def _resolve_field(self, name: str) -> str:
        low = name.lower()
        for ref, (friendly, _, _) in self.fields.items():
            if ref.lower() == low or friendly.lower() == low:
                return ref
        raise _bad_request(f"TF51535: Cannot find field {name}.", "WorkItemTrackingFieldDefinitionNotFoundException")

    # ================================================================== JSON shapes

    def identity_ref(self, ident: Identity | None) -> dict | None:
        if ident is None:
            return None
        return {"displayName": ident.display_name,
                "url": f"{self.vssps_url}/_apis/Identities/{ident.id}",
                "_links": {"avatar": {"href": f"{self.url}/_apis/GraphProfile/MemberAvatars/{ident.descriptor}"}},
                "id": ident.id, "uniqueName": ident.unique_name,
                "imageUrl": f"{self.url}/_api/_common/identityImage?id={ident.id}",
                "descriptor": ident.descriptor}

    def identity_json(self, ident: Identity) -> dict:
        return {"id": ident.id, "descriptor": f"Microsoft.IdentityModel.Claims.ClaimsIdentity;{ident.unique_name}",
                "subjectDescriptor": ident.descriptor, "providerDisplayName": ident.display_name,
                "customDisplayName": None, "isActive": True, "isContainer": False, "members": [],
                "memberOf": [], "memberIds": [], "metaTypeId": 0, "resourceVersion": 2,
                "properties": {"Account": {"$type": "System.String", "$value": ident.unique_name},
                               "Mail": {"$type": "System.String", "$value": ident.unique_name},
                               "Description": {"$type": "System.String", "$value": ""}}}

    def _wi_url(self, id: int) -> str:
        return f"{self.url}/_apis/wit/workItems/{id}"

    def work_item_json(self, item: WorkItem, *, fields: list[str] | None = None, expand: str = "none",
                       snapshot: Revision | None = None) -> dict:
        values = snapshot.fields if snapshot else item.fields
        relations = snapshot.relations if snapshot else item.relations
        rev = snapshot.rev if snapshot else item.rev
        if fields:
            values = {ref: values[ref] for ref in fields if ref in values}
        out = {"id": item.id, "rev": rev, "fields": copy.deepcopy(values)}
        if expand in ("relations", "all") and relations:
            out["relations"] = copy.deepcopy(relations)
        if expand in ("none", "links", "all", "relations", "fields"):
            base = self._wi_url(item.id)
            wtype = item.fields["System.WorkItemType"]
            out["_links"] = {
                "self": {"href": base}, "workItemUpdates": {"href": base + "/updates"},
                "workItemRevisions": {"href": base + "/revisions"},
                "workItemComments": {"href": base + "/comments"},
                "html": {"href": f"{self.url}/{self.project_id}/_workitems/edit/{item.id}"},
                "workItemType": {"href": f"{self.url}/{self.project_id}/_apis/wit/workItemTypes/"
                                         f"{urllib.parse.quote(wtype)}"},
                "fields": {"href": f"{self.url}/{self.project_id}/_apis/wit/fields"}}
        if item.comments and not snapshot:
            last = item.comments[-1]
            out["commentVersionRef"] = {
                "commentId": last["id"], "version": last["version"],
                "url": f"{self._wi_url(item.id)}/comments/{last['id']}/versions/{last['version']}"}
        out["url"] = self._wi_url(item.id)
        return out

    def comment_json(self, item: WorkItem, c: dict) -> dict:
        return {"workItemId": item.id, "id": c["id"], "version": c["version"], "text": c["text"],
                "renderedText": c["text"], "format": "html",
                "createdBy": self.identity_ref(c["by"]), "createdDate": _iso(c["at"]),
                "modifiedBy": self.identity_ref(c["by"]), "modifiedDate": _iso(c["at"]),
                "isDeleted": False, "mentions": [], "reactions": [],
                "url": f"{self._wi_url(item.id)}/comments/{c['id']}"}

    # ================================================================== work item rules

    def _coerce(self, ref: str, value: Any, bypass: bool, item_id: int | None) -> Any:
        name, ftype, _ = self.fields[ref]
        if value is None or value == "":
            return None
        if ftype == "identity":
            found = self._find_identities(value)
            if len(found) == 1:
                return self.identity_ref(found[0])
            if bypass:  # rules off: the service stores whatever it is given
                return value if isinstance(value, dict) else {"displayName": str(value)}
            shown = value.get("displayName") or value.get("uniqueName") if isinstance(value, dict) else value
            word = "an ambiguous" if found else "an unknown"
            raise DevOpsError(400, f"The identity value '{shown}' for field '{name}' is {word} identity.",
                              "RuleValidationException", f"{_WIT_NS}.RuleValidationException, {_WIT_NS}",
                              {"FieldReferenceName": ref, "FieldStatusFlags": "required, hasValues, "
                               "limitedToValues, allowsOldValue, invalidIdentity"})
        if isinstance(value, (dict, list)):
            raise _rule_error(name, ref, "InvalidType", f"The field '{name}' does not accept a JSON object.")
        try:
            if ftype == "integer":
                return int(value)
            if ftype == "double":
                return float(value)
            if ftype == "boolean":
                return value if isinstance(value, bool) else str(value).lower() == "true"
            if ftype == "dateTime":
                return _iso(_parse_time(str(value)))
        except (TypeError, ValueError):
            raise _rule_error(name, ref, "InvalidType",
                              f"The value '{value}' is not valid for field '{name}'.") from None
        return str(value)

    def _apply_patch(self, fields: dict, relations: list, rev: int, ops: Any, bypass: bool,
                     item_id: int | None) -> tuple[set, list]:
        """Apply JSON-Patch operations to copies; returns (touched field refs, relation changes)."""
        if not isinstance(ops, list) or not ops:
            raise _bad_request("You must pass a valid patch document in the body of the request.",
                               "VssPropertyValidationException")
        touched: set[str] = set()
        rel_changes: list = []
        for op in ops:
            if not isinstance(op, dict) or not isinstance(op.get("path"), str):
                raise _bad_request("You must pass a valid patch document in the body of the request.")
            kind, path, value = str(op.get("op", "")).lower(), op["path"], op.get("value")
            if kind not in ("add", "replace", "remove", "test"):
                raise _bad_request(f"The operation '{op.get('op')}' is not supported for work items.",
                                   "PatchOperationFailedException")
            low = path.lower()
            if low in ("/rev", "/id"):
                actual = rev if low == "/rev" else item_id
                if kind != "test":
                    raise _read_only("System.Rev" if low == "/rev" else "System.Id")
                if str(value) != str(actual):
                    self._test_failed(path, value, actual)
                continue
            if low.startswith("/fields/"):
                ref = self._resolve_field(urllib.parse.unquote(path[8:]).replace("~1", "/").replace("~0", "~"))
                writable = self.fields[ref][2]
                if kind == "test":
                    if not self._field_equals(fields.get(ref), value):
                        self._test_failed(path, value, fields.get(ref))
                    continue
                if writable == "ro" or (writable == "sys" and not bypass):
                    raise _read_only(ref)
                if kind == "remove":
                    fields.pop(ref, None)
                else:
                    coerced = value if ref == "System.History" else self._coerce(ref, value, bypass, item_id)
                    if coerced is None:
                        fields.pop(ref, None)
                    else:
                        fields[ref] = coerced
                touched.add(ref)
                continue
            m = re.fullmatch(r"/relations/(-|\d+)(?:/attributes/([^/]+))?", path, re.I)
            if not m:
                raise _bad_request(f"The path '{path}' is not valid for a work item patch.",
                                   "PatchOperationFailedException")
            index, attr = m.group(1), m.group(2)
            if index == "-":
                if kind != "add" or attr:
                    raise _bad_request(f"Only 'add' is allowed on '{path}'.", "PatchOperationFailedException")
                relations.append(self._new_relation(value, item_id))
                rel_changes.append(("add", relations[-1]))
                continue
            i = int(index)
            if i >= len(relations):
                raise _bad_request(f"The relation index {i} is out of range ({len(relations)} relations).",
                                   "PatchOperationFailedException")
            if attr:
                attrs = relations[i].setdefault("attributes", {})
                if kind == "test":
                    if attrs.get(attr) != value:
                        self._test_failed(path, value, attrs.get(attr))
                elif kind == "remove":
                    attrs.pop(attr, None)
                else:
                    attrs[attr] = value
            elif kind == "remove":
                rel_changes.append(("remove", relations.pop(i)))
            elif kind == "test":
                if relations[i].get("url") != (value or {}).get("url"):
                    self._test_failed(path, value, relations[i])
            else:
                rel_changes.append(("remove", relations[i]))
                relations[i] = self._new_relation(value, item_id)
                rel_changes.append(("add", relations[i]))
        return touched, rel_changes

    @staticmethod
    def _test_failed(path: str, expected: Any, actual: Any):
        # 412 Precondition Failed is what the live service returns for a failed `test`
        # (seen for stale /rev guards); nothing in the patch is applied.
        raise DevOpsError(412, f"Test operation failed for path '{path}': expected {expected!r}, "
                               f"actual {actual!r}. The work item has been changed since it was read; "
                               "refresh it and retry.", "TestOperationFailedException")

    def _field_equals(self, current: Any, value: Any) -> bool:
        if isinstance(current, dict) and "displayName" in current:
            if isinstance(value, dict):
                value = value.get("uniqueName") or value.get("displayName")
            names = {current.get("displayName", "").lower(), str(current.get("uniqueName", "")).lower()}
            return str(value).lower() in names
        if current is None:
            return value in (None, "")
        return str(current) == str(value) if not isinstance(current, (int, float)) else current == value

    def _new_relation(self, value: Any, item_id: int | None) -> dict:
        if not isinstance(value, dict) or not value.get("rel") or not value.get("url"):
            raise _bad_request("A relation needs 'rel' and 'url'.", "PatchOperationFailedException")
        rel = next((r for r in LINK_TYPES if r.lower() == str(value["rel"]).lower()), None)
        if rel is None:
            raise _bad_request(f"TF201036: Unknown link type {value['rel']}.", "WorkItemLinkTypeNotFoundException")
        out = {"rel": rel, "url": value["url"], "attributes": dict(value.get("attributes") or {})}
        if LINK_TYPES[rel] is not None:
            target = self._target_id(value["url"])
            if target is None or target not in self.work_items:
                raise _bad_request(f"TF201063: The link target {value['url']} is not a work item.",
                                   "WorkItemLinkInvalidException")
            if target == item_id:
                raise _bad_request("TF201036: A work item cannot be linked to itself.",
                                   "WorkItemLinkInvalidException")
            out["attributes"].setdefault("isLocked", False)
            out["attributes"].setdefault("name", LINK_NAMES[rel])
        return out

    @staticmethod
    def _target_id(url: str) -> int | None:
        m = re.search(r"/workitems/(\d+)/?$", url, re.I)
        return int(m.group(1)) if m else None

    def _state_column(self, team: Team, wtype: str, state: str) -> str | None:
        for col in self.board_columns:
            if col.state_mappings.get(wtype) == state:
                return col.name
        return None

    def _apply_rules(self, fields: dict, wtype: WorkItemType, touched: set, old: dict | None,
                     bypass: bool, now_iso: str) -> None:
        state_names = [s[0] for s in wtype.states]
        if "System.State" in touched or old is None:
            state = fields.get("System.State")
            if state is None and old is None:
                fields["System.State"] = state_names[0]
            elif state is None and not bypass:
                raise _rule_error("State", "System.State", "Required, InvalidEmpty",
                                  "The field 'State' cannot be empty.")
            elif state is not None:
                match = next((s for s in state_names if s.lower() == str(state).lower()), None)
                if match is None and not bypass:
                    raise _rule_error("State", "System.State",
                                      "Required, HasValues, LimitedToValues, AllowsOldValue, InvalidListValue",
                                      f"The field 'State' contains the value '{state}' that is not in the list "
                                      "of supported values")
                fields["System.State"] = match or state
        state_changed = old is None or old.get("System.State") != fields.get("System.State")
        if state_changed:
            if "System.Reason" not in touched:
                fields["System.Reason"] = (wtype.initial_reason if old is None
                                           else f"Moved to state {fields['System.State']}")
            fields["Microsoft.VSTS.Common.StateChangeDate"] = now_iso
        if not bypass and not str(fields.get("System.Title") or "").strip():
            raise _rule_error("Title", "System.Title", "Required, InvalidEmpty", "The field 'Title' cannot be empty.")
        iteration_paths = [self.project] + [f"{self.project}\\{it.name}" for it in self.iterations]
        for ref, tree in (("System.AreaPath", self.areas), ("System.IterationPath", iteration_paths)):
            if old is None and ref not in fields:
                fields[ref] = self.project
            elif ref in touched:
                value = str(fields.get(ref) or "").lower()
                match = next((p for p in tree if p.lower() == value), None)
                if match is None:
                    raise DevOpsError(400, f"TF401347: Invalid tree name given for work item "
                                           f"{fields.get('System.Id', -1)}, field '{ref}'.",
                                      "WorkItemTrackingTreeNodeNotFoundException")
                fields[ref] = match
        if "System.Tags" in touched and fields.get("System.Tags"):
            tags: dict[str, str] = {}
            for tag in str(fields["System.Tags"]).split(";"):
                if tag.strip():
                    tags.setdefault(tag.strip().lower(), tag.strip())
            fields["System.Tags"] = "; ".join(sorted(tags.values(), key=str.lower))
            if not tags:
                fields.pop("System.Tags")
        self._apply_board(fields, wtype, touched, old, bypass)

    def _apply_board(self, fields: dict, wtype: WorkItemType, touched: set, old: dict | None, bypass: bool) -> None:
        """Kanban columns live in the team's WEF_<hex>_Kanban.Column field; the client moves a card
        by setting that field together with the state the column maps to. System.BoardColumn
        (read only) mirrors the first team's column."""
        if not wtype.on_board:
            return
        state = fields.get("System.State")
        for team in self.teams:
            col_ref = team.column_field
            removed = state == "Removed"
            if col_ref in touched and fields.get(col_ref) is not None and not removed:
                wanted = str(fields[col_ref])
                col = next((c for c in self.board_columns if c.name.lower() == wanted.lower()), None)
                if col is None and not bypass:
                    raise _rule_error("Kanban Column", col_ref,
                                      "HasValues, LimitedToValues, InvalidListValue",
                                      f"The field 'Kanban Column' contains the value '{wanted}' that is not "
                                      "in the list of supported values")
                if col is not None:
                    mapped = col.state_mappings.get(wtype.name)
                    if mapped != state and not bypass:
                        # deliberate strictness (simulator): column and state must move together
                        raise DevOpsError(400, f"Board column '{col.name}' maps to state '{mapped}' for "
                                               f"'{wtype.name}', but the work item's state is '{state}'. Set "
                                               f"System.State to '{mapped}' in the same update.",
                                          "RuleValidationException",
                                          f"{_WIT_NS}.RuleValidationException, {_WIT_NS}",
                                          {"FieldReferenceName": col_ref})
                    fields[col_ref] = col.name
            else:
                current = fields.get(col_ref)
                col = next((c for c in self.board_columns if current and c.name.lower() == str(current).lower()), None)
                if removed:
                    fields.pop(col_ref, None)
                elif col is None or col.state_mappings.get(wtype.name) != state:
                    new = self._state_column(team, wtype.name, state)
                    if new:
                        fields[col_ref] = new
                    else:
                        fields.pop(col_ref, None)
            if fields.get(col_ref) is not None:
                fields.setdefault(team.done_field, False)
            else:
                fields.pop(team.done_field, None)
        first = self.teams[0]
        if fields.get(first.column_field) is not None:
            fields["System.BoardColumn"] = fields[first.column_field]
            fields["System.BoardColumnDone"] = bool(fields.get(first.done_field, False))
        else:
            fields.pop("System.BoardColumn", None)
            fields.pop("System.BoardColumnDone", None)

    def _save_work_item(self, item: WorkItem | None, type_name: str | None, ops: Any, bypass: bool,
                        validate_only: bool, actor: Identity) -> WorkItem:
        """Create (item None) or update atomically: all operations and rules are checked on copies;
        nothing is stored unless every one passes."""
        wtype = self._type(type_name if item is None else item.fields["System.WorkItemType"])
        old = item.fields if item else None
        fields = copy.deepcopy(item.fields) if item else {}
        relations = copy.deepcopy(item.relations) if item else []
        touched, rel_changes = self._apply_patch(fields, relations, item.rev if item else 0, ops, bypass,
                                                 item.id if item else None)
        now = self._now()
        now_iso = _iso(now)
        if item is None:
            fields.update({"System.TeamProject": self.project, "System.WorkItemType": wtype.name})
            fields.setdefault("System.CreatedDate", now_iso)
            fields.setdefault("System.CreatedBy", self.identity_ref(actor))
        # System.History is per revision: only a value set by this patch is new discussion
        history = fields.pop("System.History", None) if "System.History" in touched else None
        fields.pop("System.History", None)
        self._apply_rules(fields, wtype, touched, old, bypass, now_iso)
        previous = {k: v for k, v in (old or {}).items() if k != "System.History"}
        if item is not None and fields == previous and not rel_changes and not history:
            return item  # a no-op patch makes no revision
        if "System.ChangedDate" not in touched:
            fields["System.ChangedDate"] = now_iso
        if "System.ChangedBy" not in touched:
            fields["System.ChangedBy"] = self.identity_ref(actor)
        if history:
            fields["System.History"] = history
            fields["System.CommentCount"] = (old or {}).get("System.CommentCount", 0) + 1
        if validate_only:
            preview = WorkItem(item.id if item else -1, item.rev if item else 0, fields, relations)
            return preview
        if item is None:
            item = WorkItem(next(self._ids["wi"]), 0, {})
            self.work_items[item.id] = item
        item.rev += 1
        fields["System.Id"] = item.id
        fields["System.Rev"] = item.rev
        fields["System.AreaId"] = 100 + [a.lower() for a in self.areas].index(fields["System.AreaPath"].lower())
        fields["System.IterationId"] = next((it.identifier for it in self.iterations
                                             if f"{self.project}\\{it.name}".lower() ==
                                             fields["System.IterationPath"].lower()), 100)
        parent = next((self._target_id(r["url"]) for r in relations
                       if r["rel"] == "System.LinkTypes.Hierarchy-Reverse"), None)
        if parent:
            fields["System.Parent"] = parent
        else:
            fields.pop("System.Parent", None)
        item.fields, item.relations = fields, relations
        item.revisions.append(Revision(item.rev, copy.deepcopy(fields), copy.deepcopy(relations), now))
        if history:
            item.comments.append({"id": next(self._ids["comment"]), "version": 1, "text": history,
                                  "by": actor, "at": now})
        for change, relation in rel_changes:
            self._reciprocal(item, change, relation, actor)
        return item

    def _reciprocal(self, item: WorkItem, change: str, relation: dict, actor: Identity) -> None:
        """Work item links are two-sided: the target gets the reverse link and a new revision."""
        back = LINK_TYPES.get(relation["rel"])
        target_id = self._target_id(relation["url"]) if back else None
        if not target_id or target_id not in self.work_items:
            return
        target = self.work_items[target_id]
        url = self._wi_url(item.id)
        rels = [r for r in target.relations if not (r["rel"] == back and self._target_id(r["url"]) == item.id)]
        if change == "add":
            rels.append({"rel": back, "url": url, "attributes": {"isLocked": False, "name": LINK_NAMES[back]}})
        now = self._now()
        target.relations = rels
        target.rev += 1
        target.fields.update({"System.Rev": target.rev, "System.ChangedDate": _iso(now),
                              "System.ChangedBy": self.identity_ref(actor)})
        target.fields.pop("System.History", None)
        if back == "System.LinkTypes.Hierarchy-Reverse":
            if change == "add":
                target.fields["System.Parent"] = item.id
            else:
                target.fields.pop("System.Parent", None)
        target.revisions.append(Revision(target.rev, copy.deepcopy(target.fields), copy.deepcopy(rels), now))

    def _add_comment(self, item: WorkItem, text: str, actor: Identity) -> dict:
        # A discussion comment is a System.History change: new revision, CommentCount + 1.
        self._save_work_item(item, None, [{"op": "add", "path": "/fields/System.History", "value": text}],
                             False, False, actor)
        return item.comments[-1]

    # ================================================================== WIQL

    def run_wiql(self, text: str, team: Team | None = None, top: int | None = None,
                 actor: Identity | None = None) -> tuple[dict, list[WorkItem]]:
        parsed = _WiqlParser(text, self._wiql_field).parse()
        team = team or self.teams[0]
        ctx = {"me": actor or self.me, "team": team}
        items = [w for w in self.work_items.values() if parsed["where"] is None or self._eval(parsed["where"], w, ctx)]
        items.sort(key=lambda w: w.id)
        for ref, desc in reversed(parsed["order"]):
            present = [w for w in items if w.fields.get(ref) is not None]
            missing = [w for w in items if w.fields.get(ref) is None]
            present.sort(key=lambda w: self._sort_key(w.fields.get(ref)), reverse=desc)
            items = present + missing
        if top is not None:
            items = items[:top]
        return parsed, items

    def _wiql_field(self, name: str) -> str:
        try:
            return self._resolve_field(name)
        except DevOpsError:
            raise WiqlError(f"TF51005: The query references a field that does not exist. "
                            f"The error is caused by «[{name}]».") from None

    @staticmethod
    def _sort_key(value):
        if isinstance(value, dict):
            return (1, str(value.get("displayName", "")).lower())
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, value)
        return (1, str(value).lower())

    def _current_iteration(self, team: Team) -> str:
        now = time.time()
        for it in self.iterations:
            if it.id in self.team_iterations.get(team.name.lower(), []) and it.start and it.finish \
                    and it.start <= now < it.finish:
                return f"{self.project}\\{it.name}"
        raise WiqlError("TF51011: The @CurrentIteration macro cannot be resolved: the team has no current iteration.")

    def _operand(self, node, item: WorkItem, ctx) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "field":
            return item.fields.get(node[1])
        if kind == "list":
            return [self._operand(v, item, ctx) for v in node[1]]
        name, offset = node[1], node[2]
        if name == "me":
            return ctx["me"]
        if name == "project":
            return self.project
        if name == "currentiteration":
            return self._current_iteration(ctx["team"])
        day = 86400.0
        return _iso((time.time() // day) * day + offset * day)

    def _eval(self, node, item: WorkItem, ctx) -> bool:
        kind = node[0]
        if kind == "and":
            return self._eval(node[1], item, ctx) and self._eval(node[2], item, ctx)
        if kind == "or":
            return self._eval(node[1], item, ctx) or self._eval(node[2], item, ctx)
        if kind == "not":
            return not self._eval(node[1], item, ctx)
        _, ref, op, operand = node
        value = item.fields.get(ref)
        target = self._operand(operand, item, ctx)
        ftype = self.fields[ref][1]

        def norm(v):
            if isinstance(v, Identity):
                return v.names()
            if isinstance(v, dict):
                return {str(v.get("displayName", "")).lower(), str(v.get("uniqueName", "")).lower()}
            if v is None:
                return None
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return v
            return str(v).lower()

        def equals(a, b):
            a, b = norm(a), norm(b)
            if isinstance(a, set) and isinstance(b, set):
                return bool(a & b)
            if isinstance(a, set):
                return b in a
            if isinstance(b, set):
                return a in b
            if a is None or b is None:
                return (a or "") == (b or "")
            if isinstance(a, (int, float)) or isinstance(b, (int, float)):
                try:
                    return float(a) == float(b)
                except ValueError:
                    return False
            return a == b

        if op == "=":
            return equals(value, target)
        if op == "<>":
            return not equals(value, target)
        if op == "IN":
            return any(equals(value, t) for t in target)
        if op == "CONTAINS":
            if ftype == "plainText" and ref == "System.Tags":
                tags = {t.strip().lower() for t in str(value or "").split(";")}
                return str(target).lower() in tags
            return str(target).lower() in str(value or "").lower()
        if op == "UNDER":
            v, t = str(value or "").lower(), str(target).lower()
            return v == t or v.startswith(t + "\\")
        if op == "EVER":
            return any(equals(r.fields.get(ref), target) for r in item.revisions)
        if value is None:
            return False
        a, b = value, target
        if ftype == "dateTime":
            a, b = _parse_time(str(a)), _parse_time(str(b))
        elif isinstance(a, (int, float)):
            b = float(b)
        else:
            a, b = str(a).lower(), str(b).lower()
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]

    def _wiql_result(self, parsed: dict, items: list[WorkItem]) -> dict:
        def ref(r):
            return {"referenceName": r, "name": self.fields[r][0], "url": f"{self.url}/_apis/wit/fields/{r}"}
        return {"queryType": "flat", "queryResultType": "workItem", "asOf": _iso(time.time()),
                "columns": [ref(c) for c in parsed["columns"]],
                "sortColumns": [{"field": ref(r), "descending": d} for r, d in parsed["order"]],
                "workItems": [{"id": w.id, "url": self._wi_url(w.id)} for w in items]}

    # ================================================================== releases

    def _outcome_for(self, definition: ReleaseDefinition, env_name: str) -> str:
        for key in ((definition.name.lower(), env_name.lower()), (definition.name.lower(), "*"),
                    ("*", env_name.lower()), ("*", "*")):
            if key in self.env_outcomes:
                return self.env_outcomes[key]
        return "succeeded"

    def advance(self) -> None:
        """Move time-driven release state along (scheduled -> queued, running -> finished).
        Runs before every request and from the Python accessors."""
        now = time.time()
        with self.state_lock:
            for release in self._releases.values():
                for env in release.environments:
                    if env.status == "scheduled" and env.scheduled_for is not None and now >= env.scheduled_for:
                        self._begin_deployment(env, env.deployments[-1].requested_by, new_attempt=False)
                    if env.status == "inProgress" and env.run_until is not None and now >= env.run_until:
                        self._finish_deployment(env, now)

    def _begin_deployment(self, env: ReleaseEnvironment, actor: Identity, new_attempt: bool = True) -> None:
        now = self._now()
        if new_attempt:
            dep = Deployment(next(self._ids["deployment"]), env, len(env.deployments) + 1, actor, now, modified_at=now)
            env.deployments.append(dep)
            self.deployments[dep.id] = dep
        dep = env.deployments[-1]
        env.scheduled_for = None
        env.modified_at = now
        if env.definition_env.approvals:
            env.status = "queued"
            dep.status, dep.operation_status, dep.modified_at = "notDeployed", "pending", now
            for step in env.definition_env.approvals:
                approval = Approval(next(self._ids["approval"]), env, step.approver, step.rank, dep.attempt, now,
                                    modified_at=now)
                env.approvals.append(approval)
                self.approvals[approval.id] = approval
        else:
            self._start_run(env, now)

    def _start_run(self, env: ReleaseEnvironment, now: float) -> None:
        dep = env.deployments[-1]
        env.status = "inProgress"
        env.run_until = now + self.run_seconds
        env.modified_at = now
        dep.status, dep.operation_status = "inProgress", "phaseInProgress"
        dep.started_at = dep.modified_at = now

    def _finish_deployment(self, env: ReleaseEnvironment, now: float) -> None:
        dep = env.deployments[-1]
        outcome = env.outcome or self._outcome_for(env.release.definition, env.name)
        env.status, dep.status, dep.operation_status = {
            "succeeded": ("succeeded", "succeeded", "phaseSucceeded"),
            "failed": ("rejected", "failed", "phaseFailed"),
            "canceled": ("canceled", "failed", "canceled"),
            "partiallySucceeded": ("partiallySucceeded", "partiallySucceeded", "phasePartiallySucceeded"),
        }[outcome]
        env.run_until = None
        env.modified_at = dep.modified_at = dep.completed_at = now

    def create_release(self, definition_id: int, description: str = "", artifacts: list | None = None,
                       actor: Identity | None = None) -> Release:
        definition = self.release_definitions.get(definition_id)
        if definition is None:
            raise _bad_request(f"VS402853: The release pipeline with id {definition_id} does not exist.",
                               "ReleaseDefinitionNotFoundException")
        given = {str(a.get("alias", "")).lower(): a for a in (artifacts or []) if isinstance(a, dict)}
        for alias in given:
            if alias not in [a.lower() for a in definition.artifacts]:
                raise _bad_request(f"Artifact alias '{alias}' is not part of release pipeline '{definition.name}'.",
                                   "InvalidRequestException")
        now = self._now()
        definition.release_counter += 1
        release = Release(next(self._ids["rel"]), f"Release-{definition.release_counter}", definition,
                          description or "", actor or self.me, now, [], modified_at=now)
        for alias in definition.artifacts:
            version = (given.get(alias.lower(), {}).get("instanceReference") or {})
            version_id = str(version.get("id") or f"{20240600 + definition.release_counter}.1")
            release.artifacts.append({
                "sourceId": f"{self.project_id}:{_guid('build', alias)}", "type": "Build", "alias": alias,
                "isPrimary": alias == definition.artifacts[0], "isRetained": False,
                "definitionReference": {
                    "definition": {"id": str(1 + definition.artifacts.index(alias)), "name": alias.strip("_")},
                    "project": {"id": self.project_id, "name": self.project},
                    "version": {"id": version_id, "name": str(version.get("name") or version_id)}}})
        for denv in definition.environments:
            release.environments.append(ReleaseEnvironment(next(self._ids["relenv"]), release, denv,
                                                            modified_at=now))
        self._releases[release.id] = release
        return release

    def _release_ref(self, release: Release) -> dict:
        url = f"{self.vsrm_url}/{self.project_id}/_apis/Release/releases/{release.id}"
        return {"id": release.id, "name": release.name, "url": url,
                "_links": {"self": {"href": url},
                           "web": {"href": f"{self.url}/{self.project_id}/_release?releaseId={release.id}"}}}

    def _definition_ref(self, definition: ReleaseDefinition) -> dict:
        url = f"{self.vsrm_url}/{self.project_id}/_apis/Release/definitions/{definition.id}"
        return {"id": definition.id, "name": definition.name, "path": "\\", "projectReference": None,
                "url": url, "_links": {"self": {"href": url}, "web": {
                    "href": f"{self.url}/{self.project_id}/_release?definitionId={definition.id}"}}}

    def _env_ref(self, env: ReleaseEnvironment) -> dict:
        url = f"{self.vsrm_url}/{self.project_id}/_apis/Release/releases/{env.release.id}/environments/{env.id}"
        return {"id": env.id, "name": env.name, "url": url, "_links": {}}

    def _approval_options(self, denv: DefinitionEnvironment) -> dict:
        return {"requiredApproverCount": 0, "releaseCreatorCanBeApprover": True,
                "autoTriggeredAndPreviousEnvironmentApprovedCanBeSkipped": False,
                "enforceIdentityRevalidation": False, "timeoutInMinutes": 0, "executionOrder": "beforeGates"}

    def _approvals_snapshot(self, denv: DefinitionEnvironment) -> dict:
        if not denv.approvals:
            return {"approvals": [{"rank": 1, "isAutomated": True, "isNotificationOn": False, "id": 0}],
                    "approvalOptions": self._approval_options(denv)}
        return {"approvals": [{"rank": s.rank, "isAutomated": False, "isNotificationOn": False,
                               "approver": self.identity_ref(s.approver), "id": s.id} for s in denv.approvals],
                "approvalOptions": self._approval_options(denv)}

    def approval_json(self, a: Approval) -> dict:
        env = a.env
        return {"id": a.id, "revision": a.revision, "approvalType": "preDeploy", "status": a.status,
                "approver": self.identity_ref(a.approver), "approvedBy": self.identity_ref(a.approved_by),
                "createdOn": _iso(a.created_at), "modifiedOn": _iso(a.modified_at or a.created_at),
                "comments": a.comments, "isAutomated": False, "isNotificationOn": False, "trialNumber": 1,
                "attempt": a.attempt, "rank": a.rank, "history": [],
                "release": self._release_ref(env.release),
                "releaseDefinition": self._definition_ref(env.release.definition),
                "releaseEnvironment": self._env_ref(env),
                "url": f"{self.vsrm_url}/{self.project_id}/_apis/Release/approvals/{a.id}"}

    def _attempt_json(self, dep: Deployment) -> dict:
        return {"id": dep.id, "deploymentId": dep.id, "attempt": dep.attempt, "reason": "manual",
                "status": dep.status, "operationStatus": dep.operation_status, "releaseDeployPhases": [],
                "requestedBy": self.identity_ref(dep.requested_by), "requestedFor": self.identity_ref(dep.requested_by),
                "queuedOn": _iso(dep.queued_at), "lastModifiedBy": self.identity_ref(dep.requested_by),
                "lastModifiedOn": _iso(dep.modified_at or dep.queued_at), "hasStarted": dep.started_at is not None,
                "issues": []}

    def release_env_json(self, env: ReleaseEnvironment) -> dict:
        release = env.release
        out = {"id": env.id, "releaseId": release.id, "name": env.name, "status": env.status,
               "variables": {k: {"value": v} for k, v in env.variables.items()}, "variableGroups": [],
               "preDeployApprovals": [self.approval_json(a) for a in env.approvals],
               "postDeployApprovals": [],
               "preApprovalsSnapshot": self._approvals_snapshot(env.definition_env),
               "postApprovalsSnapshot": {"approvals": [{"rank": 1, "isAutomated": True,
                                                        "isNotificationOn": False, "id": 0}]},
               "deploySteps": [self._attempt_json(d) for d in env.deployments],
               "rank": env.definition_env.rank, "definitionEnvironmentId": env.definition_env.id,
               "environmentOptions": {"emailNotificationType": "OnlyOnFailure", "skipArtifactsDownload": False,
                                      "timeoutInMinutes": 0, "enableAccessToken": False,
                                      "publishDeploymentStatus": False, "badgeEnabled": False,
                                      "autoLinkWorkItems": False, "pullRequestDeploymentEnabled": False},
               "demands": [], "conditions": [], "createdOn": _iso(release.created_at),
               "modifiedOn": _iso(env.modified_at or release.created_at), "workflowTasks": [],
               "deployPhasesSnapshot": [], "owner": self.identity_ref(release.definition.created_by),
               "schedules": [], "release": self._release_ref(release),
               "releaseDefinition": self._definition_ref(release.definition),
               "releaseCreatedBy": self.identity_ref(release.created_by), "triggerReason": "Manual",
               "processParameters": {}, "preDeploymentGatesSnapshot": {"id": 0, "gates": []},
               "postDeploymentGatesSnapshot": {"id": 0, "gates": []}}
        if env.scheduled_for is not None:
            out["scheduledDeploymentTime"] = _iso(env.scheduled_for)
        if env.deployments and env.deployments[-1].completed_at and env.deployments[-1].started_at:
            out["timeToDeploy"] = round((env.deployments[-1].completed_at - env.deployments[-1].started_at) / 60, 4)
        return out

    def release_json(self, release: Release, environments: bool = True, artifacts: bool = True) -> dict:
        out = {"id": release.id, "name": release.name, "status": release.status,
               "createdOn": _iso(release.created_at), "modifiedOn": _iso(release.modified_at),
               "modifiedBy": self.identity_ref(release.created_by), "createdBy": self.identity_ref(release.created_by),
               "createdFor": self.identity_ref(release.created_by), "variables": {}, "variableGroups": [],
               "releaseDefinition": self._definition_ref(release.definition),
               "releaseDefinitionRevision": release.definition.revision, "description": release.description,
               "reason": "manual", "releaseNameFormat": "Release-$(rev:r)", "keepForever": False,
               "definitionSnapshotRevision": 1, "logsContainerUrl":
                   f"{self.vsrm_url}/{self.project_id}/_apis/release/releases/{release.id}/logs",
               "url": self._release_ref(release)["url"], "_links": self._release_ref(release)["_links"],
               "tags": [], "triggeringArtifactAlias": None,
               "projectReference": {"id": self.project_id, "name": self.project}, "properties": {}}
        if environments:
            out["environments"] = [self.release_env_json(e) for e in release.environments]
        if artifacts:
            out["artifacts"] = copy.deepcopy(release.artifacts)
        return out

    def definition_json(self, d: ReleaseDefinition, environments: bool = True) -> dict:
        out = {**self._definition_ref(d), "source": "restApi", "revision": d.revision, "description": None,
               "createdBy": self.identity_ref(d.created_by), "createdOn": _iso(d.created_at),
               "modifiedBy": self.identity_ref(d.created_by), "modifiedOn": _iso(d.created_at),
               "isDeleted": False, "variables": {}, "variableGroups": [], "tags": [], "triggers": [],
               "releaseNameFormat": "Release-$(rev:r)", "properties": {},
               "artifacts": [{"sourceId": f"{self.project_id}:{_guid('build', a)}", "type": "Build", "alias": a,
                              "isPrimary": i == 0, "isRetained": False,
                              "definitionReference": {"definition": {"id": str(i + 1), "name": a.strip("_")},
                                                      "defaultVersionType": {"id": "latestType", "name": "Latest"}}}
                             for i, a in enumerate(d.artifacts)]}
        if environments:
            out["environments"] = [{
                "id": e.id, "name": e.name, "rank": e.rank, "owner": self.identity_ref(d.created_by),
                "variables": {}, "variableGroups": [], "preDeployApprovals": self._approvals_snapshot(e),
                "postDeployApprovals": {"approvals": [{"rank": 1, "isAutomated": True, "isNotificationOn": False,
                                                       "id": 0}], "approvalOptions": self._approval_options(e)},
                "deployPhases": [], "conditions": [], "demands": [], "environmentOptions": {},
                "executionPolicy": {"concurrencyCount": 1, "queueDepthCount": 0}, "schedules": [],
                "retentionPolicy": {"daysToKeep": 30, "releasesToKeep": 3, "retainBuild": True},
                "properties": {}, "environmentTriggers": []} for e in d.environments]
        return out

    def deployment_json(self, dep: Deployment) -> dict:
        env = dep.env
        return {"id": dep.id, "release": {**self._release_ref(env.release), "artifacts": []},
                "releaseDefinition": self._definition_ref(env.release.definition),
                "releaseEnvironment": self._env_ref(env),
                "projectReference": {"id": self.project_id, "name": self.project},
                "definitionEnvironmentId": env.definition_env.id, "attempt": dep.attempt, "reason": "manual",
                "deploymentStatus": dep.status, "operationStatus": dep.operation_status,
                "requestedBy": self.identity_ref(dep.requested_by), "requestedFor": self.identity_ref(dep.requested_by),
                "queuedOn": _iso(dep.queued_at),
                **({"startedOn": _iso(dep.started_at)} if dep.started_at else {}),
                **({"completedOn": _iso(dep.completed_at)} if dep.completed_at else {}),
                "lastModifiedOn": _iso(dep.modified_at or dep.queued_at),
                "lastModifiedBy": self.identity_ref(dep.requested_by), "conditions": [],
                "preDeployApprovals": [self.approval_json(a) for a in env.approvals if a.attempt == dep.attempt],
                "postDeployApprovals": [], "_links": {}}

    def _update_environment(self, env: ReleaseEnvironment, body: dict, actor: Identity) -> None:
        status = str(body.get("status") or "").lower()
        if env.release.status != "active":
            raise _bad_request(f"Release {env.release.name} is {env.release.status}; it cannot be deployed.",
                               "InvalidRequestException")
        if status == "inprogress":
            if env.status in ("queued", "inProgress", "scheduled"):
                raise DevOpsError(409, f"A deployment of '{env.name}' in {env.release.name} is already "
                                       f"{env.status}.", "ReleaseEnvironmentAlreadyInProgressException")
            env.comment = body.get("comment")
            env.variables.update({k: (v.get("value") if isinstance(v, dict) else v)
                                  for k, v in (body.get("variables") or {}).items()})
            when = body.get("scheduledDeploymentTime")
            if when:
                at = _parse_time(when)
                if at > time.time():
                    now = self._now()
                    dep = Deployment(next(self._ids["deployment"]), env, len(env.deployments) + 1, actor, now,
                                     operation_status="scheduled", modified_at=now)
                    env.deployments.append(dep)
                    self.deployments[dep.id] = dep
                    env.status, env.scheduled_for, env.modified_at = "scheduled", at, now
                    return
            self._begin_deployment(env, actor)
        elif status == "canceled":
            if env.status not in ("queued", "inProgress", "scheduled"):
                raise _bad_request(f"'{env.name}' in {env.release.name} is {env.status}; only a queued, scheduled "
                                   "or running deployment can be canceled.", "InvalidRequestException")
            now = self._now()
            for a in env.approvals:
                if a.status == "pending":
                    a.status, a.modified_at = "canceled", now
            dep = env.deployments[-1]
            dep.status, dep.operation_status, dep.modified_at = "failed", "canceled", now
            dep.completed_at = now
            env.status, env.run_until, env.scheduled_for, env.modified_at = "canceled", None, None, now
        else:
            raise _bad_request(f"Status '{body.get('status')}' cannot be set on a release environment; use "
                               "'inProgress' to deploy or 'canceled' to cancel.", "InvalidRequestException")

    def _update_approval(self, approval: Approval, body: dict, actor: Identity) -> None:
        status = str(body.get("status") or "")
        if status not in ("approved", "rejected"):
            raise _bad_request(f"Approval status '{status}' is not valid; use 'approved' or 'rejected'.",
                               "InvalidRequestException")
        if approval.status != "pending":
            raise _bad_request(f"Approval {approval.id} is {approval.status}, not pending.",
                               "ReleaseManagementObjectNotFoundException")
        if approval.approver.id != actor.id:
            raise DevOpsError(403, f"VS402904: Access denied: User {actor.display_name} does not have permission "
                                   f"to complete the approval of '{approval.env.name}'.", "AccessCheckException")
        now = self._now()
        approval.status, approval.comments, approval.approved_by = status, body.get("comments") or "", actor
        approval.modified_at, approval.revision = now, approval.revision + 1
        env = approval.env
        pending = [a for a in env.approvals if a.status == "pending" and a.attempt == approval.attempt]
        if status == "rejected":
            for a in pending:
                a.status, a.modified_at = "skipped", now
            dep = env.deployments[-1]
            dep.status, dep.operation_status, dep.modified_at, dep.completed_at = "notDeployed", "rejected", now, now
            env.status, env.modified_at = "rejected", now
        elif not pending:
            env.deployments[-1].operation_status = "approved"
            self._start_run(env, now)

    # ================================================================== HTTP plumbing

    def error_response(self, status: int, message: str) -> Response:
        # the SDK turns WrappedException bodies into AzureDevOpsServiceError(message)
        return Response.json(DevOpsError(status, message, "SimulatorSpecViolation").body(), status,
                             skip_validation="simulator error report")

    def authorize(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                _, _, secret = base64.b64decode(token.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                secret = None
            owner = self.me if secret == self.pat else self.pats.get(secret)
            if owner is not None:
                request.identity = owner  # type: ignore[attr-defined]
                return None
        # live: 401, an empty body and a Basic challenge (the SDK's FedAuth redirect is suppressed)
        return Response(401, b"", {"WWW-Authenticate": 'Basic realm="https://dev.azure.com/"',
                                   "X-TFS-ProcessId": str(uuid.uuid4())})

    def handle(self, request: Request) -> Response:
        if self.hooks:
            self._run_hooks(request)
        host, path = _split_host(request.path)
        parts = path.split("/", 2)
        if request.method == "OPTIONS" and parts[1].lower() == "_apis":
            # deployment level (no organization): the SDK falls back here for a route the
            # organization does not have; only the location service lives at this level
            return self._list(_locations_for(host, "Location"), request)
        if len(parts) < 3 or parts[1].lower() != self.org.lower():
            return self._json_error(_not_found(f"VS800075: The organization '{parts[1] if len(parts) > 1 else ''}' "
                                               "does not exist on this server.", "OrganizationNotFoundException"))
        rest = parts[2]
        self.advance()
        try:
            with self.state_lock:
                for method, hosts, regex, handler in self._routes():
                    if host not in hosts:
                        continue
                    m = regex.fullmatch(rest)
                    if m and (method == request.method or (method == "*" and request.method == "OPTIONS")):
                        args = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items() if v is not None}
                        return handler(request, host=host, **args)
                raise _not_found(f"The requested API {request.method} /{rest} is not served by the "
                                 f"{'dev.azure.com' if host == 'dev' else host + '.dev.azure.com'} host of this "
                                 "simulator (release APIs live on vsrm, identities on vssps; let the SDK's "
                                 "Connection find the host).", "ApiResourceNotFoundException")
        except DevOpsError as exc:
            return self._json_error(exc)

    def _json_error(self, exc: DevOpsError) -> Response:
        return Response.json(exc.body(), exc.status)

    def _ok(self, obj: Any, request: Request) -> Response:
        m = re.search(r"api-version=([^;,\s]+)", request.headers.get("Accept") or "")
        ctype = "application/json; charset=utf-8" + (f"; api-version={m.group(1)}" if m else "")
        return Response(200, json.dumps(_drop_nulls(obj)).encode(), {}, ctype)

    def _list(self, values: list, request: Request) -> Response:
        return self._ok({"count": len(values), "value": values}, request)

    def _routes(self):
        routes = getattr(self, "_route_table", None)
        if routes is None:
            P = r"(?P<project>[^/]+)"
            T = r"(?P<team>[^/]+)"
            table = [
                ("*", ("dev", "vsrm", "vssps"), r"_apis(?:/(?P<area>[^/]+))?(?:/.*)?", self._h_options),
                ("GET", ("dev", "vsrm", "vssps"), r"_apis/resourceareas(?:/(?P<area_id>[^/]+))?",
                 self._h_resource_areas),
                ("GET", ("dev", "vsrm", "vssps"), r"_apis/connectiondata", self._h_connection_data),
                ("GET", ("vssps",), r"_apis/identities/?", self._h_identities),
                ("GET", ("dev",), r"_apis/projects", self._h_projects),
                ("GET", ("dev",), r"_apis/projects/(?P<project>[^/]+)", self._h_project),
                ("GET", ("dev",), r"_apis/projects/(?P<project>[^/]+)/teams", self._h_teams),
                ("GET", ("dev",), r"_apis/projects/(?P<project>[^/]+)/teams/(?P<team>[^/]+)", self._h_team),
                ("GET", ("dev",), r"_apis/teams", self._h_all_teams),
                ("GET", ("dev",), P + r"/_apis/wit/workitems", self._h_wi_list),
                ("POST", ("dev",), P + r"/_apis/wit/workitems/\$(?P<type>[^/]+)", self._h_wi_create),
                ("GET", ("dev",), P + r"/_apis/wit/workitems/(?P<id>\d+)", self._h_wi_get),
                ("PATCH", ("dev",), P + r"/_apis/wit/workitems/(?P<id>\d+)", self._h_wi_update),
                ("GET", ("dev",), P + r"/_apis/wit/workitems/(?P<id>\d+)/revisions(?:/(?P<rev>\d+))?",
                 self._h_revisions),
                ("GET", ("dev",), P + r"/_apis/wit/workitems/(?P<id>\d+)/updates", self._h_updates),
                ("GET", ("dev",), P + r"/_apis/wit/workitems/(?P<id>\d+)/comments", self._h_comments),
                ("POST", ("dev",), P + r"/_apis/wit/workitems/(?P<id>\d+)/comments", self._h_comment_add),
                ("GET", ("dev",), P + r"/_apis/wit/workitems/(?P<id>\d+)/comments/(?P<comment_id>\d+)",
                 self._h_comment),
                ("POST", ("dev",), P + r"/_apis/wit/workitemsbatch", self._h_wi_batch),
                ("POST", ("dev",), P + r"(?:/" + T + r")?/_apis/wit/wiql", self._h_wiql),
                ("GET", ("dev",), P + r"(?:/" + T + r")?/_apis/wit/wiql/(?P<id>[^/]+)", self._h_wiql_by_id),
                ("GET", ("dev",), P + r"/_apis/wit/queries(?:/(?P<query>.+))?", self._h_query),
                ("GET", ("dev",), P + r"/_apis/wit/workitemtypes", self._h_types),
                ("GET", ("dev",), P + r"/_apis/wit/workitemtypes/(?P<type>[^/]+)", self._h_type),
                ("GET", ("dev",), P + r"/_apis/wit/workitemtypes/(?P<type>[^/]+)/states", self._h_states),
                ("GET", ("dev",), P + r"/_apis/wit/classificationnodes", self._h_root_nodes),
                ("GET", ("dev",), P + r"/_apis/wit/classificationnodes/(?P<group>areas|iterations)(?:/(?P<node>.+))?",
                 self._h_node),
                ("GET", ("dev",), P + "/" + T + r"/_apis/work/teamsettings", self._h_team_settings),
                ("GET", ("dev",), P + "/" + T + r"/_apis/work/teamsettings/iterations", self._h_iterations),
                ("GET", ("dev",), P + "/" + T + r"/_apis/work/teamsettings/iterations/(?P<id>[^/]+)",
                 self._h_iteration),
                ("GET", ("dev",), P + "/" + T + r"/_apis/work/boards", self._h_boards),
                ("GET", ("dev",), P + "/" + T + r"/_apis/work/boards/(?P<board>[^/]+)", self._h_board),
                ("GET", ("dev",), P + "/" + T + r"/_apis/work/boards/(?P<board>[^/]+)/columns", self._h_board_columns),
                ("GET", ("vsrm",), P + r"/_apis/release/definitions", self._h_definitions),
                ("GET", ("vsrm",), P + r"/_apis/release/definitions/(?P<id>\d+)", self._h_definition),
                ("GET", ("vsrm",), P + r"/_apis/release/releases", self._h_releases),
                ("POST", ("vsrm",), P + r"/_apis/release/releases", self._h_release_create),
                ("GET", ("vsrm",), P + r"/_apis/release/releases/(?P<id>\d+)", self._h_release),
                ("GET", ("vsrm",), P + r"/_apis/release/releases/(?P<id>\d+)/environments/(?P<env_id>\d+)",
                 self._h_release_env),
                ("PATCH", ("vsrm",), P + r"/_apis/release/releases/(?P<id>\d+)/environments/(?P<env_id>\d+)",
                 self._h_release_env_update),
                ("GET", ("vsrm",), P + r"/_apis/release/approvals", self._h_approvals),
                ("PATCH", ("vsrm",), P + r"/_apis/release/approvals/(?P<id>\d+)", self._h_approval_update),
                ("GET", ("vsrm",), P + r"/_apis/release/deployments", self._h_deployments),
            ]
            routes = self._route_table = [(m, h, re.compile(r, re.I), fn) for m, h, r, fn in table]
        return routes

    def _actor(self, request: Request) -> Identity:
        return getattr(request, "identity", None) or self.me

    @staticmethod
    def _arg(request: Request, name: str) -> str | None:
        for key, values in request.query.items():
            if key.lower() == name.lower() and values:
                return values[0]
        return None

    def _param(self, request: Request, name: str, default=None):
        """The value the spec check coerced (int/bool/lower-cased enum), else the raw string."""
        op = request.operation
        if op is not None and name in op.params:
            return op.params[name]
        value = self._arg(request, name)
        return default if value is None else value

    # ------------------------------------------------------------------ location / core / identity

    def _h_options(self, request, host, area=None):
        return self._list(_locations_for(host, area), request)

    def _h_resource_areas(self, request, host, area_id=None):
        areas = [{"id": i, "name": n, "locationUrl": self.host_url(h) + "/"} for i, n, h in _RESOURCE_AREAS]
        if area_id:
            found = [a for a in areas if a["id"].lower() == area_id.lower()]
            if not found:
                raise _not_found(f"Resource area {area_id} was not found.")
            return self._ok(found[0], request)
        return self._list(areas, request)

    def _h_connection_data(self, request, host):
        me = self.identity_json(self._actor(request))
        return self._ok({"authenticatedUser": me, "authorizedUser": me,
                         "instanceId": _guid(self.org, "instance"), "deploymentId": _guid(self.org, "deployment"),
                         "deploymentType": "hosted", "locationServiceData": {
                             "serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                             "defaultAccessMappingMoniker": "PublicAccessMapping", "lastChangeId": 1,
                             "lastChangeId64": 1, "accessMappings": [{
                                 "displayName": "Public Access Mapping", "moniker": "PublicAccessMapping",
                                 "accessPoint": self.host_url(host) + "/", "virtualDirectory": ""}]}}, request)

    def _h_identities(self, request, host):
        search = (self._arg(request, "searchFilter") or "").lower()
        value = self._arg(request, "filterValue")
        if search and value is not None:
            text = value.lower()
            if search == "general":
                found = [i for i in self.identities
                         if text in i.names() or i.display_name.lower().startswith(text)
                         or i.unique_name.lower().startswith(text)]
            elif search in ("accountname", "mailaddress"):
                found = [i for i in self.identities if i.unique_name.lower() == text]
            elif search == "displayname":
                found = [i for i in self.identities if i.display_name.lower() == text]
            else:
                raise _bad_request(f"searchFilter '{self._arg(request, 'searchFilter')}' is not supported.")
        elif self._arg(request, "identityIds"):
            ids = {x.strip().lower() for x in self._arg(request, "identityIds").split(",")}
            found = [i for i in self.identities if i.id in ids]
        else:
            raise _bad_request("VS403150: Either descriptors, identityIds or searchFilter with filterValue "
                               "must be given.", "ArgumentException")
        return self._list([self.identity_json(i) for i in found], request)

    def _project_json(self) -> dict:
        return {"id": self.project_id, "name": self.project, "description": "",
                "url": f"{self.url}/_apis/projects/{self.project_id}", "state": "wellFormed", "revision": 11,
                "visibility": "private", "lastUpdateTime": "2024-01-01T00:00:00.000Z"}

    def _team_json(self, team: Team) -> dict:
        return {"id": team.id, "name": team.name,
                "url": f"{self.url}/_apis/projects/{self.project_id}/teams/{team.id}",
                "description": "The default project team." if team is self.teams[0] else "",
                "identityUrl": f"{self.vssps_url}/_apis/Identities/{team.id}",
                "projectName": self.project, "projectId": self.project_id}

    def _h_projects(self, request, host):
        return self._list([self._project_json()], request)

    def _h_project(self, request, host, project):
        self._check_project(project)
        team = self.teams[0]
        return self._ok({**self._project_json(), "capabilities": {
            "processTemplate": {"templateName": "Scrum", "templateTypeId": "6b724908-ef14-45cf-84f8-768b5384da45"},
            "versioncontrol": {"sourceControlType": "Git"}},
            "defaultTeam": {"id": team.id, "name": team.name, "url": self._team_json(team)["url"]},
            "_links": {"self": {"href": self._project_json()["url"]}}}, request)

    def _h_teams(self, request, host, project):
        self._check_project(project)
        return self._list([self._team_json(t) for t in self.teams], request)

    def _h_team(self, request, host, project, team):
        self._check_project(project)
        return self._ok(self._team_json(self._team(team)), request)

    def _h_all_teams(self, request, host):
        return self._list([self._team_json(t) for t in self.teams], request)

    # ------------------------------------------------------------------ work items

    def _expand(self, request, key="$expand") -> str:
        value = self._param(request, key) or "none"
        return ",".join(value).lower() if isinstance(value, list) else str(value).lower()

    def _field_list(self, request) -> list[str] | None:
        raw = self._param(request, "fields")
        if not raw:
            return None
        names = raw if isinstance(raw, list) else str(raw).split(",")
        return [self._resolve_field(n.strip()) for n in names if n.strip()]

    def _as_of(self, item: WorkItem, as_of: str | None) -> Revision | None:
        if not as_of:
            return None
        when = _parse_time(str(as_of))
        snaps = [r for r in item.revisions if r.changed_at <= when]
        if not snaps:
            raise _not_found(f"TF401232: Work item {item.id} does not exist, or you do not have permissions "
                             "to read it.", "WorkItemUnauthorizedAccessException")
        return snaps[-1]

    def _h_wi_get(self, request, host, project, id):
        self._check_project(project)
        item = self._work_item(int(id))
        fields, expand = self._field_list(request), self._expand(request)
        if fields and expand not in ("none",):
            raise _bad_request("VS403437: The expand parameter can not be used with the fields parameter.",
                               "ConflictingParametersException")
        snap = self._as_of(item, self._param(request, "asOf"))
        return self._ok(self.work_item_json(item, fields=fields, expand=expand, snapshot=snap), request)

    def _h_wi_list(self, request, host, project):
        self._check_project(project)
        raw = self._arg(request, "ids") or ""
        ids = [int(x) for x in raw.split(",") if x.strip()]
        if not ids:
            raise _bad_request("VS403474: The ids parameter is required.", "ArgumentNullException")
        return self._list(self._many(ids, request, self._field_list(request), self._expand(request),
                                     self._param(request, "asOf"), self._param(request, "errorPolicy", "fail")),
                          request)

    def _many(self, ids: list[int], request, fields, expand, as_of, policy) -> list:
        if len(ids) > 200:
            raise _bad_request(f"VS403474: {len(ids)} work items were requested; the maximum in one request "
                               "is 200.", "WorkItemTooManyIdsException")
        if fields and expand not in ("none",):
            raise _bad_request("VS403437: The expand parameter can not be used with the fields parameter.",
                               "ConflictingParametersException")
        out = []
        for i in ids:
            item = self.work_items.get(i)
            if item is None:
                if str(policy).lower() == "omit":
                    continue  # live: a null entry; the spec's WorkItem array cannot hold one
                self._work_item(i)
            out.append(self.work_item_json(item, fields=fields, expand=expand, snapshot=self._as_of(item, as_of)))
        return out

    def _h_wi_batch(self, request, host, project):
        self._check_project(project)
        body = request.json if isinstance(request.json, dict) else {}
        ids = body.get("ids") or []
        if not ids:
            raise _bad_request("VS403474: The ids parameter is required.", "ArgumentNullException")
        fields = [self._resolve_field(f) for f in body.get("fields") or []] or None
        return self._list(self._many([int(i) for i in ids], request, fields,
                                     str(body.get("$expand") or "none").lower(), body.get("asOf"),
                                     body.get("errorPolicy") or "fail"), request)

    def _flag(self, request, name) -> bool:
        value = self._param(request, name, False)
        return value if isinstance(value, bool) else str(value).lower() == "true"

    def _h_wi_create(self, request, host, project, type):
        self._check_project(project)
        wtype = self._type(type)
        item = self._save_work_item(None, wtype.name, request.json, self._flag(request, "bypassRules"),
                                    self._flag(request, "validateOnly"), self._actor(request))
        return self._ok(self.work_item_json(item, expand=self._expand(request)), request)

    def _h_wi_update(self, request, host, project, id):
        self._check_project(project)
        item = self._work_item(int(id))
        saved = self._save_work_item(item, None, request.json, self._flag(request, "bypassRules"),
                                     self._flag(request, "validateOnly"), self._actor(request))
        return self._ok(self.work_item_json(saved, expand=self._expand(request)), request)

    def _h_revisions(self, request, host, project, id, rev=None):
        self._check_project(project)
        item = self._work_item(int(id))
        expand = self._expand(request)
        if rev is not None:
            snap = next((r for r in item.revisions if r.rev == int(rev)), None)
            if snap is None:
                raise _not_found(f"TF401235: Revision {rev} of work item {id} does not exist.",
                                 "WorkItemRevisionNotFoundException")
            return self._ok(self.work_item_json(item, expand=expand, snapshot=snap), request)
        skip = int(self._param(request, "$skip", 0) or 0)
        top = self._param(request, "$top")
        revs = item.revisions[skip:]
        revs = revs[:int(top)] if top is not None else revs
        return self._list([self.work_item_json(item, expand=expand, snapshot=r) for r in revs], request)

    def _h_updates(self, request, host, project, id):
        self._check_project(project)
        item = self._work_item(int(id))
        out, before, before_rels = [], {}, []
        for r in item.revisions:
            diff = {k: {**({"oldValue": before[k]} if k in before else {}), "newValue": v}
                    for k, v in r.fields.items() if before.get(k) != v}
            diff.update({k: {"oldValue": v} for k, v in before.items() if k not in r.fields})
            update = {"id": r.rev, "workItemId": item.id, "rev": r.rev,
                      "revisedBy": r.fields.get("System.ChangedBy"), "revisedDate": "9999-01-01T00:00:00Z",
                      "fields": diff, "url": f"{self._wi_url(item.id)}/updates/{r.rev}"}
            added = [x for x in r.relations if x not in before_rels]
            removed = [x for x in before_rels if x not in r.relations]
            if added or removed:
                update["relations"] = {**({"added": added} if added else {}),
                                       **({"removed": removed} if removed else {})}
            out.append(update)
            before, before_rels = r.fields, r.relations
        return self._list(out, request)

    def _h_comments(self, request, host, project, id):
        self._check_project(project)
        item = self._work_item(int(id))
        comments = list(item.comments)
        if str(self._param(request, "order", "desc")).lower() == "desc":
            comments.reverse()
        top = self._param(request, "$top")
        total = len(comments)
        if top is not None:
            comments = comments[:int(top)]
        return self._ok({"totalCount": total, "count": len(comments),
                         "comments": [self.comment_json(item, c) for c in comments],
                         "url": f"{self._wi_url(item.id)}/comments"}, request)

    def _h_comment(self, request, host, project, id, comment_id):
        self._check_project(project)
        item = self._work_item(int(id))
        c = next((c for c in item.comments if c["id"] == int(comment_id)), None)
        if c is None:
            raise _not_found(f"TF401418: Comment {comment_id} of work item {id} does not exist.",
                             "WorkItemCommentNotFoundException")
        return self._ok(self.comment_json(item, c), request)

    def _h_comment_add(self, request, host, project, id):
        self._check_project(project)
        item = self._work_item(int(id))
        text = (request.json or {}).get("text") if isinstance(request.json, dict) else None
        if not text or not str(text).strip():
            raise _bad_request("VS403412: The comment text cannot be empty.", "ArgumentException")
        return self._ok(self.comment_json(item, self._add_comment(item, str(text), self._actor(request))), request)

    # ------------------------------------------------------------------ queries

    def _h_wiql(self, request, host, project, team=None):
        self._check_project(project)
        team_obj = self._team(team) if team else None
        body = request.json if isinstance(request.json, dict) else {}
        query = body.get("query")
        if not query:
            raise WiqlError("TF51006: The query is empty.")
        top = self._param(request, "$top")
        parsed, items = self.run_wiql(str(query), team_obj, int(top) if top is not None else None,
                                      self._actor(request))
        return self._ok(self._wiql_result(parsed, items), request)

    def _saved_query(self, key: str) -> dict:
        key = key.strip("/").lower()
        for q in self.queries.values():
            if key in (q["id"], q["path"].lower()):
                return q
        raise _not_found(f"TF401243: The query '{key}' does not exist, or you do not have permission to read it.",
                         "QueryItemNotFoundException")

    def _h_wiql_by_id(self, request, host, project, id, team=None):
        self._check_project(project)
        q = self._saved_query(id)
        top = self._param(request, "$top")
        parsed, items = self.run_wiql(q["wiql"], self._team(team) if team else None,
                                      int(top) if top is not None else None, self._actor(request))
        return self._ok(self._wiql_result(parsed, items), request)

    def _query_item(self, q: dict | None, path: str, expand: str, depth: int) -> dict:
        qid = q["id"] if q else _guid(self.project, "folder", path.lower())
        url = f"{self.url}/{self.project_id}/_apis/wit/queries/{qid}"
        base = {"id": qid,
                "name": path.rsplit("/", 1)[-1], "path": path, "isPublic": path.lower().startswith("shared queries"),
                "url": url, "_links": {"self": {"href": url}},
                "createdDate": "2024-01-01T00:00:00.000Z", "lastModifiedDate": "2024-01-01T00:00:00.000Z"}
        if q:
            base.update({"queryType": "flat", "isFolder": False, "hasChildren": False})
            if expand in ("wiql", "all", "clauses"):
                base["wiql"] = q["wiql"]
            return base
        children = sorted({qq["path"][len(path) + 1:].split("/")[0] for qq in self.queries.values()
                           if qq["path"].lower().startswith(path.lower() + "/")})
        base.update({"isFolder": True, "hasChildren": bool(children)})
        if depth > 0 and children:
            base["children"] = [self._query_item(self.queries.get(f"{path}/{c}".lower()), f"{path}/{c}",
                                                 expand, depth - 1) for c in children]
        return base

    def _h_query(self, request, host, project, query=None):
        self._check_project(project)
        expand = self._expand(request)
        depth = int(self._param(request, "$depth", 0) or 0)
        folders = sorted({q["path"].split("/")[0] for q in self.queries.values()})
        if not query:
            return self._list([self._query_item(None, f, expand, depth) for f in folders], request)
        key = query.strip("/")
        if key.lower() in (f.lower() for f in folders):
            return self._ok(self._query_item(None, next(f for f in folders if f.lower() == key.lower()),
                                             expand, max(depth, 1)), request)
        q = self._saved_query(key)
        return self._ok(self._query_item(q, q["path"], expand, depth), request)

    # ------------------------------------------------------------------ types, nodes

    def _type_json(self, t: WorkItemType) -> dict:
        url = f"{self.url}/{self.project_id}/_apis/wit/workItemTypes/{urllib.parse.quote(t.name)}"
        field_refs = ["System.Id", "System.Title", "System.State", "System.Reason", "System.AssignedTo",
                      "System.AreaPath", "System.IterationPath", "System.Tags", "System.Description",
                      "System.History", "Microsoft.VSTS.Common.Priority"]
        fields = [{"referenceName": r, "name": self.fields[r][0], "alwaysRequired": r == "System.Title",
                   "url": f"{self.url}/_apis/wit/fields/{r}"} for r in field_refs]
        names = [s[0] for s in t.states]
        return {"name": t.name, "referenceName": t.reference_name, "description": "", "color": t.color,
                "icon": {"id": "icon_list", "url": f"{self.url}/_apis/wit/workItemIcons/icon_list"},
                "isDisabled": False, "fields": fields, "fieldInstances": fields,
                "states": [{"name": n, "color": c, "category": cat} for n, cat, c in t.states],
                "transitions": {"": [{"to": names[0], "actions": None}],
                                **{s: [{"to": o, "actions": None} for o in names if o != s] for s in names}},
                "url": url, "_links": {"self": {"href": url}}}

    def _h_types(self, request, host, project):
        self._check_project(project)
        return self._list([self._type_json(t) for t in WORK_ITEM_TYPES if t.name.lower() in self.types], request)

    def _h_type(self, request, host, project, type):
        self._check_project(project)
        return self._ok(self._type_json(self._type(type)), request)

    def _h_states(self, request, host, project, type):
        self._check_project(project)
        t = self._type(type)
        return self._list([{"name": n, "color": c, "category": cat} for n, cat, c in t.states], request)

    def _node_json(self, group: str, path: str, children: list[str], depth: int, it: Iteration | None = None) -> dict:
        name = path.rsplit("\\", 1)[-1]
        structure = "area" if group == "areas" else "iteration"
        out = {"id": (100 if path == self.project else 101 + len(path)), "identifier": _guid(self.project, group, path),
               "name": name, "structureType": structure, "hasChildren": bool(children),
               "path": f"\\{self.project}\\{structure.capitalize()}{path[len(self.project):]}",
               "url": f"{self.url}/{self.project_id}/_apis/wit/classificationNodes/{group}"
                      + urllib.parse.quote(path[len(self.project):].replace("\\", "/"))}
        if it and it.start:
            out["attributes"] = {"startDate": _iso(it.start), "finishDate": _iso(it.finish)}
        if depth > 0 and children:
            out["children"] = [self._node_json(group, c, [], depth - 1, self._iteration_by_path(c)) for c in children]
        return out

    def _iteration_by_path(self, path: str) -> Iteration | None:
        return next((it for it in self.iterations if f"{self.project}\\{it.name}".lower() == path.lower()), None)

    def _tree(self, group: str) -> list[str]:
        return self.areas[1:] if group == "areas" else [f"{self.project}\\{it.name}" for it in self.iterations]

    def _h_root_nodes(self, request, host, project):
        self._check_project(project)
        depth = int(self._param(request, "$depth", 0) or 0)
        return self._list([self._node_json(g, self.project, self._tree(g), depth) for g in ("areas", "iterations")],
                          request)

    def _h_node(self, request, host, project, group, node=None):
        self._check_project(project)
        group = group.lower()
        depth = int(self._param(request, "$depth", 0) or 0)
        if not node:
            return self._ok(self._node_json(group, self.project, self._tree(group), depth), request)
        path = f"{self.project}\\{node.strip('/').replace('/', chr(92))}"
        match = next((p for p in self._tree(group) if p.lower() == path.lower()), None)
        if match is None:
            raise _not_found(f"VS402485: The node {node} does not exist under {group}.",
                             "WorkItemTrackingTreeNodeNotFoundException")
        return self._ok(self._node_json(group, match, [], depth, self._iteration_by_path(match)), request)

    # ------------------------------------------------------------------ work (teams, iterations, boards)

    def _iteration_json(self, team: Team, it: Iteration) -> dict:
        now = time.time()
        frame = ("current" if it.start and it.finish and it.start <= now < it.finish
                 else "past" if it.finish and it.finish <= now else "future")
        url = f"{self.url}/{self.project_id}/{team.id}/_apis/work/teamsettings/iterations/{it.id}"
        return {"id": it.id, "name": it.name, "path": f"{self.project}\\{it.name}",
                "attributes": {**({"startDate": _iso(it.start), "finishDate": _iso(it.finish)} if it.start else {}),
                               "timeFrame": frame}, "url": url}

    def _team_iterations(self, team: Team) -> list[Iteration]:
        ids = self.team_iterations.get(team.name.lower(), [])
        return [it for it in self.iterations if it.id in ids]

    def _h_iterations(self, request, host, project, team):
        self._check_project(project)
        t = self._team(team)
        frame = self._param(request, "$timeframe")
        if frame is not None and str(frame).lower() != "current":
            raise _bad_request("VS403011: Only 'current' is supported for $timeframe.", "ArgumentException")
        items = [self._iteration_json(t, it) for it in self._team_iterations(t)]
        if frame is not None:
            items = [i for i in items if i["attributes"]["timeFrame"] == "current"]
        return self._list(items, request)

    def _h_iteration(self, request, host, project, team, id):
        self._check_project(project)
        t = self._team(team)
        it = next((i for i in self._team_iterations(t) if i.id.lower() == id.lower()), None)
        if it is None:
            raise _not_found(f"VS403023: The iteration {id} is not assigned to team {t.name}.",
                             "IterationNotFoundException")
        return self._ok(self._iteration_json(t, it), request)

    def _h_team_settings(self, request, host, project, team):
        self._check_project(project)
        t = self._team(team)
        its = self._team_iterations(t)
        current = next((self._iteration_json(t, i) for i in its
                        if self._iteration_json(t, i)["attributes"]["timeFrame"] == "current"), None)
        backlog = {"id": _guid(self.project, "iteration-root"), "name": self.project, "path": "",
                   "url": f"{self.url}/_apis/wit/classificationNodes/iterations"}
        return self._ok({"backlogIteration": backlog, "bugsBehavior": "asRequirements",
                         "workingDays": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                         "backlogVisibilities": {"Microsoft.EpicCategory": False, "Microsoft.FeatureCategory": True,
                                                 "Microsoft.RequirementCategory": True},
                         **({"defaultIteration": current} if current else {}),
                         "defaultIterationMacro": "@currentIteration",
                         "url": f"{self.url}/{self.project_id}/{t.id}/_apis/work/teamsettings"}, request)

    def _board_url(self, team: Team) -> str:
        return f"{self.url}/{self.project_id}/{team.id}/_apis/work/boards/{team.board_id}"

    def _h_boards(self, request, host, project, team):
        self._check_project(project)
        t = self._team(team)
        return self._list([{"id": t.board_id, "name": "Backlog items", "url": self._board_url(t)}], request)

    def _board(self, team: Team, board: str) -> None:
        if board.lower() not in (team.board_id, "backlog items", "microsoft.requirementcategory"):
            raise _not_found(f"VS403020: The board '{board}' does not exist for team {team.name}.",
                             "BoardDoesNotExistException")

    def _columns_json(self) -> list[dict]:
        return [{"id": c.id, "name": c.name, "itemLimit": c.item_limit, "stateMappings": dict(c.state_mappings),
                 "columnType": c.column_type, "isSplit": False, "description": ""} for c in self.board_columns]

    def _h_board(self, request, host, project, team, board):
        self._check_project(project)
        t = self._team(team)
        self._board(t, board)
        field_url = f"{self.url}/_apis/wit/fields/"
        return self._ok({"id": t.board_id, "name": "Backlog items", "url": self._board_url(t), "revision": 1,
                         "columns": self._columns_json(),
                         "rows": [{"id": "00000000-0000-0000-0000-000000000000", "name": None}],
                         "isValid": True, "canEdit": True,
                         "allowedMappings": {
                             kind: {tn: [s[0] for s in self.types[tn.lower()].states if s[0] != "Removed"]
                                    for tn in ("Product Backlog Item", "Bug")}
                             for kind in ("Incoming", "InProgress", "Outgoing")},
                         "fields": {"columnField": {"referenceName": t.column_field, "url": field_url + t.column_field},
                                    "rowField": {"referenceName": t.lane_field, "url": field_url + t.lane_field},
                                    "doneField": {"referenceName": t.done_field, "url": field_url + t.done_field}},
                         "_links": {"self": {"href": self._board_url(t)}}}, request)

    def _h_board_columns(self, request, host, project, team, board):
        self._check_project(project)
        t = self._team(team)
        self._board(t, board)
        return self._list(self._columns_json(), request)

    # ------------------------------------------------------------------ release

    def _definition(self, id) -> ReleaseDefinition:
        d = self.release_definitions.get(int(id))
        if d is None:
            raise _not_found(f"VS402853: The release pipeline with id {id} does not exist.",
                             "ReleaseDefinitionNotFoundException")
        return d

    def _release(self, id) -> Release:
        r = self._releases.get(int(id))
        if r is None:
            raise _not_found(f"VS402852: A release with id {id} does not exist.", "ReleaseNotFoundException")
        return r

    def _h_definitions(self, request, host, project):
        self._check_project(project)
        expand = self._expand(request)
        defs = list(self.release_definitions.values())
        text = self._param(request, "searchText")
        if text:
            exact = self._flag(request, "isExactNameMatch")
            defs = [d for d in defs if (d.name.lower() == text.lower() if exact else text.lower() in d.name.lower())]
        return self._list([self.definition_json(d, environments="environments" in expand) for d in defs], request)

    def _h_definition(self, request, host, project, id):
        self._check_project(project)
        return self._ok(self.definition_json(self._definition(id)), request)

    def _h_releases(self, request, host, project):
        self._check_project(project)
        releases = list(self._releases.values())
        definition_id = self._param(request, "definitionId")
        if definition_id is not None:
            releases = [r for r in releases if r.definition.id == int(definition_id)]
        status = self._param(request, "statusFilter")
        if status and status != "undefined":
            releases = [r for r in releases if r.status.lower() == str(status).lower()]
        env_flags = self._param(request, "environmentStatusFilter")
        if env_flags:
            flags = int(env_flags)
            releases = [r for r in releases if any(ENV_STATUS_FLAGS[e.status] & flags for e in r.environments)]
        def_env = self._param(request, "definitionEnvironmentId")
        if def_env is not None:
            releases = [r for r in releases if any(e.definition_env.id == int(def_env) for e in r.environments)]
        ids = self._param(request, "releaseIdFilter")
        if ids:
            wanted = {int(x) for x in str(ids).split(",") if x.strip()}
            releases = [r for r in releases if r.id in wanted]
        text = self._param(request, "searchText")
        if text:
            releases = [r for r in releases if text.lower() in r.name.lower()]
        releases.sort(key=lambda r: r.id, reverse=str(self._param(request, "queryOrder", "descending")) != "ascending")
        releases = releases[:int(self._param(request, "$top", 50))]
        expand = self._expand(request)
        return self._list([self.release_json(r, environments="environments" in expand,
                                             artifacts="artifacts" in expand) for r in releases], request)

    def _h_release(self, request, host, project, id):
        self._check_project(project)
        return self._ok(self.release_json(self._release(id)), request)

    def _h_release_create(self, request, host, project):
        self._check_project(project)
        body = request.json if isinstance(request.json, dict) else {}
        if body.get("definitionId") is None:
            raise _bad_request("VS402881: definitionId is required to create a release.", "InvalidRequestException")
        release = self.create_release(int(body["definitionId"]), body.get("description") or "",
                                      body.get("artifacts"), self._actor(request))
        return self._ok(self.release_json(release), request)

    def _release_env(self, id, env_id) -> ReleaseEnvironment:
        release = self._release(id)
        env = next((e for e in release.environments if e.id == int(env_id)), None)
        if env is None:
            raise _not_found(f"VS402855: Environment {env_id} does not exist in release {release.name}.",
                             "ReleaseEnvironmentNotFoundException")
        return env

    def _h_release_env(self, request, host, project, id, env_id):
        self._check_project(project)
        return self._ok(self.release_env_json(self._release_env(id, env_id)), request)

    def _h_release_env_update(self, request, host, project, id, env_id):
        self._check_project(project)
        env = self._release_env(id, env_id)
        self._update_environment(env, request.json if isinstance(request.json, dict) else {}, self._actor(request))
        return self._ok(self.release_env_json(env), request)

    def _h_approvals(self, request, host, project):
        self._check_project(project)
        status = str(self._param(request, "statusFilter") or "pending")
        items = [a for a in self.approvals.values() if status == "undefined" or a.status == status]
        ids = self._param(request, "releaseIdsFilter")
        if ids:
            wanted = {int(x) for x in str(ids).split(",") if x.strip()}
            items = [a for a in items if a.env.release.id in wanted]
        who = self._param(request, "assignedToFilter")
        if who:
            items = [a for a in items if str(who).lower() in a.approver.names() or who.lower() == a.approver.id]
        kind = self._param(request, "typeFilter")
        if kind and kind not in ("preDeploy", "all", "undefined"):
            items = []
        items.sort(key=lambda a: a.id, reverse=str(self._param(request, "queryOrder", "ascending")) == "descending")
        top = self._param(request, "top")
        if top is not None:
            items = items[:int(top)]
        return self._list([self.approval_json(a) for a in items], request)

    def _h_approval_update(self, request, host, project, id):
        self._check_project(project)
        approval = self.approvals.get(int(id))
        if approval is None:
            raise _not_found(f"VS402850: Approval {id} does not exist.", "ReleaseManagementObjectNotFoundException")
        self._update_approval(approval, request.json if isinstance(request.json, dict) else {}, self._actor(request))
        return self._ok(self.approval_json(approval), request)

    def _h_deployments(self, request, host, project):
        self._check_project(project)
        deps = list(self.deployments.values())
        definition_id = self._param(request, "definitionId")
        if definition_id is not None:
            deps = [d for d in deps if d.env.release.definition.id == int(definition_id)]
        def_env = self._param(request, "definitionEnvironmentId")
        if def_env is not None:
            deps = [d for d in deps if d.env.definition_env.id == int(def_env)]
        status = self._param(request, "deploymentStatus")
        if status and status not in ("all", "undefined"):
            deps = [d for d in deps if d.status == status]
        op = self._param(request, "operationStatus")
        if op and op not in ("all", "undefined"):
            deps = [d for d in deps if d.operation_status == op]
        if self._flag(request, "latestAttemptsOnly"):
            deps = [d for d in deps if d is d.env.deployments[-1]]
        deps.sort(key=lambda d: d.id, reverse=str(self._param(request, "queryOrder", "descending")) != "ascending")
        top = self._param(request, "$top")
        if top is not None:
            deps = deps[:int(top)]
        return self._list([self.deployment_json(d) for d in deps], request)
