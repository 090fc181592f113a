"""Log Analytics chores: KQL with safely bound parameters, saved queries, e-mail transaction ids.

Parameter values never touch the query text: each one becomes a ``let NAME = <literal>;`` line
(see ``kql.bind``), written as an escaped KQL literal of the parameter's type.
"""
import datetime as dt
import re
from pathlib import Path
from typing import Annotated

from oncall_common import (Arg, ConfigError, NotFoundError, PartialResultError, UsageError, group, operation)

from . import _client  # noqa: F401 - declares the "logs" connection
from . import kql
from ._format import (OUT_FORMATS, out_format, query_rows, render_file, result_data, saved_detail, saved_rows,
                      workspace_rows, write_atomic)

group("logs", "Azure Log Analytics: KQL with safely bound parameters, saved queries, e-mail transaction ids.")
group("logs saved", "Saved KQL queries: yours, your team's and the shipped ones.")

WORKSPACES_SECTION = "logs-workspaces"
FIND_TX_DEFAULT = "find-tx"
MAX_SERVER_TIMEOUT = 600
_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")
_PARAM_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*([A-Za-z]+)\s*)?=(.*)\Z", re.DOTALL)

Workspaces = Annotated[list[str], Arg(repeat=True, options=("-w",), metavar="ID|NAME",
                                      help="Workspace id, or a name mapped in config [logs-workspaces]; repeat it "
                                           "for a cross-workspace query (default: config logs.workspace, env "
                                           "ONCALL_LOGS_WORKSPACE).")]
Timespan = Annotated[str, Arg(options=("-t",), metavar="TIMESPAN",
                              help="Time range: 1h, 7d, PT1H, P7D, or START/END in ISO-8601 (default: the saved "
                                   "query's, else config logs.timespan, else none: the query's own filters).")]
ServerTimeout = Annotated[int, Arg(metavar="SECONDS", help="How long the service may run the query (max 600).")]
Params = Annotated[list[str], Arg(repeat=True, options=("-p",), metavar="NAME[:TYPE]=VALUE",
                                  help="A parameter, bound as 'let NAME = <literal>;' (never pasted into the "
                                       "query). TYPE: string (default), int, long, real, bool, datetime, timespan, "
                                       "guid, dynamic; a saved query's header gives the types.")]
DryRun = Annotated[bool, Arg(help="Show the final query and the request; send nothing.")]
Out = Annotated[str, Arg(metavar="FILE", help="Write the results to FILE (atomically), in the format its "
                                                "extension names (.csv .tsv .json .yaml .md .txt) unless -o or "
                                                "--out-format says otherwise; stdout gets a summary.")]
OutFormat = Annotated[str, Arg(choices=OUT_FORMATS, help="Format for --out instead of the file's extension.")]


# ------------------------------------------------------------------ helpers


def _fail(message, error=UsageError, hint=None):
    raise error(" ".join(str(message).split()), hint=hint)


def parse_param_args(items):
    """``NAME[:TYPE]=VALUE`` strings -> {name: (type or None, raw value)}."""
    out = {}
    for item in items or []:
        m = _PARAM_RE.match(item)
        if not m:
            _fail(f"bad --param {item!r}: use NAME=VALUE or NAME:TYPE=VALUE")
        name, kind, raw = m.group(1), m.group(2), m.group(3)
        if kind is not None and kind.lower() not in kql.KQL_TYPES:
            _fail(f"--param {name}: unknown type {kind!r}; use one of {', '.join(kql.KQL_TYPES)}")
        if name in out:
            _fail(f"--param {name} given twice")
        out[name] = (kind.lower() if kind else None, raw)
    return out


