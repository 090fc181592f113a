"""Safe parameter binding for KQL (Kusto Query Language).

The Log Analytics query API has no native query parameters, so values reach a
query as ``let NAME = <literal>;`` statements prepended to it. This module
writes those literals so that no value can end its literal early, and it holds
the small KQL lexer and literal reader the tests use to prove that.

The lexer follows the rules of Microsoft's own KQL lexer (``TokenParser`` in
microsoft/Kusto-Query-Language): a line break is CR, LF, U+2028 or U+2029; a
``//`` comment runs to the next line break; ``"..."`` and ``'...'`` strings end
at their quote or at a line break and take backslash escapes; ``@"..."``
verbatim strings double the quote; a ``h``/``H`` prefix hides a string from
service logs; ```` ```...``` ```` strings span lines; ``datetime(...)``-style
"goo" literals run to the first ``)``.

Literal forms written (and the reason each cannot be broken out of):

- string: ``"..."`` (``h"..."`` when obfuscated). Inside, ``\\`` and ``"`` are
  escaped, LF/CR/TAB become ``\\n``/``\\r``/``\\t``, and every other character
  Python deems non-printable (controls, U+2028/U+2029, format characters such
  as bidi overrides) becomes ``\\uXXXX`` or ``\\UXXXXXXXX``. So the body has no
  ``"``, no line break, and every backslash starts a valid escape: KQL's string
  scanner can only stop at the closing quote we wrote. Non-ASCII printable text
  is kept as is. Lone surrogates are refused (they are not Unicode text).
- int / long: ``int(N)`` / ``long(N)``, range-checked; real: ``real(repr)``,
  ``real(nan)``, ``real(+inf)``, ``real(-inf)``; bool: ``true`` / ``false``;
  datetime: ``datetime(YYYY-MM-DDTHH:MM:SS.fffffffZ)`` in UTC; timespan:
  ``timespan(D.HH:MM:SS[.fffffff])``; guid: ``guid(8-4-4-4-12)``. Their contents
  are generated from digits, ``-:.+TZ`` and fixed words only, so never a ``)``.
- dynamic: ``dynamic(<json>)`` where the JSON is written with ``ensure_ascii``:
  every string is a double-quoted KQL string whose escapes (``\\" \\\\ \\n \\r
  \\t \\b \\f \\uXXXX``) KQL reads the same way JSON does, and outside strings
  there are only ``{}[]:,``, numbers, ``true``/``false``/``null``.
- any non-string type with ``None``: ``TYPE(null)``.

Nothing here imports a third-party package.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Mapping

__all__ = [
    "KQL_TYPES",
    "KqlSyntaxError",
    "ParameterError",
    "Token",
    "bind",
    "is_identifier",
    "literal",
    "parse_timespan",
    "parse_timespan_arg",
    "parse_value",
    "read_literal",
    "referenced_names",
    "statements",
    "tokens",
]

KQL_TYPES = ("string", "int", "long", "real", "bool", "datetime", "timespan", "guid", "dynamic")

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
# .NET TimeSpan.MaxValue is 10675199.02:48:05.4775807; stay on whole days below it.
TIMESPAN_MAX = timedelta(days=10675199)
_DYNAMIC_MAX_DEPTH = 64


class KqlSyntaxError(ValueError):
    """The KQL text cannot be tokenized (an unterminated string or literal)."""


class ParameterError(ValueError):
    """A parameter does not fit the query: unknown, unused, missing or badly named."""


# --------------------------------------------------------------------------- lexer

_LINE_BREAKS = frozenset("\r\n\u2028\u2029")
# TextFacts.IsWhitespace, plus the two Unicode line breaks (KQL calls them bad
# tokens; skipping them changes no statement boundary).
_WHITESPACE = frozenset(
    "\t \r\n\x0c\xa0\u1680\u180e\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u200b\u202f\u205f\u3000\ufeff\u2028\u2029"
)
_GOO_WORDS = frozenset(
    {"long", "int", "real", "double", "decimal", "bool", "datetime", "date", "time", "timespan", "guid"}
)
_TWO_CHAR_PUNCT = frozenset({"..", "==", "!=", "<=", ">=", "=>", "=~", "!~", "<>", "<|"})
_NUMBER_RE = re.compile(r"[0-9]+(?:\.(?!\.)[0-9]*)?(?:[eE][+-]?[0-9]+)?[A-Za-z0-9_]*")
_MULTILINE_QUOTE = "```"
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")


def _is_ident_start(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ch == "_" or ch == "$"


def _is_ident_char(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("0" <= ch <= "9") or ch == "_"


def _is_hex(s: str) -> bool:
    return bool(s) and all(c in "0123456789abcdefABCDEF" for c in s)


@dataclass(frozen=True)
class Token:
    """One KQL token. ``kind`` is string, literal (``datetime(...)`` etc.),
    name, number, punct or directive; ``start``/``end`` index the query text."""

    kind: str
    text: str
    start: int
    end: int


def _line_end(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] not in _LINE_BREAKS:
        i += 1
    return i


def _starts_string(text: str, i: int) -> bool:
    j = i + 1 if text[i] in "hH" else i
    if j >= len(text):
        return False
    ch = text[j]
    if ch in "'\"":
        return True
    if text.startswith(_MULTILINE_QUOTE, j):
        return True
    if ch == "@" and j + 1 < len(text) and (text[j + 1] in "'\"" or text.startswith(_MULTILINE_QUOTE, j + 1)):
        return True
    # a bare ``h`` is an identifier unless a quote follows it
    return False


def _escape_length(text: str, i: int) -> int:
    """Length of the escape sequence starting with the backslash at ``i``, or -1."""
    ch = text[i + 1] if i + 1 < len(text) else ""
    if ch and ch in "\\'\"abfnrtv":
        return 2
    if ch == "u":
        return 6 if _is_hex(text[i + 2 : i + 6]) and len(text[i + 2 : i + 6]) == 4 else -1
    if ch == "U":
        return 10 if len(text[i + 2 : i + 10]) == 8 and _is_hex(text[i + 2 : i + 10]) else -1
    if ch == "x":
        return 4 if len(text[i + 2 : i + 4]) == 2 and _is_hex(text[i + 2 : i + 4]) else -1
    if ch and "0" <= ch <= "7":
        # ScanOctalCode: up to three digits, the first of three at most 3
        c2 = text[i + 2] if i + 2 < len(text) else ""
        if c2 and "0" <= c2 <= "7":
            c3 = text[i + 3] if i + 3 < len(text) else ""
            return 4 if (c3 and "0" <= c3 <= "7" and ch <= "3") else 3
        return 2
    return -1


def _scan_string(text: str, i: int) -> int:
    """End index of the string literal starting at ``i``; raises if unterminated."""
    start = i
    if text[i] in "hH":
        i += 1
    verbatim = text[i] == "@"
    if verbatim:
        i += 1
    if text.startswith(_MULTILINE_QUOTE, i):
        close = text.find(_MULTILINE_QUOTE, i + 3)
        if close < 0:
            raise KqlSyntaxError(f"unterminated ``` string starting at offset {start}")
        return close + 3
    quote = text[i]
    i += 1
    n = len(text)
    while i < n:
        ch = text[i]
        if verbatim and ch == quote and i + 1 < n and text[i + 1] == quote:
            i += 2
        elif ch == "\\" and not verbatim:
            length = _escape_length(text, i)
            if length < 0:
                raise KqlSyntaxError(f"invalid escape sequence at offset {i} in string starting at offset {start}")
            i += length
        elif ch == quote:
            return i + 1
        elif ch in _LINE_BREAKS:
            break
        else:
            i += 1
    raise KqlSyntaxError(f"unterminated string literal starting at offset {start}")


def _scan_goo(text: str, i: int) -> int:
    """End index of a ``word(...)`` literal whose ``(`` is at ``i``."""
    j = i + 1
    n = len(text)
    while j < n and text[j] != ")" and text[j] not in _LINE_BREAKS:
        j += 1
    if j >= n or text[j] != ")":
        raise KqlSyntaxError(f"unterminated literal starting at offset {i}: missing ')'")
    return j + 1


def tokens(query: str) -> Iterator[Token]:
    """Tokenize KQL text, skipping whitespace and ``//`` comments."""
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch in _WHITESPACE:
            i += 1
            continue
        if ch == "/" and query.startswith("//", i):
            i = _line_end(query, i)
            continue
        if ch == "#":
            end = _line_end(query, i)
            yield Token("directive", query[i:end], i, end)
            i = end
            continue
        if (ch in "'\"`@" or ch in "hH") and _starts_string(query, i):
            end = _scan_string(query, i)
            yield Token("string", query[i:end], i, end)
            i = end
            continue
        if _is_ident_start(ch):
            j = i + 1
            while j < n and _is_ident_char(query[j]):
                j += 1
            if query[i:j] in _GOO_WORDS and j < n and query[j] == "(":
                end = _scan_goo(query, j)
                yield Token("literal", query[i:end], i, end)
                i = end
            else:
                yield Token("name", query[i:j], i, j)
                i = j
            continue
        if "0" <= ch <= "9":
            m = _NUMBER_RE.match(query, i)
            assert m is not None
            yield Token("number", m.group(), i, m.end())
            i = m.end()
            continue
        if query[i : i + 2] in _TWO_CHAR_PUNCT:
            yield Token("punct", query[i : i + 2], i, i + 2)
            i += 2
            continue
        yield Token("punct", ch, i, i + 1)
        i += 1


def statements(query: str) -> list[str]:
    """Split KQL text into statements at top-level ``;``.

    ``;`` inside strings, comments, literals and brackets does not split.
    Each statement is returned from its first to its last token (comments and
    whitespace around it dropped); empty statements are skipped.
    """
    out: list[str] = []
    depth = 0
    first = last = -1
    for tok in tokens(query):
        if tok.kind == "punct":
            if tok.text in _OPENERS:
                depth += 1
            elif tok.text in _CLOSERS:
                depth = max(0, depth - 1)
            elif tok.text == ";" and depth == 0:
                if first >= 0:
                    out.append(query[first:last])
                first = last = -1
                continue
        if first < 0:
            first = tok.start
        last = tok.end
    if first >= 0:
        out.append(query[first:last])
    return out


def referenced_names(query: str) -> set[str]:
    """Identifiers the query uses as names (not in strings, comments, or after ``.``)."""
    names: set[str] = set()
    previous: Token | None = None
    for tok in tokens(query):
        if tok.kind == "name" and not (previous is not None and previous.kind == "punct" and previous.text == "."):
            names.add(tok.text)
        previous = tok
    return names


def _let_declared_names(query: str) -> set[str]:
    names: set[str] = set()
    previous: Token | None = None
    for tok in tokens(query):
        if tok.kind == "name" and previous is not None and previous.kind == "name" and previous.text == "let":
            names.add(tok.text)
        previous = tok
    return names


# --------------------------------------------------------------------- identifiers

_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Words a parameter must not be called: statement and operator keywords, type
# names, literal words. Not every KQL keyword, but every one a name would clash with.
_RESERVED = frozenset(
    """
    let set alias declare pattern restrict access print range datatable
    materialize view toscalar totable and or not in has has_cs hasprefix hassuffix contains
    contains_cs startswith startswith_cs endswith endswith_cs matches regex between like
    where filter project extend summarize take limit sort order top join union
    lookup count distinct evaluate parse parse_kv mv_expand mv_apply render search find
    invoke as by on of to with kind asc desc nulls first last typeof true false null
    bool boolean int int8 int16 int32 int64 uint long real double float decimal string
    datetime date time timespan guid uniqueid dynamic database cluster table external_table
    materialized_view entity_group macro_expand partition fork facet sample sample_distinct
    serialize scan getschema consume as_of graph_match make_graph
    """.split()
)


def is_identifier(name: str) -> bool:
    """True if ``name`` may be a parameter name: ASCII KQL identifier, not reserved."""
    return bool(isinstance(name, str) and _IDENTIFIER_RE.match(name)) and name not in _RESERVED


# ----------------------------------------------------------------------- writers

_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string_literal(value: str, obfuscate: bool = False) -> str:
    parts = []
    for ch in value:
        escaped = _STRING_ESCAPES.get(ch)
        if escaped is not None:
            parts.append(escaped)
        elif ch.isprintable():
            parts.append(ch)
        else:
            cp = ord(ch)
            if 0xD800 <= cp <= 0xDFFF:
                raise ValueError(f"string contains a lone surrogate U+{cp:04X}, which is not Unicode text")
            parts.append(f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}")
    return ("h" if obfuscate else "") + '"' + "".join(parts) + '"'


def _check_text(value: str, what: str = "string") -> None:
    for ch in value:
        if "\ud800" <= ch <= "\udfff":
            raise ValueError(f"{what} contains a lone surrogate U+{ord(ch):04X}, which is not Unicode text")


def _check_dynamic(value: Any, depth: int = 0) -> None:
    if depth > _DYNAMIC_MAX_DEPTH:
        raise ValueError(f"dynamic value nests deeper than {_DYNAMIC_MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not LONG_MIN <= value <= LONG_MAX:
            raise ValueError(f"dynamic integer {value} is outside the 64-bit range")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"dynamic number {value!r} is not finite (JSON has no NaN or infinity)")
        return
    if isinstance(value, str):
        _check_text(value, "dynamic string")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_dynamic(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"dynamic object keys must be strings, got {type(key).__name__} {key!r}")
            _check_text(key, "dynamic key")
            _check_dynamic(item, depth + 1)
        return
    raise ValueError(
        f"dynamic values must be JSON data (dict, list, str, int, float, bool, None), got {type(value).__name__}"
    )


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError as exc:
        raise ValueError(f"datetime {value.isoformat()} is out of range in UTC") from exc


def _format_timespan(value: timedelta) -> str:
    if value < timedelta(0):
        raise ValueError(f"timespan must not be negative, got {value}")
    if value > TIMESPAN_MAX:
        raise ValueError(f"timespan {value} is larger than KQL allows ({TIMESPAN_MAX.days} days)")
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{value.days}.{hours:02d}:{minutes:02d}:{seconds:02d}"
    if value.microseconds:
        text += f".{value.microseconds:06d}0"
    return text


def literal(value: Any, kql_type: str, *, obfuscate: bool = False) -> str:
    """A well-formed, escaped KQL literal of ``kql_type`` for ``value``.

    ``value`` is a Python value of the matching type (str, int, float, bool,
    datetime/date, timedelta, uuid.UUID, JSON data); a ``str`` given for a
    non-string type is parsed with :func:`parse_value` first. ``None`` gives the
    typed null (``int(null)``...) for every type but string. ``obfuscate`` writes
    a string as ``h"..."`` so the service keeps it out of its logs.
    """
    if kql_type not in KQL_TYPES:
        raise ValueError(f"unknown KQL type {kql_type!r}; expected one of {', '.join(KQL_TYPES)}")
    if kql_type == "string":
        if not isinstance(value, str):
            raise ValueError(f"string literal needs a str, got {type(value).__name__}")
        return _string_literal(value, obfuscate)
    if obfuscate:
        raise ValueError("only string literals can be obfuscated")
    if value is None:
        return f"{kql_type}(null)"
    if isinstance(value, str) and kql_type != "dynamic":
        value = parse_value(value, kql_type)

    if kql_type in ("int", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{kql_type} literal needs an int, got {type(value).__name__}")
        low, high = (INT_MIN, INT_MAX) if kql_type == "int" else (LONG_MIN, LONG_MAX)
        if not low <= value <= high:
            raise ValueError(f"{value} is outside the {kql_type} range {low}..{high}")
        return f"{kql_type}({value})"
    if kql_type == "real":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"real literal needs a float, got {type(value).__name__}")
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(f"{value} is too large for a real") from None
        if math.isnan(number):
            return "real(nan)"
        if math.isinf(number):
            return "real(+inf)" if number > 0 else "real(-inf)"
        return f"real({number!r})"
    if kql_type == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"bool literal needs a bool, got {type(value).__name__}")
        return "true" if value else "false"
    if kql_type == "datetime":
        if isinstance(value, datetime):
            moment = _to_utc(value)
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
        else:
            raise ValueError(f"datetime literal needs a datetime, got {type(value).__name__}")
        return (
            f"datetime({moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}0Z)"
        )
    if kql_type == "timespan":
        if not isinstance(value, timedelta):
            raise ValueError(f"timespan literal needs a timedelta, got {type(value).__name__}")
        return f"timespan({_format_timespan(value)})"
    if kql_type == "guid":
        if not isinstance(value, uuid.UUID):
            raise ValueError(f"guid literal needs a uuid.UUID, got {type(value).__name__}")
        return f"guid({value})"
    # dynamic
    _check_dynamic(value)
    return "dynamic(" + json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":")) + ")"


