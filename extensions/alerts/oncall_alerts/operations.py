"""Alertmanager chores: list and inspect alerts, create, list and expire silences."""
import datetime as dt
import getpass
from typing import Annotated

from oncall_common import Arg, ConflictError, NotFoundError, UsageError, group, operation
from oncall_common.convert import isoformat, parse_datetime, parse_duration

from . import _client  # noqa: F401 - declares the "alerts" connection
from ._format import alert_detail, alert_rows, group_rows, silence_add_rows, silence_rows
from ._matchers import Matcher, parse_matchers

group("alerts", "Prometheus Alertmanager: alerts and silences.")
group("alerts silence", "Create, list and expire silences.")

Matchers = Annotated[list[str], Arg(positional=True, metavar="MATCHER",
                                    help='Matchers in amtool syntax: name=value, name!=value, name=~regex, '
                                         'name!~regex; a bare first word means alertname.')]


def _states(active, silenced, inhibited, unprocessed, all_states):
    if all_states:
        return dict(active=True, silenced=True, inhibited=True, unprocessed=True)
    if not (active or silenced or inhibited or unprocessed):
        active = True  # as amtool: with no state chosen, show active alerts
    return dict(active=active, silenced=silenced, inhibited=inhibited, unprocessed=unprocessed)


@operation("alerts list", uses="alerts", table=alert_rows, examples=[
    ("Active alerts as a table", "oncall alerts list -o table"),
    ("Critical alerts of one service", "oncall alerts list severity=critical service=~'api|web'"),
    ("Alerts named HighLatency, silenced ones too", "oncall alerts list HighLatency --active --silenced"),
    ("Only the fingerprints", "oncall alerts list --query '[].fingerprint' -o tsv"),
])
def list_alerts(ctx, matchers: Matchers = None,
                active: Annotated[bool, Arg(help="Show active alerts (the default when no state is chosen).")] = False,
                silenced: Annotated[bool, Arg(help="Show silenced alerts.")] = False,
                inhibited: Annotated[bool, Arg(help="Show inhibited alerts.")] = False,
                unprocessed: Annotated[bool, Arg(help="Show unprocessed alerts.")] = False,
                all: Annotated[bool, Arg(help="Show alerts in every state.")] = False,  # noqa: A002
                receiver: Annotated[str, Arg(help="Only alerts routed to receivers matching this regex.")] = None):
    """List alerts, filtered as amtool filters them.

    Each alert keeps the fields the Alertmanager API gives: fingerprint, labels, annotations,
    startsAt, endsAt, status (state, silencedBy, inhibitedBy), receivers and generatorURL.
    """
    parsed = parse_matchers(matchers)
    alerts = ctx.client("alerts").alerts(filters=[str(m) for m in parsed], receiver=receiver,
                                         **_states(active, silenced, inhibited, unprocessed, all))
    return sorted(alerts, key=lambda a: (a.get("startsAt") or "", a.get("fingerprint")), reverse=True)


@operation("alerts groups", uses="alerts", table=group_rows, examples=[
    ("Alert groups as routed", "oncall alerts groups -o table"),
    ("Groups routed to the pager receiver", "oncall alerts groups --receiver pager"),
])
def list_groups(ctx, matchers: Matchers = None,
                receiver: Annotated[str, Arg(help="Only groups of receivers matching this regex.")] = None):
    """List alert groups as Alertmanager routes them (labels, receiver, alerts)."""
    parsed = parse_matchers(matchers)
    return ctx.client("alerts").groups(filters=[str(m) for m in parsed], receiver=receiver)


def _find_alert(client, fingerprint):
    alerts = client.alerts(active=True, silenced=True, inhibited=True, unprocessed=True)
    hits = [a for a in alerts if a.get("fingerprint", "").startswith(fingerprint)]
    if not hits:
        raise NotFoundError(f"no alert with fingerprint {fingerprint!r}")
    exact = [a for a in hits if a["fingerprint"] == fingerprint]
    if len(hits) > 1 and not exact:
        raise UsageError(f"fingerprint prefix {fingerprint!r} is ambiguous: "
                         + ", ".join(a["fingerprint"] for a in hits[:5]))
    return (exact or hits)[0]


