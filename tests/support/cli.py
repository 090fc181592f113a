"""Run oncall like a user: in-process through main(), or as a real subprocess."""
import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)

    def __str__(self):
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


class _Stream(io.StringIO):
    def isatty(self):
        return False


def run_inprocess(*args, stdin=""):
    """Invoke the knack front door in this process (fast); streams are captured."""
    from oncall_common.frontdoor.cli import main
    out, err = _Stream(), _Stream()
    old_in = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        sys.stdin = old_in
    return Result(code, out.getvalue(), err.getvalue())


def run_process(argv, env=None, timeout=120, input=None, cwd=None):
    """Run a real executable (oncall, kubectl, az) with the test's environment."""
    full_env = dict(os.environ)
    full_env["PATH"] = f"{VENV_BIN}{os.pathsep}{full_env.get('PATH', '')}"
    full_env.update(env or {})
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=full_env, timeout=timeout,
                          input=input, cwd=cwd)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=10.0, proc=None):
    import socket
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")
