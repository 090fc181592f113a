"""devops connection, credentials and failures: where org/project come from (flags, config profiles, the
Git remote), secrets never printed, service faults mapped to one-line errors with the documented exit codes,
and the SDK imported only when a command runs."""
import json
import subprocess
import sys
import time

import pytest

from oncall_devops._remote import parse_remote
from support.cli import VENV_BIN, run_process

PBI = "Product Backlog Item"


@pytest.mark.parametrize("url, org, project, repo", [
    ("https://dev.azure.com/contoso/Fabrikam/_git/payments", "https://dev.azure.com/contoso", "Fabrikam", "payments"),
    ("https://contoso@dev.azure.com/contoso/Fabrikam%20Fiber/_git/pay.git", "https://dev.azure.com/contoso",
     "Fabrikam Fiber", "pay"),
    ("git@ssh.dev.azure.com:v3/contoso/Fabrikam/payments", "https://dev.azure.com/contoso", "Fabrikam", "payments"),
    ("ssh://git@ssh.dev.azure.com:22/v3/contoso/Fabrikam/payments", "https://dev.azure.com/contoso", "Fabrikam",
     "payments"),
    ("https://contoso.visualstudio.com/Fabrikam/_git/payments", "https://contoso.visualstudio.com", "Fabrikam",
     "payments"),
    ("https://contoso.visualstudio.com/DefaultCollection/Fabrikam/_git/payments", "https://contoso.visualstudio.com",
     "Fabrikam", "payments"),
    ("contoso@vs-ssh.visualstudio.com:v3/contoso/Fabrikam/payments", "https://contoso.visualstudio.com", "Fabrikam",
     "payments"),
])
def test_azure_repos_remotes_are_recognised(url, org, project, repo):
    parsed = parse_remote(url)
    assert (parsed["organization"], parsed["project"], parsed["repository"]) == (org, project, repo)


@pytest.mark.parametrize("url", ["https://github.com/contoso/payments.git", "git@github.com:contoso/payments.git",
                                 "https://dev.azure.com/contoso", ""])
def test_other_remotes_are_not(url):
    assert parse_remote(url) is None


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_org_and_project_come_from_the_git_remote_of_the_current_directory(devops, tmp_path, monkeypatch):
    repo = tmp_path / "payments"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "remote", "add", "upstream", "https://github.com/contoso/payments.git")
    _git(repo, "remote", "add", "origin", "https://oncall:s3cr3t-in-url@dev.azure.com/contoso/Fabrikam%20Fiber/_git/payments")
    monkeypatch.setenv("AZURE_DEVOPS_EXT_PAT", "pat-for-context-0001")
    monkeypatch.chdir(repo / ".git")  # anywhere inside the repository
    r = devops("context")
    assert r.code == 0, r
    info = r.json
    assert (info["organization"], info["project"]) == ("https://dev.azure.com/contoso", "Fabrikam Fiber")
    assert info["sources"]["organization"] == "git remote origin (https://dev.azure.com/contoso/Fabrikam%20Fiber/_git/payments)"
    assert info["sources"]["project"] == "git remote origin"
    assert info["auth"] == "pat (env AZURE_DEVOPS_EXT_PAT)"
    assert "s3cr3t-in-url" not in r.out + r.err
    # flags win over the remote; a project from the remote is only used with the remote's organization
    r = devops("context", "--project", "Other")
    assert (r.json["organization"], r.json["project"]) == ("https://dev.azure.com/contoso", "Other")
    r = devops("context", "--org", "woodgrove")
    assert (r.json["organization"], r.json["project"]) == ("https://dev.azure.com/woodgrove", None)
    assert r.json["sources"]["organization"] == "argument --org"
    # outside any repository, with nothing configured: a config error that says what to do
    monkeypatch.chdir(tmp_path)
    r = devops("context")
    assert r.code == 3 and "no Azure DevOps organization" in r.err and "devops.org" in r.err


