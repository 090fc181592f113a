"""oncall logs through the real CLI against the spec-validated Log Analytics simulator (TLS, real bearer token).

The simulator records the exact query text it received (``sim.queries``) and every call (``sim.calls``),
so these tests assert what reached the wire, not what we meant to send.
"""
import datetime as dt
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.cli import ROOT, VENV_BIN, free_port, run_process

from oncall_logs.kql import read_literal, statements

WS = "11111111-2222-3333-4444-555555555555"
WS2 = "66666666-7777-8888-9999-000000000000"
WS3 = "99999999-aaaa-bbbb-cccc-dddddddddddd"
DOCS = ROOT / "docs" / "logs.md"

TYPED = {
    "name": "PrimaryResult",
    "columns": ["TimeGenerated:datetime", "Computer:string", "Count:long", "Small:int", "Ratio:real", "Ok:bool",
                "Took:timespan", "Id:guid", "Props:dynamic"],
    "rows": [
        [dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone.utc), "web-1", 2**40, 7, 0.25, True,
         dt.timedelta(minutes=90), uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff"), {"a": [1, 2], "b": "x"}],
        [None, "web-2", None, None, float("nan"), False, None, None, None],
    ],
}


def one_table(columns, rows, name="PrimaryResult"):
    return [{"name": name, "columns": columns, "rows": rows}]


def config(home, text):
    folder = home / ".oncall"
    folder.mkdir(exist_ok=True)
    (folder / "config").write_text(text)


