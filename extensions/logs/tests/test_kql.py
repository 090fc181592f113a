"""Property and example tests for oncall_logs.kql: literals round-trip, and no
value can add a statement to a bound query."""

from __future__ import annotations

import json
import math
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oncall_logs.kql import (  # noqa: E402
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    TIMESPAN_MAX,
    KqlSyntaxError,
    ParameterError,
    bind,
    is_identifier,
    literal,
    parse_timespan,
    parse_timespan_arg,
    parse_value,
    read_literal,
    statements,
    tokens,
)

settings.register_profile("kql", deadline=None, max_examples=150)
settings.load_profile("kql")

# ---------------------------------------------------------------- strategies

# Pieces that have broken naive escapers: quotes of every KQL form, escapes,
# line breaks KQL knows (CR, LF, U+2028, U+2029), statement and comment syntax.
NASTY = [
    '"', "'", "\\", "\\\"", "\\'", "\\u0022", "\n", "\r", "\r\n", "\t", "\u2028", "\u2029", "\x85",
    "\x00", "\x7f", "\u202e", "\u200b", "\ufeff", ";", "|", "//", "/*", "*/", "```", "@\"", "h\"",
    "h'", "\"\"", ")", "(", "{", "}", "[", "]", "let x = 1;", "drop table T", "union *", "where",
    "print", "datetime(", "dynamic(", "é", "日本", "😀", "\U000e0001", " ", "#connect",
]

text_values = st.one_of(
    st.text(),  # hypothesis leaves out surrogates by default
    st.lists(st.sampled_from(NASTY), max_size=12).map("".join),
    st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=3)), max_size=10).map("".join),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(LONG_MIN, LONG_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    text_values,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(text_values, children, max_size=4),
    ),
    max_leaves=12,
)

offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
)
datetimes = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
    timezones=st.one_of(st.none(), st.just(timezone.utc), offsets),
)


def typed_values(kql_type: str) -> st.SearchStrategy:
    return {
        "string": text_values,
        "int": st.integers(INT_MIN, INT_MAX),
        "long": st.integers(LONG_MIN, LONG_MAX),
        "real": st.floats(allow_nan=True, allow_infinity=True),
        "bool": st.booleans(),
        "datetime": datetimes,
        "timespan": st.timedeltas(min_value=timedelta(0), max_value=TIMESPAN_MAX),
        "guid": st.uuids(),
        "dynamic": json_values,
    }[kql_type]


TYPES = ["string", "int", "long", "real", "bool", "datetime", "timespan", "guid", "dynamic"]
typed_pairs = st.sampled_from(TYPES).flatmap(lambda t: st.tuples(st.just(t), typed_values(t)))
nullable_pairs = st.sampled_from(TYPES[1:]).map(lambda t: (t, None))


def expected(kql_type: str, value):
    if kql_type == "datetime":
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if kql_type == "int" or kql_type == "long":
        return value
    return value


def same(kql_type: str, a, b) -> bool:
    if kql_type == "real":
        return repr(float(a)) == repr(b)  # nan == nan, -0.0 != 0.0
    if kql_type == "dynamic":
        return json.dumps(a) == json.dumps(b)  # strict: 1 vs 1.0 vs true differ
    if kql_type == "datetime":
        return a == b and b.tzinfo == timezone.utc
    return type(a) is type(b) and a == b


# ------------------------------------------------------------ literal round trip


@given(typed_pairs)
def test_every_literal_round_trips(pair):
    kql_type, value = pair
    text = literal(value, kql_type)
    read_type, read_value = read_literal(text)
    assert read_type == kql_type
    assert same(kql_type, expected(kql_type, value), read_value)


@given(typed_pairs)
def test_a_literal_is_one_token_and_one_statement(pair):
    kql_type, value = pair
    text = literal(value, kql_type)
    assert statements(text) == [text]
    assert not any(ch in text for ch in "\r\n\u2028\u2029")
    toks = list(tokens(text))
    if kql_type != "dynamic":
        assert len(toks) == 1 and toks[0].start == 0 and toks[0].end == len(text)
    else:
        assert toks[0].text == "dynamic" and toks[-1].text == ")" and toks[-1].end == len(text)


@given(nullable_pairs)
def test_typed_nulls_round_trip(pair):
    kql_type, _ = pair
    assert read_literal(literal(None, kql_type)) == (kql_type, None)


@given(text_values)
def test_obfuscated_strings_round_trip(value):
    text = literal(value, "string", obfuscate=True)
    assert text.startswith('h"')
    assert read_literal(text) == ("string", value)
    assert statements(text) == [text]


@given(text_values)
def test_string_body_has_only_valid_escapes_and_no_quote(value):
    body = literal(value, "string")[1:-1]
    i = 0
    while i < len(body):
        assert body[i] not in '"\r\n\u2028\u2029'
        if body[i] == "\\":
            nxt = body[i + 1]
            assert nxt in '\\"nrtuU'
            i += {"u": 6, "U": 10}.get(nxt, 2)
        else:
            i += 1