# ----------------------------------------------------------------------- parsing (CLI)

_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})
_ISO_DATETIME_RE = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,7}))?)?)?"
    r"\s*(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?\Z"
)


def _describe(name: str | None, kql_type: str, text: Any) -> str:
    who = f"parameter '{name}'" if name else "value"
    return f"{who} expects {kql_type}, got {text!r}"


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime (no offset means UTC)."""
    m = _ISO_DATETIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"not an ISO 8601 date-time: {text!r} (e.g. 2024-01-31T13:45:00Z)")
    fraction = m["f"] or ""
    if len(fraction) == 7 and fraction[6] != "0":
        raise ValueError(
            f"{text!r} has 100-nanosecond precision; only microseconds are supported (drop the 7th digit)"
        )
    micro = int((fraction + "000000")[:6])
    tz = timezone.utc
    if m["tz"] and m["tz"] not in "Zz":
        sign = -1 if m["tz"][0] == "-" else 1
        digits = m["tz"][1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        if offset >= timedelta(hours=24):
            raise ValueError(f"bad UTC offset in {text!r}")
        tz = timezone(sign * offset)
    try:
        moment = datetime(
            int(m["y"]), int(m["mo"]), int(m["d"]),
            int(m["h"] or 0), int(m["mi"] or 0), int(m["s"] or 0), micro, tzinfo=tz,
        )
    except ValueError as exc:
        raise ValueError(f"not a valid date-time: {text!r} ({exc})") from None
    return _to_utc(moment)


def parse_value(text: str, kql_type: str, name: str | None = None) -> Any:
    """Parse a command-line string into the Python value for ``kql_type``.

    Raises ``ValueError`` with a message such as
    ``parameter 'n' expects int, got 'abc'``.
    """
    if kql_type not in KQL_TYPES:
        raise ValueError(f"unknown KQL type {kql_type!r}; expected one of {', '.join(KQL_TYPES)}")
    if not isinstance(text, str):
        raise ValueError(f"{_describe(name, kql_type, text)}: not text")
    stripped = text.strip()
    try:
        if kql_type == "string":
            _check_text(text)
            return text
        if kql_type in ("int", "long"):
            if not _INT_RE.match(stripped):
                raise ValueError("not an integer")
            number = int(stripped)
            low, high = (INT_MIN, INT_MAX) if kql_type == "int" else (LONG_MIN, LONG_MAX)
            if not low <= number <= high:
                raise ValueError(f"outside {low}..{high}")
            return number
        if kql_type == "real":
            if not stripped or "_" in stripped:
                raise ValueError("not a number")
            return float(stripped)
        if kql_type == "bool":
            word = stripped.lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise ValueError("use true or false")
        if kql_type == "datetime":
            return parse_datetime(stripped)
        if kql_type == "timespan":
            return parse_timespan(stripped)
        if kql_type == "guid":
            return uuid.UUID(stripped)
        # dynamic
        def _no_constants(word: str) -> Any:
            raise ValueError(f"{word} is not JSON")

        data = json.loads(stripped, parse_constant=_no_constants)
        _check_dynamic(data)
        return data
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        detail = str(exc)
        message = _describe(name, kql_type, text)
        raise ValueError(f"{message} ({detail})" if detail else message) from None


# ------------------------------------------------------------------ timespans (CLI)

_UNIT_SECONDS = {
    "ms": 0.001, "msec": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_COMPACT_PART_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)")
_ISO_DURATION_RE = re.compile(
    r"P(?:(?P<w>\d+(?:[.,]\d+)?)W)?(?:(?P<d>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:[.,]\d+)?)H)?(?:(?P<m>\d+(?:[.,]\d+)?)M)?(?:(?P<s>\d+(?:[.,]\d+)?)S)?)?\Z",
    re.IGNORECASE,
)
_CLOCK_RE = re.compile(r"(?:(?P<d>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,7}))?)?\Z")
_TIMESPAN_HELP = "use e.g. 30m, 1h, 7d, 1h30m, PT1H, P7D or 00:30:00"


def _seconds(text: str) -> float:
    return float(text.replace(",", "."))


def parse_timespan(text: str) -> timedelta:
    """A duration from ``1h``, ``7d``, ``30m``, ``1h30m``, ``PT1H``, ``P7D`` or ``[d.]hh:mm[:ss]``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty timespan; {_TIMESPAN_HELP}")
    s = text.strip()
    if s.startswith("-"):
        raise ValueError(f"timespan must not be negative: {text!r}")
    if s[:1] in "pP":
        if re.fullmatch(r"P.*\d+(?:[.,]\d+)?Y.*|P[^T]*\d+(?:[.,]\d+)?M.*", s, re.IGNORECASE):
            raise ValueError(f"{text!r}: years and months have no fixed length; use days (e.g. P30D)")
        m = _ISO_DURATION_RE.match(s)
        if not m or not any(m.groupdict().values()) or s.upper().endswith("T"):
            raise ValueError(f"not an ISO 8601 duration: {text!r}; {_TIMESPAN_HELP}")
        units = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
        total = sum(_seconds(m[k]) * factor for k, factor in units if m[k])
        return _checked_timespan(timedelta(seconds=total), text)
    m = _CLOCK_RE.match(s)
    if m:
        hours, minutes, seconds = int(m["h"]), int(m["m"]), int(m["s"] or 0)
        if hours > 23 or minutes > 59 or seconds > 59:
            raise ValueError(f"not a valid [d.]hh:mm:ss timespan: {text!r}")
        fraction = (m["f"] or "").ljust(7, "0")
        value = timedelta(
            days=int(m["d"] or 0), hours=hours, minutes=minutes, seconds=seconds,
            microseconds=int(fraction[:6]),
        )
        return _checked_timespan(value, text)
    parts = list(_COMPACT_PART_RE.finditer(s))
    if parts and "".join(p.group() for p in parts).replace(" ", "") == s.replace(" ", ""):
        total = 0.0
        for part in parts:
            unit = part[2].lower()
            if unit not in _UNIT_SECONDS:
                raise ValueError(f"unknown timespan unit {part[2]!r} in {text!r}; {_TIMESPAN_HELP}")
            total += float(part[1]) * _UNIT_SECONDS[unit]
        return _checked_timespan(timedelta(seconds=total), text)
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        raise ValueError(f"timespan {text!r} needs a unit; {_TIMESPAN_HELP}")
    raise ValueError(f"not a timespan: {text!r}; {_TIMESPAN_HELP}")


