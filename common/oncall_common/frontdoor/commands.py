"""What every front door builds from an ``OperationSpec``: argparse arguments, a handler, help.

Shared by the knack CLI and the az loader so both take the same arguments and return the
same data. Knack ignores annotations, so types, choices and nargs are emitted here.
"""
from ..convert import scalar_converter
from ..invoke import run, split_arguments
from ..registry import is_enum

GLOBAL_ARGS = ("profile", "dry_run", "yes")


def _argument(param, arg_group=None):
    from knack.arguments import CLICommandArgument
    arg = param.arg
    kwargs = {"help": param.help or None}
    if arg.positional:
        options = []
    else:
        options = [param.option, *arg.options]
    if param.type is bool and not param.is_list:
        if param.default is True:
            options = ["--no-" + param.name.replace("_", "-"), *arg.options]
            kwargs.update(action="store_false", default=True)
        else:
            kwargs.update(action="store_true", default=False)
    else:
        convert = arg.parse or scalar_converter(param.type)
        if is_enum(param.type):
            kwargs["choices"] = [str(m.value) for m in param.type]
            convert = str
        elif arg.choices:
            kwargs["choices"] = list(arg.choices)
        if convert is not str:
            kwargs["type"] = _named(convert, param)
        if param.is_list:
            if arg.repeat and not arg.positional:
                kwargs["action"] = "append"
            else:
                kwargs["nargs"] = "+" if param.required else "*"
        elif arg.positional and not param.required:
            kwargs["nargs"] = "?"
        kwargs["default"] = param.default
        if param.required and not arg.positional:
            kwargs["required"] = True
        if arg.metavar:
            kwargs["metavar"] = arg.metavar
        elif not arg.positional and (param.type is str or param.type is None) and not kwargs.get("choices"):
            kwargs["metavar"] = param.name.upper()
    if arg_group:
        kwargs["arg_group"] = arg_group
    if arg.hidden:
        from argparse import SUPPRESS
        kwargs["help"] = SUPPRESS
    argument = CLICommandArgument(param.name, options_list=options, **kwargs)
    if not options:
        argument.type.settings["options_list"] = []  # knack would invent --name; [] makes it positional
    return param.name, argument


def _named(convert, param):
    """argparse prints the type's __name__ in errors: make that the parameter's kind."""
    def converter(value):
        try:
            return convert(value)
        except (TypeError, ValueError) as ex:
            raise ValueError(str(ex)) from None
    converter.__name__ = getattr(param.type, "__name__", "value")
    return converter


def build_arguments(spec, registry):
    from knack.arguments import CLICommandArgument
    args = [_argument(p) for p in spec.params]
    names = {p.name for p in spec.params}
    for conn_name in spec.uses:
        for p in registry.connections[conn_name].params:
            if p.name not in names:
                names.add(p.name)
                args.append(_argument(p, arg_group=conn_name.capitalize() if len(conn_name) > 3 else conn_name.upper()))
    args.append(("profile", CLICommandArgument(
        "profile", options_list=["--profile"], arg_group="Global", metavar="NAME",
        help="Configuration profile to use (default: config [core] profile, env ONCALL_PROFILE).")))
    if spec.mutating:
        args.append(("dry_run", CLICommandArgument(
            "dry_run", options_list=["--dry-run"], action="store_true", default=False, arg_group="Global",
            help="Show what would be sent and change nothing.")))
        args.append(("yes", CLICommandArgument(
            "yes", options_list=["--yes", "-y"], action="store_true", default=False, arg_group="Global",
            help="Do not prompt for confirmation.")))
    return args


def _finish(param, value):
    if value is None:
        return None
    if is_enum(param.type):
        conv = scalar_converter(param.type)
        return [conv(v) for v in value] if param.is_list else conv(value)
    if param.is_list and param.arg.repeat and value and isinstance(value[0], list):
        return [v for chunk in value for v in chunk]
    return value