def test_config_per_profile_and_a_project_url(devops, oncall, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZURE_DEVOPS_EXT_PAT", "pat-for-context-0002")
    assert oncall("configure", "set", "devops.org=contoso", "devops.project=Fabrikam", "devops.team=SRE").code == 0
    assert oncall("configure", "set", "devops.org=https://dev.azure.com/woodgrove/Payments", "--profile", "prod").code == 0
    r = devops("context", "-o", "table")
    assert r.code == 0, r
    assert r.out.splitlines()[0].split() == ["Setting", "Value", "Source"]
    info = devops("context").json
    assert (info["organization"], info["project"], info["team"]) == ("https://dev.azure.com/contoso", "Fabrikam", "SRE")
    assert info["sources"]["team"] == "config devops.team" and "config" in info["sources"]["organization"]
    prod = devops("context", "--profile", "prod").json
    assert (prod["organization"], prod["project"]) == ("https://dev.azure.com/woodgrove", "Payments")
    assert prod["sources"]["project"] == "organization URL"
    assert devops("context", "--org", "not a url!").code == 2


def test_without_a_pat_entra_id_is_used_and_its_failure_is_an_auth_error(devops, sim, monkeypatch):
    monkeypatch.delenv("AZURE_DEVOPS_EXT_PAT")
    r = devops("context")
    assert r.code == 0 and r.json["auth"].startswith("entra")
    assert devops("context", "--auth", "pat").code == 3
    # no az login here: DefaultAzureCredential fails and says so in one line. Developer credentials only
    # (azure-identity's AZURE_TOKEN_CREDENTIALS=dev): no managed-identity probe may leave this machine
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "dev")
    monkeypatch.setenv("PATH", "/nonexistent")  # no az, no azd, no pwsh to ask
    r = devops("workitem", "show", "1", "--auth", "entra")
    assert r.code == 4, r
    assert "Microsoft Entra ID sign-in failed" in r.err and len(r.err.strip().splitlines()) == 1


def test_the_pat_never_prints_not_even_with_debug(sim, devops, oncall, tmp_path, monkeypatch):
    item = sim.add_work_item(PBI, {"System.Title": "t"})
    runs = [devops("workitem", "show", item.id, "--debug"),
            devops("workitem", "move", item.id, "--state", "Approved", "--debug", "-o", "table"),
            devops("workitem", "assign", item.id, "@me", "--dry-run", "--debug")]
    # from the config file (a secret setting) and wrong: the 401 path logs headers too
    monkeypatch.delenv("AZURE_DEVOPS_EXT_PAT")
    wrong = "wrong-pat-Zr81Tq55"
    assert oncall("configure", "set", f"devops.pat={wrong}").code == 0
    runs.append(devops("workitem", "show", item.id, "--debug"))
    assert runs[-1].code == 4 and "refused the credentials (401)" in runs[-1].err
    shown = oncall("configure", "show")
    assert wrong not in shown.out
    import base64
    for secret in (sim.pat, wrong):
        forms = {secret, base64.b64encode(f":{secret}".encode()).decode()}
        for r in runs:
            for form in forms:
                assert form not in r.out + r.err, f"{form} leaked"
    assert all("DEBUG" in r.err for r in runs)
    assert runs[0].code == 0 and runs[1].code == 0
    audit = (tmp_path / "home" / ".oncall" / "audit.jsonl").read_text()
    assert "devops workitem move" in audit and sim.pat not in audit


# --------------------------------------------------------------------------- faults

THROTTLED = {"message": "TF400733: The request has been throttled.", "typeKey": "ThrottledException"}


@pytest.mark.parametrize("fault, code, message", [
    (dict(status=403, body={"message": "TF400813: The user is not authorized to access this resource.",
                            "typeKey": "UnauthorizedRequestException"}), 4, "Azure DevOps answered 403: TF400813"),
    (dict(status=404, body={"message": "TF401232: Work item 1 does not exist.", "typeKey": "X"}), 5, "TF401232"),
    (dict(status=429, body=THROTTLED, times=None), 9, "Azure DevOps answered 429: TF400733"),
    (dict(status=429, body=THROTTLED, headers={"Retry-After": "120"}), 9, "(retry after 120 s)"),
    (dict(status=500, body={"message": "boom", "typeKey": "X"}, times=None), 7, "Azure DevOps answered 500: boom"),
    (dict(status=502, body=b"<html>bad gateway</html>", times=None), 7, "Azure DevOps answered 502"),
])
def test_service_faults_are_one_line_errors_with_their_exit_codes(sim, devops, fault, code, message):
    item = sim.add_work_item(PBI, {"System.Title": "t"})
    sim.add_fault(rf"/_apis/wit/workItems/{item.id}$", method="GET", **fault)
    started = time.monotonic()
    r = devops("workitem", "show", item.id)
    assert r.code == code, r
    assert message in r.err and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert time.monotonic() - started < 10


