"""Logs of many pods at once: read (merged in time order with --timestamps) or followed, picking up new pods.

Reusable from Python: ``read_logs(kube, pods, options, write)`` and ``Follower(kube, target, options, ...)``.
Lines are always asked for with the kubelet's timestamps: they order the merge and let a follow that lost
its connection resume exactly after the last line it delivered (no gap, no duplicate).
"""
from __future__ import annotations

import dataclasses
import heapq
import queue
import re
import threading

from oncall_common import AuthError, NotFoundError, OncallError, UsageError

from ._client import close_quietly, iter_lines, transport_errors
from ._targets import container_names, container_status, namespaced, pod_key
from ._watch import PodWatcher

COLOURS = ("\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m", "\033[91m", "\033[96m", "\033[93m",
           "\033[92m", "\033[95m")
RESET = "\033[0m"
_TS = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$")


@dataclasses.dataclass
class LogOptions:
    container: str | None = None
    init: bool = False
    previous: bool = False
    since_seconds: int | None = None
    since_time: str | None = None
    tail: int | None = None
    timestamps: bool = False
    grep: re.Pattern | None = None
    grep_v: re.Pattern | None = None
    prefix: bool = True
    colour: bool = False

    def params(self, container, *, follow=False, initial=True):
        params = {"container": container, "timestamps": True}
        if self.previous:
            params["previous"] = True
        if follow:
            params["follow"] = True
        if initial:
            params["sinceSeconds"] = self.since_seconds
            params["sinceTime"] = self.since_time
            params["tailLines"] = self.tail
        return params


def split_timestamp(raw):
    """b'2024-05-01T10:00:00.123456789Z text' -> (sort key, timestamp text, line text)."""
    stamp, sep, rest = raw.partition(b" ")
    m = _TS.match(stamp) if sep or stamp else None
    if not m:
        return "", None, raw.decode("utf-8", "replace")
    frac = (m.group(2) or b".")[1:].ljust(9, b"0")[:9]
    key = (m.group(1) + b"." + frac).decode()
    return key, stamp.decode(), rest.decode("utf-8", "replace")


class Printer:
    """Formats lines: grep filters, a pod/container prefix (coloured per pod on a terminal), timestamps."""

    def __init__(self, options):
        self.options = options
        self._colours = {}

    def keep(self, text):
        o = self.options
        if o.grep is not None and not o.grep.search(text):
            return False
        return not (o.grep_v is not None and o.grep_v.search(text))

    def format(self, pod, container, stamp, text):
        o = self.options
        parts = []
        if o.prefix:
            prefix = f"[{pod}/{container}]"
            if o.colour:
                colour = self._colours.setdefault(pod, COLOURS[len(self._colours) % len(COLOURS)])
                prefix = f"{colour}{prefix}{RESET}"
            parts.append(prefix)
        if o.timestamps and stamp:
            parts.append(stamp)
        parts.append(text)
        return " ".join(parts) + "\n"


def containers_for(pod, options):
    """The containers of ``pod`` whose logs are wanted (``--previous``: those that have a previous instance)."""
    names = container_names(pod, init=options.init)
    if options.container:
        return [options.container] if options.container in container_names(pod, init=True) else []
    if options.previous:
        return [n for n in names if (container_status(pod, n) or {}).get("lastState", {}).get("terminated")]
    return names


def log_path(namespace, pod):
    return namespaced("/api/v1", "pods", namespace, pod) + "/log"


def check_containers(pods, options):
    """Fail early, with the choices, when -c names no container of any pod (or --previous finds none)."""
    if any(containers_for(p, options) for p in pods):
        return
    if options.container:
        names = sorted({n for p in pods for n in container_names(p, init=True)})
        raise UsageError(f"no pod has a container named {options.container!r}", hint=f"containers: {', '.join(names)}")
    if options.previous:
        raise NotFoundError("no container of these pods has a previous (terminated) instance",
                            hint="--previous shows the logs of the instance that crashed before the current one")


# ---------------------------------------------------------------------- read


def read_logs(kube, pods, options, write, warn):
    """Print the logs of every wanted container of ``pods``; merged in time order with --timestamps.

    Returns {"pods", "containers", "lines"} counts; containers that fail are reported through ``warn``.
    """
    streams = [(p, c) for p in pods for c in containers_for(p, options)]
    printer = Printer(options)

    def fetch(stream):
        pod, container = stream
        ns, name = pod_key(pod)
        try:
            data = kube.get_bytes(log_path(ns, name), options.params(container), accept="*/*")
        except OncallError as ex:
            return ex
        lines = []
        for raw in data.split(b"\n"):
            if raw:
                key, stamp, text = split_timestamp(raw)
                if printer.keep(text):
                    lines.append((key, name, container, stamp, text))
        return lines

    results, errors, written = [], [], 0
    for (pod, container), result in zip(streams, parallel_map(fetch, streams)):
        if isinstance(result, Exception):
            if isinstance(result, (AuthError, KeyboardInterrupt)) or not isinstance(result, OncallError):
                raise result
            errors.append(result)
            warn(f"{pod_key(pod)[1]}/{container}: {result}")
            continue
        if options.timestamps and len(streams) > 1:
            results.append(result)  # merged below, in time order
            continue
        written += _write(write, printer, result)
    if results:
        written += _write(write, printer, heapq.merge(*results, key=lambda line: line[0]))
    if errors and len(errors) == len(streams):
        raise errors[0]
    return {"pods": len({pod_key(p) for p, _ in streams}), "containers": len(streams), "lines": written}


