"""logs -f and port-forward as real processes: rollouts, pods that go away, cut streams, Ctrl-C, closed pipes."""
import re
import socket
import subprocess
import threading
import time

import pytest

from support.cli import VENV_BIN, free_port


def lines_of(run):
    return [line for line in run.out if line]


# ---------------------------------------------------------------------- logs -f


def test_follow_picks_up_pods_of_a_rollout_and_says_when_one_goes_away(sim, kubeconfig, streaming):
    sim.add_deployment("team", "web", replicas=2, labels={"app": "web"})
    old = sorted(name for (ns, name) in sim.objects["pods"] if ns == "team")
    for pod in old:
        sim.append_log("team", pod, "app", f"{pod} booted")
    run = streaming("k8s", "logs", "-l", "app=web", "-f")
    run.wait_for(lambda r: len(lines_of(r)) == 2, what="the first lines")
    assert sorted(lines_of(run)) == [f"[{pod}/app] {pod} booted" for pod in old]
    # the rollout: a new pod appears, an old one goes away, lines keep coming from all that live
    sim.add_pod("team", "web-new-1", labels={"app": "web"}, owner=("ReplicaSet", "web-new"))
    sim.append_log("team", "web-new-1", "app", "new pod serving")
    run.wait_for(lambda r: "[web-new-1/app] new pod serving" in r.out, what="the new pod's line")
    sim.delete_pod("team", old[0])
    run.wait_for(lambda r: any(f"pod {old[0]} went away" in e for e in r.err), what="the went-away message")
    for i in range(20):
        sim.append_log("team", old[1], "app", f"old line {i}")
        sim.append_log("team", "web-new-1", "app", f"new line {i}")
    run.wait_for(lambda r: len(lines_of(r)) == 43, what="every line")
    assert any("now following new pod web-new-1" in e for e in run.err)
    assert run.interrupt() == 0
    assert "Traceback" not in "\n".join(run.err)
    out = lines_of(run)
    assert len(out) == len(set(out)) == 43  # each line once
    assert [line for line in out if "new line" in line] == [f"[web-new-1/app] new line {i}" for i in range(20)]


def test_follow_of_a_deleted_pod_ends_with_a_message(sim, kubeconfig, streaming):
    sim.add_pod("team", "lonely")
    sim.append_log("team", "lonely", "app", "first")
    run = streaming("k8s", "logs", "lonely", "-f", "--no-prefix")
    run.wait_for(lambda r: r.out == ["first"], what="the first line")
    sim.append_log("team", "lonely", "app", "last words")
    sim.delete_pod("team", "lonely")
    assert run.wait(10) == 0
    assert run.out == ["first", "last words"]
    assert any("pod lonely went away" in e for e in run.err)
    assert "Traceback" not in "\n".join(run.err)


def test_a_cut_stream_resumes_after_the_last_line_delivered(sim, kubeconfig, streaming):
    sim.add_pod("team", "chatty")
    for i in range(5):
        sim.append_log("team", "chatty", "app", f"line {i}")
    sim.cut_log_stream("team", "chatty", "app", after_lines=2)
    run = streaming("k8s", "logs", "chatty", "-f", "--no-prefix")
    run.wait_for(lambda r: len(r.out) == 5, what="the lines before and after the cut")
    sim.cut_log_stream("team", "chatty", "app", after_lines=1)  # and once more, mid-stream
    for i in range(5, 10):
        sim.append_log("team", "chatty", "app", f"line {i}")
    run.wait_for(lambda r: len(r.out) == 10, what="the later lines")
    time.sleep(0.5)
    assert run.out == [f"line {i}" for i in range(10)]  # no gap, no duplicate
    log_calls = [r for r in sim.requests if r.path.endswith("/chatty/log")]
    assert len(log_calls) >= 3 and "sinceTime" in log_calls[-1].query
    assert run.interrupt() == 0


def test_follow_with_the_api_failing_says_so_and_exits(sim, kubeconfig, streaming):
    sim.add_fault(r"/pods$", status=503, times=None, body={"kind": "Status", "apiVersion": "v1", "code": 503,
                                                           "status": "Failure", "message": "etcd is sad"})
    run = streaming("k8s", "logs", "-l", "app=web", "-f")
    assert run.wait(20) == 7
    assert run.err[-1].startswith("ERROR: the Kubernetes API answered 503") and "etcd is sad" in run.err[-1]
    assert "Traceback" not in "\n".join(run.err)
    sim.faults.clear()