def typed_params(given, declared=None, what="the query"):
    """{name: (kql_type, value)} checked against the declared parameters (a saved query's header)."""
    typed = {}
    if declared is None:
        for name, (kind, raw) in given.items():
            typed[name] = (kind or "string", _value(name, kind or "string", raw))
        return typed
    unknown = [n for n in given if n not in declared]
    if unknown:
        _fail(f"unknown parameter(s) {', '.join(unknown)}: {what} declares "
              f"{', '.join(declared) or 'no parameters'}")
    missing = [p for p in declared.values() if p.required and p.name not in given]
    if missing:
        _fail("missing parameter(s) " + "; ".join(f"{p.name} ({p.type}{': ' + p.help if p.help else ''})"
                                                  for p in missing),
              hint="pass --param NAME=VALUE")
    for name, p in declared.items():
        if name in given:
            kind, raw = given[name]
            if kind is not None and kind != p.type:
                _fail(f"parameter '{name}' is declared {p.type} by {what}, not {kind}")
            typed[name] = (p.type, _value(name, p.type, raw))
        else:
            typed[name] = (p.type, p.default)
    return typed


def _value(name, kind, raw):
    try:
        return kql.parse_value(raw, kind, name)
    except ValueError as ex:
        _fail(str(ex))


def bind_query(text, params, declared=None):
    """The final query text: one let-statement per parameter, then the query as written."""
    if not params:
        if not text.strip():
            _fail("the query is empty")
        return text
    try:
        return kql.bind(text, params, declared)
    except (kql.ParameterError, kql.KqlSyntaxError, ValueError) as ex:
        _fail(ex)


def resolve_workspace(ctx, value, origin=""):
    name = value.strip()
    if _GUID_RE.match(name):
        return name
    mapped = ctx.setting(WORKSPACES_SECTION, name) if name else None
    if mapped and mapped.strip():
        return mapped.strip()
    known = sorted(k for section, k, _ in ctx.config.items() if section == WORKSPACES_SECTION)
    _fail(f"unknown workspace name {name!r}{origin} (known: {', '.join(known) or 'none'})", ConfigError,
          hint=f"use a workspace id, or map the name: oncall configure set {WORKSPACES_SECTION}.{name or 'NAME'}=<id>")


def workspace_ids(ctx, given, saved_default=None):
    names, origin = list(given or []), ""
    if not names and saved_default:
        names, origin = [saved_default], " (the saved query's default workspace)"
    if not names:
        configured = ctx.setting("logs", "workspace") or ""
        names, origin = [n.strip() for n in configured.split(",") if n.strip()], " (config logs.workspace)"
    if not names:
        _fail("no workspace given", ConfigError,
              hint="pass --workspace ID|NAME, or set one: oncall configure set logs.workspace=ID|NAME")
    ids = []
    for name in names:
        wid = resolve_workspace(ctx, name, origin)
        if wid not in ids:
            ids.append(wid)
    return ids


def parse_timespan(ctx, text, saved_default=None, what="--timespan"):
    if text is None:
        text, what = (saved_default, "the saved query's timespan") if saved_default else \
            (ctx.setting("logs", "timespan"), "config logs.timespan")
    if text is None or not str(text).strip():
        return None
    try:
        return kql.parse_timespan_arg(str(text))
    except ValueError as ex:
        _fail(f"invalid {what}: {ex}")


def _server_timeout(value):
    if value is not None and not 1 <= value <= MAX_SERVER_TIMEOUT:
        _fail(f"--server-timeout must be 1..{MAX_SERVER_TIMEOUT} seconds, got {value}")
    return value


def _read_query_file(ctx, spec):
    path = spec[1:]
    if path == "-":
        return ctx.stdin.read(), "stdin", "stdin"
    try:
        return Path(path).expanduser().read_text(encoding="utf-8-sig"), Path(path).stem, path
    except OSError as ex:
        _fail(f"cannot read query file {path}: {ex.strerror or ex}")
    except UnicodeDecodeError:
        _fail(f"query file {path} is not UTF-8 text")


