"""A target's pods kept current: one list, then a watch, resumed after drops and relisted after 410 Gone."""
import threading

from oncall_common import AuthError, OncallError

from ._client import Expired, close_quietly, transport_errors


class PodWatcher(threading.Thread):
    """Calls ``on_change(kind, pod)`` (ADDED, MODIFIED, DELETED) for the target's pods until ``stop()``.

    ``pods`` (uid -> pod) is the current set. An error that retrying cannot fix (refused credentials, a bug)
    ends the thread and is left in ``error`` for the caller's thread to raise.
    """

    def __init__(self, kube, target, on_change, pods=(), resource_version=None):
        super().__init__(name=f"k8s-watch-{target}", daemon=True)
        self.kube, self.target, self.on_change = kube, target, on_change
        self.pods = {(p.get("metadata") or {}).get("uid"): p for p in pods}
        self.resource_version = resource_version
        self.stopping = threading.Event()
        self.error = None
        self._response = None
        self._lock = threading.Lock()

    def initial_list(self):
        """List the pods now (before ``start()``), without announcing them."""
        pods = list(self.kube.list(self.target.pods_path(), self.target.pod_params()))
        self.pods = {(p.get("metadata") or {}).get("uid"): p for p in pods}
        self.resource_version = self.kube.last_resource_version
        return pods

    def run(self):
        path, params = self.target.pods_path(), self.target.pod_params()
        delay = 0.5
        while not self.stopping.is_set():
            try:
                if self.resource_version is None:
                    self._relist()
                for kind, pod in self.kube.watch(path, params, self.resource_version, on_open=self._opened):
                    if self.stopping.is_set():
                        return
                    self.resource_version = (pod.get("metadata") or {}).get("resourceVersion") or \
                        self.resource_version
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self._apply(kind, pod)
                delay = 0.5
            except AuthError as ex:
                self.error = ex
                return
            except (Expired, OncallError) + transport_errors() as ex:
                # 410 Gone, a dropped watch, a 5xx after retries: (list again and) go on watching
                if self.stopping.is_set():
                    return
                if isinstance(ex, Expired):
                    self.resource_version = None
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)
            except Exception as ex:  # noqa: BLE001 - raised by the caller's thread, not lost in this one
                self.error = ex
                return
            finally:
                with self._lock:
                    self._response = None

    def _apply(self, kind, pod):
        uid = (pod.get("metadata") or {}).get("uid")
        if kind == "DELETED":
            self.pods.pop(uid, None)
        else:
            self.pods[uid] = pod
        self.on_change(kind, pod)

    def _relist(self):
        pods = list(self.kube.list(self.target.pods_path(), self.target.pod_params()))
        present = {(p.get("metadata") or {}).get("uid") for p in pods}
        for uid, pod in list(self.pods.items()):
            if uid not in present:
                self._apply("DELETED", pod)
        for pod in pods:
            self._apply("MODIFIED", pod)
        self.resource_version = self.kube.last_resource_version

    def _opened(self, resp):
        with self._lock:
            self._response = resp
        if self.stopping.is_set():
            close_quietly(resp)

    def stop(self):
        self.stopping.set()
        with self._lock:
            resp = self._response
        if resp is not None:
            close_quietly(resp)