def test_follow_into_a_closed_pipe_exits_quietly(sim, kubeconfig):
    sim.add_pod("team", "talker")
    sim.append_log("team", "talker", "app", "one")
    proc = subprocess.Popen([str(VENV_BIN / "oncall"), "k8s", "logs", "talker", "-f"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"[talker/app] one\n"
    proc.stdout.close()  # `| head -1`
    for i in range(50):
        sim.append_log("team", "talker", "app", f"more {i}")
    try:
        assert proc.wait(15) == 0
    finally:
        proc.kill()
    err = proc.stderr.read().decode()
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


# ---------------------------------------------------------------------- port-forward


class Echo:
    """A TCP server standing in for a pod's port: answers every chunk with TAG:chunk."""

    def __init__(self, tag):
        self.tag = tag.encode()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn):
        with conn:
            try:
                while data := conn.recv(4096):
                    conn.sendall(self.tag + b":" + data)
            except OSError:
                pass

    def close(self):
        self.listener.close()


@pytest.fixture
def echo():
    servers = []

    def make(tag):
        servers.append(Echo(tag))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def talk(port, message=b"hello", timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(message)
        got = b""
        while b":" not in got or not got.endswith(message):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got


def forwarded_ports(run):
    return {m.group(2): int(m.group(1)) for line in run.out
            for m in [re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\S+)$", line)] if m}


def test_port_forward_moves_to_a_new_ready_pod_when_its_pod_goes_away(sim, kubeconfig, streaming, echo):
    first, second = echo("first"), echo("second")
    sim.add_deployment("team", "db", replicas=1, labels={"app": "db"})
    (old,) = [name for (ns, name) in sim.objects["pods"] if ns == "team"]
    sim.portforward_targets[("team", old)] = {5432: ("127.0.0.1", first.port)}
    run = streaming("k8s", "port-forward", "deployment/db", ":5432")
    run.wait_for(lambda r: "5432" in forwarded_ports(r), what="the Forwarding line")
    port = forwarded_ports(run)["5432"]
    assert talk(port) == b"first:hello"
    held = socket.create_connection(("127.0.0.1", port), timeout=5)
    held.sendall(b"x")
    assert held.recv(100) == b"first:x"
    # the pod is replaced: a new one comes up, the old one is deleted
    sim.add_pod("team", "db-replacement", labels={"app": "db"})
    sim.portforward_targets[("team", "db-replacement")] = {5432: ("127.0.0.1", second.port)}
    assert talk(port) == b"first:hello"  # the old pod is still there and ready: kept
    sim.delete_pod("team", old)
    run.wait_for(lambda r: any(f"pod {old} went away: reconnected, forwarding to pod db-replacement" in e
                               for e in r.err), what="the reconnect message")
    assert talk(port, b"still flowing") == b"second:still flowing"
    assert held.recv(100) == b""  # connections to the pod that went away are closed
    held.close()
    assert run.interrupt() == 0
    assert "Traceback" not in "\n".join(run.err)
    with pytest.raises(OSError):
        talk(port)  # the listener is gone


def test_port_forward_a_service_port_to_its_named_target_port_several_at_once(sim, kubeconfig, streaming, echo):
    web, metrics = echo("web"), echo("metrics")
    sim.add_statefulset("team", "api", replicas=1, labels={"app": "api"}, containers=[
        {"name": "app", "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}]}])
    sim.add_service("team", "api", selector={"app": "api"}, ports=[
        {"name": "http", "port": 80, "targetPort": "http"}, {"name": "metrics", "port": 9090, "targetPort": 9100}])
    sim.portforward_targets[("team", "api-0")] = {8080: ("127.0.0.1", web.port), 9100: ("127.0.0.1", metrics.port)}
    run = streaming("k8s", "port-forward", "svc/api", ":80", ":metrics")
    run.wait_for(lambda r: len(forwarded_ports(r)) == 2, what="two Forwarding lines")
    ports = forwarded_ports(run)
    assert talk(ports["80"], b"GET /") == b"web:GET /"
    assert talk(ports["metrics"]) == b"metrics:hello"
    requests = [r for r in sim.requests if r.path.endswith("/portforward")]
    assert sorted(r.query["ports"][0] for r in requests) == ["8080", "9100"]  # the pod's ports, as kubectl resolves
    assert run.interrupt() == 0


def test_port_forward_from_python(sim, kubeconfig, echo):
    from oncall_k8s._client import connect
    from oncall_k8s._targets import resolve
    from oncall_k8s.portforward import PortForwarder
    server = echo("pod")
    sim.add_pod("team", "solo")
    sim.portforward_targets[("team", "solo")] = {7000: ("127.0.0.1", server.port)}
    kube = connect()
    fixed = free_port()
    with PortForwarder(kube, resolve(kube, "solo"), [f"{fixed}:7000", ":7000"], info=print) as pf:
        assert pf.pod_name == "solo"
        assert [m.bound for m in pf.mappings][0] == fixed
        assert talk(fixed) == b"pod:hello"
        assert talk(pf.local_port(":7000")) == b"pod:hello"
    with pytest.raises(OSError):
        talk(pf.mappings[1].bound)


@pytest.mark.parametrize("args, code, message", [
    (["svc/api", "8080:81"], 2, "service api has no port '81' (its ports: 80/http)"),
    (["deployment/down", "8080", "--ready-timeout", "1s"], 5, "no running pod of deployment/down"),
    (["cronjob/x", "80"], 2, "cannot use 'cronjob/x'"),
    (["solo", "99999"], 2, "port out of range"),
    (["solo", "a:b:80"], 2, "invalid local port"),
    (["solo", "http"], 2, "has no container port named 'http'"),
])
def test_port_forward_bad_input(sim, kubeconfig, oncall, args, code, message):
    sim.add_pod("team", "solo")
    sim.add_service("team", "api", selector={"app": "api"})
    sim.add_deployment("team", "down", replicas=1, phase="Pending")
    r = oncall("k8s", "port-forward", *args)
    assert r.code == code, r
    assert message in r.err
    assert "Traceback" not in r.err


def test_port_forward_local_port_in_use(sim, kubeconfig, oncall):
    sim.add_pod("team", "solo")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        r = oncall("k8s", "port-forward", "solo", f"{port}:80")
    assert r.code == 6 and f"cannot listen on 127.0.0.1:{port}" in r.err


def test_follow_through_a_failing_log_endpoint_warns_and_recovers(sim, kubeconfig, streaming):
    sim.add_pod("team", "shaky")
    sim.append_log("team", "shaky", "app", "made it")
    sim.add_fault(r"/shaky/log$", status=500, times=4, body={"kind": "Status", "apiVersion": "v1", "code": 500,
                                                             "status": "Failure", "message": "kubelet timeout"})
    run = streaming("k8s", "logs", "shaky", "-f", "--no-prefix")
    run.wait_for(lambda r: r.out == ["made it"], what="the line after the failures")
    assert any("shaky/app" in e and "kubelet timeout" in e and "retrying" in e for e in run.err), run
    assert any("reading logs again" in e for e in run.err)
    assert run.interrupt() == 0


def test_colour_per_pod_on_a_terminal(sim, kubeconfig):
    import os
    import pty
    for name in ("web-a", "web-b"):
        sim.add_pod("team", name, labels={"app": "web"})
        sim.append_log("team", name, "app", f"{name} up")
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(VENV_BIN / "oncall"), "k8s", "logs", "-l", "app=web"], stdout=slave,
                            stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(10) == 0
    text = out.decode()
    colours = re.findall(r"(\x1b\[\d+m)\[(web-[ab])/app\]\x1b\[0m", text)
    assert [pod for _, pod in colours] == ["web-a", "web-b"]
    assert colours[0][0] != colours[1][0]


def test_port_forward_on_another_address(sim, kubeconfig, streaming, echo):
    server = echo("pod")
    sim.add_pod("team", "solo")
    sim.portforward_targets[("team", "solo")] = {7000: ("127.0.0.1", server.port)}
    run = streaming("k8s", "port-forward", "pod/solo", ":7000", "--address", "127.0.0.2")
    run.wait_for(lambda r: any(line.startswith("Forwarding from 127.0.0.2:") for line in r.out), what="Forwarding")
    port = int(run.out[0].split(":")[1].split()[0])
    with socket.create_connection(("127.0.0.2", port), timeout=5) as s:
        s.sendall(b"hi")
        assert s.recv(100) == b"pod:hi"
    assert any(f"Handling connection for {port}" in e for e in run.err)
    assert run.interrupt() == 0
