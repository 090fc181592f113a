"""Kubernetes on-call chores: logs across pods, restarts with reasons, events, a self-healing port-forward.

Cluster selection is kubectl's (--kubeconfig, --context, -n, -A, KUBECONFIG with several files, the
context's namespace, in-cluster config), taken by every command itself: `kubectl oncall ...` gets none
of kubectl's global flags. The kubernetes SDK is imported only when a command runs.
"""
import datetime as dt
import math
import re
import signal
import threading
from enum import Enum
from typing import Annotated

from oncall_common import Arg, UsageError, group, operation

from . import _client  # noqa: F401 - declares the "k8s" connection
from ._format import event_rows, restart_rows

group("k8s", "Kubernetes: logs across pods, restarts with reasons, events, self-healing port-forward.")

AllNamespaces = Annotated[bool, Arg(options=("-A",), help="Every namespace (kubectl's -A).")]
Selector = Annotated[str, Arg(options=("-l",), metavar="SELECTOR",
                              help="Label selector, e.g. app=web,tier!=cache or 'env in (prod,stage)'.")]


class EventType(Enum):
    NORMAL = "Normal"
    WARNING = "Warning"


def _since(since):
    return None if since is None else dt.datetime.now(dt.timezone.utc) - since


def _second(when):
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------- restarts


@operation("k8s restarts", uses="k8s", table=restart_rows, examples=[
    ("Every restarting container of the cluster, most recent first", "oncall k8s restarts -A -o table"),
    ("Restarts of the last hour in one namespace", "oncall k8s restarts -n payments --since 1h"),
    ("Containers of the web app restarted 5 times or more", "oncall k8s restarts -l app=web --min 5"),
    ("Only the OOM-killed ones", "oncall k8s restarts -A --query \"[?reason=='OOMKilled']\" -o table"),
])
def restarts(ctx, all_namespaces: AllNamespaces = False, selector: Selector = None,
             min: Annotated[int, Arg(metavar="N")] = 1,  # noqa: A002 - the option is --min
             since: dt.timedelta = None):
    """List containers that restarted, with why they died last, most recent restart first.

    One row per container: restart count, last restart time, the last termination's reason (OOMKilled, Error...),
    exit code and signal, current state (CrashLoopBackOff...), node and owner workload.
    One list call per scope (paged), never a call per pod.
    :param min: Only containers restarted at least this many times.
    :param since: Only containers whose last restart is this recent (e.g. 1h, 30m).
    """
    from ._restarts import restart_rows as rows_of
    from ._targets import namespaced
    if min < 0:
        raise UsageError("--min must be 0 or more")
    kube = ctx.client("k8s")
    namespace = None if all_namespaces else kube.namespace()
    cutoff = _since(since)
    pods = kube.list(namespaced("/api/v1", "pods", namespace), {"labelSelector": selector})
    return rows_of(pods, min_restarts=min, since=_second(cutoff) if cutoff else None)


# ---------------------------------------------------------------------- events


@operation("k8s events", uses="k8s", table=event_rows, examples=[
    ("Warnings of a namespace, newest first", "oncall k8s events -n payments --type Warning -o table"),
    ("Events of a deployment, its ReplicaSets and its pods", "oncall k8s events deployment/payments -n shop"),
    ("Events of one pod in the last 15 minutes", "oncall k8s events payments-7d9f8-x2x4q --since 15m"),
    ("Warnings everywhere", "oncall k8s events -A --type Warning -o table"),
])
def events(ctx, target: Annotated[str, Arg(positional=True, metavar="TARGET")] = None,
           all_namespaces: AllNamespaces = False,
           type: EventType = None,  # noqa: A002 - the option is --type
           since: dt.timedelta = None):
    """List events of a pod, a workload (and its pods), or a namespace, newest first.

    :param target: A pod name, or deployment/NAME, statefulset/NAME, daemonset/NAME, job/NAME,
        replicaset/NAME, service/NAME; none: the whole namespace.
    :param type: Only events of this type.
    :param since: Only events seen this recently (e.g. 1h).
    """
    from ._events import event_row, event_time, events_path, related_objects
    from ._targets import list_pods, resolve
    kube = ctx.client("k8s")
    explicit_ns = ctx.connection_values.get("k8s", {}).get("namespace")
    fields = [f"type={type.value}"] if type else []
    wanted = None
    if target:
        if all_namespaces:
            raise UsageError("-A/--all-namespaces lists a whole cluster's events: give no TARGET with it")
        tgt = resolve(kube, target, namespace=explicit_ns)
        namespace = tgt.namespace
        if tgt.kind == "Pod":
            fields += ["involvedObject.kind=Pod", f"involvedObject.name={tgt.name}"]
        else:
            wanted = related_objects(kube, tgt, list_pods(kube, tgt))
    else:
        namespace = None if all_namespaces else kube.namespace(explicit_ns)
    cutoff = _since(since)
    cutoff = _second(cutoff) if cutoff else None
    rows = []
    for event in kube.list(events_path(namespace), {"fieldSelector": ",".join(fields) or None}):
        ref = event.get("involvedObject") or {}
        if wanted is not None and (ref.get("kind"), ref.get("name")) not in wanted:
            continue
        if cutoff and (event_time(event) or "") < cutoff:
            continue
        rows.append(event_row(event))
    rows.sort(key=lambda e: (e["lastTimestamp"] or "", e["name"] or ""), reverse=True)
    return rows