def build_handler(spec, registry, make_context):
    """A handler(command_args) for knack/az: builds the Context and runs the operation."""
    def handler(command_args):
        command_args = dict(command_args)
        command = command_args.pop("cmd", None)
        profile = command_args.pop("profile", None)
        # --dry-run/--yes are the front door's only on mutations; elsewhere they are the operation's own
        dry_run = command_args.pop("dry_run", False) if spec.mutating else False
        yes = command_args.pop("yes", False) if spec.mutating else False
        all_params = {p.name: p for p in spec.params}
        for conn_name in spec.uses:
            for p in registry.connections[conn_name].params:
                all_params.setdefault(p.name, p)
        values = {name: _finish(all_params[name], v) for name, v in command_args.items() if name in all_params}
        own, connections = split_arguments(spec, registry, values)
        for name, conn_values in connections.items():
            for pname in list(conn_values):
                if pname in {p.name for p in spec.params}:
                    conn_values[pname] = values.get(pname)
        ctx = make_context(spec=spec, profile=profile, dry_run=dry_run, yes=yes, connection_values=connections)
        ctx.output_format, ctx.output_explicit = _output_choice(getattr(command, "cli_ctx", None)
                                                                or getattr(getattr(make_context, "__self__", None), "cli_ctx", None))
        return run(spec, ctx, own)
    return handler


def _output_choice(cli_ctx):
    """(the -o format in effect, whether the user gave -o) for operations that write files themselves."""
    import sys
    invocation = getattr(cli_ctx, "invocation", None)
    fmt = (invocation.data.get("output") if invocation is not None else None) or "json"
    argv = getattr(cli_ctx, "raw_args", None)
    if argv is None:
        argv = sys.argv[1:]
    explicit = any(a in ("-o", "--output") or a.startswith(("--output=", "-o=")) for a in argv)
    return fmt, explicit


def example_text(command_line, prog):
    """Examples are written as 'oncall ...'; show them as this front door spells it."""
    if command_line.startswith("oncall "):
        return prog + command_line[len("oncall"):]
    return command_line


def help_yaml(spec, prog):
    import json
    entry = {"type": "command", "short-summary": spec.summary or spec.name}
    if spec.description:
        entry["long-summary"] = spec.description
    if spec.examples:
        entry["examples"] = [{"name": title, "text": example_text(text, prog)} for title, text in spec.examples]
    return json.dumps(entry)  # JSON is YAML, and far cheaper to write


def group_yaml(summary):
    import json
    return json.dumps({"type": "group", "short-summary": summary})


def table_transformer(spec):
    if spec.table is None:
        return None
    from collections import OrderedDict

    from ..output import cell

    def transform(result):
        if isinstance(result, dict) and result.get("dryRun"):
            return [OrderedDict((k, cell(v)) for k, v in result.items())]
        rows = spec.table(result)
        if isinstance(rows, dict):
            rows = [rows]
        # az's table output drops non-scalar cells: hand it text
        return [OrderedDict((k, cell(v)) for k, v in row.items()) for row in rows]
    transform.shape = spec.table  # oncall's own renderer takes the rows as they are
    return transform



def emit_result(cli_ctx, command, result):
    """Print ``result`` as the invocation's -o/--query would (for errors that carry partial data)."""
    from knack.events import EVENT_INVOKER_FILTER_RESULT
    from knack.util import CommandResultItem, todict
    data = cli_ctx.invocation.data
    event_data = {"result": todict(result)}
    cli_ctx.raise_event(EVENT_INVOKER_FILTER_RESULT, event_data=event_data)
    item = CommandResultItem(event_data["result"], table_transformer=getattr(command, "table_transformer", None),
                             is_query_active=bool(data.get("query_active")))
    formatter = cli_ctx.output.get_formatter(data.get("output") or "json")
    cli_ctx.output.out(item, formatter=formatter, out_file=cli_ctx.out_file)