def one_line_error(r):
    assert "Traceback" not in r.err + r.out
    lines = [line for line in r.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, r
    return lines[0]


# ------------------------------------------------------------------ results


def test_column_types_are_kept(sim, oncall):
    sim.add_result("Heartbeat", [TYPED])
    r = oncall("logs", "query", "Heartbeat | take 2")
    assert r.code == 0, r
    first, second = r.json
    assert first == {"TimeGenerated": "2024-01-02T03:04:05.123456Z", "Computer": "web-1", "Count": 2**40,
                     "Small": 7, "Ratio": 0.25, "Ok": True, "Took": "01:30:00",
                     "Id": "6f9619ff-8b86-d011-b42d-00c04fc964ff", "Props": {"a": [1, 2], "b": "x"}}
    # nulls stay null (the SDK would say "None" for a null guid or timespan); NaN has no JSON number
    assert second == {"TimeGenerated": None, "Computer": "web-2", "Count": None, "Small": None, "Ratio": "NaN",
                      "Ok": False, "Took": None, "Id": None, "Props": None}
    assert sim.queries == ["Heartbeat | take 2"]  # no parameters: the text goes as written
    assert sim.calls[0].workspace == WS and sim.calls[0].timespan is None


@pytest.mark.parametrize("fmt", ["table", "csv", "md", "tsv", "yaml", "jsonc", "none"])
def test_every_output_format(sim, oncall, fmt):
    sim.add_result("Heartbeat", [TYPED])
    r = oncall("logs", "query", "Heartbeat | take 2", "-o", fmt)
    assert r.code == 0, r
    if fmt == "none":
        assert r.out == ""
        return
    if fmt == "csv":
        lines = r.out.splitlines()
        assert lines[0] == "TimeGenerated,Computer,Count,Small,Ratio,Ok,Took,Id,Props"  # the query's column order
        assert lines[1] == ('2024-01-02T03:04:05.123456Z,web-1,1099511627776,7,0.25,true,01:30:00,'
                            '6f9619ff-8b86-d011-b42d-00c04fc964ff,"{""a"":[1,2],""b"":""x""}"')
        assert lines[2] == ",web-2,,,NaN,false,,,"
    elif fmt in ("table", "md"):
        header = r.out.splitlines()[0].replace("|", " ").split()
        assert header == ["TimeGenerated", "Computer", "Count", "Small", "Ratio", "Ok", "Took", "Id", "Props"]
        assert '{"a":[1,2],"b":"x"}' in r.out and "1099511627776" in r.out
    elif fmt == "yaml":
        import yaml
        assert yaml.safe_load(r.out)[0]["Props"] == {"a": [1, 2], "b": "x"}
    elif fmt == "jsonc":
        assert "web-1" in r.out
    else:
        assert "web-1" in r.out and "web-2" in r.out


def test_several_tables_are_kept_apart(sim, oncall):
    sim.add_result("fork", [
        {"name": "PrimaryResult", "columns": ["Computer:string", "n:long"], "rows": [["web-1", 3], ["web-2", 4]]},
        {"name": "Table_1", "columns": ["Level:string", "Count:int"], "rows": [["error", 9]]},
        {"name": "Table_2", "columns": ["Empty:string"], "rows": []},
    ])
    r = oncall("logs", "query", "T | fork (summarize n = count() by Computer) (summarize Count = count() by Level)")
    assert r.code == 0, r
    tables = r.json["tables"]
    assert [t["name"] for t in tables] == ["PrimaryResult", "Table_1", "Table_2"]
    assert tables[0]["columns"] == [{"name": "Computer", "type": "string"}, {"name": "n", "type": "long"}]
    assert tables[0]["rows"] == [{"Computer": "web-1", "n": 3}, {"Computer": "web-2", "n": 4}]
    assert tables[1]["rows"] == [{"Level": "error", "Count": 9}] and tables[2]["rows"] == []
    picked = oncall("logs", "query", "T | fork (x) (y)", "--query", "tables[1].rows[0].Count")
    assert picked.out.strip() == "9"
    table = oncall("logs", "query", "T | fork (x) (y)", "-o", "table").out.splitlines()
    assert table[0].split() == ["Table", "Computer", "n", "Level", "Count", "Empty"]
    assert [line.split()[0] for line in table[2:]] == ["PrimaryResult", "PrimaryResult", "Table_1", "Table_2"]
    assert "Table_2 (no rows)" in table[-1]
    csv_lines = oncall("logs", "query", "T | fork (x) (y)", "-o", "csv").out.splitlines()
    assert csv_lines[1:] == ["PrimaryResult,web-1,3,,,", "PrimaryResult,web-2,4,,,", "Table_1,,,error,9,",
                             "Table_2 (no rows),,,,,"]


def test_a_zero_row_result_is_an_empty_list(sim, oncall):
    sim.add_result("Nothing", one_table(["a:string"], []))
    r = oncall("logs", "query", "Nothing")
    assert r.code == 0 and r.json == []


# ------------------------------------------------------------------ parameters


def test_parameters_of_every_type_are_bound_as_let_statements(sim, oncall):
    sim.add_result("AppRequests", one_table(["n:long"], [[1]]))
    args = ["s=pay\"ments", "i:int=42", "l:long=-9000000000", "r:real=0.5", "b:bool=true",
            "d:datetime=2024-05-01T10:00:00+02:00", "t:timespan=90m", "g:guid=6F9619FF-8B86-D011-B42D-00C04FC964FF",
            'j:dynamic={"k": [1, "x"]}']
    query = "AppRequests | where a == s and b == i and c == l and d == r and e == b and f > d and g < t " \
            "and h == g and k in (j)"
    r = oncall("logs", "query", query, *[x for a in args for x in ("-p", a)])
    assert r.code == 0, r
    (sent,) = sim.queries
    assert sent == ('let s = "pay\\"ments";\n'
                    "let i = int(42);\n"
                    "let l = long(-9000000000);\n"
                    "let r = real(0.5);\n"
                    "let b = true;\n"
                    "let d = datetime(2024-05-01T08:00:00.0000000Z);\n"
                    "let t = timespan(0.01:30:00);\n"
                    "let g = guid(6f9619ff-8b86-d011-b42d-00c04fc964ff);\n"
                    'let j = dynamic({"k":[1,"x"]});\n' + query)


HOSTILE = ['x"; drop table T; //', "a\nT | take 1000000", "\u2028print 1;", "'; union *;", '\\"; print 2 //',
           "```;\nprint 3", "h\"x\"", "} ) ] ;", "@\"\"\"; x", "\x00\x1b[31m\u202e"]


def _assert_one_let(query_sent, name, value, body):
    parts = statements(query_sent)
    assert len(parts) == 1 + len(statements(body)), parts
    prefix = f"let {name} = "
    assert parts[0].startswith(prefix)
    assert read_literal(parts[0][len(prefix):]) == ("string", value)
    assert parts[1:] == statements(body)


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_arrives_as_exactly_one_let_statement(sim, oncall, value):
    sim.add_result("Messages", one_table(["n:long"], [[0]]))
    body = "Messages | where Text == needle | count"
    r = oncall("logs", "query", body, "--param", f"needle={value}")
    assert r.code == 0, r
    _assert_one_let(sim.queries[-1], "needle", value, body)


nasty_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(['"', "'", "\\", "\n", "\r", "\u2028", ";", "//", "```", "@", "h", ")", "|", "let",
                              "x", " ", "\t", "😀", "é"]), max_size=15).map("".join),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=nasty_text)
def test_any_value_through_the_real_cli_arrives_as_one_let_statement(sim, oncall, value):
    sim.add_result("Messages", one_table(["n:long"], [[0]]))
    body = "Messages | where Text == needle | count"
    r = oncall("logs", "query", body, "-p", f"needle={value}")
    assert r.code == 0, r
    _assert_one_let(sim.queries[-1], "needle", value, body)


def test_a_hostile_value_through_the_installed_cli_process(sim):
    sim.add_result("Messages", one_table(["n:long"], [[0]]))
    value = 'x"; Messages | take 100000; print "pwned'
    body = "Messages | where Text has needle | count"
    r = run_process([VENV_BIN / "oncall", "logs", "query", body, "-p", f"needle={value}"])
    assert r.code == 0, r
    _assert_one_let(sim.queries[-1], "needle", value, body)