# ---------------------------------------------------------------------- logs


@operation("k8s logs", uses="k8s", table=lambda result: [], examples=[
    ("The logs of every pod of a deployment", "oncall k8s logs deployment/payments -n shop"),
    ("Why the crash-looping container died: its previous instance", "oncall k8s logs deployment/payments --previous --tail 50"),
    ("Follow a rollout: new pods are picked up", "oncall k8s logs -l app=web -f"),
    ("Errors of the last 15 minutes, in time order across pods", "oncall k8s logs service/api --since 15m --timestamps --grep 'ERROR|panic'"),
    ("One container, no prefix", "oncall k8s logs web-7d9f8-x2x4q -c app --no-prefix"),
])
def logs(ctx, target: Annotated[str, Arg(positional=True, metavar="TARGET")] = None,
         selector: Selector = None,
         all_namespaces: AllNamespaces = False,
         container: Annotated[str, Arg(options=("-c",), metavar="NAME")] = None,
         init: bool = False,
         previous: Annotated[bool, Arg(options=("-p",))] = False,
         since: dt.timedelta = None,
         since_time: dt.datetime = None,
         tail: Annotated[int, Arg(metavar="N")] = None,
         timestamps: bool = False,
         grep: Annotated[str, Arg(metavar="REGEX")] = None,
         grep_v: Annotated[str, Arg(metavar="REGEX")] = None,
         follow: Annotated[bool, Arg(options=("-f",))] = False,
         no_prefix: bool = False,
         max_pods: Annotated[int, Arg(metavar="N")] = 50):
    """Print the logs of every pod of a target: all containers, each line prefixed pod/container.

    Lines are written as they are read. With -f it follows until Ctrl-C, picks up pods that appear later
    (a rollout, a restart) and says when a pod goes away; a cut connection resumes after the last line.
    :param target: A pod name, or deployment/NAME, statefulset/NAME, daemonset/NAME, job/NAME,
        replicaset/NAME, service/NAME.
    :param container: Only this container.
    :param init: Include init containers.
    :param previous: The previous (terminated) instance of each container: why it crashed.
    :param since: Only lines newer than this (e.g. 15m, 2h).
    :param since_time: Only lines after this time (ISO-8601, or -2h).
    :param tail: The last N lines of each container.
    :param timestamps: Show each line's time; lines of several pods are merged in time order (when not following).
    :param grep: Only lines matching this regular expression.
    :param grep_v: Leave out lines matching this regular expression.
    :param follow: Keep following (Ctrl-C stops), picking up new pods.
    :param no_prefix: Do not prefix lines with pod/container.
    :param max_pods: Refuse targets matching more pods than this (guards against -l '' on a big cluster).
    """
    from .logs import Follower, LogOptions, check_containers, check_pod_count, read_logs
    from ._targets import list_pods, resolve
    if previous and follow:
        raise UsageError("--previous shows a terminated container: it cannot be followed (drop -f)")
    if since is not None and since_time is not None:
        raise UsageError("give --since or --since-time, not both")
    if tail is not None and tail < 0:
        raise UsageError("--tail must be 0 or more")
    if max_pods < 1:
        raise UsageError("--max-pods must be at least 1")
    options = LogOptions(container=container, init=init, previous=previous,
                         since_seconds=math.ceil(since.total_seconds()) if since else None,
                         since_time=_second(since_time) if since_time else None, tail=tail, timestamps=timestamps,
                         grep=_regex(grep, "--grep"), grep_v=_regex(grep_v, "--grep-v"), prefix=not no_prefix,
                         colour=_is_tty(ctx.stdout))
    kube = ctx.client("k8s")
    tgt = resolve(kube, target, selector, ctx.connection_values.get("k8s", {}).get("namespace"), all_namespaces)
    write = _writer(ctx.stdout)
    if follow:
        follower = Follower(kube, tgt, options, write, ctx.info, ctx.warn, max_pods=max_pods)
        return _until_interrupted(follower.run, follower.stop)
    pods = list_pods(kube, tgt)
    if not pods:
        ctx.info(f"no pod matches {tgt}")
        return None
    check_pod_count(pods, tgt, max_pods)
    check_containers(pods, options)

    def read():
        summary = read_logs(kube, pods, options, write, ctx.warn)
        if summary["lines"] == 0:
            ctx.info(f"no log lines{' matched' if grep or grep_v else ''} "
                     f"({summary['containers']} container(s) of {summary['pods']} pod(s))")
    return _until_interrupted(read, lambda: None)


