"""The az front door: each extension's wheel ships ``azext_oncall_<name>`` whose loader comes from here.

Commands appear as ``az oncall <group> <command>`` with the same arguments and data as the
knack CLI. az fixes its own ``-o`` choices, so csv and md are ``oncall``-only.
"""
import importlib
import sys

from ..errors import OncallError
from ..registry import REGISTRY
from . import commands as fd

PROG = "az oncall"


def loader_for(module_name):
    """An AzCommandsLoader class serving the operations declared in ``module_name``'s package."""
    from azure.cli.core import AzCommandsLoader
    from knack.help_files import helps

    package = module_name.split(".")[0]

    class OncallAzLoader(AzCommandsLoader):
        def load_command_table(self, args):
            importlib.import_module(module_name)
            helps.setdefault("oncall", "type: group\nshort-summary: 'On-call chores: alerts, Kubernetes, DevOps, logs, blobs.'\n")
            for name, summary in REGISTRY.groups.items():
                helps[f"oncall {name}"] = fd.group_yaml(summary)
            for spec in REGISTRY.operations.values():
                if spec.module.split(".")[0] != package:
                    continue
                name = f"oncall {spec.name}"
                self._cli_command(
                    name, handler=_az_handler(spec),
                    argument_loader=lambda spec=spec: fd.build_arguments(spec, REGISTRY),
                    description_loader=lambda spec=spec: spec.summary,
                    table_transformer=fd.table_transformer(spec))
                helps[name] = fd.help_yaml(spec, PROG)
            return self.command_table

        def load_arguments(self, command):
            super().load_arguments(command)

    return OncallAzLoader


def _make_context(*, spec, profile, dry_run, yes, connection_values):
    from ..config import Config
    from ..context import Context
    from .progress import progress_class
    return Context(Config(profile=profile), dry_run=dry_run, yes=yes, progress_cls=progress_class(sys.stderr),
                   connection_values=connection_values, command=spec.name, registry=REGISTRY)


def _az_handler(spec):
    handler = fd.build_handler(spec, REGISTRY, _make_context)

    def run(command_args):
        from .. import redact
        redact.install()
        command = command_args.get("cmd")
        try:
            return handler(command_args)
        except OncallError as ex:
            if getattr(ex, "result", None) is not None and command is not None:
                fd.emit_result(command.cli_ctx, command, ex.result)
            # az would map every error to exit code 1: keep the suite's documented codes
            print(f"ERROR: {ex}", file=sys.stderr)
            sys.stderr.flush()
            raise SystemExit(int(ex.exit_code)) from None
    return run
