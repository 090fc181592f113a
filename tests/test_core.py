"""The core on its own: registry, config and profiles, conversion, redaction, errors, confirmation, audit."""
import datetime as dt
import enum
import io
from typing import Annotated

import pytest

from oncall_common import Arg, CancelledError, Context, PartialResultError, UsageError, operation, redact
from oncall_common.config import Config
from oncall_common.convert import format_age, parse_datetime, parse_duration
from oncall_common.frontdoor import commands as fd
from oncall_common.frontdoor.progress import TtyProgress
from oncall_common.registry import REGISTRY, Registry, parse_docstring


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@pytest.fixture
def sample_ops():
    """Operations registered for one test only (removed afterwards so other tests see the real set)."""
    added = []

    def register(name, **kwargs):
        def decorate(func):
            operation(name, **kwargs)(func)
            added.append(name)
            return func
        return decorate
    yield register
    for name in added:
        REGISTRY.operations.pop(name, None)


def test_declaration_becomes_arguments():
    reg = Registry()

    @operation("paint wall", registry=reg, examples=[("Paint", "oncall paint wall 3 --colour red")])
    def paint(ctx, count: Annotated[int, Arg(positional=True)], colour: Colour = Colour.RED,
              layers: list[str] = None, glossy: bool = True, note: Annotated[str, Arg(options=("-n",))] = None,
              tags: Annotated[list[str], Arg(repeat=True)] = None, wait: dt.timedelta = None):
        """Paint a wall.

        Longer words.
        :param count: How many walls.
        :param colour: Which colour.
        """
    spec = reg.operations["paint wall"]
    assert paint.__oncall_operation__ is spec and spec.summary == "Paint a wall." and spec.description == "Longer words."
    args = {name: a.type.settings for name, a in fd.build_arguments(spec, reg)}
    assert args["count"]["options_list"] == [] and args["count"]["type"]("3") == 3
    assert args["colour"]["choices"] == ["red", "green"]
    assert args["layers"]["nargs"] == "*"
    assert args["glossy"]["options_list"] == ["--no-glossy"] and args["glossy"]["action"] == "store_false"
    assert "-n" in args["note"]["options_list"]
    assert args["tags"]["action"] == "append"
    assert args["wait"]["type"]("2h") == dt.timedelta(hours=2)
    assert args["count"]["help"] == "How many walls."
    assert "dry_run" not in args and "profile" in args


def test_docstring_parsing():
    summary, body, params = parse_docstring("""Do it.

    More.
    :param a: First
        continued.
    :param b: Second.
    """)
    assert (summary, body) == ("Do it.", "More.")
    assert params == {"a": "First continued.", "b": "Second."}


