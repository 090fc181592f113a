"""The knack front door: ``oncall`` and ``kubectl oncall``, generated from the registry."""
import logging
import os
import sys

from knack import CLI
from knack.commands import CLICommand, CLICommandsLoader
from knack.help_files import helps
from knack.log import CLILogging
from knack.output import OutputProducer

from .. import redact
from ..config import Config, config_dir
from ..context import Context
from ..errors import ExitCode, OncallError
from ..output import TABLE_FORMATS, render_csv, render_table, shape
from ..registry import REGISTRY
from . import commands as fd
from .progress import progress_class

logger = logging.getLogger("cli.oncall")


def _fmt(kind):
    def format_result(obj):
        transformer = getattr(obj.table_transformer, "shape", None) or obj.table_transformer
        data = shape(obj.result, transformer, obj.is_query_active)
        if kind == "csv":
            return render_csv(data)
        return render_table(data, kind)
    return format_result


def _format_json(obj):
    """knack's JSON (indent 2, sorted keys, UTF-8) written by orjson: 10x faster on large results."""
    try:
        import orjson
        return orjson.dumps(obj.result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    except (ImportError, TypeError):  # no orjson, or a value it refuses (ints over 64 bits)
        from knack.output import format_json
        return format_json(obj)


class OncallOutputProducer(OutputProducer):
    """knack's formats plus csv and md; table drawn by tabulate without dropping columns."""
    _FORMAT_DICT = dict(OutputProducer._FORMAT_DICT, json=_format_json, table=_fmt("table"), md=_fmt("md"),
                        csv=_fmt("csv"))

    def __init__(self, cli_ctx=None):
        super().__init__(cli_ctx)
        # knack registered its own option handler; swap it for ours with the extra choices
        from knack.events import EVENT_PARSER_GLOBAL_CREATE
        cli_ctx.unregister_event(EVENT_PARSER_GLOBAL_CREATE, OutputProducer.on_global_arguments)
        cli_ctx.register_event(EVENT_PARSER_GLOBAL_CREATE, OncallOutputProducer.on_global_arguments)

    @staticmethod
    def on_global_arguments(cli_ctx, **kwargs):
        kwargs["arg_group"].add_argument(
            "--output", "-o", dest=OutputProducer.ARG_DEST, choices=list(OncallOutputProducer._FORMAT_DICT),
            default=cli_ctx.config.get("core", "output", fallback="json"), type=str.lower,
            help="Output format: " + ", ".join(OncallOutputProducer._FORMAT_DICT) + ".")

    def get_formatter(self, format_type):
        if format_type == "jsonc" and not self.cli_ctx.enable_color:
            return _format_json
        if format_type in ("json", "table", "md", "csv"):
            return self._FORMAT_DICT[format_type]
        return super().get_formatter(format_type)


class OncallCommandsLoader(CLICommandsLoader):
    def load_command_table(self, args):
        args = list(args or [])
        wants_help = not args or any(a in ("-h", "--help") for a in args)
        words = [a for a in args if not a.startswith("-")]
        only = words[0] if words and not wants_help else None
        registry = REGISTRY.load_extensions(warn=lambda m: logger.warning(m), only=only)
        if only and not any(words[:len(n.split())] == n.split() for n in registry.operations):
            registry = REGISTRY.load_extensions(warn=lambda m: logger.warning(m))  # another extension adds to the group
        prog = self.cli_ctx.name
        for spec in registry.operations.values():
            self.command_table[spec.name] = self._command(spec, registry)
        if wants_help:  # help text is only built when it will be shown
            for name, summary in registry.groups.items():
                for key in _help_keys(name, prog):
                    helps[key] = fd.group_yaml(summary)
            for spec in registry.operations.values():
                text = fd.help_yaml(spec, prog)
                for key in _help_keys(spec.name, prog):
                    helps[key] = text
        return self.command_table

    def _command(self, spec, registry):
        return CLICommand(
            self.cli_ctx, spec.name,
            fd.build_handler(spec, registry, self._make_context),
            table_transformer=fd.table_transformer(spec),
            arguments_loader=lambda spec=spec: fd.build_arguments(spec, registry),
            description_loader=lambda spec=spec: spec.summary)

    def _make_context(self, *, spec, profile, dry_run, yes, connection_values):
        return Context(Config(directory=self.cli_ctx.config.config_dir, profile=profile), dry_run=dry_run, yes=yes,
                       progress_cls=progress_class(sys.stderr), connection_values=connection_values,
                       command=spec.name, registry=REGISTRY)


def _help_keys(name, prog):
    # knack looks help up by command name; as 'kubectl oncall' it drops only the first word
    keys = {name, f"oncall {name}"}
    if " " in prog:
        keys.add(f"{prog.split(' ', 1)[1]} {name}")
    return keys


def _plain_todict(obj, post_processor=None):
    """knack's todict, with a fast path for the plain JSON data operations return (100k-row results)."""
    kind = type(obj)
    if kind is str or kind is int or kind is float or kind is bool or obj is None:
        return obj
    if kind is dict:
        return {k: _plain_todict(v, post_processor) for k, v in obj.items()}
    if kind is list:
        return [_plain_todict(v, post_processor) for v in obj]
    return _knack_todict(obj, post_processor)


import knack.invocation as _knack_invocation  # noqa: E402

_knack_todict = _knack_invocation.todict
_knack_invocation.todict = _plain_todict


class OncallLogging(CLILogging):
    """knack's logging, reconfigured on every invocation (knack does it once per process, and not at all when
    another library already put a handler on the root logger), with secrets redacted."""

    def configure(self, args):
        from knack.log import _CustomStreamHandler, cli_logger_names
        root = logging.getLogger()
        for lg in [root] + [logging.getLogger(n) for n in cli_logger_names]:
            for handler in list(lg.handlers):
                if isinstance(handler, _CustomStreamHandler):
                    lg.removeHandler(handler)
        foreign, root.handlers = root.handlers[:], []
        try:
            super().configure(args)
        finally:
            root.handlers = root.handlers + foreign
        redact.install(streams=())


class OncallCLI(CLI):
    def __init__(self, cli_name="oncall", **kwargs):
        directory = str(config_dir())
        super().__init__(cli_name=cli_name, config_dir=directory, config_env_var_prefix="ONCALL",
                         commands_loader_cls=OncallCommandsLoader, output_cls=OncallOutputProducer,
                         logging_cls=OncallLogging, out_file=kwargs.pop("out_file", sys.stdout), **kwargs)
        self.debug = False

    def invoke(self, args, initial_invocation_data=None, out_file=None):
        self.raw_args = list(args)
        return super().invoke(args, initial_invocation_data=initial_invocation_data, out_file=out_file)

    def get_cli_version(self):
        from ..version import versions_text
        return versions_text()

    def exception_handler(self, ex):
        if isinstance(ex, BrokenPipeError):
            _silence_stdout()  # `oncall ... | head`: the reader left; exit quietly
            return 0
        if getattr(ex, "result", None) is not None and self.invocation is not None:
            # partial results / failed outcomes: show what arrived, then the error and its exit code
            try:
                name = self.invocation.data.get("command")
                fd.emit_result(self, self.invocation.commands_loader.command_table.get(name), ex.result)
            except Exception:  # noqa: BLE001 - the error line below matters more
                logger.debug("could not print the partial result", exc_info=True)
        code, message = describe_error(ex)
        logger.error(message)
        if self.debug and not isinstance(ex, OncallError):
            logger.exception(ex)
        return code


def describe_error(ex):
    """(exit code, one-line message) for any exception reaching a front door."""
    if isinstance(ex, OncallError):
        return int(ex.exit_code), str(ex).splitlines()[0] if str(ex) else type(ex).__name__
    try:
        from jmespath.exceptions import JMESPathError
        if isinstance(ex, JMESPathError):
            return int(ExitCode.USAGE), "invalid --query: " + " ".join(str(ex).split())
    except ImportError:
        pass
    from knack.util import CLIError
    if isinstance(ex, CLIError):
        return int(ExitCode.ERROR), str(ex).splitlines()[0]
    first = (str(ex).splitlines() or [""])[0]
    return int(ExitCode.ERROR), f"unexpected error: {type(ex).__name__}: {first} (run with --debug for details)"


def main(argv=None, cli_name="oncall"):
    argv = list(sys.argv[1:] if argv is None else argv)
    from .helpcache import serve_cached_help
    cached = serve_cached_help(argv, cli_name)
    if cached is not None:
        return cached
    from .helpcache import Tee, is_help_request, store_help
    tee = Tee(sys.stdout) if is_help_request(argv) else None
    if tee:
        sys.stdout = tee
    redact.register_argv_secrets(argv)
    redact.install()
    cli = OncallCLI(cli_name=cli_name)
    cli.debug = "--debug" in argv
    try:
        code = cli.invoke(argv)
        redact.install()
        if isinstance(getattr(cli.result, "error", None), KeyboardInterrupt):
            print("cancelled", file=sys.stderr)
            code = int(ExitCode.CANCELLED)
    except SystemExit as ex:
        code = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 2)
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        code = int(ExitCode.CANCELLED)
    if tee:
        store_help(argv, cli_name, "".join(tee.parts), code)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return code if isinstance(code, int) else 1


def _silence_stdout():
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def run():
    sys.exit(main())


def run_kubectl():
    sys.exit(main(cli_name="kubectl oncall"))