@pytest.mark.parametrize("args, message", [
    (["T | take 5", "-p", "n:int=5"], "parameter(s) n not used by the query"),
    (['T | where s == "n"', "-p", "n=x"], "not used by the query"),          # only inside a string
    (["T | take n", "-p", "n:int=abc"], "parameter 'n' expects int, got 'abc'"),
    (["T | take n", "-p", "n:int=3000000000"], "parameter 'n' expects int"),
    (["T | where t > d", "-p", "d:datetime=yesterday"], "parameter 'd' expects datetime"),
    (["T | take n", "-p", "n:varchar=1"], "unknown type 'varchar'"),
    (["T | take n", "-p", "n=1", "-p", "n=2"], "--param n given twice"),
    (["T | take n", "-p", "no-equals"], "bad --param"),
    (["let n = 1; T | take n", "-p", "n:int=5"], "declares n itself"),
    (["T | take where", "-p", "where:int=5"], "invalid parameter name 'where'"),
    (['T | where s == "abc', "-p", "x=1"], "unterminated string"),
])
def test_parameter_mistakes_fail_before_anything_is_sent(sim, oncall, args, message):
    r = oncall("logs", "query", *args)
    assert r.code == 2, r
    assert message in one_line_error(r) or message in r.err
    assert sim.requests == []


def test_dry_run_shows_the_final_query_and_sends_nothing(sim, oncall):
    r = oncall("logs", "query", "T | where a == s", "-p", 's=x"y', "-t", "1h", "-w", WS, "-w", WS2, "--dry-run")
    assert r.code == 0, r
    assert r.json["dryRun"] is True
    assert r.json["query"] == 'let s = "x\\"y";\nT | where a == s'
    assert r.json["request"] == {"method": "POST", "url": f"{sim.url}/v1/workspaces/{WS}/query",
                                 "body": {"query": r.json["query"], "timespan": "PT3600.0S", "workspaces": [WS2]}}
    assert sim.requests == []
    tsv = oncall("logs", "query", "T | where a == s", "-p", "s=x", "--dry-run", "--query", "query", "-o", "tsv")
    assert tsv.out == 'let s = "x";\nT | where a == s\n'


# ------------------------------------------------------------------ workspaces, timespans, timeouts


def test_timespan_forms_reach_the_service(sim, oncall):
    sim.add_result("T", one_table(["n:long"], [[1]]))
    for given, sent in [("1h", "PT3600.0S"), ("7d", "PT604800.0S"), ("PT30M", "PT1800.0S"), ("P1D", "PT86400.0S"),
                        ("2024-05-01T00:00:00Z/2024-05-02T00:00:00Z",
                         "2024-05-01T00:00:00.000Z/2024-05-02T00:00:00.000Z")]:
        r = oncall("logs", "query", "T", "--timespan", given)
        assert r.code == 0, r
        assert sim.calls[-1].timespan == sent, given


@pytest.mark.parametrize("timespan", ["5x", "PT", "-1h", "2024-05-02T00:00:00Z/2024-05-01T00:00:00Z", "1 fortnight",
                                      "0s", "P1M"])
def test_malformed_timespan_is_a_usage_error(sim, oncall, timespan):
    r = oncall("logs", "query", "T", f"--timespan={timespan}")
    assert r.code == 2, r
    assert "invalid --timespan" in one_line_error(r)
    assert sim.requests == []


def test_workspace_names_from_config_and_cross_workspace_queries(sim, oncall, isolated_home):
    config(isolated_home, f"[logs-workspaces]\nprod = {WS2}\nprod-eu = {WS3}\n")
    sim.add_result("union", one_table(["n:long"], [[2]]))
    r = oncall("logs", "query", "union Heartbeat, Perf | count", "-w", "prod", "-w", "prod-eu", "-w", WS)
    assert r.code == 0, r
    call = sim.calls[-1]
    assert call.workspace == WS2 and call.workspaces == [WS3, WS]
    listed = oncall("logs", "workspaces").json
    assert listed == [{"name": "prod", "workspaceId": WS2, "default": False},
                      {"name": "prod-eu", "workspaceId": WS3, "default": False}]
    unknown = oncall("logs", "query", "T", "-w", "staging")
    assert unknown.code == 3, unknown
    assert "unknown workspace name 'staging' (known: prod, prod-eu)" in one_line_error(unknown)
    assert len(sim.requests) == 1


def test_default_workspace_is_a_mapped_name(sim, oncall, isolated_home, monkeypatch):
    monkeypatch.delenv("ONCALL_LOGS_WORKSPACE")
    config(isolated_home, f"[logs]\nworkspace = prod\n\n[logs-workspaces]\nprod = {WS2}\n")
    sim.add_result("T", one_table(["n:long"], [[1]]))
    assert oncall("logs", "query", "T").code == 0
    assert sim.calls[-1].workspace == WS2
    assert oncall("logs", "workspaces").json[0]["default"] is True
    config(isolated_home, "")
    none = oncall("logs", "query", "T")
    assert none.code == 3 and "no workspace given" in one_line_error(none)


