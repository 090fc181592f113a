"""Self-healing port-forward: local TCP ports to a target's pod (a ready one preferred), through the API
server's ``pods/portforward`` (WebSocket, the official client's ``create_websocket``); when the pod goes
away it moves to another ready pod of the target and says so.

Reusable from Python::

    with PortForwarder(kube, target, ["8080:80"]) as pf:
        urllib.request.urlopen(f"http://127.0.0.1:{pf.local_port('80')}/healthz")
"""
from __future__ import annotations

import dataclasses
import socket
import threading
import time

from oncall_common import ConflictError, NotFoundError, OncallError, UnreachableError, UsageError
from oncall_common.errors import from_http_status

from ._targets import container_port, is_ready, namespaced
from ._watch import PodWatcher


@dataclasses.dataclass
class Mapping:
    spec: str                  # as given: "8080:80", ":http", "5432"
    local: int                 # 0: any free port
    remote: str                # the port asked for: a number or a name (service port or container port)
    target_port: object = None  # service targetPort (int or a container port name); else the remote itself
    bound: int | None = None   # the local port listened on
    listeners: list = dataclasses.field(default_factory=list)


def parse_mapping(text):
    """'8080:80' -> local 8080, remote 80; '80' -> 80:80; ':80' -> any free local port."""
    local, sep, remote = text.rpartition(":")
    if not remote:
        raise UsageError(f"invalid port {text!r}: use [LOCAL:]REMOTE, e.g. 8080:80, 5432 or :80")
    if not sep:
        local = remote if remote.isdigit() else ""
    if local and not local.isdigit():
        raise UsageError(f"invalid local port {local!r} in {text!r}")
    number = int(local or 0)
    if number > 65535 or (remote.isdigit() and not 0 < int(remote) < 65536):
        raise UsageError(f"port out of range in {text!r}")
    return Mapping(text, number, remote)


