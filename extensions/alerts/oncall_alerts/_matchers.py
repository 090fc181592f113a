"""Alertmanager matchers in amtool's syntax: name=value, name!=value, name=~re, name!~re.

A bare first word means ``alertname=word``; values may be double-quoted; ``{a="b",c=~"d"}``
is accepted as well. Matching follows Alertmanager: regexes are anchored at both ends.
"""
import re
from dataclasses import dataclass

from oncall_common import UsageError

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$', re.S)


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @property
    def op(self):
        return {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[
            (self.is_regex, self.is_equal)]

    def __str__(self):
        return f'{self.name}{self.op}"{_escape(self.value)}"'

    def to_api(self):
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}

    def matches(self, labels):
        actual = labels.get(self.name, "")
        if self.is_regex:
            hit = re.fullmatch(f"(?:{self.value})", actual, re.S) is not None
        else:
            hit = actual == self.value
        return hit if self.is_equal else not hit


def _escape(value):
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unquote(value):
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), inner)
    return value


def _split_braces(text):
    """Split '{a="x,y",b=~"z"}' at top-level commas."""
    parts, buf, quote = [], "", None
    for ch in text.strip()[1:-1]:
        if quote:
            buf += ch
            if ch == quote and not buf.endswith("\\" + quote):
                quote = None
        elif ch in "\"'":
            quote = ch
            buf += ch
        elif ch == ",":
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    if buf.strip():
        parts.append(buf)
    return parts


def parse_matchers(items, bare_alertname=True):
    """Matchers from command-line words; raises UsageError naming the bad one."""
    out = []
    words = []
    for item in items or []:
        words.extend(_split_braces(item) if item.strip().startswith("{") else [item])
    for index, word in enumerate(words):
        m = _MATCHER.match(word)
        if not m:
            if index == 0 and bare_alertname and re.fullmatch(r"[^\s=!~{}\"]+", word.strip()):
                out.append(Matcher("alertname", word.strip()))
                continue
            raise UsageError(f"malformed matcher {word!r}", hint='use name=value, name!=value, name=~regex or name!~regex')
        name, op, raw = m.groups()
        value = _unquote(raw)
        is_regex = op in ("=~", "!~")
        if is_regex:
            try:
                re.compile(value)
            except re.error as ex:
                raise UsageError(f"malformed matcher {word!r}: invalid regex: {ex}") from None
        out.append(Matcher(name, value, is_regex=is_regex, is_equal=op in ("=", "=~")))
    return out


def from_api(matcher):
    return Matcher(matcher["name"], matcher["value"], bool(matcher.get("isRegex")), matcher.get("isEqual", True))
