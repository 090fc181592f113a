"""Run with az's own Python: loads every oncall az extension's command loader like az does and
reports, per command, its arguments and help. Printed as JSON for tests/test_frontdoors.py."""
import glob
import json
import os
import sys

import yaml
from azure.cli.core import get_default_cli
from azure.cli.core.parser import AzCliCommandParser
from knack.help_files import helps

cli = get_default_cli()
report = {}
for ext_dir in sorted(glob.glob(os.path.join(os.environ["AZURE_EXTENSION_DIR"], "*"))):
    sys.path.append(ext_dir)
    (modname,) = [d for d in os.listdir(ext_dir) if d.startswith("azext_") and os.path.isdir(os.path.join(ext_dir, d))]
    module = __import__(modname)
    loader = module.COMMAND_LOADER_CLS(cli_ctx=cli)
    table = loader.load_command_table(None)
    for name, cmd in table.items():
        cmd.load_arguments()
    parser = AzCliCommandParser(cli)
    parser.load_command_table(loader)  # argparse raises on conflicting options
    for name, cmd in table.items():
        entry = yaml.safe_load(helps.get(name, "{}")) or {}
        report[name] = {
            "extension": modname,
            "arguments": sorted(a.type.settings.get("dest") for a in cmd.arguments.values()),
            "options": sorted(o for a in cmd.arguments.values() for o in (a.type.settings.get("options_list") or [])),
            "summary": entry.get("short-summary"),
            "examples": [e["text"] for e in entry.get("examples", [])],
        }
print(json.dumps(report))
