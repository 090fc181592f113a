"""`oncall --help` and `oncall alerts list --help` beside `az --help` (target: <= 0.8x az), and what an
alerts command imports (no SDK of another group)."""
import json
import os
import subprocess
import sys
import tempfile

from _bench import AZ, ROOT, VENV_BIN, measure, report

SDKS = ["kubernetes", "azure.devops", "azure.monitor.query", "azure.storage.blob", "azure.identity", "msrest"]


def main():
    home = tempfile.mkdtemp(prefix="oncall-bench-")
    env = {"HOME": home, "ONCALL_CONFIG_DIR": os.path.join(home, ".oncall"), "AZURE_CONFIG_DIR": os.path.join(home, ".azure"),
           "AZURE_CORE_COLLECT_TELEMETRY": "0", "AZURE_CORE_FIRST_RUN": "yes"}
    az = measure([AZ, "--help"], env, runs=9, warmup=2)
    top = measure([VENV_BIN / "oncall", "--help"], env, runs=9, warmup=2)
    sub = measure([VENV_BIN / "oncall", "alerts", "list", "--help"], env, runs=9, warmup=2)
    cold = measure([VENV_BIN / "oncall", "alerts", "list", "--help"], dict(env, ONCALL_NO_HELP_CACHE="1"), runs=5)
    report("help latency (warm; oncall serves help from its cache like az's command index)",
           [("az --help", az), ("oncall --help", top), ("oncall alerts list --help", sub),
            ("oncall alerts list --help (cache off: knack + every extension)", cold)])
    for label, r in (("oncall --help", top), ("oncall alerts list --help", sub)):
        print(f"  {label}: {r['median'] / az['median']:.2f}x az --help (target <= 0.8)")

    code = ("import sys; from oncall_common.frontdoor.cli import main; "
            "main(['alerts','list','--url','http://127.0.0.1:9','-o','none']); "
            f"print(__import__('json').dumps([m for m in {SDKS!r} if m in sys.modules]))")
    out = subprocess.run([VENV_BIN / "python", "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, **env, ONCALL_NO_HELP_CACHE="1"))
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nSDK modules imported by `oncall alerts list`: {loaded or 'none'}")
    return 0 if not loaded else 1


if __name__ == "__main__":
    sys.exit(main())