# ----------------------------------------------------------------------- bind

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(is_identifier)

# Query fragments that contain statement and comment syntax inside strings,
# comments and brackets: none of them may split a statement.
QUERY_NOISE = [
    '"a;b"', "'c;d'", '@"e;""f"', "@'g;''h'", "h'i;j'", 'H@"k;l"', "```m;\nn```", "'\\';'", '"\\\\"',
    "// comment; with ;\n", "datetime(2024-01-01)", "toscalar(T | take 1)", "[\"col;x\"]",
    "dynamic({\"a;\": [1, 2]})", "1h", "x.name", "| where y == 'z'", "#connect foo;\n",
]


@st.composite
def bound_queries(draw):
    names = draw(st.lists(identifiers, unique=True, max_size=5))
    params = {name: draw(typed_pairs) for name in names}
    count = draw(st.integers(1, 4))
    stmts = []
    for index in range(count):
        parts = [draw(st.sampled_from(["T", "print 1", "Perf", "range i from 1 to 3 step 1"]))]
        parts += draw(st.lists(st.sampled_from(QUERY_NOISE), max_size=4))
        stmts.append(" ".join(parts))
    for name in names:  # every parameter is used somewhere
        slot = draw(st.integers(0, count - 1))
        stmts[slot] += f" | where c == {name}"
    query = ";\n".join(stmts) + draw(st.sampled_from(["", ";", "\n", "; // trailing;\n"]))
    return query, params


@given(bound_queries())
def test_bind_adds_exactly_one_statement_per_parameter(case):
    query, params = case
    bound = bind(query, params)
    got = statements(bound)
    lets = [f"let {name} = {literal(value, kql_type)}" for name, (kql_type, value) in params.items()]
    assert got[: len(params)] == lets
    assert got[len(params):] == statements(query)
    assert len(got) == len(params) + len(statements(query))
    for statement, (name, (kql_type, value)) in zip(got, params.items()):
        prefix = f"let {name} = "
        assert statement.startswith(prefix)
        read_type, read_value = read_literal(statement[len(prefix):])
        assert read_type == kql_type and same(kql_type, expected(kql_type, value), read_value)


@given(st.lists(identifiers, unique=True, min_size=1, max_size=3), st.text(), st.data())
def test_no_value_adds_a_statement_whatever_follows(names, tail, data):
    # an arbitrary (even unbalanced) query tail cannot change how the let lines split
    query = "T | where " + " and ".join(names) + ";\n" + tail
    try:
        query_statements = statements(query)
    except KqlSyntaxError:
        return
    params = {name: data.draw(typed_pairs) for name in names}
    try:
        bound = bind(query, params)
    except ParameterError as exc:  # only if the random tail happens to say "let <name>"
        assert "itself with let" in str(exc)
        return
    got = statements(bound)
    assert got[: len(names)] == [f"let {n} = {literal(v, t)}" for n, (t, v) in params.items()]
    assert got[len(names):] == query_statements


@given(st.text())
def test_tokenizer_never_fails_except_on_broken_literals(text):
    try:
        statements(text)
    except KqlSyntaxError:
        pass


@given(bound_queries())
def test_bind_with_declared_names(case):
    query, params = case
    assert bind(query, params, declared=list(params) + ["unused_extra"]) == bind(query, params)


# --------------------------------------------------------------- bind errors


def test_unused_parameter_is_rejected():
    with pytest.raises(ParameterError, match="n not used"):
        bind("T | take 5", {"n": ("int", 5)})


@pytest.mark.parametrize(
    "query",
    [
        'T | where s == "n"',          # only inside a string
        "T // n\n| take 5",            # only inside a comment
        "T | where d.n == 1",          # a member of d, not the parameter
        "T | where s == @'n'",
        "T | where s == ```\nn\n```",
    ],
)
def test_mentions_outside_identifiers_do_not_count(query):
    with pytest.raises(ParameterError, match="not used"):
        bind(query, {"n": ("int", 5)})


@pytest.mark.parametrize("name", ["1x", "a-b", "x;drop", "", "let", "string", "where", "ä", "a b", "n\n"])
def test_invalid_names_are_rejected(name):
    with pytest.raises(ParameterError, match="invalid parameter name"):
        bind("T | take n", {name: ("int", 5)})


def test_declared_but_missing_parameter():
    with pytest.raises(ParameterError, match="no value given for parameter.*max_rows"):
        bind("T | where x == n | take max_rows", {"n": ("int", 1)}, declared=["n", "max_rows"])


