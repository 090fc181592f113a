"""logs in the demo: what the crash-looping payments pods logged, why requests fail, and the e-mail a customer
says never arrived — through the Log Analytics simulator (TLS, spec-validated; it answers by query text)."""
import datetime as dt
import uuid

from simulators.loganalytics import LogAnalyticsSim

from oncall_common.config import Config

PROD = "3f1c2a9e-5b7d-4e0a-9c1f-6a2b8d4e7f10"
MAIL = "8e2d4c6b-1a3f-4b5d-8e7f-9a0b1c2d3e4f"
POD = "payments-7d9f8-abcde"

CRASH_REASONS = """// ---
// description: Why a service's pods restart (last termination reasons, from KubePodInventory)
// timespan: PT6H
// parameters:
//   namespace: {type: string, help: Kubernetes namespace}
//   pod_prefix: {type: string, help: Pod name prefix}
// ---
KubePodInventory
| where Namespace == namespace and Name startswith pod_prefix
| summarize Restarts = max(PodRestartCount), LastReason = take_any(ContainerLastStatus) by Name
| order by Restarts desc
"""


def _ago(minutes):
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes)


def start(stack):
    sim = LogAnalyticsSim()
    sim.start()
    stack.cleanup(sim.stop)
    stack.logs = sim
    team = stack.tmp / "sre-team-kql"
    team.mkdir()
    (team / "crash-reasons.kql").write_text(CRASH_REASONS)
    config = Config(directory=stack.env["ONCALL_CONFIG_DIR"])
    config.set("logs-workspaces", "prod", PROD)
    config.set("logs-workspaces", "mail", MAIL)
    config.set("logs", "queries_dir", str(team))
    stack.env.update({"ONCALL_LOGS_ENDPOINT": sim.url, "ONCALL_LOGS_ACCESS_TOKEN": sim.token,
                      "ONCALL_LOGS_CA_FILE": sim.ca_file, "ONCALL_LOGS_WORKSPACE": "prod"})

    sim.add_result("KubePodInventory", [{"name": "PrimaryResult", "columns": [
        "Name:string", "Restarts:long", "LastReason:dynamic"], "rows": [
        [POD, 7, {"reason": "OOMKilled", "exitCode": 137, "finishedAt": _ago(2).strftime("%Y-%m-%dT%H:%M:%SZ")}],
        ["payments-7d9f8-fghij", 0, None]]}], workspace=PROD)
    sim.add_result("ContainerLogV2", [{"name": "PrimaryResult", "columns": [
        "TimeGenerated:datetime", "PodName:string", "ContainerName:string", "LogLevel:string", "Message:string",
        "Computer:string"], "rows": [
        [_ago(2), POD, "payments", "error", "java.lang.OutOfMemoryError: Java heap space (settlement batch 4711)",
         "aks-node-3"],
        [_ago(2.1), POD, "payments", "error", "settlement batch 4711: 182,000 rows loaded into memory", "aks-node-3"],
        [_ago(9), POD, "payments", "error", "java.lang.OutOfMemoryError: Java heap space (settlement batch 4710)",
         "aks-node-3"]]}], workspace=PROD)
    sim.add_result("AppRequests", [{"name": "PrimaryResult", "columns": [
        "OperationName:string", "ResultCode:string", "Failures:long", "FirstSeen:datetime", "LastSeen:datetime",
        "P95DurationMs:real"], "rows": [
        ["POST /checkout/pay", "503", 412, _ago(58), _ago(1), 30012.5],
        ["GET /orders/{id}/receipt", "500", 37, _ago(55), _ago(3), 812.0]]}], workspace=PROD)
    sim.add_result("EmailEvents", [{"name": "PrimaryResult", "columns": [
        "TransactionId:string", "Time:datetime", "Sender:string", "Recipient:string", "Subject:string",
        "MessageId:string", "DeliveryAction:string"], "rows": [
        [str(uuid.UUID("5c0bb3a4-8f26-4c1c-a0b9-6d0a3a5e1f11")), _ago(47), "noreply@shop.example",
         "alice@contoso.com", "Your order confirmation #88412", "<88412.conf@shop.example>", "Blocked"]]}],
        workspace=MAIL)


def steps(stack):
    return [
        ("Saved KQL: shipped with oncall, and the team's own (from its repo)",
         ["logs", "saved", "list", "-o", "table"]),
        ("Why do the payments pods restart? (the team's saved query, parameters checked against its header)",
         ["logs", "saved", "run", "crash-reasons", "-p", "namespace=shop", "-p", "pod_prefix=payments", "-o", "table"]),
        ("What they logged before dying: error lines of the last hour",
         ["logs", "saved", "run", "container-logs", "-p", "namespace=shop", "-p", "pod_prefix=payments",
          "-p", "level=error", "-t", "1h", "-o", "table"]),
        ("Which requests fail for customers", ["logs", "saved", "run", "app-failures", "-p", "service=payments",
                                               "-o", "table"]),
        ("Values are bound as typed let-statements, never pasted in: see what would be sent",
         ["logs", "query", "AppRequests | where AppRoleName == svc and DurationMs > slow | take n",
          "-p", 'svc=payments"; drop', "-p", "slow:real=5000", "-p", "n:int=20", "--dry-run",
          "--query", "query", "-o", "tsv"]),
        ("Support: alice@contoso.com never got her order confirmation. Find the e-mail's transaction id",
         ["logs", "find-tx", "--to", "alice@contoso.com", "--subject", "order confirmation", "--after", "1d",
          "-w", "mail", "-o", "table"]),
        ("Just the id, for the ticket", ["logs", "find-tx", "--to", "alice@contoso.com", "--subject",
                                         "order confirmation", "--after", "1d", "-w", "mail",
                                         "--query", "[0].TransactionId", "-o", "tsv"]),
    ]