@operation("alerts show", uses="alerts", table=alert_detail, examples=[
    ("One alert by fingerprint (a unique prefix is enough)", "oncall alerts show 3f2a9c"),
])
def show_alert(ctx, fingerprint: Annotated[str, Arg(positional=True)]):
    """Show one alert by its fingerprint.

    :param fingerprint: The alert's fingerprint, or a unique prefix of it.
    """
    return _find_alert(ctx.client("alerts"), fingerprint)


def _silence_target(kwargs, result):
    matchers = " ".join(kwargs.get("matchers") or [])
    if kwargs.get("from_alert"):
        matchers = f"{matchers} alert:{kwargs['from_alert']}".strip()
    return f"{result['id']} ({matchers})" if isinstance(result, dict) and result.get("id") else matchers


@operation("alerts silence add", uses="alerts", mutating=True, target=_silence_target, table=silence_add_rows, examples=[
    ("Silence an alert for 2 hours", "oncall alerts silence add alertname=DiskFull instance=db1 --comment 'disk swap' --duration 2h"),
    ("Silence exactly one firing alert", "oncall alerts silence add --from-alert 3f2a9c --comment 'known, ticket 123' --yes"),
    ("Preview what a silence would cover", "oncall alerts silence add service=~'api.*' --comment maintenance --dry-run"),
    ("A maintenance window", "oncall alerts silence add cluster=prod --comment upgrade --start 2024-06-01T22:00:00Z --end 2024-06-02T02:00:00Z"),
])
def add_silence(ctx, matchers: Matchers = None,
                comment: Annotated[str, Arg(options=("-c",), required=True)] = None,
                duration: Annotated[str, Arg(options=("-d",))] = None,
                start: str = None, end: str = None,
                author: Annotated[str, Arg(options=("-a",))] = None,
                from_alert: Annotated[str, Arg(metavar="FINGERPRINT")] = None):
    """Create a silence, after showing which current alerts it would cover.

    :param comment: Why the silence exists (required; say what and where it is tracked).
    :param duration: How long it lasts from --start (e.g. 30m, 2h, 1d); default 1h.
    :param start: When it starts (ISO-8601 or -10m / now); default now.
    :param end: When it ends (ISO-8601 or +2h); instead of --duration.
    :param author: Who creates it; default the config's core.user or the login name.
    :param from_alert: Silence exactly this alert (by fingerprint): a matcher for each of its labels.
    """
    client = ctx.client("alerts")
    parsed = parse_matchers(matchers)
    if from_alert:
        alert = _find_alert(client, from_alert)
        parsed = parsed + [Matcher(k, v) for k, v in sorted(alert.get("labels", {}).items())]
    if not parsed:
        raise UsageError("a silence needs at least one matcher (or --from-alert)")
    if not comment or not comment.strip():
        raise UsageError("--comment is required: say why (and where it is tracked)")
    try:
        starts = parse_datetime(start) if start else dt.datetime.now(dt.timezone.utc)
        if end and duration:
            raise UsageError("give --duration or --end, not both")
        ends = parse_datetime(end) if end else starts + parse_duration(duration or "1h")
    except ValueError as ex:
        raise UsageError(str(ex)) from None
    if ends <= starts:
        raise UsageError(f"the silence would end ({isoformat(ends)}) before it starts ({isoformat(starts)})")
    if ends <= dt.datetime.now(dt.timezone.utc):
        raise UsageError(f"the silence would already be over ({isoformat(ends)})")
    body = {"matchers": [m.to_api() for m in parsed], "startsAt": isoformat(starts), "endsAt": isoformat(ends),
            "createdBy": author or ctx.setting("core", "user") or getpass.getuser(), "comment": comment}
    current = client.alerts(active=True, silenced=True, inhibited=True, unprocessed=True)
    covered = [a for a in current if all(m.matches(a.get("labels", {})) for m in parsed)]
    if ctx.dry_run:
        return {"dryRun": True, "request": {"method": "POST", "url": client.http.url("/api/v2/silences"), "body": body},
                "wouldSilence": covered}
    if not ctx.yes:
        names = ", ".join(sorted({a["labels"].get("alertname", "?") for a in covered})) or "none right now"
        ctx.info(f"The silence {' '.join(map(str, parsed))} covers {len(covered)} current alert(s): {names}")
        ctx.confirm(f"Create it until {isoformat(ends)}?")
    created = client.create_silence(body)
    silence = client.silence(created["silenceID"])
    silence["coveredAlerts"] = [a["fingerprint"] for a in covered]
    return silence