def test_server_timeout_is_the_prefer_header(sim, oncall):
    sim.add_result("T", one_table(["n:long"], [[1]]))
    assert oncall("logs", "query", "T", "--server-timeout", "120").code == 0
    assert sim.calls[-1].prefer == "wait=120"
    bad = oncall("logs", "query", "T", "--server-timeout", "900")
    assert bad.code == 2 and "--server-timeout must be 1..600" in one_line_error(bad)


# ------------------------------------------------------------------ service errors


@pytest.mark.parametrize("status, code, words", [
    (400, 2, "Log Analytics answered 400 BadArgumentError"),
    (403, 4, "Log Analytics answered 403 InsufficientAccessError"),
    (429, 9, "Log Analytics answered 429 ThrottledError"),
    (500, 7, "Log Analytics answered 500 InternalServerError"),
    (503, 7, "Log Analytics answered 503 ServiceUnavailableError"),
])
def test_service_errors_are_one_line_with_their_own_exit_code(sim, oncall, status, code, words):
    sim.add_service_fault(status, retry_after=0 if status in (429, 503) else None, times=None)
    r = oncall("logs", "query", "T", "--retries", "1")
    assert r.code == code, r
    assert words in one_line_error(r)
    expected_tries = 2 if status in (429, 500, 503) else 1   # throttling and 5xx are retried
    assert len(sim.requests) == expected_tries


def test_throttling_is_retried_and_then_succeeds(sim, oncall):
    sim.add_result("T", one_table(["n:long"], [[1]]))
    sim.add_service_fault(429, retry_after=0, times=2)
    r = oncall("logs", "query", "T")
    assert r.code == 0, r
    assert len(sim.requests) == 3 and r.json == [{"n": 1}]


def test_a_query_the_service_rejects_says_why(sim, oncall):
    from simulators.loganalytics import syntax_error
    sim.add_query_error("Heartbeat |", syntax_error("Query could not be parsed", 1, 12, "|"))
    r = oncall("logs", "query", "Heartbeat | | take 1")
    assert r.code == 2, r
    assert "Query could not be parsed at '|' on line [1,12]" in one_line_error(r)


def test_auth_failures(sim, oncall):
    sim.forbidden.add(WS2)
    r = oncall("logs", "query", "T", "-w", WS2)
    assert r.code == 4 and "insufficient access" in one_line_error(r)
    wrong = oncall("logs", "query", "T", "--access-token", "not-the-right-token")
    assert wrong.code == 4, wrong
    assert "refused the credentials (401" in one_line_error(wrong)
    assert "az login" in wrong.err


def test_unknown_workspace_at_the_service_is_not_found(sim, oncall):
    sim.known_workspaces = {WS}
    r = oncall("logs", "query", "T", "-w", WS2)
    assert r.code == 5 and "WorkspaceNotFoundError" in one_line_error(r)


def test_unreachable_and_bad_endpoints(oncall, monkeypatch):
    r = oncall("logs", "query", "T", "--endpoint", f"https://127.0.0.1:{free_port()}", "--access-token", "tok-123456",
               "-w", WS, "--retries", "0")
    assert r.code == 8 and "cannot reach Log Analytics" in one_line_error(r)
    plain = oncall("logs", "query", "T", "--endpoint", "http://127.0.0.1:9", "--access-token", "tok-123456", "-w", WS)
    assert plain.code == 3 and "invalid Log Analytics endpoint" in one_line_error(plain)
    no_ca = oncall("logs", "query", "T", "--access-token", "tok-123456", "-w", WS, "--ca-file", "/nonexistent/ca.pem")
    assert no_ca.code == 3 and "CA bundle '/nonexistent/ca.pem' does not exist" in one_line_error(no_ca)


def test_tls_is_verified(sim, oncall, monkeypatch):
    monkeypatch.delenv("ONCALL_LOGS_CA_FILE")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    r = oncall("logs", "query", "T", "--retries", "0")
    assert r.code == 8 and "CERTIFICATE_VERIFY_FAILED" in one_line_error(r)
    assert sim.queries == []
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_file)   # the CA from the environment works as well
    sim.add_result("T", one_table(["n:long"], [[1]]))
    assert oncall("logs", "query", "T").code == 0


def test_partial_result_prints_what_arrived_then_the_error(sim, oncall):
    sim.add_result("Perf", one_table(["Computer:string"], [["db-1"], ["db-2"]]),
                   error="Partial query failure: Low memory condition")
    r = oncall("logs", "query", "Perf | summarize by Computer")
    assert r.code == 11, r
    assert json.loads(r.out) == [{"Computer": "db-1"}, {"Computer": "db-2"}]
    assert "partial result from Log Analytics: PartialError: Partial query failure: Low memory condition" \
        in one_line_error(r)
    table = oncall("logs", "query", "Perf | summarize by Computer", "-o", "table")
    assert table.code == 11 and "db-2" in table.out


# ------------------------------------------------------------------ --out FILE