def _regex(pattern, option):
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as ex:
        raise UsageError(f"invalid {option} regular expression {pattern!r}: {ex}") from None


# ---------------------------------------------------------------------- port-forward


@operation("k8s port-forward", uses="k8s", table=lambda result: [], examples=[
    ("Forward local 8080 to port 80 of a pod of a deployment", "oncall k8s port-forward deployment/web 8080:80"),
    ("A service port, resolved to its target port as kubectl does", "oncall k8s port-forward service/api 8080:http -n shop"),
    ("Several ports, any free local port for the second", "oncall k8s port-forward statefulset/db 5432 :9187"),
    ("Listen on every interface, stop after an hour", "oncall k8s port-forward web-0 8080:80 --address 0.0.0.0 --stop-after 1h"),
])
def port_forward(ctx, target: Annotated[str, Arg(positional=True, metavar="TARGET")],
                 ports: Annotated[list[str], Arg(positional=True, metavar="[LOCAL:]REMOTE")],
                 address: Annotated[list[str], Arg(metavar="ADDRESS")] = None,
                 stop_after: dt.timedelta = None,
                 ready_timeout: dt.timedelta = dt.timedelta(seconds=60)):
    """Forward local ports to a pod of a target, moving to a new ready pod when it goes away.

    TCP goes through the API server's port-forward. Prints 'Forwarding from ADDRESS:LOCAL -> REMOTE' per port
    and runs until Ctrl-C. A ready pod is preferred (a running one will do, e.g. the crash-looping pod named);
    when the pod is deleted or stops being ready, new connections go to another ready pod and a line says so.
    :param target: A pod name, or deployment/NAME, statefulset/NAME, replicaset/NAME, service/NAME.
    :param ports: [LOCAL:]REMOTE: 8080:80, 5432 (same local port), :80 (any free local port); REMOTE may be a
        port name; for a service, a service port (forwarded to its target port).
    :param address: Local addresses to listen on (default 127.0.0.1); several allowed.
    :param stop_after: Stop forwarding after this long (e.g. 30m); default: until Ctrl-C.
    :param ready_timeout: How long to wait for a running pod (at start and after a pod goes away).
    """
    from ._targets import resolve
    from .portforward import PortForwarder
    kube = ctx.client("k8s")
    tgt = resolve(kube, target, namespace=ctx.connection_values.get("k8s", {}).get("namespace"),
                  allowed=("pod", "deployment", "statefulset", "replicaset", "service"))
    addresses = [a.strip() for chunk in (address or ["127.0.0.1"]) for a in chunk.split(",") if a.strip()]
    forwarder = PortForwarder(kube, tgt, ports, addresses=addresses, info=ctx.info,
                              ready_timeout=ready_timeout.total_seconds())
    write = _writer(ctx.stdout)

    def serve():
        forwarder.start()
        write("".join(f"Forwarding from {a}:{m.bound} -> {m.remote}\n" for m in forwarder.mappings
                      for a in addresses))
        of = "" if tgt.kind == "Pod" else f" of {tgt}"
        ctx.info(f"forwarding to pod {forwarder.pod_name}{of} in namespace {tgt.namespace} (Ctrl-C to stop)")
        forwarder.serve_forever(stop_after.total_seconds() if stop_after else None)
    return _until_interrupted(serve, forwarder.stop)


# ---------------------------------------------------------------------- streaming helpers


def _is_tty(stream):
    import os
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _writer(stream):
    def write(text):
        stream.write(text)
        stream.flush()
    return write


def _until_interrupted(run, stop):
    """Run a streaming command: Ctrl-C (or SIGTERM) stops it cleanly, a closed stdout pipe quietly."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        def terminate(signum, frame):
            raise KeyboardInterrupt
        try:
            previous = signal.signal(signal.SIGTERM, terminate)
        except (ValueError, OSError):
            previous = None
    try:
        run()
    except KeyboardInterrupt:
        stop()
    except BrokenPipeError:
        stop()
        _silence_stdout()
    finally:
        stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return None


def _silence_stdout():
    """The reader of our stdout left (`| head`): send the rest to /dev/null so exiting does not complain."""
    import os
    import sys
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass

