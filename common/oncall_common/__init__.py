"""oncall's core: the operation registry, the Context, errors and output shaping.

Extensions import from here; nothing here imports a front door or a vendor SDK. Names are
resolved lazily (PEP 562) so the console script's cached-help path imports almost nothing.
"""
import importlib

_EXPORTS = {
    "Context": "context", "Progress": "context",
    "REGISTRY": "registry", "Arg": "registry", "connection": "registry", "group": "registry", "operation": "registry",
    "__version__": "version",
    **{name: "errors" for name in (
        "AuthError", "CancelledError", "ConfigError", "ConflictError", "IntegrityError", "NotFoundError",
        "OncallError", "OutcomeError", "PartialResultError", "ServiceError", "ThrottledError", "UnreachableError",
        "UsageError")},
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'oncall_common' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