def test_out_writes_the_file_in_the_format_of_its_extension(sim, oncall, tmp_path):
    tmp_path = tmp_path / "results"
    tmp_path.mkdir()
    sim.add_result("Heartbeat", [TYPED])
    for name, check in [("r.csv", lambda t: t.splitlines()[0].startswith("TimeGenerated,Computer,Count")),
                        ("r.json", lambda t: json.loads(t)[0]["Props"] == {"a": [1, 2], "b": "x"}),
                        ("r.yaml", lambda t: "Computer: web-1" in t),
                        ("r.md", lambda t: t.startswith("| TimeGenerated")),
                        ("r.tsv", lambda t: t.splitlines()[1].split("\t")[1] == "web-2"),
                        ("r.txt", lambda t: t.splitlines()[1].startswith("-----"))]:
        path = tmp_path / name
        r = oncall("logs", "query", "Heartbeat", "--out", path)
        assert r.code == 0, r
        assert r.json == {"out": str(path), "format": Path(name).suffix[1:].replace("txt", "table"), "rows": 2,
                          "tables": [{"name": "PrimaryResult", "rows": 2}], "partial": False}
        assert check(path.read_text()), name
    forced = oncall("logs", "query", "Heartbeat", "--out", tmp_path / "data.out", "--out-format", "csv")
    assert forced.code == 0 and (tmp_path / "data.out").read_text().startswith("TimeGenerated,")
    summary = oncall("logs", "query", "Heartbeat", "--out", tmp_path / "s.csv", "-o", "table")
    assert summary.out.splitlines()[0].split() == ["File", "Format", "Rows", "Tables", "Partial"]
    # -o says otherwise: it wins over the file's extension
    assert (tmp_path / "s.csv").read_text().splitlines()[1].startswith("-----")
    as_json = oncall("logs", "query", "Heartbeat", "--out", tmp_path / "s.csv", "-o", "json", "--query", "format")
    assert as_json.json == "json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.out", "r.csv", "r.json", "r.md", "r.tsv", "r.txt",
                                                          "r.yaml", "s.csv"]   # no temporary files left


def test_out_is_atomic_and_left_alone_on_failure(sim, oncall, tmp_path):
    tmp_path = tmp_path / "results"
    tmp_path.mkdir()
    path = tmp_path / "keep.csv"
    path.write_text("old,content\n")
    sim.add_service_fault(500, times=None)
    r = oncall("logs", "query", "T", "--out", path, "--retries", "0")
    assert r.code == 7
    assert path.read_text() == "old,content\n" and list(tmp_path.iterdir()) == [path]
    unknown = oncall("logs", "query", "T", "--out", tmp_path / "x.parquet")
    assert unknown.code == 2 and "cannot tell the format" in one_line_error(unknown)
    missing_dir = oncall("logs", "query", "T", "--out", tmp_path / "no" / "such" / "dir.csv", "--retries", "0")
    assert missing_dir.code in (2, 7)


def test_out_with_a_partial_result_keeps_what_arrived(sim, oncall, tmp_path):
    sim.add_result("Perf", one_table(["Computer:string"], [["db-1"]]), error=True)
    path = tmp_path / "partial.csv"
    r = oncall("logs", "query", "Perf", "--out", path)
    assert r.code == 11, r
    assert path.read_text() == "Computer\ndb-1\n"
    assert json.loads(r.out)["partial"] is True and f"{path} has what arrived" in r.err


# ------------------------------------------------------------------ query files and saved queries


TEAM_QUERY = """// ---
// description: Requests of one service slower than a threshold
// timespan: PT6H
// parameters:
//   service: {type: string, help: Cloud role name}
//   slower_than: {type: timespan, default: 2s, help: Duration threshold}
//   max_rows: {type: int, default: 50}
// ---
AppRequests
| where AppRoleName == service and DurationMs > slower_than / 1ms
| take max_rows
"""


def test_query_file_with_and_without_a_header(sim, oncall, tmp_path):
    sim.add_result("AppRequests", one_table(["n:long"], [[1]]))
    plain = tmp_path / "plain.kql"
    plain.write_text("AppRequests | where AppRoleName == svc | count\n")
    r = oncall("logs", "query", f"@{plain}", "-p", "svc=payments")
    assert r.code == 0, r
    assert sim.queries[-1] == 'let svc = "payments";\nAppRequests | where AppRoleName == svc | count\n'
    headed = tmp_path / "slow.kql"
    headed.write_text(TEAM_QUERY)
    r = oncall("logs", "query", f"@{headed}", "-p", "service=payments", "-p", "slower_than=5s")
    assert r.code == 0, r
    assert sim.queries[-1].startswith('let service = "payments";\nlet slower_than = timespan(0.00:00:05);\n'
                                      "let max_rows = int(50);\nAppRequests\n")
    assert sim.calls[-1].timespan == "PT21600.0S"   # the header's default timespan
    wrong = oncall("logs", "query", f"@{headed}", "-p", "service=x", "-p", "max_rows=many")
    assert wrong.code == 2 and "parameter 'max_rows' expects int, got 'many'" in one_line_error(wrong)
    stdin = oncall("logs", "query", "@-", "-p", "svc=web", stdin="AppRequests | where AppRoleName == svc")
    assert stdin.code == 0 and sim.queries[-1] == 'let svc = "web";\nAppRequests | where AppRoleName == svc'
    gone = oncall("logs", "query", f"@{tmp_path / 'missing.kql'}")
    assert gone.code == 2 and "cannot read query file" in one_line_error(gone)


