"""Run a real Azurite blob server (the official Azure Storage emulator) for tests.

    with Azurite() as server:          # or server = Azurite(); server.start(); ...; server.stop()
        ContainerClient.from_connection_string(server.connection_string, "c1")

Azurite comes from npm (`package.json` at the repo root pins it; `npm ci` there puts it
in `node_modules/`). It listens on 127.0.0.1 only, keeps everything in memory (capped by
`memory_limit_mb`), accepts the newer API version the Python SDK sends, and sends no
telemetry. Its log goes to a temporary folder and its tail is shown if it fails to start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[3]

# The emulator's well-known development account: published by Microsoft, not a secret.
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

SETUP_HINT = (
    "Azurite (npm package `azurite`) is not installed: run the setup script `scripts/setup` "
    "(it runs `npm ci` in the repository root, {root}), or run `npm ci` there yourself; "
    "or point ONCALL_AZURITE_BLOB at an `azurite-blob` executable."
)


class AzuriteError(RuntimeError):
    """Azurite is missing, or did not start."""


def find_azurite_blob(root: Path = REPO_ROOT) -> str:
    """Path of the `azurite-blob` executable: $ONCALL_AZURITE_BLOB, else node_modules/.bin."""
    explicit = os.environ.get("ONCALL_AZURITE_BLOB")
    candidate = Path(explicit) if explicit else root / "node_modules" / ".bin" / "azurite-blob"
    if not candidate.exists():
        raise AzuriteError(SETUP_HINT.format(root=root) + f" (looked for {candidate})")
    if shutil.which("node") is None:
        raise AzuriteError("Azurite needs Node.js (`node`) on PATH.")
    return str(candidate)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection_string(port: int, host: str = "127.0.0.1", key: str = ACCOUNT_KEY) -> str:
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT_NAME};AccountKey={key};"
        f"BlobEndpoint=http://{host}:{port}/{ACCOUNT_NAME};"
    )


class Azurite:
    """One Azurite blob server on a free loopback port."""

    def __init__(self, *, memory_limit_mb: int = 2048, startup_timeout: float = 30.0,
                 executable: Optional[str] = None) -> None:
        self.memory_limit_mb = memory_limit_mb
        self.startup_timeout = startup_timeout
        self.executable = executable
        self.port: Optional[int] = None
        self._process: Optional[subprocess.Popen] = None
        self._workdir: Optional[str] = None

    # -- addresses ---------------------------------------------------------------
    @property
    def account_name(self) -> str:
        return ACCOUNT_NAME

    @property
    def account_key(self) -> str:
        return ACCOUNT_KEY

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        if self.port is None:
            raise AzuriteError("Azurite is not running")
        return connection_string(self.port)

    # -- life cycle ----------------------------------------------------------------
    def start(self) -> str:
        """Start the server, wait until it accepts connections, return its connection string."""
        executable = self.executable or find_azurite_blob()
        self._workdir = tempfile.mkdtemp(prefix="azurite-")
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            log_path = os.path.join(self._workdir, f"azurite-{self.port}.log")
            with open(log_path, "wb") as log:
                self._process = subprocess.Popen(
                    [
                        executable,
                        "--blobHost", "127.0.0.1",
                        "--blobPort", str(self.port),
                        "--inMemoryPersistence",
                        "--extentMemoryLimit", str(self.memory_limit_mb),
                        "--skipApiVersionCheck",
                        "--disableTelemetry",
                        "--silent",
                    ],
                    cwd=self._workdir,  # Azurite may write debug files into its cwd
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C in the test run reaches us, not it
                )
            if self._wait_ready():
                return self.connection_string
            last_error = Path(log_path).read_text(errors="replace")[-2000:]
            self._terminate()
        self.stop()
        raise AzuriteError(f"Azurite did not start; its output:\n{last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and remove its folder."""
        self._terminate()
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> "Azurite":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
