"""Table shapes for the k8s commands: what an on-call engineer scans first."""
from oncall_common.convert import age_since as age


def restart_rows(rows):
    return [{
        "Namespace": r["namespace"],
        "Pod": r["pod"],
        "Container": r["container"] + (" (init)" if r["initContainer"] else ""),
        "Restarts": r["restartCount"],
        "LastRestart": r["lastRestart"] or "",
        "Age": age(r["lastRestart"]),
        "Reason": r["reason"] or "",
        "Exit": "" if r["exitCode"] is None else r["exitCode"],
        "Signal": "" if r["signal"] is None else r["signal"],
        "State": r["stateReason"] or r["state"] or "",
        "Node": r["node"] or "",
        "Owner": r["owner"] or "",
    } for r in rows]


def event_rows(events):
    return [{
        "Namespace": e["namespace"],
        "LastSeen": age(e["lastTimestamp"]),
        "Type": e["type"] or "",
        "Reason": e["reason"] or "",
        "Object": e["object"],
        "Count": e["count"],
        "Message": e["message"][:120],
    } for e in events]


def logs_summary_rows(summary):
    return [{"Pods": summary.get("pods"), "Containers": summary.get("containers"), "Lines": summary.get("lines")}]


def forward_rows(summary):
    return [{"Target": summary.get("target"), "Pod": summary.get("pod"), "Forwarded": " ".join(summary.get("ports", [])),
             "Switches": summary.get("switches")}]