def _team_folder(tmp_path, files):
    folder = tmp_path / "team-repo" / "queries"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_saved_queries_come_from_user_team_and_extensions(sim, oncall, isolated_home, tmp_path):
    team = _team_folder(tmp_path, {"slow-requests.kql": TEAM_QUERY,
                                   "container-logs.kql": "// ---\n// description: team's own\n// ---\nContainerLogV2"})
    user = isolated_home / ".oncall" / "queries"
    user.mkdir(parents=True)
    (user / "slow-requests.kql").write_text(TEAM_QUERY.replace("Requests of one", "My requests of one"))
    config(isolated_home, f"[logs]\nqueries_dir = {team}\n")
    listed = {s["name"]: s for s in oncall("logs", "saved", "list").json}
    assert set(listed) == {"app-failures", "container-logs", "find-tx", "slow-requests"}
    assert listed["find-tx"]["source"] == "shipped:logs"
    assert listed["container-logs"]["source"] == "team" and listed["container-logs"]["overrides"][0].endswith(
        "oncall_logs/queries/container-logs.kql")
    assert listed["slow-requests"]["source"] == "user"
    assert listed["slow-requests"]["description"].startswith("My requests")
    assert listed["slow-requests"]["overrides"] == [str(team / "slow-requests.kql")]
    assert listed["slow-requests"]["parameters"] == [
        {"name": "service", "type": "string", "required": True, "help": "Cloud role name"},
        {"name": "slower_than", "type": "timespan", "required": False, "help": "Duration threshold",
         "default": "0:00:02"},
        {"name": "max_rows", "type": "int", "required": False, "help": "", "default": 50}]
    table = oncall("logs", "saved", "list", "-o", "table").out
    assert "service:string slower_than:timespan=0:00:02 max_rows:int=50" in table
    shown = oncall("logs", "saved", "show", "find-tx").json
    assert shown["query"].lstrip().startswith("// Reads the standard EmailEvents table")
    assert oncall("logs", "saved", "show", "nope").code == 5


def test_saved_run_validates_parameters_against_the_header(sim, oncall, isolated_home, tmp_path):
    config(isolated_home, f"[logs]\nqueries_dir = {_team_folder(tmp_path, {'slow-requests.kql': TEAM_QUERY})}\n")
    sim.add_result("AppRequests", one_table(["OperationName:string", "DurationMs:real"], [["GET /pay", 5123.5]]))
    r = oncall("logs", "saved", "run", "slow-requests", "-p", "service=payments", "-t", "1h")
    assert r.code == 0, r
    assert r.json == [{"OperationName": "GET /pay", "DurationMs": 5123.5}]
    assert sim.queries[-1].startswith('let service = "payments";\nlet slower_than = timespan(0.00:00:02);\n')
    assert sim.calls[-1].timespan == "PT3600.0S"
    same = oncall("logs", "query", "--saved", "slow-requests", "-p", "service=payments", "-t", "1h")
    assert same.json == r.json and sim.queries[-1] == sim.queries[-2]
    sent = len(sim.requests)
    for args, message in [
        ([], "missing parameter(s) service (string: Cloud role name)"),
        (["-p", "service=x", "-p", "colour=red"], "unknown parameter(s) colour: saved query 'slow-requests' declares "
                                                  "service, slower_than, max_rows"),
        (["-p", "service=x", "-p", "max_rows:long=5"], "parameter 'max_rows' is declared int"),
        (["-p", "service=x", "-p", "slower_than=soon"], "parameter 'slower_than' expects timespan"),
    ]:
        bad = oncall("logs", "saved", "run", "slow-requests", *args)
        assert bad.code == 2, (args, bad)
        assert message in one_line_error(bad)
    assert oncall("logs", "saved", "run", "no-such-query").code == 5
    both = oncall("logs", "query", "T", "--saved", "slow-requests")
    assert both.code == 2 and "not both" in both.err
    assert len(sim.requests) == sent


@pytest.mark.parametrize("text, problem", [
    ("// ---\n// parameters:\n//   n: {type: varchar}\n// ---\nT | take n", "unknown type 'varchar'"),
    ("// ---\n// parameters:\n//   n: int\n// ---\nT | take 5", "declared parameter(s) n not used by the query"),
    ("// ---\n// parameters: [oops\n// ---\nT", "header is not valid YAML"),
    ("// ---\n// description: x\nT", "does not start with //"),
    ("// ---\n// parameters:\n//   n: {type: int, default: lots}\n// ---\nT | take n", "bad default"),
    ("// ---\n// colour: red\n// ---\nT", "unknown header key(s) colour"),
    ('// ---\n// description: x\n// ---\nT | where s == "open', "does not parse"),
])
def test_broken_saved_queries_are_listed_and_refused(sim, oncall, isolated_home, tmp_path, text, problem):
    config(isolated_home, f"[logs]\nqueries_dir = {_team_folder(tmp_path, {'broken.kql': text})}\n")
    listed = {s["name"]: s for s in oncall("logs", "saved", "list").json}
    assert problem in listed["broken"]["error"]
    assert "invalid: " in oncall("logs", "saved", "list", "-o", "table").out
    r = oncall("logs", "saved", "run", "broken")
    assert r.code == 3 and problem in one_line_error(r)
    assert sim.requests == []