def _source(ctx, query_text, saved):
    """(kql text, declared parameters or None, saved query or None, description of it)."""
    from . import _saved
    if saved and query_text:
        _fail("give a QUERY (or @FILE) or --saved NAME, not both")
    if saved:
        found = _saved.find(ctx, saved, warn=ctx.warn)
        return found.query, found.parameters, found, f"saved query {found.name!r}"
    if not query_text:
        _fail("no query: give the KQL text, @FILE.kql, @- (stdin) or --saved NAME")
    # knack and az read an @FILE argument themselves; a GUI or a missing file leaves the @ to us
    if query_text.startswith("@"):
        text, name, path = _read_query_file(ctx, query_text)
        what = f"query file {path}"
    else:
        text, name, path, what = query_text, "query", "(command line)", "the query"
    if _saved.has_header(text):   # a saved-query header in it declares the parameters and defaults
        parsed = _saved.parse(text, name=name, source="file", path=path, check_name=False)
        if parsed.error:
            _fail(f"{what}: {parsed.error}")
        return parsed.query, parsed.parameters, parsed, what
    return text, None, None, what


def run_query(ctx, text, typed, declared, *, workspaces, timespan, server_timeout, dry_run, out, out_fmt):
    final = bind_query(text, typed, list(declared) if declared is not None else None)
    client = ctx.client("logs")
    primary, additional = workspaces[0], workspaces[1:]
    chosen = ctx.output_format if ctx.output_explicit and ctx.output_format != "none" else None
    fmt = out_format(out, out_fmt or chosen) if out else None  # -o wins over the file's extension
    if dry_run or ctx.dry_run:
        return {"dryRun": True, "query": final, "workspace": primary, "additionalWorkspaces": additional,
                "request": client.request_preview(primary, final, timespan=timespan, additional=additional,
                                                  server_timeout=server_timeout)}
    outcome = client.query(primary, final, timespan=timespan, additional=additional, server_timeout=server_timeout)
    data = result_data(outcome.tables)
    if out:
        written = write_atomic(out, render_file(data, fmt))
        data = {"out": written, "format": fmt, "rows": sum(len(t["rows"]) for t in outcome.tables),
                "tables": [{"name": t["name"], "rows": len(t["rows"])} for t in outcome.tables],
                "partial": outcome.partial_error is not None}
    if outcome.partial_error:
        raise PartialResultError(f"partial result from Log Analytics: {outcome.partial_error}", result=data,
                                 hint="narrow the time range or the query" + (f"; {out} has what arrived"
                                                                              if out else ""))
    return data


def _run(ctx, query_text, saved, workspace, timespan, server_timeout, param, dry_run, out, out_fmt):
    text, declared, found, what = _source(ctx, query_text, saved)
    typed = typed_params(parse_param_args(param), declared, what)
    return run_query(ctx, text, typed, declared,
                     workspaces=workspace_ids(ctx, workspace, found.workspace if found else None),
                     timespan=parse_timespan(ctx, timespan, found.timespan if found else None),
                     server_timeout=_server_timeout(server_timeout), dry_run=dry_run, out=out, out_fmt=out_fmt)


# ------------------------------------------------------------------ commands


@operation("logs query", uses="logs", table=query_rows, examples=[
    ("Errors of the last hour, as a table",
     "oncall logs query 'AppTraces | where SeverityLevel >= 3 | take 20' -w prod -t 1h -o table"),
    ("A value bound safely as a let-statement (see it with --dry-run)",
     "oncall logs query 'AppRequests | where AppRoleName == svc and ResultCode == code' -p svc=payments "
     "-p code:string=500 -w prod --dry-run"),
    ("A query from a file, over two workspaces, last 7 days",
     "oncall logs query @queries/restarts.kql -w prod -w prod-eu -t P7D"),
    ("A saved query, results into a CSV file",
     "oncall logs query --saved container-logs -p namespace=shop -p pod_prefix=payments --out errors.csv"),
    ("Just one column of the result", "oncall logs query 'Heartbeat | take 5' --query '[].Computer' -o tsv"),
])
def query(ctx,
          query_text: Annotated[str, Arg(positional=True, metavar="QUERY", required=False)] = None,
          saved: Annotated[str, Arg(metavar="NAME")] = None,
          workspace: Workspaces = None, timespan: Timespan = None, server_timeout: ServerTimeout = None,
          param: Params = None, dry_run: DryRun = False, out: Out = None, out_format: OutFormat = None):
    """Run a KQL query, with parameters bound as typed let-statements.

    One result table comes back as a list of rows.
    Several come back as {"tables": [{name, columns, rows}]}.
    Datetimes are ISO-8601 UTC, numbers stay numbers, dynamic values are JSON.
    A partial result is printed, then the service's error; the exit code is 11.
    :param query_text: KQL text, @FILE.kql (a saved-query header in it declares the parameters), or @- for stdin.
    :param saved: Run this saved query instead (see 'oncall logs saved list').
    """
    return _run(ctx, query_text, saved, workspace, timespan, server_timeout, param, dry_run, out, out_format)


