"""Help text served from a cache so ``oncall ... --help`` costs no knack or extension import.

Help depends only on the installed extensions (and the config's default output format), so the
text knack printed last time is reused while every file it came from is unchanged: the
entry-point metadata folders on sys.path, the config file, and each module that declared
commands. The same idea as az's command index.
"""
import hashlib
import json
import os
import sys

from ..config import config_dir

HELP_FLAGS = ("-h", "--help")


def is_help_request(argv):
    if not argv:
        return True
    *words, last = argv
    return last in HELP_FLAGS and all(w and not w.startswith("-") for w in words)


def _cache_file(argv, cli_name):
    key = hashlib.sha1(json.dumps([cli_name, argv, sys.executable]).encode()).hexdigest()[:16]
    return config_dir() / "cache" / f"help-{key}.json"


def _stamp(path):
    try:
        st = os.stat(path)
        return [st.st_mtime_ns, st.st_size]
    except OSError:
        return None


def _fingerprint_paths():
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    paths.append(str(config_dir() / "config"))
    return paths


def serve_cached_help(argv, cli_name):
    """Print cached help and return its exit code, or None when there is no fresh cache."""
    if os.environ.get("ONCALL_NO_HELP_CACHE") or not is_help_request(argv):
        return None
    try:
        with open(_cache_file(argv, cli_name), encoding="utf-8") as fh:
            entry = json.load(fh)
    except (OSError, ValueError):
        return None
    for path, stamp in entry["files"].items():
        if _stamp(path) != stamp:
            return None
    if entry["paths"] != _fingerprint_paths():
        return None
    sys.stdout.write(entry["text"])
    sys.stdout.flush()
    return entry["code"]


def store_help(argv, cli_name, text, code):
    if os.environ.get("ONCALL_NO_HELP_CACHE") or not is_help_request(argv) or code != 0 or not text:
        return
    files = {p: _stamp(p) for p in _fingerprint_paths()}
    from ..registry import REGISTRY
    packages = {"oncall_common"} | {info["module"].split(".")[0].split(":")[0] for info in REGISTRY.extensions.values()}
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in packages and getattr(module, "__file__", None):
            files[module.__file__] = _stamp(module.__file__)
    target = _cache_file(argv, cli_name)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"files": files, "paths": _fingerprint_paths(), "text": text, "code": code}, fh)
        os.replace(tmp, target)
    except OSError:
        pass


class Tee:
    """Copies what is written to a stream so the help text can be cached."""

    def __init__(self, stream):
        self.stream, self.parts = stream, []

    def write(self, text):
        self.parts.append(text)
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)
