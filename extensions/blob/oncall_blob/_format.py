"""Table shapes for the blob commands, and the one-line summary of a download."""
import datetime as dt

from oncall_common.convert import format_age, human_bytes, parse_datetime


def _modified(ts):
    """`2024-06-01T10:02:03Z (3d ago)`: the time for the record, the age for scanning."""
    if not ts:
        return ""
    try:
        age = format_age(dt.datetime.now(dt.timezone.utc) - parse_datetime(ts))
    except ValueError:
        return ts
    return f"{ts} ({age} ago)"


def list_rows(blobs):
    rows = [{
        "Name": b["name"],
        "Size": human_bytes(b["size"]),
        "Modified": _modified(b.get("lastModified")),
        "ContentMD5": b.get("contentMd5") or "",
        "ContentType": b.get("contentType") or "",
    } for b in blobs]
    rows.append({"Name": f"(total: {len(blobs)} blobs)", "Size": human_bytes(sum(b["size"] for b in blobs)),
                 "Modified": "", "ContentMD5": "", "ContentType": ""})
    return rows


def plan_rows(plan):
    """--dry-run: every entry the zip would get, then the total."""
    rows = [{
        "Entry": e["entry"],
        "Blob": e["name"],
        "Size": human_bytes(e["size"]),
        "Modified": e.get("lastModified") or "",
    } for e in plan["entries"]]
    if plan.get("manifest"):
        rows.append({"Entry": plan["manifest"], "Blob": "(manifest: name, size, MD5 of each blob)", "Size": "",
                     "Modified": ""})
    rows.append({"Entry": f"(total: {plan['blobs']} blobs -> {plan.get('zip') or 'the zip'})",
                 "Blob": "", "Size": human_bytes(plan["bytes"]), "Modified": ""})
    return rows


def _rate(result):
    seconds = result.get("seconds") or 0
    return f"{human_bytes(result['bytes'] / seconds)}/s" if seconds > 0 else ""


def download_rows(result):
    if "entries" in result and isinstance(result["entries"], list):  # --dry-run: the plan
        return plan_rows(result)
    return [{
        "Zip": result.get("path") or "-",
        "Blobs": result["blobs"],
        "Size": human_bytes(result["bytes"]),
        "ZipSize": human_bytes(result["zipBytes"]),
        "Seconds": result["seconds"],
        "Rate": _rate(result),
        "MD5Verified": result["md5Verified"],
        "MD5Missing": result["md5Missing"],
        "Renamed": len(result.get("renamed") or []),
        "Skipped": result.get("skipped", 0),
        "Manifest": result.get("manifest") or "",
    }]


def summary_line(result):
    """For --zip -: what went into the archive, on stderr."""
    parts = [f"{result['blobs']} blobs ({human_bytes(result['bytes'])}) from '{result['container']}'",
             f"zip {human_bytes(result['zipBytes'])} to stdout in {result['seconds']} s"]
    checks = f"{result['md5Verified']} MD5-verified"
    if result["md5Missing"]:
        checks += f", {result['md5Missing']} without a stored MD5"
    if result.get("renamed"):
        checks += f", {len(result['renamed'])} renamed"
    return f"{parts[0]}: {parts[1]}; {checks}"