@operation("logs saved list", table=saved_rows, examples=[
    ("Every saved query: yours, your team's, shipped", "oncall logs saved list -o table"),
    ("Names only", "oncall logs saved list --query '[].name' -o tsv"),
])
def saved_list(ctx):
    """List saved queries with their parameters and where each comes from.

    Sources, first found wins: the config dir's queries/ folder, then the folders
    in config logs.queries_dir (a team's repository), then those extensions ship.
    """
    from . import _saved
    return [s.to_dict() for _, s in sorted(_saved.discover(ctx, warn=ctx.warn).items())]


@operation("logs saved show", table=saved_detail, examples=[
    ("The shipped e-mail query, header and text", "oncall logs saved show find-tx"),
    ("Only its KQL", "oncall logs saved show find-tx --query query -o tsv"),
])
def saved_show(ctx, name: Annotated[str, Arg(positional=True)]):
    """Show a saved query: its parameters, defaults, source file and KQL.

    :param name: The saved query's name.
    """
    from . import _saved
    found = _saved.discover(ctx, warn=ctx.warn)
    if name not in found:
        raise NotFoundError(f"no saved query named {name!r} (known: {', '.join(sorted(found)) or 'none'})")
    return found[name].to_dict(with_query=True)


@operation("logs saved run", uses="logs", table=query_rows, examples=[
    ("Error lines of the payments pods in the last hour",
     "oncall logs saved run container-logs -p namespace=shop -p pod_prefix=payments -t 1h -o table"),
    ("Preview the bound query", "oncall logs saved run container-logs -p namespace=shop -p pod_prefix=payments "
                                "--dry-run --query query -o tsv"),
])
def saved_run(ctx, name: Annotated[str, Arg(positional=True)],
              workspace: Workspaces = None, timespan: Timespan = None, server_timeout: ServerTimeout = None,
              param: Params = None, dry_run: DryRun = False, out: Out = None, out_format: OutFormat = None):
    """Run a saved query; its header checks every parameter's name and type.

    :param name: The saved query's name.
    """
    return _run(ctx, None, name, workspace, timespan, server_timeout, param, dry_run, out, out_format)


FIND_TX_FILTERS = (("sender", "--from"), ("recipient", "--to"), ("subject", "--subject"),
                   ("after", "--after"), ("before", "--before"), ("message_id", "--message-id"))


_AGO_RE = re.compile(r"(?:\d+(?:\.\d+)?[a-z]+)+")


def _when(text, option):
    """A time: ISO-8601, 'now', -2h, or a bare duration meaning that long ago (2d: two days ago)."""
    from oncall_common.convert import parse_datetime, parse_duration
    text = text.strip()
    try:
        if _AGO_RE.fullmatch(text):
            return dt.datetime.now(dt.timezone.utc) - parse_duration(text)
        return parse_datetime(text)
    except ValueError as ex:
        _fail(f"invalid {option}: {ex}")