# ------------------------------------------------------------------ find-tx


EMAILS = one_table(
    ["TransactionId:string", "Time:datetime", "Sender:string", "Recipient:string", "Subject:string",
     "MessageId:string", "DeliveryAction:string"],
    [["5c0bb3a4-8f26-4c1c-a0b9-6d0a3a5e1f11", dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.timezone.utc),
      "noreply@shop.example", "alice@contoso.com", "Your order confirmation #4711", "<abc123@shop.example>",
      "Delivered"]])


def test_find_tx_runs_the_shipped_query_with_the_metadata_bound(sim, oncall):
    sim.add_result("EmailEvents", EMAILS)
    r = oncall("logs", "find-tx", "--to", "Alice@Contoso.com", "--subject", "order confirmation",
               "--after", "2024-05-01T00:00:00Z", "--before", "2024-05-02T00:00:00Z")
    assert r.code == 0, r
    assert r.json == [{"TransactionId": "5c0bb3a4-8f26-4c1c-a0b9-6d0a3a5e1f11", "Time": "2024-05-01T09:30:00Z",
                       "Sender": "noreply@shop.example", "Recipient": "alice@contoso.com",
                       "Subject": "Your order confirmation #4711", "MessageId": "<abc123@shop.example>",
                       "DeliveryAction": "Delivered"}]
    sent = statements(sim.queries[-1])
    assert sent[:7] == ['let sender = ""', 'let recipient = "Alice@Contoso.com"', 'let subject = "order confirmation"',
                        "let after = datetime(2024-05-01T00:00:00.0000000Z)",
                        "let before = datetime(2024-05-02T00:00:00.0000000Z)", 'let message_id = ""',
                        "let max_rows = int(100)"]
    assert sent[7].startswith("EmailEvents") and "NetworkMessageId" in sent[7] and len(sent) == 8
    # the service's time range is exactly the window asked for
    assert sim.calls[-1].timespan == "2024-05-01T00:00:00.000Z/2024-05-02T00:00:00.000Z"
    table = oncall("logs", "find-tx", "--message-id", "abc123@shop.example", "-o", "table").out.splitlines()
    assert table[0].split()[:5] == ["TransactionId", "Time", "Sender", "Recipient", "Subject"]
    assert table[2].startswith("5c0bb3a4-8f26-4c1c-a0b9-6d0a3a5e1f11")
    assert sim.calls[-1].timespan == "PT604800.0S"   # no time given: the saved query's 7 days
    ids = oncall("logs", "find-tx", "--from", "noreply@shop.example", "--after", "3d", "--query", "[].TransactionId",
                 "-o", "tsv")
    assert ids.out == "5c0bb3a4-8f26-4c1c-a0b9-6d0a3a5e1f11\n"
    start, end = sim.calls[-1].timespan.split("/")
    assert dt.datetime.fromisoformat(end.replace("Z", "+00:00")) - dt.datetime.fromisoformat(
        start.replace("Z", "+00:00")) == pytest.approx(dt.timedelta(days=3, minutes=1), abs=dt.timedelta(seconds=5))


def test_find_tx_needs_something_to_look_for(sim, oncall):
    r = oncall("logs", "find-tx")
    assert r.code == 2 and "at least one of --from, --to" in one_line_error(r)
    backwards = oncall("logs", "find-tx", "--after", "2024-05-02T00:00:00Z", "--before", "2024-05-01T00:00:00Z")
    assert backwards.code == 2 and "--before must be later than --after" in one_line_error(backwards)
    bad_time = oncall("logs", "find-tx", "--after", "last tuesday")
    assert bad_time.code == 2 and "invalid --after" in one_line_error(bad_time)
    assert sim.requests == []


def _docs_override():
    """The team override example from docs/logs.md (so the documented example is the tested one)."""
    text = DOCS.read_text()
    match = re.search(r"<!-- find-tx-override: (\S+) -->\s*```kql\n(.*?)```", text, re.DOTALL)
    assert match, "docs/logs.md lost its find-tx override example"
    return match.group(1), match.group(2)


