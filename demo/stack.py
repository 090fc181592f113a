"""The local stack the demo runs against: real servers where they exist here, simulators elsewhere."""
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


class Stack:
    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="oncall-demo-"))
        home = self.tmp / "home"
        home.mkdir()
        # the demo never touches the user's own config, kubeconfig or az login
        self.env = {"HOME": str(home), "ONCALL_CONFIG_DIR": str(home / ".oncall"),
                    "KUBECONFIG": str(home / ".kube" / "config"), "AZURE_CONFIG_DIR": str(home / ".azure"),
                    "AZURE_DEVOPS_CACHE_DIR": str(home / ".azure-devops-cache"), "ONCALL_CORE_USER": "alice"}
        self.last = None
        self._cleanups = []

    def cleanup(self, func):
        self._cleanups.append(func)
        return func

    def close(self):
        for func in reversed(self._cleanups):
            try:
                func()
            except Exception as ex:  # noqa: BLE001 - keep closing the rest
                print(f"(cleanup: {ex})", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def process_env(self):
        env = dict(os.environ)
        env.update(self.env)
        return env