class PortForwarder:
    def __init__(self, kube, target, ports, addresses=("127.0.0.1",), info=print, ready_timeout=60.0):
        self.kube, self.target = kube, target
        self.mappings = [parse_mapping(p) for p in ports]
        if not self.mappings:
            raise UsageError("give at least one port: [LOCAL:]REMOTE")
        self.addresses = list(addresses or ["127.0.0.1"])
        self.info = info
        self.ready_timeout = ready_timeout
        self.pod = None                    # the pod connections go to now (an object), or None
        self.switches = 0                  # how many times it moved to another pod
        self.stopping = threading.Event()
        self._changed = threading.Condition()
        self._connections = {}             # pod name -> set of open Connection
        self._watcher = None
        self._had_pod = False

    # ------------------------------------------------------------------ life cycle

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        if self.target.kind == "Service":
            self._service_ports()
        self._watcher = PodWatcher(self.kube, self.target, self._pods_changed)
        self._watcher.initial_list()
        self._pick(announce=False)
        if self.pod is None:
            self.info(f"waiting for a running pod of {self.target} (up to {self.ready_timeout:g}s)")
            self._watcher.start()
            if self._wait_for_pod(self.ready_timeout) is None:
                self.stop()
                raise NotFoundError(f"no running pod of {self.target} in namespace {self.target.namespace!r}",
                                    hint="see 'oncall k8s events' for why its pods are not ready")
        else:
            self._watcher.start()
        for m in self.mappings:
            self._resolve(self.pod, m)  # a port name the pod lacks fails now, not at the first connection
        try:
            self._listen()
        except BaseException:
            self.stop()
            raise
        return self

    def local_port(self, remote):
        """The local port forwarding to ``remote`` (as given: '80', 'http')."""
        for m in self.mappings:
            if m.remote == str(remote) or m.spec == str(remote):
                return m.bound
        raise KeyError(remote)

    @property
    def pod_name(self):
        pod = self.pod
        return (pod.get("metadata") or {}).get("name") if pod else None

    def serve_forever(self, stop_after=None):
        """Block until ``stop()`` (or Ctrl-C in the caller), at most ``stop_after`` seconds."""
        deadline = None if stop_after is None else time.monotonic() + stop_after
        while not self.stopping.is_set():
            if self._watcher is not None and self._watcher.error is not None:
                raise self._watcher.error
            wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if wait <= 0:
                return
            self.stopping.wait(wait)

    def stop(self):
        self.stopping.set()
        if self._watcher is not None:
            self._watcher.stop()
        for m in self.mappings:
            for listener in m.listeners:
                try:
                    listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
                except OSError:
                    pass
                listener.close()
        with self._changed:
            conns = [c for group in self._connections.values() for c in group]
            self._changed.notify_all()
        for conn in conns:
            conn.close()

    # ------------------------------------------------------------------ ports

    def _service_ports(self):
        ports = (self.target.obj.get("spec") or {}).get("ports") or []
        for m in self.mappings:
            match = next((p for p in ports if str(p.get("port")) == m.remote or p.get("name") == m.remote), None)
            if match is None:
                known = ", ".join(f"{p.get('port')}" + (f"/{p['name']}" if p.get("name") else "") for p in ports)
                raise UsageError(f"service {self.target.name} has no port {m.remote!r}", hint=f"its ports: {known}")
            m.target_port = match.get("targetPort", match.get("port"))
            if m.local == 0 and ":" not in m.spec and m.remote.isdigit():
                m.local = int(m.remote)

    def _resolve(self, pod, m):
        """The pod's port number for a mapping (service targetPort or a container port, by number or name)."""
        wanted = m.target_port if m.target_port is not None else m.remote
        if isinstance(wanted, int) or str(wanted).isdigit():
            return int(wanted)
        number = container_port(pod, wanted)
        if number is None:
            raise UsageError(f"pod {(pod.get('metadata') or {}).get('name')} has no container port named {wanted!r}")
        return number

    def _listen(self):
        for m in self.mappings:
            port = m.local
            for address in self.addresses:
                try:
                    listener = socket.create_server((address, port), family=_family(address), reuse_port=False)
                except OSError as ex:
                    raise ConflictError(f"cannot listen on {address}:{port or m.remote}: {ex.strerror or ex}",
                                        hint="choose another local port: LOCAL:REMOTE") from None
                port = listener.getsockname()[1]  # ':80' on several addresses: the same free port everywhere
                m.listeners.append(listener)
                threading.Thread(target=self._accept, args=(listener, m), name=f"k8s-pf-accept-{port}",
                                 daemon=True).start()
            m.bound = port

    def _accept(self, listener, m):
        while not self.stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client, m), name="k8s-pf-conn", daemon=True).start()

    # ------------------------------------------------------------------ pods

    def _pods_changed(self, kind, pod):
        self._pick(announce=True)

    def _pick(self, announce):
        """Keep the current pod while it is usable; else move to the newest ready pod (a running one if none
        is ready: the pod a user names may be the crash-looping one) and say so."""
        pods = dict(self._watcher.pods)
        with self._changed:
            old = self.pod_name
            running = [p for p in pods.values() if _running(p)]
            ready = [p for p in running if is_ready(p)]
            current = next((p for p in running if (p.get("metadata") or {}).get("name") == old), None)
            if current is not None and (is_ready(current) or not ready):
                self.pod = current
                return
            pool = sorted(ready or running, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "",
                          reverse=True)
            self.pod = pool[0] if pool else None
            new = self.pod_name
            stale = self._connections.pop(old, set()) if old and old != new else set()
            self._changed.notify_all()
        for conn in stale:
            conn.close()  # its pod is gone: the next connection goes to the new pod
        if not announce or old == new or (old is None and not self._had_pod):
            self._had_pod = self._had_pod or new is not None
            return
        still_there = any((p.get("metadata") or {}).get("name") == old for p in pods.values())
        why = "is not ready any more" if still_there else "went away"
        if old and new:
            self.switches += 1
            self.info(f"pod {old} {why}: reconnected, forwarding to pod {new} now")
        elif old:
            self.info(f"pod {old} {why}: waiting for a ready pod of {self.target}")
        elif new:
            self.switches += 1
            self.info(f"reconnected: forwarding to pod {new} now")

    def _wait_for_pod(self, timeout):
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.pod is None and not self.stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(min(remaining, 0.5))
            return self.pod

    # ------------------------------------------------------------------ one connection

    def _handle(self, client, m):
        for attempt in (1, 2):
            pod = self._wait_for_pod(self.ready_timeout)
            if pod is None:
                if not self.stopping.is_set():
                    self.info(f"no running pod of {self.target}: connection to port {m.bound} closed")
                client.close()
                return
            name = (pod.get("metadata") or {}).get("name")
            try:
                port = self._resolve(pod, m)
                ws = self._open(name, port)
                break
            except NotFoundError:
                # the pod went away before the watch said so: drop it and try the next one
                self._watcher.pods = {u: p for u, p in self._watcher.pods.items()
                                      if (p.get("metadata") or {}).get("name") != name}
                self._pick(announce=True)
                if attempt == 2:
                    client.close()
                    return
            except OncallError as ex:
                self.info(f"cannot forward port {m.bound} to pod {name}: {ex}")
                client.close()
                return
        self.info(f"Handling connection for {m.bound} (pod {name}, port {port})")
        conn = Connection(client, ws, name, port, self.info)
        with self._changed:
            if self.pod_name != name or self.stopping.is_set():
                conn.close()
                return
            self._connections.setdefault(name, set()).add(conn)
        conn.run()
        with self._changed:
            self._connections.get(name, set()).discard(conn)

    def _open(self, pod_name, port):
        """A WebSocket to the pod's port through the API server (error mapping as for every other call)."""
        import websocket
        from kubernetes.stream.ws_client import create_websocket
        path = namespaced("/api/v1", "pods", self.target.namespace, pod_name) + "/portforward"
        url = self.kube.url(path, {"ports": port})
        url = "wss://" + url[len("https://"):] if url.startswith("https://") else "ws://" + url[len("http://"):]
        auth = self.kube.auth_header()
        try:
            return create_websocket(self.kube.cfg, url, {"authorization": auth} if auth else None)
        except websocket.WebSocketBadStatusException as ex:
            status = getattr(ex, "status_code", 0) or 0
            raise from_http_status(status, f"the Kubernetes API answered {status} to port-forward {path}") from None
        except (websocket.WebSocketException, OSError) as ex:
            raise UnreachableError(f"cannot open a port-forward to pod {pod_name}: {ex}") from None


