"""Table shapes for the alerts commands: what an on-call engineer scans first."""
import datetime as dt

from oncall_common.convert import age_since, format_age, parse_datetime

from ._matchers import from_api


_age = age_since


def _until(ts):
    if not ts:
        return ""
    try:
        delta = parse_datetime(ts) - dt.datetime.now(dt.timezone.utc)
    except ValueError:
        return ts
    return ("in " + format_age(delta)) if delta.total_seconds() > 0 else (format_age(-delta) + " ago")


def alert_rows(alerts):
    return [{
        "Alertname": a.get("labels", {}).get("alertname", ""),
        "Severity": a.get("labels", {}).get("severity", ""),
        "State": a.get("status", {}).get("state", ""),
        "Age": _age(a.get("startsAt")),
        "Summary": (a.get("annotations", {}).get("summary") or a.get("annotations", {}).get("description") or "")[:80],
        "Fingerprint": a.get("fingerprint", ""),
    } for a in alerts]


def alert_detail(alert):
    return alert_rows([alert])


def group_rows(groups):
    return [{
        "Group": ",".join(f"{k}={v}" for k, v in sorted(g.get("labels", {}).items())) or "(all)",
        "Receiver": g.get("receiver", {}).get("name", ""),
        "Alerts": len(g.get("alerts", [])),
        "Firing": sum(1 for a in g.get("alerts", []) if a.get("status", {}).get("state") == "active"),
    } for g in groups]


def silence_rows(silences):
    if isinstance(silences, dict):
        silences = [silences]
    return [{
        "ID": s.get("id", ""),
        "Matchers": " ".join(str(from_api(m)) for m in s.get("matchers", [])),
        "State": s.get("status", {}).get("state", ""),
        "Ends": _until(s.get("endsAt")),
        "CreatedBy": s.get("createdBy", ""),
        "Comment": (s.get("comment") or "")[:60],
    } for s in silences]


def silence_add_rows(result):
    if result.get("dryRun"):
        return alert_rows(result.get("wouldSilence", []))
    return silence_rows([result])
