"""Versions of the core and every installed extension."""
__version__ = "0.1.0"


def installed():
    from importlib.metadata import PackageNotFoundError, version
    from .registry import REGISTRY
    rows = []
    try:
        core = version("oncall-common")
    except PackageNotFoundError:
        core = __version__
    rows.append({"name": "core", "distribution": "oncall-common", "version": core, "status": "ok"})
    REGISTRY.load_extensions()
    for name, info in sorted(REGISTRY.extensions.items()):
        if name == "core":
            continue
        rows.append({"name": name, "distribution": f"oncall-{name}", "version": info["version"],
                     "status": "error: " + info["error"] if info["error"] else "ok"})
    return rows


def versions_text():
    return "\n".join(f"{r['distribution']:<20} {r['version']}" for r in installed()) + "\n"
