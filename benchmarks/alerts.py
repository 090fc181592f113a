"""`oncall alerts list -o json` over 1,000 active alerts beside `amtool alert query -o json` (target <= 2x)."""
import sys

from _bench import VENV_BIN, measure, report
from support.alertmanager import Alertmanager


def main():
    am = Alertmanager()
    try:
        alerts = [{"labels": {"alertname": f"Alert{i % 50}", "severity": ["critical", "warning", "info"][i % 3],
                              "service": f"svc-{i % 37}", "instance": f"host-{i}"},
                   "annotations": {"summary": f"something is wrong with host-{i}", "runbook": "https://runbooks/x"}}
                  for i in range(1000)]
        for start in range(0, 1000, 200):
            am.post_alerts(alerts[start:start + 200])
        assert len(am.api("/alerts")) == 1000
        env = {"ONCALL_ALERTS_URL": am.url, "ONCALL_NO_HELP_CACHE": "1"}
        amtool = measure(["amtool", f"--alertmanager.url={am.url}", "alert", "query", "-o", "json"], env, runs=7)
        ours = measure([VENV_BIN / "oncall", "alerts", "list", "-o", "json"], env, runs=7)
        filtered_peer = measure(["amtool", f"--alertmanager.url={am.url}", "alert", "query", "-o", "json",
                                 "severity=critical"], env, runs=7)
        filtered = measure([VENV_BIN / "oncall", "alerts", "list", "severity=critical", "-o", "json"], env, runs=7)
        ratio = report("1,000 active alerts", [("amtool alert query -o json", amtool),
                                               ("oncall alerts list -o json", ours)], (ours, amtool), 2.0)
        report("with a matcher", [("amtool alert query severity=critical -o json", filtered_peer),
                                  ("oncall alerts list severity=critical -o json", filtered)], (filtered, filtered_peer), 2.0)
        return 0 if ratio <= 2.0 else 1
    finally:
        am.stop()


if __name__ == "__main__":
    sys.exit(main())
