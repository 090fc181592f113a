"""Fixtures for the k8s tests: the spec-validated Kubernetes simulator and a kubeconfig pointing at it."""
import datetime as dt
import os
import signal
import subprocess
import time

import pytest

from simulators.k8s import K8sSimulator
from support.cli import VENV_BIN

def _now():
    # at call time: a module-level "now" drifts by however long the suite has been running
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def sim():
    with K8sSimulator() as server:
        yield server
        server.assert_clean()


@pytest.fixture
def kubeconfig(sim, isolated_home):
    """The default kubeconfig (~/.kube/config, what KUBECONFIG points to) with context 'sim', namespace 'team'."""
    path = isolated_home / ".kube" / "config"
    path.parent.mkdir(parents=True, exist_ok=True)
    return sim.write_kubeconfig(path, context="sim", namespace="team")


def _crash_looping(sim, ns="team", name="payments-7d9f8c6b5d-x2x4q", minutes_ago=5, owner=None, labels=None):
    """A pod whose app container was OOM-killed and now waits in CrashLoopBackOff (4 restarts)."""
    return sim.add_pod(ns, name, labels=labels or {"app": "payments"}, containers=["app", "proxy"],
                       restarts={"app": 4}, waiting_reason="CrashLoopBackOff", owner=owner,
                       last_terminated={"app": {"reason": "OOMKilled", "exitCode": 137, "signal": 9,
                                                "startedAt": _now() - dt.timedelta(minutes=minutes_ago + 1),
                                                "finishedAt": _now() - dt.timedelta(minutes=minutes_ago)}})


@pytest.fixture
def crash_looping(sim):
    """crash_looping(ns=..., name=...) adds a crash-looping pod to the simulator."""
    return lambda **kw: _crash_looping(sim, **kw)


class Streaming:
    """`oncall ...` as a real subprocess whose output is read as it comes (follow, port-forward)."""

    def __init__(self, *args, env=None):
        full = dict(os.environ)
        full["PATH"] = f"{VENV_BIN}{os.pathsep}{full.get('PATH', '')}"
        full["PYTHONUNBUFFERED"] = "1"
        full.update(env or {})
        self.proc = subprocess.Popen([str(VENV_BIN / "oncall"), *map(str, args)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full, text=True, bufsize=1)
        self.out, self.err = [], []
        import threading
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True)]
        for r in self._readers:
            r.start()

    @staticmethod
    def _read(stream, into):
        for line in stream:
            into.append(line.rstrip("\n"))

    def wait_for(self, predicate, timeout=15.0, what="output"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            if self.proc.poll() is not None:
                time.sleep(0.2)
                if predicate(self):
                    return
                raise AssertionError(f"exited {self.proc.returncode} before {what}:\n{self}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self}")

    def interrupt(self, timeout=10.0):
        self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout=10.0):
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"did not stop within {timeout}s:\n{self}") from None
        for r in self._readers:
            r.join(5)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __str__(self):
        return "--- stdout\n" + "\n".join(self.out) + "\n--- stderr\n" + "\n".join(self.err)


@pytest.fixture
def streaming():
    started = []

    def start(*args, env=None):
        s = Streaming(*args, env=env)
        started.append(s)
        return s
    yield start
    for s in started:
        s.kill()