def parallel_map(fn, items, workers=8):
    """fn over items on a few daemon threads, results yielded in order (an exception is yielded, not raised).

    Daemon threads, unlike an executor's, never hold the process at exit after Ctrl-C.
    """
    items = list(items)
    results = [None] * len(items)
    done = [threading.Event() for _ in items]
    todo = queue.Queue()
    for index in range(len(items)):
        todo.put(index)

    def work():
        while True:
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[index] = fn(items[index])
            except Exception as ex:  # noqa: BLE001 - handed to the caller in order
                results[index] = ex
            done[index].set()

    for _ in range(min(workers, len(items))):
        threading.Thread(target=work, name="k8s-logs-read", daemon=True).start()
    for index in range(len(items)):
        while not done[index].wait(0.2):  # short waits: Ctrl-C is seen at once
            pass
        result, results[index] = results[index], None
        yield result


def _write(write, printer, lines, batch=512):
    count, chunk = 0, []
    for _, pod, container, stamp, text in lines:
        chunk.append(printer.format(pod, container, stamp, text))
        if len(chunk) >= batch:
            write("".join(chunk))
            count, chunk = count + len(chunk), []
    if chunk:
        write("".join(chunk))
        count += len(chunk)
    return count


# ---------------------------------------------------------------------- follow