@operation("alerts silence list", uses="alerts", table=silence_rows, examples=[
    ("Active and pending silences", "oncall alerts silence list -o table"),
    ("Silences I created about the api", "oncall alerts silence list service=api --created-by $USER"),
    ("Expired silences mentioning a ticket", "oncall alerts silence list --expired --comment INC-42"),
])
def list_silences(ctx, matchers: Matchers = None,
                  created_by: str = None,
                  comment: str = None,
                  expired: Annotated[bool, Arg(help="Show expired silences (only those).")] = False,
                  active: Annotated[bool, Arg(help="Show only active silences (not pending).")] = False):
    """List silences: active and pending by default, newest first.

    :param matchers: Only silences with these matchers (as Alertmanager filters).
    :param created_by: Only silences created by this author.
    :param comment: Only silences whose comment contains this text (case-insensitive).
    """
    if expired and active:
        raise UsageError("--expired and --active exclude each other")
    parsed = parse_matchers(matchers, bare_alertname=False)
    silences = ctx.client("alerts").silences(filters=[str(m) for m in parsed])
    out = []
    for s in silences:
        state = s.get("status", {}).get("state")
        if expired and state != "expired":
            continue
        if not expired and state == "expired":
            continue
        if active and state != "active":
            continue
        if created_by and s.get("createdBy") != created_by:
            continue
        if comment and comment.lower() not in (s.get("comment") or "").lower():
            continue
        out.append(s)
    return sorted(out, key=lambda s: s.get("updatedAt") or s.get("startsAt") or "", reverse=True)


def _silence(client, silence_id):
    try:
        return client.silence(silence_id)
    except UsageError:  # Alertmanager answers 400/422 to a malformed id
        raise NotFoundError(f"no silence with id {silence_id!r}") from None


@operation("alerts silence show", uses="alerts", table=silence_rows, examples=[
    ("One silence", "oncall alerts silence show 6c6c8a4e-6f1c-4c41-9b8e-2f9e0c1d2a3b"),
])
def show_silence(ctx, silence_id: Annotated[str, Arg(positional=True, metavar="ID")]):
    """Show one silence.

    :param silence_id: The silence id.
    """
    return _silence(ctx.client("alerts"), silence_id)


@operation("alerts silence expire", uses="alerts", mutating=True, target="silence_ids", table=silence_rows, examples=[
    ("Expire a silence", "oncall alerts silence expire 6c6c8a4e-6f1c-4c41-9b8e-2f9e0c1d2a3b"),
    ("Expire every silence I made for a ticket",
     "oncall alerts silence expire $(oncall alerts silence list --comment INC-42 --query '[].id' -o tsv)"),
])
def expire_silences(ctx, silence_ids: Annotated[list[str], Arg(positional=True, metavar="ID")]):
    """Expire one or more silences now.

    :param silence_ids: The ids of the silences to expire.
    """
    client = ctx.client("alerts")
    silences = [_silence(client, sid) for sid in silence_ids]  # all must exist before any is touched
    for s in silences:
        if s.get("status", {}).get("state") == "expired":
            raise ConflictError(f"silence {s['id']} is already expired")
    if ctx.dry_run:
        return {"dryRun": True, "requests": [{"method": "DELETE", "url": client.http.url(f"/api/v2/silence/{s['id']}")}
                                             for s in silences]}
    out = []
    for s in silences:
        client.expire_silence(s["id"])
        out.append(client.silence(s["id"]))
    return out