class Connection:
    """One local TCP connection bridged to one WebSocket (data on channel 0, errors on channel 1)."""

    def __init__(self, client, ws, pod, port, info):
        self.client, self.ws, self.pod, self.port, self.info = client, ws, pod, port, info
        self._closed = threading.Event()

    def run(self):
        upstream = threading.Thread(target=self._to_pod, name="k8s-pf-up", daemon=True)
        upstream.start()
        self._from_pod()
        upstream.join(5)

    def _to_pod(self):
        try:
            while not self._closed.is_set():
                data = self.client.recv(65536)
                if not data:
                    break  # the local side closed: WebSocket port-forward has no half-close
                self.ws.send_binary(b"\x00" + data)
        except Exception:  # noqa: BLE001 - either side went away: close both
            pass
        finally:
            self.close()

    def _from_pod(self):
        import websocket
        headers = set()
        try:
            while not self._closed.is_set():
                opcode, data = self.ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if not data:
                    continue
                channel, payload = data[0], data[1:]
                if channel not in headers:
                    headers.add(channel)  # each channel opens with the port number
                    continue
                if channel % 2 == 0:
                    self.client.sendall(payload)
                elif payload:
                    self.info(f"error forwarding port {self.port} to pod {self.pod}: "
                              f"{payload.decode('utf-8', 'replace').strip()}")
                    break
        except Exception:  # noqa: BLE001 - a closed WebSocket or client ends this connection
            pass
        finally:
            self.close()

    def close(self):
        if self._closed.is_set():
            return
        self._closed.set()
        for action in (lambda: self.client.shutdown(socket.SHUT_RDWR), self.client.close,
                       lambda: self.ws.shutdown()):
            try:
                action()
            except Exception:  # noqa: BLE001 - already closed
                pass


def _running(pod):
    return (pod.get("status") or {}).get("phase") == "Running" and not (pod.get("metadata") or {}).get(
        "deletionTimestamp")


def _family(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET
