"""The Context every operation receives: config, credentials, clients, progress, confirmation, I/O.

Front doors build one per invocation; tests and other UIs build their own. Nothing in an
operation reads globals: what it needs from outside comes through here.
"""
import getpass
import sys

from . import redact
from .config import Config
from .errors import CancelledError, UsageError


class Progress:
    """Reports progress; the base class is silent (pipes, GUIs that don't care)."""

    def __init__(self, total=None, unit="", description=""):
        self.total, self.unit, self.description, self.done = total, unit, description, 0

    def update(self, advance=1, **fields):
        self.done += advance

    def set_total(self, total):
        self.total = total

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Context:
    def __init__(self, config=None, *, profile=None, dry_run=False, yes=False, stdin=None, stdout=None,
                 stderr=None, interactive=None, progress_cls=Progress, connection_values=None,
                 command=None, registry=None, prompt=None):
        self.config = config or Config(profile=profile)
        self.profile = self.config.profile
        self.dry_run = dry_run
        self.yes = yes
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.interactive = (self.stdin.isatty() and self.stderr.isatty()) if interactive is None else interactive
        self.progress_cls = progress_cls
        self.connection_values = connection_values or {}
        self.command = command
        self._registry = registry
        self._clients = {}
        self._prompt = prompt
        self.warnings = []
        self.output_format = "json"   # the -o in effect (set by the front door)
        self.output_explicit = False  # whether the user chose it on the command line

    @property
    def registry(self):
        if self._registry is None:
            from .registry import REGISTRY
            self._registry = REGISTRY
        return self._registry

    @property
    def user(self):
        return self.config.get("core", "user") or getpass.getuser()

    def setting(self, section, key, default=None, secret=False):
        value = self.config.get(section, key, default)
        if secret and value:
            redact.register_secret(value)
        return value

    def client(self, name):
        """The client of connection ``name``, built once from command args, then config."""
        if name not in self._clients:
            conn = self.registry.connections[name]
            given = self.connection_values.get(name, {})
            values = {}
            for p in conn.params:
                value = given.get(p.name)
                if p.type is bool and not p.is_list and value == p.default:
                    value = None  # a flag not given arrives as its default: let config decide
                if value is None:
                    raw = self.config.get(name, p.name)
                    if raw is not None:
                        value = _coerce(raw, p)
                if value is not None and p.arg.secret:
                    redact.register_secret(str(value))
                if value is None and p.type is bool:
                    value = p.default
                if value is not None:
                    values[p.name] = value
            self._clients[name] = conn.factory(self, **values)
        return self._clients[name]

    def progress(self, total=None, unit="", description=""):
        return self.progress_cls(total=total, unit=unit, description=description)

    def confirm(self, message):
        """Ask before a destructive change; ``--yes`` answers for the user."""
        if self.yes or self.dry_run:
            return
        if not self.interactive:
            raise UsageError(f"not confirmed (no terminal to ask): {message}", hint="pass --yes to confirm")
        ask = self._prompt or _ask
        if not ask(f"{message} [y/N] ", self.stdin, self.stderr):
            raise CancelledError("cancelled: nothing was changed")

    def warn(self, message):
        self.warnings.append(message)
        print(redact.redact(f"WARNING: {message}"), file=self.stderr)

    def info(self, message):
        print(redact.redact(message), file=self.stderr)


def _ask(question, stdin, stderr):
    stderr.write(question)
    stderr.flush()
    answer = stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def _coerce(raw, param):
    from .convert import convert
    return convert(raw, param)
