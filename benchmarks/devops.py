"""`oncall devops workitem create` end to end against the Azure DevOps simulator (target <= 0.6 s wall), with a
cold and a warm SDK cache (AZURE_DEVOPS_CACHE_DIR: the SDK keeps the OPTIONS answers there), beside the same
create made by a bare script on the official SDK; and `oncall devops --help` importing no SDK.

The peer CLI, `az boards work-item create` (the azure-devops az extension), cannot be installed here
(az extension add --name needs the extension index online), so the floor shown is the SDK itself.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

from _bench import VENV_BIN, measure, report, run_once
from simulators.devops import DevOpsSimulator

TARGET = 0.6
SDK_SCRIPT = """
import os, sys
from azure.devops.connection import Connection
from azure.devops.v7_1.work_item_tracking.models import JsonPatchOperation
from msrest.authentication import BasicAuthentication
wit = Connection(base_url=sys.argv[1], creds=BasicAuthentication("", os.environ["AZURE_DEVOPS_EXT_PAT"])) \\
    .clients_v7_1.get_work_item_tracking_client()
item = wit.create_work_item([JsonPatchOperation(op="add", path="/fields/System.Title", value="bench")],
                            sys.argv[2], "Product Backlog Item")
print(item.id)
"""


def cold(argv, env, runs):
    """Every run with an empty SDK cache: resource-location OPTIONS (and ResourceAreas) asked again."""
    walls, rss = [], []
    for _ in range(runs):
        wall, mb, _ = run_once(argv, dict(env, AZURE_DEVOPS_CACHE_DIR=tempfile.mkdtemp(prefix="ado-cold-")))
        walls.append(wall)
        rss.append(mb)
    return {"median": statistics.median(walls), "min": min(walls), "rss": max(rss)}


def main():
    # measure as installed: Python's bytecode cache on (a shell may turn it off)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    home = tempfile.mkdtemp(prefix="oncall-bench-")
    with DevOpsSimulator(org="contoso", project="Fabrikam", pat="bench-pat-0c9e") as sim:
        env = {"HOME": home, "ONCALL_CONFIG_DIR": os.path.join(home, ".oncall"), "AZURE_DEVOPS_EXT_PAT": sim.pat,
               "ONCALL_DEVOPS_ORG": sim.url, "ONCALL_DEVOPS_PROJECT": sim.project,
               "AZURE_DEVOPS_CACHE_DIR": os.path.join(home, "ado-cache")}
        create = [VENV_BIN / "oncall", "devops", "workitem", "create", "--type", "Product Backlog Item",
                  "--title", "payments pod crash-loops", "--tags", "oncall", "-o", "none"]
        sdk = [VENV_BIN / "python", "-c", SDK_SCRIPT, sim.url, sim.project]
        ours_cold = cold(create, env, runs=5)
        ours_warm = measure(create, env, runs=9, warmup=1)
        sdk_cold = cold(sdk, env, runs=5)
        sdk_warm = measure(sdk, env, runs=9, warmup=1)
        help_ = measure([VENV_BIN / "oncall", "devops", "--help"], env, runs=9, warmup=1)
        report("workitem create end to end (simulator on loopback)", [
            ("oncall devops workitem create (cold SDK cache)", ours_cold),
            ("oncall devops workitem create (warm SDK cache)", ours_warm),
            ("bare azure-devops SDK script, same create (cold)", sdk_cold),
            ("bare azure-devops SDK script, same create (warm)", sdk_warm),
            ("oncall devops --help", help_),
        ])
        created = len(sim.work_items)
    verdicts = []
    for label, r in (("cold", ours_cold), ("warm", ours_warm)):
        ok = r["median"] <= TARGET
        verdicts.append(ok)
        print(f"  create {label}: median {r['median']:.3f} s (target <= {TARGET} s) {'OK' if ok else 'OVER'}")
    print(f"  oncall over the bare SDK script (warm): +{ours_warm['median'] - sdk_warm['median']:.3f} s "
          f"({created} work items created)")

    code = ("import sys, io, contextlib; from oncall_common.frontdoor.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['devops', '--help'])\n"
            "print(__import__('json').dumps([m for m in ('azure.devops', 'msrest', 'requests') if m in sys.modules]))")
    out = subprocess.run([VENV_BIN / "python", "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, **env, ONCALL_NO_HELP_CACHE="1"))
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nSDK modules imported by `oncall devops --help` (help cache off): {loaded or 'none'}")
    return 0 if all(verdicts) and not loaded else 1


if __name__ == "__main__":
    sys.exit(main())