def test_durations_and_times():
    assert parse_duration("1d12h") == dt.timedelta(days=1, hours=12)
    assert parse_duration("PT1H30M") == dt.timedelta(minutes=90)
    assert parse_duration("01:00:30") == dt.timedelta(hours=1, seconds=30)
    assert parse_duration("90s") == dt.timedelta(seconds=90)
    for bad in ("", "soon", "5x", "1h junk", "P"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_datetime("2024-01-01T00:00:00").tzinfo is not None
    assert abs((dt.datetime.now(dt.timezone.utc) - parse_datetime("-2h")) - dt.timedelta(hours=2)) < dt.timedelta(seconds=5)
    assert format_age(dt.timedelta(seconds=30)) == "30s" and format_age(dt.timedelta(days=3, hours=4)) == "3d4h"


def test_config_profiles_and_environment(tmp_path):
    cfg = Config(directory=tmp_path, environ={})
    cfg.set("alerts", "url", "http://base")
    cfg.set("alerts", "url", "http://prod", profile="prod")
    assert Config(directory=tmp_path, environ={}).get("alerts", "url") == "http://base"
    prod = Config(directory=tmp_path, profile="prod", environ={})
    assert prod.get("alerts", "url") == "http://prod"
    assert Config(directory=tmp_path, environ={"ONCALL_PROFILE": "prod"}).get("alerts", "url") == "http://prod"
    env = Config(directory=tmp_path, profile="prod", environ={"ONCALL_ALERTS_URL": "http://env"})
    assert env.get("alerts", "url") == "http://env" and env.source("alerts", "url") == "env:ONCALL_ALERTS_URL"
    assert prod.profiles() == ["default", "prod"]
    assert (tmp_path / "config").stat().st_mode & 0o077 == 0


def test_redaction_of_registered_values_and_secret_shapes():
    redact.register_secret("hunter2-registered")
    text = redact.redact("pw=hunter2-registered and basic " + __import__("base64").b64encode(b":hunter2-registered").decode())
    assert "hunter2" not in text
    samples = {
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def": "eyJhbGci",
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0a2V5PT0=;": "c2VjcmV0",
        "https://acct.blob.core.windows.net/c?sv=2024&sig=AbCdEf%2Bsig123&se=x": "AbCdEf",
        "https://user:p4ssw0rd@host/path": "p4ssw0rd",
        "{'Authorization': 'Token token=y_NbAkKc66ryYTWUXYEu'}": "y_NbAkKc66",
        "client_secret=abc123secret": "abc123secret",
    }
    for text, secret in samples.items():
        assert secret not in redact.redact(text), text


def test_argv_secrets_are_registered_before_anything_logs_them():
    redact.register_argv_secrets(["alerts", "list", "--token", "argv-secret-1", "--password=argv-secret-2",
                                  "--account-key", "argv-secret-3"])
    assert redact.redact("argv-secret-1 argv-secret-2 argv-secret-3").count("***") == 3


def test_confirmation(tmp_path):
    cfg = Config(directory=tmp_path, environ={})
    Context(cfg, yes=True, interactive=False).confirm("delete?")  # --yes answers
    with pytest.raises(UsageError, match="--yes"):
        Context(cfg, interactive=False).confirm("delete?")
    err = io.StringIO()
    Context(cfg, interactive=True, stdin=io.StringIO("y\n"), stderr=err).confirm("delete it")
    assert "delete it [y/N]" in err.getvalue()
    with pytest.raises(CancelledError):
        Context(cfg, interactive=True, stdin=io.StringIO("n\n"), stderr=io.StringIO()).confirm("delete it")


def test_progress_bar_draws_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    stream = Tty()
    bar = TtyProgress(total=4, unit="blobs", stream=stream)
    for _ in range(4):
        bar._drawn = 0
        bar.update(1, bytes=1024)
    bar.close()
    assert "4/4 blobs" in stream.getvalue() and "[" + "#" * 24 + "]" in stream.getvalue()


def test_partial_results_are_printed_with_a_non_zero_exit(oncall, sample_ops):
    @sample_ops("sample partial", examples=[("x", "oncall sample partial")],
                table=lambda rows: [{"Name": r["name"]} for r in rows])
    def partial(ctx):
        """Return some rows, then fail."""
        raise PartialResultError("the service stopped after 2 rows: timeout", result=[{"name": "a"}, {"name": "b"}])
    r = oncall("sample", "partial")
    assert r.code == 11
    assert r.json == [{"name": "a"}, {"name": "b"}]
    assert r.err.strip() == "ERROR: the service stopped after 2 rows: timeout"
    r = oncall("sample", "partial", "-o", "table", "--query", "[].name")
    assert r.code == 11 and r.out.split() == ["Result", "--------", "a", "b"]


def test_usage_errors_and_unexpected_errors(oncall, sample_ops):
    @sample_ops("sample typed", examples=[("x", "oncall sample typed --n 2 --colour red")])
    def typed(ctx, n: int = 1, colour: Colour = Colour.RED):
        """Typed arguments."""
        return {"n": n, "colour": colour.value}

    @sample_ops("sample crash", examples=[("x", "oncall sample crash")])
    def crash(ctx):
        """A bug."""
        raise KeyError("oops")
    assert oncall("sample", "typed", "--n", "3", "--colour", "green").json == {"n": 3, "colour": "green"}
    bad = oncall("sample", "typed", "--n", "three")
    assert bad.code == 2 and "--n" in bad.err
    r = oncall("sample", "crash")
    assert r.code == 1 and "unexpected error: KeyError" in r.err and "Traceback" not in r.err
    r = oncall("sample", "crash", "--debug")
    assert r.code == 1 and "Traceback" in r.err


def test_configure_commands_and_profiles(oncall, alertmanager):
    assert oncall("configure", "set", f"alerts.url={alertmanager.url}", "--profile", "prod").code == 0
    assert oncall("alerts", "list").code == 3  # default profile has no URL: a config error
    assert oncall("alerts", "list", "--profile", "prod").code == 0
    assert oncall("configure", "profile", "use", "prod").code == 0
    assert oncall("alerts", "list").code == 0
    shown = oncall("configure", "show").json
    assert {"setting": "alerts.url", "value": alertmanager.url, "profile": "prod"}.items() <= shown[0].items()
    assert [p["name"] for p in oncall("configure", "profile", "list").json if p["active"]] == ["prod"]
    assert oncall("configure", "set", "no-dot-here").code == 2
    assert oncall("configure", "unset", "alerts.nothing").code == 5
    log = oncall("audit", "list", "--query", "[].[command, result]").json
    assert log == [["configure set", "ok"], ["configure profile use", "ok"], ["configure unset", "error"]]


def test_operations_see_the_output_choice_and_keep_their_own_dry_run(oncall, sample_ops):
    @sample_ops("sample fmt", examples=[("x", "oncall sample fmt")])
    def fmt(ctx, dry_run: bool = False):
        """Report what the front door chose.

        :param dry_run: The operation's own flag (it is not a mutation).
        """
        return {"format": ctx.output_format, "explicit": ctx.output_explicit, "dryRun": dry_run,
                "ctxDryRun": ctx.dry_run}
    assert oncall("sample", "fmt").json == {"format": "json", "explicit": False, "dryRun": False, "ctxDryRun": False}
    r = oncall("sample", "fmt", "-o", "yaml", "--dry-run")
    assert "format: yaml" in r.out and "explicit: true" in r.out and "ctxDryRun: false" in r.out
