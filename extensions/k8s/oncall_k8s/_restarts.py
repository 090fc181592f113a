"""Container restarts, read from pod lists: one row per container that restarted, with why it died last."""
from ._targets import owner_of


def restart_rows(pods, min_restarts=1, since=None):
    """Rows for every container of ``pods`` with restartCount >= min_restarts (restarted after ``since``)."""
    rows = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        owner = None  # computed once per pod, only when a container qualifies
        for init, statuses in ((False, status.get("containerStatuses")), (True, status.get("initContainerStatuses"))):
            for cs in statuses or ():
                count = cs.get("restartCount") or 0
                if count < min_restarts:
                    continue
                row = _row(meta, spec, status, cs, init, count)
                if since is not None and (row["lastRestart"] is None or row["lastRestart"] < since):
                    continue
                if owner is None:
                    owner = owner_of(pod) or ""
                row["owner"] = owner or None
                rows.append(row)
    rows.sort(key=lambda r: (r["namespace"] or "", r["pod"], r["container"]))
    rows.sort(key=lambda r: r["lastRestart"] or "", reverse=True)  # most recent first, unknown last
    return rows


def _row(meta, spec, status, cs, init, count):
    last = (cs.get("lastState") or {}).get("terminated") or {}
    state_name, state = next(iter((cs.get("state") or {}).items()), (None, None))
    state = state or {}
    # the previous instance's end is the restart; without it (node reboot...) the current start is
    last_restart = last.get("finishedAt") or (state.get("startedAt") if state_name == "running" else None)
    return {
        "namespace": meta.get("namespace"),
        "pod": meta.get("name"),
        "container": cs.get("name"),
        "initContainer": init,
        "restartCount": count,
        "lastRestart": last_restart,
        "reason": last.get("reason"),
        "exitCode": last.get("exitCode"),
        "signal": last.get("signal"),
        "message": _first_line(last.get("message")),
        "state": state_name,
        "stateReason": state.get("reason"),
        "ready": bool(cs.get("ready")),
        "podPhase": status.get("phase"),
        "node": spec.get("nodeName"),
        "owner": None,
    }


def _first_line(text):
    if not text:
        return None
    return text.strip().splitlines()[0][:200] if text.strip() else None
