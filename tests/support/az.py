"""The real azure-cli (its own virtualenv, made by scripts/setup) with our wheels added as extensions."""
import glob
import os
import subprocess
from pathlib import Path

from .cli import ROOT, Result

AZ_VENV = Path(os.environ.get("ONCALL_AZ_VENV") or Path(os.environ.get("ONCALL_REAL_HOME", Path.home())) / ".cache" / "oncall" / "az-venv")


class Az:
    def __init__(self, workdir):
        self.bin = AZ_VENV / "bin" / "az"
        if not self.bin.exists():
            raise RuntimeError(f"azure-cli not found at {self.bin}: run scripts/setup")
        self.env = {
            "AZURE_CONFIG_DIR": str(workdir / "azure"), "AZURE_EXTENSION_DIR": str(workdir / "azext"),
            "AZURE_CORE_COLLECT_TELEMETRY": "0", "AZURE_CORE_FIRST_RUN": "yes", "AZURE_CORE_NO_COLOR": "1",
            "AZURE_CORE_ONLY_SHOW_ERRORS": "1",
            "PIP_FIND_LINKS": str(ROOT / "dist" / "wheelhouse"), "PIP_NO_INDEX": "1",
        }

    def add_extension(self, wheel):
        return self.run("extension", "add", "--source", wheel, "-y", timeout=300)

    def add_all(self):
        wheels = sorted(glob.glob(str(ROOT / "dist" / "oncall_*.whl")))
        wheels = [w for w in wheels if "oncall_common-" not in w]
        if not wheels:
            raise RuntimeError("no wheels in dist/: run scripts/setup (or scripts/build-wheels)")
        for wheel in wheels:
            r = self.add_extension(wheel)
            assert r.code == 0, f"az extension add {wheel} failed:\n{r}"
        return wheels

    def run(self, *args, env=None, timeout=120):
        full = dict(os.environ)
        full.update(self.env)
        full.update(env or {})
        proc = subprocess.run([str(self.bin), *map(str, args)], capture_output=True, text=True, env=full,
                              timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def python(self, code, env=None, timeout=120):
        """Run Python inside az's own environment, with the installed extensions on sys.path."""
        full = dict(os.environ)
        full.update(self.env)
        full.update(env or {})
        proc = subprocess.run([str(AZ_VENV / "bin" / "python"), "-c", code], capture_output=True, text=True,
                              env=full, timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)
