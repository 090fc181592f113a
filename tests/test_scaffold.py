"""scripts/new-extension makes an extension that works in every front door, with a passing test."""
import json
import subprocess
import sys

from support.cli import ROOT, VENV_BIN, run_process


def test_scaffolded_extension_appears_in_all_front_doors(tmp_path, az):
    r = run_process([sys.executable, ROOT / "scripts" / "new-extension", "pinger", "--dir", tmp_path,
                     "--description", "Check that endpoints answer."])
    assert r.code == 0, r
    ext = tmp_path / "pinger"
    site = tmp_path / "site"
    r = run_process([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                     "--target", site, ext])
    assert r.code == 0, r
    env = {"PYTHONPATH": str(site), "ONCALL_NO_HELP_CACHE": "1"}

    direct = run_process([VENV_BIN / "oncall", "pinger", "hello", "World", "--times", "2"], env=env)
    plugin = run_process([VENV_BIN / "kubectl", "oncall", "pinger", "hello", "World", "--times", "2"], env=env)
    assert direct.code == plugin.code == 0, (direct, plugin)
    assert json.loads(direct.out) == json.loads(plugin.out) == [{"name": "World", "greeting": "Hello, World!"}] * 2
    help_text = run_process([VENV_BIN / "oncall", "pinger", "--help"], env=env).out
    assert "Check that endpoints answer." in help_text

    # its own test passes with the suite's fixtures
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "--rootdir", str(ext),
                            str(ext / "tests")], capture_output=True, text=True, timeout=120,
                           env={**__import__("os").environ, "PYTHONPATH": f"{site}:{ROOT}"}, cwd=ext)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout

    # and it is an az extension: build its wheel, add it, run it
    wheels = tmp_path / "wheels"
    r = run_process([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, ext])
    assert r.code == 0, r
    (wheel,) = wheels.glob("oncall_pinger-*.whl")
    r = az.add_extension(wheel)
    assert r.code == 0, r
    r = az.run("oncall", "pinger", "hello", "World", "--shout")
    assert r.code == 0, r
    assert json.loads(r.out) == [{"name": "World", "greeting": "HELLO, WORLD!"}]
    r = az.run("extension", "remove", "--name", "oncall-pinger")
    assert r.code == 0, r
