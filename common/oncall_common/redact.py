"""Secrets never print: every stream the front doors write goes through ``redact``.

Two nets: the exact values the process has read as secrets (``register_secret``) and
patterns for secret-shaped text (auth headers, SAS signatures, keys in connection strings).
"""
import base64
import re
import threading

MASK = "***"
_lock = threading.Lock()
_secrets = set()
_pattern = None

# (words that must occur in the lower-cased text for the pattern to be tried, pattern): the cheap
# substring test keeps redaction of a large result from costing more than printing it
_SHAPES = [
    # Authorization: Bearer xxx / Basic xxx / Token token=xxx
    (("authorization",),
     re.compile(r"(?i)(\bauthorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic|token)?(\s*(?:token=)?)([^'\"\s,}]+)")),
    (("bearer",), re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9\-_\.=+/]{8,})")),
    # connection strings and query strings: AccountKey=, SharedAccessSignature=, sig=, password=
    (("accountkey", "sharedaccess", "password", "passwd", "pwd", "client_secret", "access_token", "refresh_token",
      "key", "sig"),
     re.compile(r"(?i)((?:accountkey|sharedaccesskey|sharedaccesssignature|password|passwd|pwd|client_secret|"
                r"access_token|refresh_token|api[_-]?key|sig)\s*[=:]\s*['\"]?)([^;&'\"\s,}]+)")),
    # credentials inside URLs: scheme://user:password@host
    (("@",), re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)([^@\s/]+)(@)")),
]


def register_secret(value):
    """Remember a secret value (and its Basic-auth and URL-encoded forms) for redaction."""
    global _pattern
    if not value or not isinstance(value, str) or len(value) < 4:
        return value
    forms = {value}
    try:
        forms.add(base64.b64encode(f":{value}".encode()).decode())
        forms.add(base64.b64encode(value.encode()).decode().rstrip("="))
    except Exception:  # noqa: BLE001 - redaction must never fail
        pass
    from urllib.parse import quote
    forms.add(quote(value, safe=""))
    with _lock:
        _secrets.update(f for f in forms if len(f) >= 4)
        _pattern = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))
    return value


SECRET_OPTION = re.compile(r"^--?[\w-]*(token|password|passwd|secret|pat|key|sas|connection-string|credential)[\w-]*$",
                           re.IGNORECASE)


def register_argv_secrets(argv):
    """Register values of secret-looking options before anything can log the command line."""
    for index, word in enumerate(argv):
        name, eq, value = word.partition("=")
        if SECRET_OPTION.match(name):
            if eq:
                register_secret(value)
            elif index + 1 < len(argv):
                register_secret(argv[index + 1])


def redact(text):
    if not text or not isinstance(text, str):
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    lower = text.lower()
    for words, shape in _SHAPES:
        if any(w in lower for w in words):
            text = shape.sub(_mask_last_group, text)
    return text


def _mask_last_group(match):
    groups = match.groups()
    # keep every group but the secret one (the last group, or the one before a closing '@')
    if groups[-1] == "@":
        return "".join(groups[:-2]) + MASK + "@"
    return "".join(g or "" for g in groups[:-1]) + MASK


class RedactingStream:
    """A text stream wrapper that redacts everything written through it."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._stream.write(redact(text))

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def install(streams=("stdout", "stderr")):
    """Wrap sys.stdout/sys.stderr (idempotent) so nothing printed can leak a secret."""
    import sys
    for name in streams:
        current = getattr(sys, name)
        if current is not None and not isinstance(current, RedactingStream):
            setattr(sys, name, RedactingStream(current))
    _wrap_logging_handlers()


def _wrap_logging_handlers():
    import logging

    class _Filter(logging.Filter):
        def filter(self, record):
            try:
                record.msg = redact(record.getMessage())
                record.args = ()
            except Exception:  # noqa: BLE001
                pass
            return True

    for logger in (logging.getLogger(), logging.getLogger("cli")):
        for handler in logger.handlers:
            if not any(type(f).__name__ == "_Filter" for f in handler.filters):
                handler.addFilter(_Filter())