def test_unknown_parameter_against_declared():
    with pytest.raises(ParameterError, match="unknown parameter.*m"):
        bind("T | where x == m", {"m": ("int", 1)}, declared=["n"])


def test_query_that_declares_the_name_itself():
    with pytest.raises(ParameterError, match="declares n itself"):
        bind("let n = 3; T | take n", {"n": ("int", 1)})


def test_empty_query_and_bad_value():
    with pytest.raises(ParameterError, match="empty"):
        bind("  // nothing\n", {})
    with pytest.raises(ParameterError, match="parameter 'n'"):
        bind("T | take n", {"n": ("int", "abc")})
    with pytest.raises(ParameterError, match="parameter 'n'.*int range"):
        bind("T | take n", {"n": ("int", 2**31)})


def test_bind_output_shape_and_obfuscation():
    bound = bind("T | where a == s | take n", {"s": ("string", 'x"; drop'), "n": ("long", 3)}, obfuscate=["s"])
    assert bound == 'let s = h"x\\"; drop";\nlet n = long(3);\nT | where a == s | take n'


def test_broken_query_is_a_syntax_error():
    with pytest.raises(KqlSyntaxError, match="unterminated"):
        bind('T | where s == "abc', {})
    with pytest.raises(KqlSyntaxError):
        statements("print ```never closed")
    with pytest.raises(KqlSyntaxError, match="escape"):
        statements('print "bad \\q escape"')


# ----------------------------------------------------------- tokenizer examples


def test_statements_respects_every_string_form_and_comments():
    query = (
        'print "a;b"; print \'c;d\'; print @"e;""f"; print h\'g;h\'; print ```i;\nj```;\n'
        "// k; l;\nprint 1; let f = () { T | take 1; T }; f"
    )
    assert statements(query) == [
        'print "a;b"', "print 'c;d'", 'print @"e;""f"', "print h'g;h'", "print ```i;\nj```",
        "print 1", "let f = () { T | take 1; T }", "f",
    ]


def test_strings_end_at_a_line_break_like_kql():
    # KQL ends "..." at CR/LF/U+2028/U+2029: a raw one would be an unterminated string
    for brk in "\r\n\u2028\u2029":
        with pytest.raises(KqlSyntaxError):
            statements(f'print "a{brk}"')


@pytest.mark.parametrize(
    "text",
    ['"a" "b"', "int(1); x", '"abc', "int(1", "real(1.5) ", "dynamic([1]) x", "'single'", '@"verbatim"', "TRUE"],
)
def test_reader_rejects_other_forms(text):
    with pytest.raises(ValueError):
        read_literal(text)


# --------------------------------------------------------------- literal errors


@pytest.mark.parametrize(
    "value, kql_type, message",
    [
        ("a\ud800b", "string", "lone surrogate"),
        (None, "string", "needs a str"),
        (2**31, "int", "outside the int range"),
        (True, "int", "needs an int"),
        (2**63, "long", "outside the long range"),
        (timedelta(seconds=-1), "timespan", "negative"),
        (TIMESPAN_MAX + timedelta(days=1), "timespan", "larger"),
        ({"a": float("nan")}, "dynamic", "not finite"),
        ({1: "a"}, "dynamic", "keys must be strings"),
        ([2**64], "dynamic", "64-bit"),
        ({"a": object()}, "dynamic", "JSON data"),
        ("x", "varchar", "unknown KQL type"),
        (5, "int", None),
    ],
)
def test_literal_errors(value, kql_type, message):
    if message is None:
        with pytest.raises(ValueError, match="only string"):
            literal(value, kql_type, obfuscate=True)
        return
    with pytest.raises(ValueError, match=message):
        literal(value, kql_type)


def test_literal_accepts_cli_strings_and_normalises():
    assert literal("2024-01-01T10:00:00+02:00", "datetime") == "datetime(2024-01-01T08:00:00.0000000Z)"
    assert literal("2024-01-01", "datetime") == "datetime(2024-01-01T00:00:00.0000000Z)"
    assert literal("1h", "timespan") == "timespan(0.01:00:00)"
    assert literal("{6F9619FF-8B86-D011-B42D-00C04FC964FF}", "guid") == "guid(6f9619ff-8b86-d011-b42d-00c04fc964ff)"
    assert literal("-inf", "real") == "real(-inf)"
    assert literal('{"a": [1]}', "dynamic") == 'dynamic("{\\"a\\": [1]}")'  # a str IS the JSON value
    assert literal(parse_value('{"a": [1]}', "dynamic"), "dynamic") == 'dynamic({"a":[1]})'


# ------------------------------------------------------------------ parse_value