def test_find_tx_override_from_the_docs_points_at_a_teams_table(sim, oncall, isolated_home, tmp_path):
    filename, text = _docs_override()
    folder = _team_folder(tmp_path, {filename: text})
    config(isolated_home, f"[logs]\nqueries_dir = {folder}\nfind_tx_query = {Path(filename).stem}\n\n"
                          f"[logs-workspaces]\nmail = {WS3}\n")
    sim.add_result("MailGateway_CL", one_table(
        ["TransactionId:guid", "Time:datetime", "Sender:string", "Recipient:string", "Subject:string"],
        [[uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100"), dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.timezone.utc),
          "noreply@shop.example", "alice@contoso.com", "Your order confirmation #4711"]]))
    r = oncall("logs", "find-tx", "--to", "alice@contoso.com", "--subject", "order")
    assert r.code == 0, r
    assert r.json[0]["TransactionId"] == "0f0e0d0c-0b0a-0908-0706-050403020100"
    assert sim.calls[-1].workspace == WS3          # the override's own default workspace, by name
    assert "MailGateway_CL" in sim.queries[-1] and "EmailEvents" not in sim.queries[-1]
    assert 'let recipient = "alice@contoso.com";' in sim.queries[-1]
    # the team's query has no parameter for --message-id: say so rather than ignore it
    r = oncall("logs", "find-tx", "--message-id", "<x@y>")
    assert r.code == 2 and "has no parameter 'message_id' for --message-id" in one_line_error(r)


def test_find_tx_override_by_name_in_the_config_dir(sim, oncall, isolated_home):
    user = isolated_home / ".oncall" / "queries"
    user.mkdir(parents=True)
    (user / "find-tx.kql").write_text(
        "// ---\n// parameters:\n//   recipient: {type: string, default: \"\"}\n// ---\n"
        "SmtpLog_CL | where rcpt_s =~ recipient | project TransactionId = tx_s\n")
    sim.add_result("SmtpLog_CL", one_table(["TransactionId:string"], [["TX-1"]]))
    r = oncall("logs", "find-tx", "--to", "bob@contoso.com")
    assert r.code == 0 and r.json == [{"TransactionId": "TX-1"}]
    missing = oncall("logs", "find-tx", "--subject", "invoice")
    assert missing.code == 2 and "has no parameter 'subject' for --subject" in one_line_error(missing)


# ------------------------------------------------------------------ secrets, imports, other doors


def test_the_token_never_prints_even_with_debug(sim, oncall):
    sim.add_result("T", one_table(["n:long"], [[1]]))
    r = oncall("logs", "query", "T", "--debug")
    assert r.code == 0, r
    assert sim.token not in r.out + r.err
    assert "DEBUG" in r.err or "debug" in r.err.lower()
    planted = "planted-Logs-Token-7d3e1b"
    wrong = oncall("logs", "query", "T", "--access-token", planted, "--debug")
    dry = oncall("logs", "query", "T", "--access-token", planted, "--dry-run", "--debug", "-o", "yaml")
    for res in (wrong, dry):
        assert planted not in res.out + res.err
    assert wrong.code == 4 and dry.code == 0
    # the token did go to the service, as a bearer token
    assert sim.requests[-1].headers["Authorization"] == f"Bearer {planted}"


def test_importing_the_operations_does_not_import_the_sdk():
    code = ("import sys, oncall_logs.operations\n"
            "bad = sorted(m for m in sys.modules if m.startswith(('azure', 'yaml', 'requests')))\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_kubectl_plugin_runs_the_same_query(sim):
    sim.add_result("Heartbeat", [TYPED])
    env = {"ONCALL_LOGS_ENDPOINT": sim.url, "ONCALL_LOGS_ACCESS_TOKEN": sim.token, "ONCALL_LOGS_CA_FILE": sim.ca_file,
           "ONCALL_LOGS_WORKSPACE": WS}
    direct = run_process([VENV_BIN / "oncall", "logs", "query", "Heartbeat", "-p", "x=1", "--dry-run"], env=env)
    plugin = run_process([VENV_BIN / "kubectl", "oncall", "logs", "query", "Heartbeat | take x", "-p", "x:int=2",
                          "-o", "csv"], env=env)
    assert direct.code == 2 and "x not used" in direct.err
    assert plugin.code == 0, plugin
    assert plugin.out.splitlines()[0] == "TimeGenerated,Computer,Count,Small,Ratio,Ok,Took,Id,Props"
    assert sim.queries[-1] == "let x = int(2);\nHeartbeat | take x"


def test_az_gives_the_same_json(sim, az):
    sim.add_result("Heartbeat", [TYPED])
    env = {"ONCALL_LOGS_ENDPOINT": sim.url, "ONCALL_LOGS_ACCESS_TOKEN": sim.token, "ONCALL_LOGS_CA_FILE": sim.ca_file,
           "ONCALL_LOGS_WORKSPACE": WS}
    args = ["logs", "query", "Heartbeat | take n", "-p", "n:int=2", "-t", "1h", "-o", "json"]
    ours = run_process([VENV_BIN / "oncall", *args], env=env)
    theirs = az.run("oncall", *args, env=env)
    assert ours.code == 0, ours
    assert theirs.code == 0, theirs
    assert json.loads(theirs.out) == json.loads(ours.out)
    assert sim.queries[-1] == sim.queries[-2] == "let n = int(2);\nHeartbeat | take n"
    bad = az.run("oncall", "logs", "query", "T", "-w", "nope", env=env)
    assert bad.code == 3 and "unknown workspace name 'nope'" in bad.err and "Traceback" not in bad.err
