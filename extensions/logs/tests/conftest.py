"""Fixtures for the logs tests: the Log Analytics simulator (TLS, spec-validated) with the CLI pointed at it."""
import pytest

WS = "11111111-2222-3333-4444-555555555555"  # the default workspace the tests use (test_logs.WS too)


@pytest.fixture
def sim(monkeypatch):
    """A fresh simulator; the CLI reaches it through env settings only (no patching): endpoint, a real bearer
    token (--access-token's env), the test CA, and a default workspace. Every exchange must be spec-clean."""
    from simulators.loganalytics import LogAnalyticsSim
    with LogAnalyticsSim() as server:
        monkeypatch.setenv("ONCALL_LOGS_ENDPOINT", server.url)
        monkeypatch.setenv("ONCALL_LOGS_ACCESS_TOKEN", server.token)
        monkeypatch.setenv("ONCALL_LOGS_CA_FILE", server.ca_file)
        monkeypatch.setenv("ONCALL_LOGS_WORKSPACE", WS)
        yield server
        server.assert_clean()

