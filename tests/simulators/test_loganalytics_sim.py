"""The Log Analytics simulator driven by the real azure-monitor-query SDK over TLS."""

from __future__ import annotations

import json
import re
import ssl
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "tests", ROOT / "extensions" / "logs"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from azure.core.exceptions import HttpResponseError  # noqa: E402
from azure.monitor.query import (  # noqa: E402
    LogsBatchQuery,
    LogsQueryError,
    LogsQueryPartialResult,
    LogsQueryResult,
    LogsQueryStatus,
)

from simulators.loganalytics import (  # noqa: E402
    LOGS_SCOPE,
    LogAnalyticsSim,
    StaticTokenCredential,
    service_error,
    syntax_error,
)

WS = "11111111-2222-3333-4444-555555555555"
WS2 = "66666666-7777-8888-9999-000000000000"

TYPED_TABLE = {
    "name": "PrimaryResult",
    "columns": [
        {"name": "TimeGenerated", "type": "datetime"}, {"name": "Computer", "type": "string"},
        {"name": "Count", "type": "long"}, {"name": "Small", "type": "int"}, {"name": "Ratio", "type": "real"},
        {"name": "Ok", "type": "bool"}, {"name": "Took", "type": "timespan"}, {"name": "Id", "type": "guid"},
        {"name": "Props", "type": "dynamic"},
    ],
    "rows": [
        [datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc), "web-1", 2**40, 7, 0.25, True,
         timedelta(minutes=90), uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff"), {"a": [1, 2]}],
        [None, "", None, None, float("nan"), False, None, None, None],
    ],
}


@pytest.fixture
def sim():
    with LogAnalyticsSim() as server:
        yield server
        server.assert_clean()


def test_query_returns_typed_columns(sim):
    sim.add_result("Heartbeat", [TYPED_TABLE])
    with sim.client() as client:
        result = client.query_workspace(WS, "Heartbeat | take 2", timespan=timedelta(hours=1))
    assert isinstance(result, LogsQueryResult) and result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    assert table.name == "PrimaryResult"
    assert table.columns == [c["name"] for c in TYPED_TABLE["columns"]]
    assert table.columns_types == [c["type"] for c in TYPED_TABLE["columns"]]
    first, second = table.rows
    assert first["TimeGenerated"] == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    assert [first[c] for c in ("Computer", "Count", "Small", "Ratio", "Ok")] == ["web-1", 2**40, 7, 0.25, True]
    assert first["Took"] == "01:30:00"  # the SDK hands timespans and guids back as text
    assert first["Id"] == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert json.loads(first["Props"]) == {"a": [1, 2]}  # dynamic arrives as JSON text
    assert second["Ratio"] == "NaN" and second["Count"] is None and second["Ok"] is False
    assert sim.queries == ["Heartbeat | take 2"]
    assert sim.calls[0].workspace == WS and sim.calls[0].timespan == "PT3600.0S"


def test_bound_query_text_reaches_the_service_exactly(sim):
    from oncall_logs.kql import bind

    query = bind("AppLogs | where Message has needle | take n",
                 {"needle": ("string", 'x"; drop // \n'), "n": ("int", 5)})
    sim.add_result(re.compile(r"^let needle = "), [{"name": "PrimaryResult", "columns": ["n:long"], "rows": [[1]]}])
    with sim.client() as client:
        client.query_workspace(WS, query, timespan=(datetime(2024, 1, 1, tzinfo=timezone.utc),
                                                    datetime(2024, 1, 2, tzinfo=timezone.utc)))
    assert sim.queries == [query]
    assert sim.calls[0].timespan == "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z"


def test_partial_result(sim):
    sim.add_result("Perf", [{"name": "PrimaryResult", "columns": ["Computer:string"], "rows": [["db-1"]]}],
                   error="Partial query failure: Low memory condition")
    with sim.client() as client:
        result = client.query_workspace(WS, "Perf | summarize count() by Computer", timespan=None)
    assert isinstance(result, LogsQueryPartialResult) and result.status == LogsQueryStatus.PARTIAL
    assert [list(row) for row in result.partial_data[0].rows] == [["db-1"]]
    assert result.partial_error.code == "PartialError"
    assert result.partial_error.details[0]["innererror"]["message"] == "Partial query failure: Low memory condition"


