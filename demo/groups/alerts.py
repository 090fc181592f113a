"""alerts in the demo: the page arrives, we look, and later silence it while the fix rolls out."""
from support.alertmanager import Alertmanager

ALERTS = [
    {"labels": {"alertname": "PodCrashLooping", "severity": "critical", "service": "payments", "namespace": "shop",
                "pod": "payments-7d9f8-abcde", "cluster": "prod"},
     "annotations": {"summary": "payments pod restarted 5 times in 10 minutes"}},
    {"labels": {"alertname": "HighErrorRate", "severity": "critical", "service": "payments", "cluster": "prod"},
     "annotations": {"summary": "5xx ratio 12% on /checkout"}},
    {"labels": {"alertname": "HighLatency", "severity": "warning", "service": "web", "cluster": "prod"},
     "annotations": {"summary": "p99 latency above 1s"}},
    {"labels": {"alertname": "DiskFull", "severity": "warning", "instance": "db1", "cluster": "stage"},
     "annotations": {"summary": "disk 91% full"}},
]


def start(stack):
    am = Alertmanager()
    stack.cleanup(am.stop)
    am.post_alerts(ALERTS)
    stack.alertmanager = am
    stack.env["ONCALL_ALERTS_URL"] = am.url


def _crashloop_fingerprint(stack):
    alerts = stack.alertmanager.api("/alerts?filter=alertname%3D%22PodCrashLooping%22")
    return alerts[0]["fingerprint"]


def steps(stack):
    return [
        ("What is firing?", ["alerts", "list", "-o", "table"]),
        ("Only the payments service, critical ones", ["alerts", "list", "service=payments", "severity=critical",
                                                     "-o", "table"]),
        ("How Alertmanager grouped and routed them", ["alerts", "groups", "-o", "table"]),
        ("The crash-loop alert in full", lambda s: ["alerts", "show", _crashloop_fingerprint(s)[:8], "-o", "yaml"]),
    ]


def closing_steps(stack):
    return [
        ("Preview a silence for exactly that alert while the fix rolls out",
         lambda s: ["alerts", "silence", "add", "--from-alert", _crashloop_fingerprint(s), "--comment",
                    "INC-4711 fix deploying", "--duration", "2h", "--dry-run", "-o", "table"]),
        ("Create it (no prompt in a script: --yes)",
         lambda s: ["alerts", "silence", "add", "--from-alert", _crashloop_fingerprint(s), "--comment",
                    "INC-4711 fix deploying", "--duration", "2h", "--yes", "-o", "table"]),
        ("Silences in force", ["alerts", "silence", "list", "-o", "table"]),
        ("The page is quiet; the other alerts still fire", ["alerts", "list", "-o", "table"]),
        ("The fix is out: expire the silence", lambda s: ["alerts", "silence", "expire",
                                                           s.alertmanager.api("/silences")[0]["id"], "-o", "table"]),
        ("Everything we changed this shift", ["audit", "list", "-o", "table"]),
    ]
