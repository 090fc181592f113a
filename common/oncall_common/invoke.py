"""Running one operation for any front door: arguments in, plain data out, mutations audited."""
from . import audit
from .errors import CancelledError, OncallError, UsageError


def split_arguments(spec, registry, values):
    """Separate an invocation's values into the operation's own and each connection's."""
    own = {p.name: values[p.name] for p in spec.params if p.name in values}
    connections = {}
    for name in spec.uses:
        connections[name] = {p.name: values.get(p.name) for p in registry.connections[name].params}
    return own, connections


def _target(spec, kwargs, result=None):
    if not spec.target:
        return None
    if callable(spec.target):
        try:
            return spec.target(kwargs, result)
        except Exception:  # noqa: BLE001 - the audit entry matters more than its target
            return None
    value = kwargs.get(spec.target)
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def run(spec, ctx, kwargs):
    """Call the operation; append an audit entry when a mutation really ran."""
    if not spec.mutating or ctx.dry_run:
        return spec.func(ctx, **kwargs)
    try:
        result = spec.func(ctx, **kwargs)
    except (UsageError, CancelledError):
        raise  # refused before anything was sent: not a change
    except OncallError as ex:
        audit.append(ctx.config, user=ctx.user, profile=ctx.profile, command=spec.name,
                     target=_target(spec, kwargs), result="error", error=str(ex))
        raise
    except KeyboardInterrupt:
        audit.append(ctx.config, user=ctx.user, profile=ctx.profile, command=spec.name,
                     target=_target(spec, kwargs), result="cancelled")
        raise
    else:
        if not (isinstance(result, dict) and result.get("dryRun")):
            audit.append(ctx.config, user=ctx.user, profile=ctx.profile, command=spec.name,
                         target=_target(spec, kwargs, result), result="ok")
        return result
