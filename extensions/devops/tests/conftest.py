"""Fixtures for the devops tests: the stateful Azure DevOps simulator, driven through the real CLI."""
import os

import pytest

from simulators.devops import DevOpsSimulator

PAT = "sim-pat-Qx7Lm2Vd9Kp4"


@pytest.fixture(autouse=True)
def _sdk_cache_per_test(isolated_home):
    """The SDK reads AZURE_DEVOPS_CACHE_DIR once, when first imported: follow the per-test folder."""
    import sys
    if "azure.devops._file_cache" in sys.modules:
        from azure.devops import _file_cache
        folder = os.environ["AZURE_DEVOPS_CACHE_DIR"]
        os.makedirs(folder, exist_ok=True)
        for cache in (_file_cache.OPTIONS_CACHE, _file_cache.RESOURCE_CACHE):
            cache.file_name = os.path.join(folder, os.path.basename(cache.file_name))
            cache.data, cache.initial_load_occurred = {}, False
    yield


@pytest.fixture
def sim(monkeypatch):
    """A simulator with a few people and the connection in the environment (as config would give it)."""
    with DevOpsSimulator(org="contoso", project="Fabrikam", pat=PAT) as server:
        server.jamal = server.add_identity("Jamal Hartnett", "jamal@contoso.com")
        server.jamal_smith = server.add_identity("Jamal Smith", "jsmith@contoso.com")
        server.chen = server.add_identity("Chen Wei", "chen@contoso.com")
        monkeypatch.setenv("AZURE_DEVOPS_EXT_PAT", PAT)
        monkeypatch.setenv("ONCALL_DEVOPS_ORG", server.url)
        monkeypatch.setenv("ONCALL_DEVOPS_PROJECT", server.project)
        yield server
        server.assert_clean()


@pytest.fixture
def devops(oncall):
    """``devops("workitem", "show", 1)`` runs ``oncall devops workitem show 1`` in-process."""
    def run(*args, **kw):
        return oncall("devops", *args, **kw)
    return run


@pytest.fixture
def writes():
    """``writes(sim)``: the requests that could have changed something (reads and queries left out)."""
    def changed(server):
        return [(r.method, r.path) for r in server.requests if r.method not in ("GET", "OPTIONS")
                and not r.path.lower().endswith(("/wiql", "/workitemsbatch"))]
    return changed
