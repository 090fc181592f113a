"""`az oncall devops ...` through the real azure-cli gives the same JSON as `oncall devops ...`
(scripts/build-wheels makes the wheel az installs)."""
import json

from support.cli import VENV_BIN, run_process


def test_az_oncall_devops_gives_the_same_json_and_exit_codes(sim, az):
    sim.add_release_definition("payments-api", envs=["Dev", "Prod"])
    item = sim.add_work_item("Product Backlog Item", {"System.Title": "payments crash", "System.Tags": "oncall",
                                                      "System.AssignedTo": "jamal@contoso.com"})
    commands = [["devops", "workitem", "show", str(item.id)],
                ["devops", "workitem", "list", "--tag", "oncall", "--query", "[].{id: id, title: fields.\"System.Title\"}"],
                ["devops", "context"]]
    for args in commands:
        ours = run_process([VENV_BIN / "oncall", *args, "-o", "json"])
        theirs = az.run("oncall", *args, "-o", "json")
        assert ours.code == 0 and theirs.code == 0, (ours, theirs)
        assert json.loads(ours.out) == json.loads(theirs.out)
    # a mutation through az: the same request, the same change
    r = az.run("oncall", "devops", "release", "create", "--definition", "payments-api", "--deploy-to", "Dev", "--wait",
               "--query", "deployment.outcome", "-o", "tsv")
    assert r.code == 0, r
    assert r.out.strip() == "succeeded" and sim.releases[1].env("Dev").status == "succeeded"
    # errors keep the suite's exit codes and one line, and the PAT never shows
    bad = az.run("oncall", "devops", "workitem", "move", str(item.id), "--column", "Nowhere", "--debug")
    assert bad.code == 2 and "'Nowhere' is not a column" in bad.err and "Traceback" not in bad.err
    assert sim.pat not in bad.out + bad.err
    assert sim.work_items[item.id].rev == 1
