"""k8s in the demo: find the crash-looping payments pod, read why it died, look at it, reach its alerts."""
import datetime as dt
import http.server
import json
import threading
import time
import urllib.request

from simulators.k8s import K8sSimulator
from support.cli import free_port

NS = "shop"
POD = "payments-7d9f8-abcde"


class _Debug(http.server.BaseHTTPRequestHandler):
    """What the payments container serves on its debug port."""

    def do_GET(self):
        body = json.dumps({"status": "degraded", "heapInUse": "1.9GiB", "heapLimit": "2GiB",
                           "cardBinTable": "loading"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start(stack):
    sim = K8sSimulator().start()
    stack.cleanup(sim.stop)
    stack.k8s = sim
    path = stack.tmp / "home" / ".kube" / "config"
    path.parent.mkdir(parents=True, exist_ok=True)
    sim.write_kubeconfig(path, context="prod", namespace=NS)
    now = dt.datetime.now(dt.timezone.utc)

    sim.add_deployment(NS, "web", replicas=2, labels={"app": "web"})
    sim.add_deployment("kube-system", "coredns", replicas=2, labels={"k8s-app": "kube-dns"}, restarts=1,
                       last_terminated={"reason": "Error", "exitCode": 1, "finishedAt": now - dt.timedelta(days=3)})
    sim.add_deployment(NS, "payments", replicas=0, labels={"app": "payments"})
    pod = sim.add_pod(NS, POD, labels={"app": "payments", "pod-template-hash": "7d9f8"},
                      owner=("ReplicaSet", "payments-7d9f8"), restarts=5, waiting_reason="CrashLoopBackOff",
                      containers=[{"name": "app", "ports": [{"name": "debug", "containerPort": 8081}]}],
                      created=now - dt.timedelta(minutes=14),
                      last_terminated={"reason": "OOMKilled", "exitCode": 137, "signal": 9,
                                       "startedAt": now - dt.timedelta(minutes=3),
                                       "finishedAt": now - dt.timedelta(minutes=2)})
    for offset, line in ((170, "starting payments v2.4.1"), (168, "loading card BIN table (2.1 GiB)"),
                         (140, "WARN heap 1.7GiB of 2GiB"), (121, "fatal error: runtime: out of memory")):
        sim.append_log(NS, POD, "app", line, previous=True, timestamp=now - dt.timedelta(seconds=offset))
    sim.append_log(NS, POD, "app", "starting payments v2.4.1", timestamp=now - dt.timedelta(seconds=20))
    sim.append_log(NS, POD, "app", "loading card BIN table (2.1 GiB)", timestamp=now - dt.timedelta(seconds=19))
    for when, reason, message, kind, count in (
            (14, "Scheduled", f"Successfully assigned {NS}/{POD} to node-1", "Normal", 1),
            (2, "OOMKilling", "Memory cgroup out of memory: Killed process 4242 (payments)", "Warning", 5),
            (1, "BackOff", "Back-off restarting failed container app", "Warning", 9)):
        sim.add_event(NS, pod, reason, message, type=kind, count=count,
                      last_timestamp=now - dt.timedelta(minutes=when))
    sim.add_event(NS, sim.objects["deployments"][(NS, "payments")], "ScalingReplicaSet",
                  "Scaled up replica set payments-7d9f8 to 1", last_timestamp=now - dt.timedelta(minutes=14))

    debug = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Debug)
    threading.Thread(target=debug.serve_forever, daemon=True).start()
    stack.cleanup(debug.shutdown)
    sim.portforward_targets[(NS, POD)] = {8081: ("127.0.0.1", debug.server_address[1])}
    stack.k8s_debug_port = free_port()

    if getattr(stack, "alertmanager", None) is not None:  # Alertmanager, as the operator deploys it
        sim.add_service("monitoring", "alertmanager-operated", labels={"operated-alertmanager": "true"},
                        selector={"app.kubernetes.io/name": "alertmanager"},
                        ports=[{"name": "web", "port": 9093, "targetPort": 9093}])
        sim.proxy_targets[("monitoring", "alertmanager-operated")] = stack.alertmanager.url


def _port_forward(stack):
    """The port-forward step; a client in the background asks the debug endpoint through it."""
    port = stack.k8s_debug_port

    def client():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/debug/vars", timeout=5) as resp:
                    stack.k8s_debug_answer = json.loads(resp.read())
                    return
            except OSError:
                time.sleep(0.1)  # not listening yet

    threading.Thread(target=client, daemon=True).start()
    return ["k8s", "port-forward", POD, f"{port}:debug", "--stop-after", "3s"]


def steps(stack):
    steps = [
        ("Which containers keep restarting, cluster-wide? (most recent first)", ["k8s", "restarts", "-A", "-o", "table"]),
        ("Why did payments die? The logs of its previous (crashed) container",
         ["k8s", "logs", "deployment/payments", "--previous", "--timestamps"]),
        ("What the cluster saw: events of the deployment and its pods",
         ["k8s", "events", "deployment/payments", "-o", "table"]),
        ("It is starting again: its current logs", ["k8s", "logs", "deployment/payments", "--tail", "5"]),
        ("Its debug port, no kubectl port-forward needed (a client asks /debug/vars; stops after 3s here)",
         _port_forward),
    ]
    if getattr(stack, "alertmanager", None) is not None:
        steps.append(("The alerts about the shop namespace, from the Alertmanager inside the cluster "
                      "(service proxy, no port-forward)",
                      ["alerts", "list", "namespace=shop", "--in-cluster", "-o", "table"]))
    return steps
