"""Turning command-line strings into the types operations declare."""
import datetime as dt
import enum
import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text):
    """'90s', '15m', '2h', '1d12h', 'PT1H30M' or '01:30:00' → timedelta."""
    s = str(text).strip()
    if not s:
        raise ValueError("empty duration")
    if s.upper().startswith("P"):
        m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", s.upper())
        if not m or s.upper() in ("P", "PT"):
            raise ValueError(f"invalid ISO-8601 duration {text!r}")
        d, h, mi, sec = (float(g) if g else 0 for g in m.groups())
        return dt.timedelta(days=d, hours=h, minutes=mi, seconds=sec)
    m = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)", s)
    if m:
        d, h, mi, sec = m.groups()
        return dt.timedelta(days=int(d or 0), hours=int(h), minutes=int(mi), seconds=float(sec))
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 15m, 2h, 1d, PT1H)")
    return dt.timedelta(seconds=total)


def parse_datetime(text):
    """ISO-8601 (a naive time is taken as UTC), 'now', or 'now-2h' / '-2h' relative times."""
    s = str(text).strip()
    now = dt.datetime.now(dt.timezone.utc)
    if s.lower() == "now":
        return now
    m = re.fullmatch(r"(?:now)?\s*([+-])\s*(.+)", s, re.IGNORECASE)
    if m and not re.match(r"\d{4}-", s):
        delta = parse_duration(m.group(2))
        return now + delta if m.group(1) == "+" else now - delta
    try:
        value = dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"invalid time {text!r} (use ISO-8601 like 2024-05-01T12:00:00Z, or -2h)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def parse_bool(text):
    s = str(text).strip().lower()
    if s in ("1", "true", "yes", "on", "y"):
        return True
    if s in ("0", "false", "no", "off", "n"):
        return False
    raise ValueError(f"invalid boolean {text!r}")


def scalar_converter(tp):
    """A str -> value function for a declared base type."""
    if tp is bool:
        return parse_bool
    if tp is int:
        return int
    if tp is float:
        return float
    if tp is dt.timedelta:
        return parse_duration
    if tp is dt.datetime:
        return parse_datetime
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        def to_enum(value):
            for member in tp:
                if str(member.value).lower() == str(value).lower() or member.name.lower() == str(value).lower():
                    return member
            raise ValueError(f"invalid choice {value!r} (choose from {', '.join(str(m.value) for m in tp)})")
        return to_enum
    return str


def convert(raw, param):
    """Convert a config/CLI string for ``param`` (a registry Param)."""
    fn = param.arg.parse or scalar_converter(param.type)
    if param.is_list and isinstance(raw, str):
        return [fn(v.strip()) for v in raw.split(",") if v.strip()]
    return fn(raw)


def format_age(delta):
    """A kubectl-style age: 45s, 12m, 3h, 2d4h."""
    seconds = int(delta.total_seconds()) if isinstance(delta, dt.timedelta) else int(delta)
    if seconds < 0:
        seconds = 0
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60}m" if hours < 10 and minutes % 60 else f"{hours}h"
    days = hours // 24
    return f"{days}d{hours % 24}h" if days < 10 and hours % 24 else f"{days}d"


def isoformat(value):
    """UTC ISO-8601 with a Z, the suite's one way to print times."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def age_since(timestamp):
    """'12m' since an ISO-8601 time; '' for none; the text itself when it is not a time."""
    if not timestamp:
        return ""
    try:
        return format_age(dt.datetime.now(dt.timezone.utc) - parse_datetime(timestamp))
    except ValueError:
        return timestamp


def human_bytes(n):
    """1536 -> '1.5 KB' (binary multiples, as ls -h and az show them)."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)