def test_transient_faults_are_retried(sim, devops):
    item = sim.add_work_item(PBI, {"System.Title": "t"})
    throttle = sim.add_fault(rf"/_apis/wit/workItems/{item.id}$", method="GET", status=429, body=THROTTLED,
                             headers={"Retry-After": "1"})
    unavailable = sim.add_fault(rf"/_apis/wit/workItems/{item.id}$", method="GET", status=503, times=2)
    started = time.monotonic()
    r = devops("workitem", "show", item.id)
    assert r.code == 0, r
    assert (throttle.hits, unavailable.hits) == (1, 2) and time.monotonic() - started >= 1.0
    # a PATCH refused with 429 + Retry-After was not applied: it is retried too
    patch_throttle = sim.add_fault(rf"/_apis/wit/workItems/{item.id}$", method="PATCH", status=429, body=THROTTLED,
                                   headers={"Retry-After": "0"})
    assert devops("workitem", "move", item.id, "--state", "Approved").code == 0
    assert patch_throttle.hits == 1 and sim.work_items[item.id].fields["System.State"] == "Approved"


@pytest.mark.parametrize("status, code", [(500, 7), (503, 7), (409, 6), (400, 2), (401, 4)])
def test_a_failed_update_leaves_the_item_unchanged_and_is_not_repeated(sim, devops, writes, status, code):
    item = sim.add_work_item(PBI, {"System.Title": "t"})
    body = {"message": "TF26071: This work item has been changed by someone else since you opened it.",
            "typeKey": "WorkItemRevisionMismatchException"} if status == 409 else b""
    fault = sim.add_fault(rf"/_apis/wit/workItems/{item.id}$", method="PATCH", status=status, body=body, times=None)
    r = devops("workitem", "move", item.id, "--state", "Committed")
    assert r.code == code, r
    assert len(r.err.strip().splitlines()) == 1
    assert fault.hits == 1  # a non-idempotent request the server may have applied is never sent twice
    assert (sim.work_items[item.id].rev, sim.work_items[item.id].fields["System.State"]) == (1, "New")


def test_an_unreachable_organization_fails_fast(devops, monkeypatch):
    from support.cli import free_port
    monkeypatch.setenv("AZURE_DEVOPS_EXT_PAT", "pat-unreachable-01")
    url = f"http://127.0.0.1:{free_port()}/contoso"
    started = time.monotonic()
    r = devops("workitem", "show", "1", "--org", url, "--project", "Fabrikam")
    assert r.code == 8, r
    assert f"cannot reach Azure DevOps at {url}: connection refused" in r.err
    assert time.monotonic() - started < 5


def test_an_unknown_project_or_organization(sim, devops):
    r = devops("workitem", "list", "--project", "Nope")
    assert r.code == 5 and "TF200016" in r.err
    r = devops("workitem", "show", "1", "--org", sim.url.replace("/contoso", "/nobody"))
    assert r.code == 5 and "VS800075" in r.err


# --------------------------------------------------------------------------- imports and a real process


def test_importing_the_operations_does_not_import_the_sdk():
    code = ("import sys, oncall_devops.operations, oncall_devops._client, oncall_devops._format; "
            "print([m for m in ('azure.devops', 'msrest', 'requests', 'azure.identity', 'azure.core') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_devops_help_imports_no_sdk():
    code = ("import sys; from oncall_common.frontdoor.cli import main; "
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    main(['devops', 'workitem', 'create', '--help'])\n"
            "assert 'oncall devops workitem create' in out.getvalue()\n"
            "print([m for m in ('azure.devops', 'msrest') if m in sys.modules])")
    r = run_process([VENV_BIN / "python", "-c", code], env={"ONCALL_NO_HELP_CACHE": "1"})
    assert r.code == 0, r
    assert r.out.strip().splitlines()[-1] == "[]"


def test_a_real_process_creates_and_reads_back(sim):
    r = run_process([VENV_BIN / "oncall", "devops", "workitem", "create", "--type", PBI, "--title", "from a process",
                     "--query", "{id: id, state: fields.\"System.State\"}"])
    assert r.code == 0, r
    created = json.loads(r.out)
    assert created["state"] == "New" and sim.work_items[created["id"]].fields["System.Title"] == "from a process"
    r = run_process([VENV_BIN / "oncall", "devops", "workitem", "move", created["id"], "--state", "Nope"])
    assert r.code == 2 and r.err.startswith("ERROR: ") and len(r.err.strip().splitlines()) == 1