@operation("logs find-tx", uses="logs", table=query_rows, examples=[
    ("The e-mail a user says they never got",
     "oncall logs find-tx --to alice@contoso.com --subject 'Order confirmation' --after 2d -o table"),
    ("By sender, in a time window", "oncall logs find-tx --from noreply@shop.example --after 2024-05-01T08:00Z "
                                    "--before 2024-05-01T12:00Z"),
    ("By the Message-ID header a user forwarded", "oncall logs find-tx --message-id '<abc123@mail.example>'"),
    ("Just the transaction ids", "oncall logs find-tx --to alice@contoso.com --query '[].TransactionId' -o tsv"),
])
def find_tx(ctx,
            sender: Annotated[str, Arg(options=("--from",), metavar="ADDRESS",
                                       help="Sender address (exact, case-insensitive).")] = None,
            recipient: Annotated[str, Arg(options=("--to",), metavar="ADDRESS",
                                          help="Recipient address (exact, case-insensitive).")] = None,
            subject: Annotated[str, Arg(metavar="TEXT", help="Text the subject contains (case-insensitive).")] = None,
            after: Annotated[str, Arg(metavar="TIME",
                                      help="Sent at or after: ISO-8601, or how long ago (2d, 90m).")] = None,
            before: Annotated[str, Arg(metavar="TIME", help="Sent before: ISO-8601, or how long ago (1h).")] = None,
            message_id: Annotated[str, Arg(metavar="ID", help="The Internet Message-ID header.")] = None,
            workspace: Workspaces = None, timespan: Timespan = None, server_timeout: ServerTimeout = None,
            param: Params = None, dry_run: DryRun = False, out: Out = None, out_format: OutFormat = None):
    """Find the transaction ids of e-mails from what support knows: sender, recipient, subject, time.

    Runs the saved query find-tx (or the one config logs.find_tx_query names).
    The shipped one reads the EmailEvents table and returns TransactionId
    (NetworkMessageId), Time, Sender, Recipient, Subject, MessageId, DeliveryAction.
    A team points it at its own table with its own find-tx.kql: see docs/logs.md.
    """
    from . import _saved
    name = ctx.setting("logs", "find_tx_query") or FIND_TX_DEFAULT
    found = _saved.find(ctx, name, warn=ctx.warn)
    values = {"sender": sender, "recipient": recipient, "subject": subject, "after": after, "before": before,
              "message_id": message_id}
    if not any(v not in (None, "") for v in values.values()):
        _fail("say what you know: at least one of --from, --to, --subject, --after, --before, --message-id")
    start = _when(after, "--after") if after else None
    end = _when(before, "--before") if before else None
    if start and end and end <= start:
        _fail("--before must be later than --after")
    given = parse_param_args(param)
    for key, option in FIND_TX_FILTERS:
        value = values[key]
        if value in (None, ""):
            continue
        if key not in found.parameters:
            _fail(f"saved query {found.name!r} ({found.path}) has no parameter {key!r} for {option}")
        if key in given:
            _fail(f"give {option} or --param {key}, not both")
        moment = {"after": start, "before": end}.get(key)
        given[key] = (None, _isoformat(moment) if moment else value)
    typed = typed_params(given, found.parameters, f"saved query {found.name!r}")
    span = parse_timespan(ctx, timespan, found.timespan) if timespan or not (start or end) else \
        _window(ctx, start, end, found.timespan)
    return run_query(ctx, found.query, typed, found.parameters,
                     workspaces=workspace_ids(ctx, workspace, found.workspace), timespan=span,
                     server_timeout=_server_timeout(server_timeout), dry_run=dry_run, out=out, out_fmt=out_format)


def _isoformat(moment):
    from oncall_common.convert import isoformat
    return isoformat(moment)


def _window(ctx, start, end, default):
    """The service time range for --after/--before: exactly that window (the query filters it too)."""
    now = dt.datetime.now(dt.timezone.utc)
    if start is None:
        length = parse_timespan(ctx, None, default)
        length = length if isinstance(length, dt.timedelta) else dt.timedelta(days=7)
        start = end - length
    end = end or max(now, start) + dt.timedelta(minutes=1)
    return start, end


@operation("logs workspaces", table=workspace_rows, examples=[
    ("Workspace names mapped in config", "oncall logs workspaces -o table"),
])
def workspaces(ctx):
    """List the workspace names mapped in config [logs-workspaces] (name = workspace id).

    Map one with: oncall configure set logs-workspaces.prod=<workspace id>
    """
    default = {n.strip() for n in (ctx.setting("logs", "workspace") or "").split(",") if n.strip()}
    return [{"name": key, "workspaceId": value, "default": key in default or value in default}
            for section, key, value in ctx.config.items() if section == WORKSPACES_SECTION]
