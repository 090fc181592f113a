"""devops in the demo: file a backlog item for the crash-looping payments pod (restart evidence in its
description), move it to Doing on the team's board, assign it, then deploy the fixed release to the next
environment and approve it — against the Azure DevOps simulator, through the real SDK."""
from simulators.devops import DevOpsSimulator

EVIDENCE = """\
## payments crash-loop (INC-4711)

The `payments` pod in `shop` (prod) restarts every ~2 minutes:

- `payments-7d9f8-abcde`: **5 restarts** in 10 minutes, last state `OOMKilled` (exit code 137)
- memory limit `256Mi`; the checkout burst peaks at ~310Mi
- 5xx ratio on `/checkout` at 12% while it restarts

Fix: raise the limit to `512Mi` (payments-api build 20240611.2, already in Staging).
"""


def start(stack):
    sim = DevOpsSimulator(org="contoso", project="Shop", pat="demo-pat-7f3c9a21",
                          me=("Alice Chen", "alice@contoso.com"), team="Payments", run_seconds=1.5)
    sim.start()
    stack.cleanup(sim.stop)
    sim.add_identity("Jamal Hartnett", "jamal@contoso.com")
    # the team's board has a Doing column (work in progress: the Committed state)
    sim.add_board_column("Doing", {"Product Backlog Item": "Committed", "Bug": "Committed"}, after="Committed")
    sim.add_work_item("Bug", {"System.Title": "checkout latency above 1s at peak", "System.Tags": "payments",
                              "System.AssignedTo": "jamal@contoso.com", "System.IterationPath": "Shop\\Sprint 2"})
    definition = sim.add_release_definition("payments-api", envs=["Dev", "Staging", "Prod"],
                                            approvals={"Prod": ["alice@contoso.com"]}, artifacts=["_payments-ci"])
    old = sim.create_release(definition.id, "weekly release")
    for env in ("Dev", "Staging", "Prod"):
        sim.complete_deployment(old.id, env)
    fixed = sim.create_release(definition.id, "INC-4711: payments memory limit 512Mi",
                               [{"alias": "_payments-ci", "instanceReference": {"id": "20240611.2",
                                                                                "name": "20240611.2"}}])
    for env in ("Dev", "Staging"):
        sim.complete_deployment(fixed.id, env)
    stack.devops = sim
    stack.devops_release = fixed.id
    evidence = stack.tmp / "payments-evidence.md"
    evidence.write_text(EVIDENCE)
    stack.devops_evidence = str(evidence)
    stack.env.update({"ONCALL_DEVOPS_ORG": sim.url, "ONCALL_DEVOPS_PROJECT": sim.project,
                      "AZURE_DEVOPS_EXT_PAT": sim.pat})


def _item(stack):
    return str(max(stack.devops.work_items))


def steps(stack):
    release = str(stack.devops_release)
    return [
        ("File a backlog item for the crash-looping pod, the restart evidence in its description",
         lambda s: ["devops", "workitem", "create", "--type", "Product Backlog Item",
                    "--title", "payments pod crash-loops: OOMKilled at checkout peak",
                    "--description", "@" + s.devops_evidence, "--tags", "oncall", "payments", "INC-4711",
                    "--iteration", "@current", "--field", "Priority=1", "-o", "table"]),
        ("Move it to Doing on the Payments board (the board's column field, and the state it maps to)",
         lambda s: ["devops", "workitem", "move", _item(s), "--column", "Doing", "--comment",
                    "On-call is on it: limit fix in payments-api 20240611.2", "-o", "table"]),
        ("Assign it to the payments owner (by name: the identity is looked up, ambiguity refused)",
         lambda s: ["devops", "workitem", "assign", _item(s), "Jamal Hartnett", "-o", "table"]),
        ("Where the fixed release stands: Dev and Staging done, Prod next",
         ["devops", "release", "show", release, "-o", "table"]),
        ("Deploy it to the next environment: Prod waits for an approval",
         ["devops", "release", "deploy", release, "--env", "next", "--comment", "INC-4711 memory limit fix",
          "-o", "table"]),
        ("Approve it and follow the deployment to the end (exit code by outcome)",
         ["devops", "release", "approve", release, "--env", "Prod", "--comment", "INC-4711 verified in Staging",
          "--wait", "-o", "table"]),
        ("The work item now", lambda s: ["devops", "workitem", "show", _item(s), "-o", "yaml",
                                         "--query", "{id: id, state: fields.\"System.State\", "
                                                    "column: fields.\"System.BoardColumn\", "
                                                    "assignedTo: fields.\"System.AssignedTo\".displayName, "
                                                    "comments: comments[].text}"]),
    ]
