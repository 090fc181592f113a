"""oncall's core: the operation registry, the Context, errors and output shaping.

Extensions import from here; nothing here imports a front door or a vendor SDK at import time.
"""
from .context import Context, Progress
from .errors import (AuthError, CancelledError, ConfigError, ConflictError, IntegrityError, NotFoundError,
                     OncallError, OutcomeError, PartialResultError, ServiceError, ThrottledError, UnreachableError,
                     UsageError)
from .registry import REGISTRY, Arg, connection, group, operation
from .version import __version__

__all__ = ["Arg", "AuthError", "CancelledError", "ConfigError", "ConflictError", "Context", "IntegrityError",
           "NotFoundError", "OncallError", "OutcomeError", "PartialResultError", "Progress", "REGISTRY",
           "ServiceError", "ThrottledError", "UnreachableError", "UsageError", "__version__", "connection",
           "group", "operation"]
