"""The core's own commands: configure, version, audit. Loaded through the same entry points."""
import datetime as dt
from typing import Annotated

from . import audit
from .convert import format_age, parse_datetime
from .errors import NotFoundError, UsageError
from .registry import Arg, group, operation

group("configure", "Show and change settings and profiles.")
group("configure profile", "List, create and switch configuration profiles.")
group("audit", "The local log of every change oncall made.")

SECRET_KEYS = ("token", "password", "pat", "key", "secret", "sas", "connection_string")


def _is_secret(key):
    return any(word in key.lower() for word in SECRET_KEYS)


def _split_key(item):
    key, sep, value = item.partition("=")
    section, dot, name = key.partition(".")
    if not sep or not dot or not section or not name:
        raise UsageError(f"expected SECTION.KEY=VALUE, got {item!r}")
    return section.strip(), name.strip(), value


@operation("configure show", examples=[("Show every setting of the active profile", "oncall configure show"),
                                       ("Show the prod profile", "oncall configure show --profile prod -o table")],
           table=lambda rows: [{"Setting": r["setting"], "Value": r["value"], "Source": r["source"]} for r in rows])
def configure_show(ctx):
    """Show the settings in effect for the active profile (secrets masked)."""
    rows = []
    for section, key, value in ctx.config.items():
        shown = "***" if _is_secret(key) else value
        rows.append({"setting": f"{section}.{key}", "value": shown, "source": ctx.config.source(section, key),
                     "profile": ctx.profile})
    return rows


@operation("configure set", mutating=True, target="settings",
           examples=[("Point alerts at an Alertmanager", "oncall configure set alerts.url=http://127.0.0.1:9093"),
                     ("Set a value for the prod profile only", "oncall configure set alerts.url=https://am.prod --profile prod")])
def configure_set(ctx, settings: Annotated[list[str], Arg(positional=True, metavar="SECTION.KEY=VALUE")]):
    """Set one or more values in the active profile.

    :param settings: One or more SECTION.KEY=VALUE pairs.
    """
    parsed = [_split_key(s) for s in settings]
    if ctx.dry_run:
        return {"dryRun": True, "set": [{"setting": f"{s}.{k}", "profile": ctx.profile} for s, k, _ in parsed]}
    for section, key, value in parsed:
        ctx.config.set(section, key, value, profile=ctx.profile)
    return [{"setting": f"{s}.{k}", "value": "***" if _is_secret(k) else v, "profile": ctx.profile}
            for s, k, v in parsed]


@operation("configure unset", mutating=True, target="settings",
           examples=[("Remove a value", "oncall configure unset alerts.url")])
def configure_unset(ctx, settings: Annotated[list[str], Arg(positional=True, metavar="SECTION.KEY")]):
    """Remove values from the active profile.

    :param settings: One or more SECTION.KEY names.
    """
    removed = []
    for item in settings:
        section, _, key = item.partition(".")
        if not key:
            raise UsageError(f"expected SECTION.KEY, got {item!r}")
        if not ctx.dry_run and not ctx.config.unset(section, key, profile=ctx.profile):
            raise NotFoundError(f"{item} is not set in profile {ctx.profile!r}")
        removed.append({"setting": item, "profile": ctx.profile})
    return removed


@operation("configure profile list", examples=[("List profiles", "oncall configure profile list -o table")])
def profile_list(ctx):
    """List the configuration profiles and which one is active."""
    return [{"name": name, "active": name == ctx.profile} for name in ctx.config.profiles()]


@operation("configure profile use", mutating=True, target="name",
           examples=[("Make prod the default profile", "oncall configure profile use prod")])
def profile_use(ctx, name: Annotated[str, Arg(positional=True)]):
    """Make a profile the default (config [core] profile).

    :param name: The profile name; it is created when it has no settings yet.
    """
    if not name.replace("-", "").replace("_", "").isalnum():
        raise UsageError(f"invalid profile name {name!r} (letters, digits, - and _)")
    if not ctx.dry_run:
        ctx.config.set("core", "profile", name)
    return {"profile": name, "active": True}


@operation("version", examples=[("Show versions", "oncall version -o table")],
           table=lambda rows: [{"Name": r["name"], "Distribution": r["distribution"], "Version": r["version"],
                                "Status": r["status"]} for r in rows])
def version(ctx):
    """Show the core's version and every installed extension's."""
    from .version import installed
    return installed()


@operation("audit list", examples=[("Changes made today", "oncall audit list --since 1d -o table"),
                                   ("Failed changes to work items", "oncall audit list --command 'devops workitem' --result error")],
           table=lambda rows: [{"Time": r["time"], "User": r["user"], "Profile": r["profile"], "Command": r["command"],
                                "Target": r.get("target"), "Result": r["result"]} for r in rows])
def audit_list(ctx, since: Annotated[str, Arg(help="Only entries newer than this: a duration (2h, 7d) or a time.")] = None,
               command_prefix: Annotated[str, Arg(options=("--command",), metavar="COMMAND")] = None,
               user: str = None, result: str = None, target: str = None,
               limit: Annotated[int, Arg(help="Show at most this many (newest).")] = None):
    """Show the audit log of changes made through oncall, oldest first.

    :param command_prefix: Only commands starting with this text (e.g. "alerts silence").
    :param user: Only this user's changes.
    :param result: Only this result (ok, error, cancelled).
    :param target: Only changes whose target contains this text.
    """
    entries = audit.read(ctx.config)
    if since:
        text = since if since.startswith(("-", "now")) or "T" in since or ":" in since else "-" + since
        try:
            cutoff = parse_datetime(text)
        except ValueError as ex:
            raise UsageError(str(ex)) from None
        entries = [e for e in entries if parse_datetime(e["time"]) >= cutoff]
    if command_prefix:
        entries = [e for e in entries if e["command"].startswith(command_prefix)]
    if user:
        entries = [e for e in entries if e.get("user") == user]
    if result:
        entries = [e for e in entries if e.get("result") == result]
    if target:
        entries = [e for e in entries if target in str(e.get("target") or "")]
    if limit:
        entries = entries[-limit:]
    for e in entries:
        e["age"] = format_age(dt.datetime.now(dt.timezone.utc) - parse_datetime(e["time"]))
    return entries
