"""The suite's error hierarchy: each class is one kind of failure with its own exit code.

Operations raise these; front doors print ``str(error)`` on one line and exit with
``error.exit_code``. Nothing here imports a front door or an SDK.
"""
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1            # unexpected failure (a bug or an unclassified error)
    USAGE = 2            # bad arguments or bad input (argparse uses 2 as well)
    CONFIG = 3           # missing or invalid configuration
    AUTH = 4             # authentication or authorisation refused
    NOT_FOUND = 5        # the target does not exist
    CONFLICT = 6         # concurrent change, precondition failed, already exists
    SERVICE = 7          # the service answered with an error (5xx, unexpected 4xx)
    UNREACHABLE = 8      # connection refused, DNS, TLS, timeouts
    THROTTLED = 9        # 429 / rate limited after retries
    INTEGRITY = 10       # data failed verification (checksums, changed while read)
    PARTIAL = 11         # some results came back, with an error
    OUTCOME = 12         # the operation ran but its outcome is a failure (deployment failed)
    CANCELLED = 130      # Ctrl-C or a refused confirmation


class OncallError(Exception):
    """Base of every error a user should see as one line."""
    exit_code = ExitCode.ERROR

    def __init__(self, message, *, hint=None):
        super().__init__(message)
        self.hint = hint

    def __str__(self):
        text = super().__str__()
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(OncallError):
    exit_code = ExitCode.USAGE


class ConfigError(OncallError):
    exit_code = ExitCode.CONFIG


class AuthError(OncallError):
    exit_code = ExitCode.AUTH


class NotFoundError(OncallError):
    exit_code = ExitCode.NOT_FOUND


class ConflictError(OncallError):
    exit_code = ExitCode.CONFLICT


class ServiceError(OncallError):
    exit_code = ExitCode.SERVICE


class UnreachableError(OncallError):
    exit_code = ExitCode.UNREACHABLE


class ThrottledError(ServiceError):
    exit_code = ExitCode.THROTTLED


class IntegrityError(OncallError):
    exit_code = ExitCode.INTEGRITY


class PartialResultError(OncallError):
    """Some data came back with an error; ``result`` holds what arrived."""
    exit_code = ExitCode.PARTIAL

    def __init__(self, message, *, result=None, hint=None):
        super().__init__(message, hint=hint)
        self.result = result


class OutcomeError(OncallError):
    """The request was accepted but what it started ended badly (a failed deployment)."""
    exit_code = ExitCode.OUTCOME

    def __init__(self, message, *, result=None, hint=None):
        super().__init__(message, hint=hint)
        self.result = result


class CancelledError(OncallError):
    exit_code = ExitCode.CANCELLED


def from_http_status(status, message):
    """The error class a service's HTTP status maps to."""
    if status in (401, 403):
        return AuthError(message)
    if status == 404:
        return NotFoundError(message)
    if status in (409, 412):
        return ConflictError(message)
    if status == 429:
        return ThrottledError(message)
    if 400 <= status < 500:
        return UsageError(message)
    return ServiceError(message)
