"""The local audit log: one JSON line per mutation that ran (dry runs are not mutations)."""
import datetime as dt
import json
import os

from .redact import redact

FILE_NAME = "audit.jsonl"


def audit_path(config):
    return config.dir / FILE_NAME


def append(config, *, user, profile, command, target, result, error=None, details=None):
    entry = {
        "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "user": user,
        "profile": profile,
        "command": command,
        "target": target,
        "result": result,
    }
    if error:
        entry["error"] = error
    if details:
        entry["details"] = details
    line = redact(json.dumps(entry, ensure_ascii=False, default=str))
    path = audit_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_APPEND keeps concurrent writers' lines whole
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)
    return entry


def read(config):
    path = audit_path(config)
    if not path.exists():
        return []
    entries = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
    return entries