@pytest.mark.parametrize(
    "text, kql_type, value",
    [
        ("42", "int", 42), (" -7 ", "long", -7), ("1.5", "real", 1.5), ("1e3", "real", 1000.0),
        ("true", "bool", True), ("No", "bool", False), ("abc", "string", "abc"),
        ("2024-02-29T23:59:59.123456Z", "datetime", datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=timezone.utc)),
        ("2024-01-01T00:00:00.1234560Z", "datetime", datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc)),
        ("2024-01-01 05:30-05:00", "datetime", datetime(2024, 1, 1, 10, 30, tzinfo=timezone.utc)),
        ("90m", "timespan", timedelta(minutes=90)),
        ("6f9619ff-8b86-d011-b42d-00c04fc964ff", "guid", uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")),
        ('[1, "a", null]', "dynamic", [1, "a", None]),
    ],
)
def test_parse_value(text, kql_type, value):
    assert parse_value(text, kql_type) == value


@pytest.mark.parametrize(
    "text, kql_type",
    [
        ("abc", "int"), ("1.5", "int"), ("2147483648", "int"), ("1_000", "long"), ("", "real"),
        ("maybe", "bool"), ("2024-13-01", "datetime"), ("yesterday", "datetime"),
        ("2024-01-01T00:00:00.1234567Z", "datetime"), ("30", "timespan"), ("not-a-guid", "guid"),
        ("{bad", "dynamic"), ("NaN", "dynamic"), ("[1e999]", "dynamic"),
    ],
)
def test_parse_value_errors_name_the_parameter(text, kql_type):
    with pytest.raises(ValueError) as info:
        parse_value(text, kql_type, name="n")
    assert str(info.value).startswith(f"parameter 'n' expects {kql_type}, got {text!r}")


def test_parse_value_message_example():
    with pytest.raises(ValueError) as info:
        parse_value("abc", "int", name="n")
    assert str(info.value).startswith("parameter 'n' expects int, got 'abc'")


# -------------------------------------------------------------------- timespans


@pytest.mark.parametrize(
    "text, value",
    [
        ("1h", timedelta(hours=1)), ("7d", timedelta(days=7)), ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)), ("500ms", timedelta(milliseconds=500)), ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)), ("2w", timedelta(days=14)), ("PT1H", timedelta(hours=1)),
        ("P7D", timedelta(days=7)), ("P1DT12H", timedelta(hours=36)), ("pt15m", timedelta(minutes=15)),
        ("PT0.5S", timedelta(milliseconds=500)), ("00:30:00", timedelta(minutes=30)),
        ("1.02:03:04.5", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=500)),
        ("10:15", timedelta(hours=10, minutes=15)),
    ],
)
def test_parse_timespan(text, value):
    assert parse_timespan(text) == value


@pytest.mark.parametrize(
    "text, message",
    [
        ("30", "needs a unit"), ("P1M", "months"), ("P1Y", "years"), ("-1h", "negative"), ("abc", "not a timespan"),
        ("", "empty"), ("5parsecs", "unknown timespan unit"), ("P", "ISO 8601 duration"), ("PT", "ISO 8601 duration"),
        ("25:00:00", "hh:mm:ss"), ("99999999d", "too large"),
    ],
)
def test_parse_timespan_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_timespan(text)


def test_parse_timespan_arg():
    utc = timezone.utc
    assert parse_timespan_arg("1h") == timedelta(hours=1)
    assert parse_timespan_arg("2024-01-01T00:00:00Z/2024-01-02T00:00:00Z") == (
        datetime(2024, 1, 1, tzinfo=utc), datetime(2024, 1, 2, tzinfo=utc))
    assert parse_timespan_arg("2024-01-01/PT6H") == (
        datetime(2024, 1, 1, tzinfo=utc), datetime(2024, 1, 1, 6, tzinfo=utc))
    assert parse_timespan_arg("P1D/2024-01-02T00:00+01:00") == (
        datetime(2023, 12, 31, 23, tzinfo=utc), datetime(2024, 1, 1, 23, tzinfo=utc))
    for bad, message in [("2024-01-02/2024-01-01", "after its start"), ("PT1H/PT2H", "at least one"),
                         ("0m", "longer than zero"), ("2024-01-01/", "START/END"), ("a/b", "ISO 8601")]:
        with pytest.raises(ValueError, match=message):
            parse_timespan_arg(bad)


@given(st.timedeltas(min_value=timedelta(0), max_value=TIMESPAN_MAX))
def test_timespan_literal_contents_parse_back_as_cli_input(value):
    inner = literal(value, "timespan")[len("timespan("):-1]
    assert parse_timespan(inner) == value


@given(datetimes)
def test_datetime_literal_contents_parse_back_as_cli_input(value):
    inner = literal(value, "datetime")[len("datetime("):-1]
    assert parse_value(inner, "datetime") == expected("datetime", value)


def test_real_specials():
    assert literal(math.inf, "real") == "real(+inf)"
    assert literal(-0.0, "real") == "real(-0.0)"
    assert math.isnan(read_literal("real(nan)")[1])