def test_forbidden_workspace_is_403(sim):
    sim.forbidden.add(WS)
    with sim.client() as client, pytest.raises(HttpResponseError) as info:
        client.query_workspace(WS, "Heartbeat", timespan=None)
    assert info.value.status_code == 403
    assert info.value.model.code == "InsufficientAccessError"


def test_wrong_token_is_401(sim):
    with sim.client(StaticTokenCredential("not-the-token", scopes=[LOGS_SCOPE])) as client:
        with pytest.raises(HttpResponseError) as info:
            client.query_workspace(WS, "Heartbeat", timespan=None)
    assert info.value.status_code == 401  # mapped to ClientAuthenticationError first: no error model
    assert info.value.response.json()["error"]["code"] == "InvalidTokenError"
    assert "invalid_token" in info.value.response.headers["WWW-Authenticate"]


def test_credential_issues_only_the_log_analytics_scope(sim):
    from azure.monitor.query import LogsQueryClient

    sim.add_result("Heartbeat", [{"name": "PrimaryResult", "columns": ["n:long"], "rows": [[1]]}])
    credential = sim.credential()
    with sim.client(credential) as client:
        client.query_workspace(WS, "Heartbeat", timespan=None)
    assert credential.requested == [(LOGS_SCOPE,)]
    # without audience= the SDK asks for a token scoped to the endpoint, which the credential refuses
    with LogsQueryClient(credential, endpoint=sim.url, connection_verify=sim.ca_file) as client:
        with pytest.raises(HttpResponseError, match="issues tokens for"):  # process_error rewraps
            client.query_workspace(WS, "Heartbeat", timespan=None)
    assert credential.requested[-1] == (sim.url + "/.default",)
    assert len(sim.requests) == 1  # the refused client never sent a request


def test_unmatched_query_is_a_semantic_error(sim):
    with sim.client() as client, pytest.raises(HttpResponseError) as info:
        client.query_workspace(WS, "NoSuchTable | take 1", timespan=None)
    assert info.value.status_code == 400
    assert info.value.model.code == "BadArgumentError"
    assert "No simulated result matches" in info.value.model.message  # the innermost message


def test_additional_workspaces(sim):
    sim.add_result("union", [{"name": "PrimaryResult", "columns": ["n:long"], "rows": [[3]]}])
    with sim.client() as client:
        result = client.query_workspace(WS, "union Heartbeat", timespan=None, additional_workspaces=[WS2])
        assert result.tables[0].rows[0][0] == 3
        sim.forbidden.add(WS2)
        with pytest.raises(HttpResponseError) as info:
            client.query_workspace(WS, "union Heartbeat", timespan=None, additional_workspaces=[WS2])
    assert info.value.status_code == 403
    assert [c.workspaces for c in sim.calls] == [[WS2], [WS2]]


def test_batch(sim):
    sim.add_result("Heartbeat", [{"name": "PrimaryResult", "columns": ["n:long"], "rows": [[1]]}])
    sim.add_result("Perf", [{"name": "PrimaryResult", "columns": ["n:long"], "rows": [[2]]}], error=True)
    sim.add_query_error("Broken", syntax_error(token="Broken"))
    queries = [
        LogsBatchQuery(WS, "Heartbeat | count", timespan=timedelta(days=1)),
        LogsBatchQuery(WS2, "Perf | count", timespan=None, include_statistics=True),
        LogsBatchQuery(WS, "Broken |", timespan=None),
    ]
    with sim.client() as client:
        results = client.query_batch(queries)
    assert isinstance(results[0], LogsQueryResult) and results[0].tables[0].rows[0][0] == 1
    assert isinstance(results[1], LogsQueryPartialResult) and results[1].statistics
    assert isinstance(results[2], LogsQueryError) and results[2].code == "BadArgumentError"
    assert sim.queries == ["Heartbeat | count", "Perf | count", "Broken |"]
    assert [c.workspace for c in sim.calls] == [WS, WS2, WS]
    assert all(c.batch_id for c in sim.calls)


