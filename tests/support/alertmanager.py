"""The real Prometheus Alertmanager (Debian prometheus-alertmanager), on a free loopback port."""
import datetime as dt
import json
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from .cli import free_port, wait_for_port

CONFIG = """\
route:
  receiver: devnull
  group_by: [alertname]
  routes:
    - receiver: pager
      matchers: [severity="critical"]
receivers:
  - name: devnull
  - name: pager
inhibit_rules:
  - source_matchers: [alertname="ClusterDown"]
    target_matchers: [severity="warning"]
    equal: [cluster]
"""


def binary():
    for name in ("prometheus-alertmanager", "alertmanager"):
        path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if path:
            return path
    raise RuntimeError("prometheus-alertmanager is not installed: run scripts/setup")


class Alertmanager:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="am-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.dir / "am.yml").write_text(CONFIG)
        self.log = open(self.dir / "am.log", "wb")
        self.proc = subprocess.Popen(
            [binary(), f"--config.file={self.dir / 'am.yml'}", f"--storage.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, proc=self.proc)
        self._wait_ready()

    def _wait_ready(self):
        import time
        for _ in range(200):
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.02)

    def post_alerts(self, alerts):
        """alerts: [{labels, annotations?, startsAt?, endsAt?, generatorURL?}]"""
        now = dt.datetime.now(dt.timezone.utc)
        body = []
        for a in alerts:
            a = dict(a)
            a.setdefault("startsAt", (now - dt.timedelta(minutes=5)).isoformat())
            a.setdefault("endsAt", (now + dt.timedelta(hours=1)).isoformat())
            body.append(a)
        req = urllib.request.Request(self.url + "/api/v2/alerts", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()

    def api(self, path):
        with urllib.request.urlopen(self.url + "/api/v2" + path, timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
