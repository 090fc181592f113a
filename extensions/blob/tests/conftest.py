"""Fixtures for the blob extension's tests: one real Azurite per test session, and a
fresh container per test (so tests never see each other's blobs)."""

from __future__ import annotations

import importlib.util
import re
import sys
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
EXTENSION_ROOT = HERE.parent
if str(EXTENSION_ROOT) not in sys.path:  # until the extension is pip-installed
    sys.path.insert(0, str(EXTENSION_ROOT))


def _load_helper(name: str):
    """Load tests/<name>.py under a unique module name (tests run with --import-mode=importlib,
    and other test folders may have helpers with the same file name)."""
    module_name = f"oncall_blob_tests_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


azurite_helper = _load_helper("azurite")


@pytest.fixture(scope="session")
def proxies():
    """The misbehaving TCP proxies of tests/proxies.py (CuttingProxy, SlowProxy)."""
    return _load_helper("proxies")


@pytest.fixture(scope="session")
def azurite():
    """A running Azurite blob server: `.connection_string`, `.account_url`, `.account_name`,
    `.account_key`, `.port`. Fails (never skips) when Azurite is not installed."""
    try:
        azurite_helper.find_azurite_blob()
    except azurite_helper.AzuriteError as exc:
        pytest.fail(str(exc), pytrace=False)
    server = azurite_helper.Azurite(memory_limit_mb=2048)
    try:
        server.start()
    except azurite_helper.AzuriteError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def blob_service(azurite):
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite.connection_string)


def _container_name(test_name: str) -> str:
    """A valid container name (3-63 of a-z0-9-) that says which test made it."""
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"{stem or 't'}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def container(blob_service, request):
    """A new, empty container for this test only, deleted afterwards."""
    client = blob_service.create_container(_container_name(request.node.name))
    yield client
    try:
        client.delete_container()
    except Exception:  # the test may have deleted it on purpose
        pass