def test_resource_query(sim):
    resource = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Web/sites/app"
    sim.add_result("requests", [{"name": "PrimaryResult", "columns": ["n:long"], "rows": [[4]]}], workspace=resource)
    with sim.client() as client:
        result = client.query_resource(resource, "requests | count", timespan=None)
    assert result.tables[0].rows[0][0] == 4
    assert sim.calls[0].resource and sim.calls[0].workspace == resource


def test_throttling_is_retried_after_retry_after(sim):
    sim.add_result("Heartbeat", [{"name": "PrimaryResult", "columns": ["n:long"], "rows": [[1]]}])
    sim.add_service_fault(429, retry_after=0)
    with sim.client() as client:
        result = client.query_workspace(WS, "Heartbeat", timespan=None)
    assert result.tables[0].rows[0][0] == 1
    assert len(sim.requests) == 2 and len(sim.queries) == 1  # the fault answered before the query ran


def test_server_errors(sim):
    sim.add_result("Heartbeat", [{"name": "PrimaryResult", "columns": ["n:long"], "rows": [[1]]}])
    sim.add_service_fault(503, times=None)
    with sim.client(retry_total=0) as client, pytest.raises(HttpResponseError) as info:
        client.query_workspace(WS, "Heartbeat", timespan=None)
    assert info.value.status_code == 503 and info.value.model.code == "ServiceUnavailableError"


def test_bad_kql_fault(sim):
    sim.add_service_fault(400, syntax_error("Query could not be parsed", 1, 11, "|"))
    with sim.client() as client, pytest.raises(HttpResponseError) as info:
        client.query_workspace(WS, "Heartbeat ||", timespan=None)
    assert info.value.status_code == 400
    assert "Query could not be parsed at '|'" in info.value.model.message


def test_statistics_when_asked(sim):
    sim.add_result("Heartbeat", [{"name": "PrimaryResult", "columns": ["n:long"], "rows": [[1]]}],
                   render={"visualization": "timechart"})
    with sim.client() as client:
        plain = client.query_workspace(WS, "Heartbeat", timespan=None)
        rich = client.query_workspace(WS, "Heartbeat", timespan=None, include_statistics=True,
                                      include_visualization=True, server_timeout=60)
    assert plain.statistics is None and plain.visualization is None
    assert rich.statistics["query"]["executionTime"] >= 0 and rich.visualization == {"visualization": "timechart"}
    assert sim.calls[1].prefer == "wait=60,include-statistics=true,include-render=true"


def test_ca_bundle_from_environment(sim, monkeypatch):
    from azure.monitor.query import LogsQueryClient

    sim.add_result("Heartbeat", [{"name": "PrimaryResult", "columns": ["n:long"], "rows": [[1]]}])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_file)
    with LogsQueryClient(sim.credential(), endpoint=sim.url + "/v1", audience="https://api.loganalytics.io") as client:
        assert client.query_workspace(WS, "Heartbeat", timespan=None).tables[0].rows[0][0] == 1


def test_requests_the_spec_forbids_are_violations():
    with LogAnalyticsSim() as sim:
        context = ssl.create_default_context(cafile=sim.ca_file)
        request = urllib.request.Request(
            f"{sim.url}/v1/workspaces/{WS}/query", data=json.dumps({"timespan": "PT1H"}).encode(), method="POST",
            headers={"Authorization": f"Bearer {sim.token}", "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, context=context, timeout=5)
        assert info.value.code == 400
        with pytest.raises(AssertionError, match="'query' is a required property"):
            sim.assert_clean()


def test_registration_is_checked():
    with LogAnalyticsSim() as sim:
        with pytest.raises(ValueError, match="has type 'varchar'"):
            sim.add_result("x", [{"name": "T", "columns": [{"name": "a", "type": "varchar"}], "rows": []}])
        with pytest.raises(ValueError, match="row 0 has 2 cells for 1 columns"):
            sim.add_result("x", [{"name": "T", "columns": ["a:long"], "rows": [[1, 2]]}])
        with pytest.raises(AssertionError):  # SpecViolation: an error body without a message
            sim.add_query_error("x", {"error": {"code": "X"}})
        assert service_error(429)["error"]["code"] == "ThrottledError"