class Follower:
    """Follow the logs of a target's pods: one streaming thread per container, a watch for pods that come
    and go, one bounded queue (a slow reader slows the streams down; no line is dropped)."""

    def __init__(self, kube, target, options, write, info, warn, max_pods=50, queue_size=4096):
        self.kube, self.target, self.options = kube, target, options
        self.write, self.info, self.warn = write, info, warn
        self.max_pods = max_pods
        self.printer = Printer(options)
        self.lines = queue.Queue(maxsize=queue_size)
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._pods = {}          # uid -> latest pod object, for the pods being followed
        self._gone = set()       # uids of pods that went away
        self._skipped = set()    # uids not followed (--max-pods)
        self._threads = {}       # (uid, container) -> thread
        self._responses = {}     # open responses (aborted on stop) -> uid
        self._fatal = None
        self._watcher = None
        self.delivered = 0

    # ------------------------------------------------------------------ driver

    def run(self):
        self._watcher = PodWatcher(self.kube, self.target, self._changed)
        pods = self._watcher.initial_list()
        if self.target.pod_name and not pods:
            raise NotFoundError(f"pod {self.target.pod_name!r} not found in namespace {self.target.namespace!r}")
        check_pod_count(pods, self.target, self.max_pods)
        if pods:
            check_containers(pods, self.options)
        else:
            self.info(f"no pod matches {self.target} yet: waiting for one (Ctrl-C to stop)")
        for pod in pods:
            self._consider(pod, initial=True)
        self._watcher.start()
        try:
            self._pump()
        finally:
            self.stop()

    def _changed(self, kind, pod):
        if kind == "DELETED":
            self._went_away(pod)
        else:
            self._consider(pod)

    def _pump(self):
        while True:
            fatal = self._fatal or self._watcher.error
            if fatal is not None:
                raise fatal
            try:
                item = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self._finished():
                    return
                continue
            batch = [item]
            while len(batch) < 512:
                try:
                    batch.append(self.lines.get_nowait())
                except queue.Empty:
                    break
            self.write("".join(self.printer.format(*line) for line in batch))
            self.delivered += len(batch)

    def _finished(self):
        """A named pod is done once it is gone (or finished) and its streams have ended; a selector is
        followed until Ctrl-C."""
        if not self.target.pod_name:
            return False
        with self._lock:
            if any(t.is_alive() for t in self._threads.values()) or not self.lines.empty():
                return False
            if not self._pods:
                return bool(self._gone)
            return all((p.get("status") or {}).get("phase") in ("Succeeded", "Failed") for p in self._pods.values())

    def stop(self):
        self.stopping.set()
        if self._watcher is not None:
            self._watcher.stop()
        with self._lock:
            responses = list(self._responses)
        for resp in responses:
            close_quietly(resp)

    # ------------------------------------------------------------------ pods

    def _consider(self, pod, initial=False):
        meta = pod.get("metadata") or {}
        uid, name = meta.get("uid"), meta.get("name")
        with self._lock:
            if uid in self._gone or uid in self._skipped:
                return
            if uid not in self._pods:
                if len(self._pods) >= self.max_pods:
                    self._skipped.add(uid)
                    self.warn(f"not following pod {name}: already following --max-pods {self.max_pods} pods")
                    return
                if not initial:
                    self.info(f"now following new pod {name}")
            self._pods[uid] = pod
            for container in containers_for(pod, self.options):
                if (uid, container) in self._threads or not _started(pod, container):
                    continue
                thread = threading.Thread(target=self._stream, args=(uid, meta.get("namespace"), name, container,
                                                                     initial),
                                          name=f"k8s-logs-{name}-{container}", daemon=True)
                self._threads[(uid, container)] = thread
                thread.start()

    def _went_away(self, pod):
        meta = pod.get("metadata") or {}
        uid = meta.get("uid")
        with self._lock:
            followed = self._pods.pop(uid, None) is not None
            self._gone.add(uid)
        if followed:
            self.info(f"pod {meta.get('name')} went away")
            # its streams end by themselves; if one hangs, cut it after a grace period
            timer = threading.Timer(3.0, self._abort_pod, args=(uid,))
            timer.daemon = True
            timer.start()

    def _abort_pod(self, uid):
        with self._lock:
            responses = [r for r, owner in self._responses.items() if owner == uid]
        for resp in responses:
            close_quietly(resp)

    def _alive(self, uid):
        with self._lock:
            return uid in self._pods

    def _track(self, uid):
        def register(resp):
            with self._lock:
                self._responses[resp] = uid
            if self.stopping.is_set():
                close_quietly(resp)
        return register

    def _untrack(self, resp):
        with self._lock:
            self._responses.pop(resp, None)

    # ------------------------------------------------------------------ one container

    def _stream(self, uid, ns, name, container, initial):
        last_key, same = None, 0   # the last delivered line's time, and how many lines had exactly that time
        delay, warned = 0.5, False
        while not self.stopping.is_set():
            # the first request takes --since/--tail (pods that appear later: all their lines);
            # a reconnection resumes at the last line delivered
            params = self.options.params(container, follow=True, initial=initial and last_key is None)
            if last_key is not None:
                params["sinceTime"] = last_key[:19] + "Z"  # whole seconds; lines already seen are skipped
            try:
                resp = self.kube.open(log_path(ns, name), params, stream=True, accept="*/*")
            except NotFoundError:
                return  # the pod is gone
            except AuthError as ex:
                self._fatal = ex
                return
            except OncallError as ex:
                # 400 while the container waits to (re)start, a 5xx after retries, unreachable: try again
                if not isinstance(ex, UsageError) and not warned:
                    self.warn(f"{name}/{container}: {ex} (retrying)")
                    warned = True
                if not self._alive(uid) or self.stopping.wait(delay):
                    return
                delay = min(delay * 2, 5.0)
                continue
            if warned:
                self.info(f"{name}/{container}: reading logs again")
                warned = False
            self._track(uid)(resp)
            skip_equal = same
            try:
                for raw in iter_lines(resp):
                    line_key, stamp, text = split_timestamp(raw)
                    if last_key is not None and line_key:
                        if line_key < last_key:
                            continue
                        if line_key == last_key and skip_equal > 0:
                            skip_equal -= 1
                            continue
                    if line_key:
                        if line_key == last_key:
                            same += 1
                        else:
                            last_key, same = line_key, 1
                    if self.printer.keep(text) and not self._put((name, container, stamp, text)):
                        return
                    delay = 0.5
            except Exception as ex:  # noqa: BLE001 - decided here, never a traceback from a daemon thread
                if self.stopping.is_set():
                    return  # stop() closed the response under this read
                if not isinstance(ex, transport_errors()):
                    self._fatal = ex
                    return
                # the stream was cut: resume after the last line delivered
            finally:
                self._untrack(resp)
                close_quietly(resp)
            if self.stopping.is_set() or not self._alive(uid):
                return
            with self._lock:
                phase = ((self._pods.get(uid) or {}).get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed") or self.stopping.wait(delay):
                return
            delay = min(delay * 2, 5.0)

    def _put(self, item):
        while not self.stopping.is_set():
            try:
                self.lines.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False


def check_pod_count(pods, target, max_pods):
    if len(pods) > max_pods:
        raise UsageError(f"{len(pods)} pods match {target}, more than --max-pods {max_pods}",
                         hint="narrow the selector, or raise --max-pods")


def _started(pod, container):
    """Has the container produced logs we can ask for (running, terminated, or restarted before)?"""
    cs = container_status(pod, container) or {}
    state = cs.get("state") or {}
    if "running" in state or "terminated" in state:
        return True
    if (cs.get("lastState") or {}).get("terminated"):
        return True
    return ((pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed")