def _checked_timespan(value: timedelta, text: str) -> timedelta:
    if value > TIMESPAN_MAX:
        raise ValueError(f"timespan {text!r} is too large (at most {TIMESPAN_MAX.days} days)")
    return value


def parse_timespan_arg(text: str) -> timedelta | tuple[datetime, datetime]:
    """The ``--timespan`` option: a duration, or an ISO interval ``START/END``,
    ``START/DURATION`` or ``DURATION/END``. Intervals come back as two aware UTC
    datetimes; the duration or interval must be longer than zero."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty timespan; {_TIMESPAN_HELP}, or START/END in ISO 8601")
    s = text.strip()
    if "/" not in s:
        value = parse_timespan(s)
        if value <= timedelta(0):
            raise ValueError(f"timespan must be longer than zero: {text!r}")
        return value
    left, _, right = s.partition("/")
    left, right = left.strip(), right.strip()
    if not left or not right or "/" in right:
        raise ValueError(f"an interval is START/END, START/DURATION or DURATION/END, got {text!r}")
    left_is_duration = left[:1] in "pP"
    right_is_duration = right[:1] in "pP"
    if left_is_duration and right_is_duration:
        raise ValueError(f"an interval needs at least one date-time, got {text!r}")
    if right_is_duration:
        start = parse_datetime(left)
        end = start + parse_timespan(right)
    elif left_is_duration:
        end = parse_datetime(right)
        start = end - parse_timespan(left)
    else:
        start, end = parse_datetime(left), parse_datetime(right)
    if end <= start:
        raise ValueError(f"interval end must be after its start: {text!r}")
    return start, end


# -------------------------------------------------------------------------- bind


def bind(
    query: str,
    params: Mapping[str, tuple[str, Any]],
    declared: Iterable[str] | None = None,
    *,
    obfuscate: Iterable[str] = (),
) -> str:
    """Prepend one ``let NAME = <literal>;`` line per parameter to ``query``.

    ``params`` maps a name to ``(kql_type, value)``. With ``declared`` (the
    names a saved query template declares), a parameter outside it is
    unknown, and a declared name the query uses but ``params`` lacks is
    missing. Every given parameter must be used by the query (as an identifier
    token outside strings and comments) and must not be re-declared by a
    ``let`` in the query. Names in ``obfuscate`` are written as ``h"..."``.
    Raises :class:`ParameterError` (or ``ValueError`` for a bad value).
    """
    if not isinstance(query, str):
        raise ParameterError("query must be text")
    query_statements = statements(query)  # also raises KqlSyntaxError on broken strings
    if not query_statements:
        raise ParameterError("query is empty")
    used = referenced_names(query)
    let_names = _let_declared_names(query)
    hidden = set(obfuscate)

    for name in params:
        if not is_identifier(name):
            raise ParameterError(
                f"invalid parameter name {name!r}: use letters, digits and _ (not starting with a digit), "
                "and not a KQL keyword or type name"
            )
    if declared is not None:
        declared_list = list(declared)
        for name in declared_list:
            if not is_identifier(name):
                raise ParameterError(f"invalid declared parameter name {name!r}")
        unknown = [name for name in params if name not in declared_list]
        if unknown:
            raise ParameterError(
                f"unknown parameter(s) {', '.join(unknown)}; the query declares "
                f"{', '.join(declared_list) or 'none'}"
            )
        missing = [name for name in declared_list if name in used and name not in params]
        if missing:
            raise ParameterError(f"no value given for parameter(s) {', '.join(missing)} used by the query")
    unused = [name for name in params if name not in used]
    if unused:
        raise ParameterError(f"parameter(s) {', '.join(unused)} not used by the query")
    shadowed = [name for name in params if name in let_names]
    if shadowed:
        raise ParameterError(f"the query declares {', '.join(shadowed)} itself with let")

    lines = []
    for name, spec in params.items():
        try:
            kql_type, value = spec
        except (TypeError, ValueError):
            raise ParameterError(f"parameter '{name}' must be given as (kql_type, value)") from None
        try:
            text = literal(value, kql_type, obfuscate=name in hidden)
        except ValueError as exc:
            raise ParameterError(f"parameter '{name}': {exc}") from None
        lines.append(f"let {name} = {text};\n")
    return "".join(lines) + query


# ------------------------------------------------------------------------ reader


def _decode_escapes(body: str) -> str:
    out = []
    i, n = 0, len(body)
    simple = {"'": "'", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f",
              "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
    while i < n:
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        length = _escape_length(body, i)
        if length < 0:
            raise KqlSyntaxError(f"invalid escape at offset {i}")
        code = body[i + 1 : i + length]
        if code in simple:
            out.append(simple[code])
        elif code[0] in "uUx":
            out.append(chr(int(code[1:], 16)))
        else:
            out.append(chr(int(code, 8)))
        i += length
    # KQL strings are UTF-16: an escaped surrogate pair is one character
    return "".join(out).encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def string_value(token_text: str) -> str:
    """The value of one KQL string literal token (any of the KQL string forms)."""
    i = 1 if token_text[:1] in "hH" else 0
    verbatim = token_text[i : i + 1] == "@"
    if verbatim:
        i += 1
    if token_text.startswith(_MULTILINE_QUOTE, i):
        return token_text[i + 3 : -3]
    quote = token_text[i]
    body = token_text[i + 1 : -1]
    if verbatim:
        return body.replace(quote * 2, quote)
    return _decode_escapes(body)


_DATETIME_LITERAL_RE = re.compile(r"datetime\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})0Z\)\Z")
_TIMESPAN_LITERAL_RE = re.compile(r"timespan\((\d+)\.(\d{2}):(\d{2}):(\d{2})(?:\.(\d{6})0)?\)\Z")
_GUID_LITERAL_RE = re.compile(r"guid\(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)\Z")
_INT_LITERAL_RE = re.compile(r"(int|long)\((-?[0-9]+)\)\Z")
_REAL_LITERAL_RE = re.compile(r"real\((nan|[+-]inf|-?[0-9]+(?:\.[0-9]+)?(?:e[+-][0-9]+)?)\)\Z")
_NULL_LITERAL_RE = re.compile(r"(int|long|real|bool|datetime|timespan|guid|dynamic)\(null\)\Z")


def read_literal(text: str) -> tuple[str, Any]:
    """Read back one literal in exactly the forms :func:`literal` writes.

    Returns ``(kql_type, value)``. It tokenizes with the KQL lexer model, so a
    literal that would end early (or run on) in KQL is rejected, not misread.
    """
    toks = list(tokens(text))
    if not toks:
        raise ValueError("no literal")
    first = toks[0]
    if first.kind == "string" and len(toks) == 1 and first.start == 0 and first.end == len(text):
        if not re.match(r'[hH]?"', first.text):
            raise ValueError(f"not a literal this module writes: {text!r}")
        return "string", string_value(first.text)
    if text in ("true", "false"):
        return "bool", text == "true"
    m = _NULL_LITERAL_RE.match(text)
    if m:
        return m[1], None
    if first.kind == "name" and first.text == "dynamic" and first.start == 0:
        value, end = _read_json(text, len("dynamic"), top=True)
        if end != len(text):
            raise ValueError(f"text after the dynamic literal: {text[end:]!r}")
        return "dynamic", value
    if len(toks) != 1 or first.kind != "literal" or first.start != 0 or first.end != len(text):
        raise ValueError(f"not a single KQL literal: {text!r}")
    m = _INT_LITERAL_RE.match(text)
    if m:
        return m[1], int(m[2])
    m = _REAL_LITERAL_RE.match(text)
    if m:
        specials = {"nan": math.nan, "+inf": math.inf, "-inf": -math.inf}
        return "real", specials[m[1]] if m[1] in specials else float(m[1])
    m = _DATETIME_LITERAL_RE.match(text)
    if m:
        y, mo, d, h, mi, s, us = (int(g) for g in m.groups())
        return "datetime", datetime(y, mo, d, h, mi, s, us, tzinfo=timezone.utc)
    m = _TIMESPAN_LITERAL_RE.match(text)
    if m:
        days, h, mi, s = (int(g) for g in m.groups()[:4])
        if h > 23 or mi > 59 or s > 59:
            raise ValueError(f"bad timespan literal {text!r}")
        return "timespan", timedelta(days=days, hours=h, minutes=mi, seconds=s, microseconds=int(m[5] or 0))
    m = _GUID_LITERAL_RE.match(text)
    if m:
        return "guid", uuid.UUID(m[1])
    raise ValueError(f"not a literal this module writes: {text!r}")


_JSON_NUMBER_RE = re.compile(r"-?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")


def _read_json(text: str, i: int, top: bool = False) -> tuple[Any, int]:
    """Read a dynamic-literal value with KQL token rules; ``top`` reads ``(value)``."""

    def skip(j: int) -> int:
        while j < len(text) and text[j] in _WHITESPACE:
            j += 1
        return j

    def expect(j: int, ch: str) -> int:
        j = skip(j)
        if text[j : j + 1] != ch:
            raise ValueError(f"expected {ch!r} at offset {j} in {text!r}")
        return j + 1

    if top:
        j = expect(i, "(")
        value, j = _read_json(text, j)
        j = expect(j, ")")
        return value, j
    j = skip(i)
    ch = text[j : j + 1]
    if ch == "{":
        obj: dict[str, Any] = {}
        j = skip(j + 1)
        if text[j : j + 1] == "}":
            return obj, j + 1
        while True:
            j = skip(j)
            if text[j : j + 1] != '"':
                raise ValueError(f"expected a string key at offset {j}")
            end = _scan_string(text, j)
            key = string_value(text[j:end])
            j = expect(end, ":")
            obj[key], j = _read_json(text, j)
            j = skip(j)
            if text[j : j + 1] == ",":
                j += 1
                continue
            return obj, expect(j, "}")
    if ch == "[":
        arr: list[Any] = []
        j = skip(j + 1)
        if text[j : j + 1] == "]":
            return arr, j + 1
        while True:
            item, j = _read_json(text, j)
            arr.append(item)
            j = skip(j)
            if text[j : j + 1] == ",":
                j += 1
                continue
            return arr, expect(j, "]")
    if ch == '"':
        end = _scan_string(text, j)
        return string_value(text[j:end]), end
    for word, value in (("true", True), ("false", False), ("null", None)):
        if text.startswith(word, j) and not _is_ident_char(text[j + len(word) : j + len(word) + 1] or " "):
            return value, j + len(word)
    m = _JSON_NUMBER_RE.match(text, j)
    if m and not _is_ident_char(text[m.end() : m.end() + 1] or " "):
        number = m.group()
        return (float(number) if (m[1] or m[2]) else int(number)), m.end()
    raise ValueError(f"unexpected text at offset {j} in dynamic literal {text!r}")
