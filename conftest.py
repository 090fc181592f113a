"""Suite-wide fixtures: an isolated home for every test, the CLI runner, real servers."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
SPECS = (ROOT / ".." / "shared" / "specs").resolve()

from support.cli import run_inprocess  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test reads or writes the real ~/.oncall, ~/.kube or ~/.azure."""
    monkeypatch.setenv("ONCALL_REAL_HOME", os.environ.get("ONCALL_REAL_HOME", os.environ.get("HOME", "/root")))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ONCALL_CONFIG_DIR", str(home / ".oncall"))
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(home / ".azure"))
    monkeypatch.setenv("AZURE_CORE_COLLECT_TELEMETRY", "0")
    monkeypatch.setenv("AZURE_CORE_FIRST_RUN", "yes")
    monkeypatch.setenv("AZURE_DEVOPS_CACHE_DIR", str(home / ".azure-devops-cache"))
    monkeypatch.setenv("KUBECONFIG", str(home / ".kube" / "config"))
    for key in list(os.environ):
        if key.startswith("ONCALL_") and key not in ("ONCALL_CONFIG_DIR", "ONCALL_REAL_HOME", "ONCALL_AZ_VENV"):
            monkeypatch.delenv(key, raising=False)
    return home


@pytest.fixture
def oncall():
    """Run an oncall command in-process: ``oncall("alerts", "list", "-o", "json")`` → Result."""
    return run_inprocess


@pytest.fixture
def alertmanager():
    from support.alertmanager import Alertmanager
    am = Alertmanager()
    yield am
    am.stop()


@pytest.fixture
def specs_dir():
    return SPECS


@pytest.fixture(scope="session")
def az(tmp_path_factory):
    """The real az with every extension wheel in dist/ added (once per session)."""
    from support.az import Az
    cli = Az(tmp_path_factory.mktemp("az"))
    cli.add_all()
    return cli
