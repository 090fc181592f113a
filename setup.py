"""The meta distribution: everything oncall ships (named oncall-suite; "oncall" on PyPI is someone else's)."""
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
extensions = sorted(p.parent.name for p in (ROOT / "extensions").glob("*/pyproject.toml"))

setup(
    name="oncall-suite",
    version="0.1.0",
    description="oncall: every on-call chore as one command (all groups)",
    py_modules=[],
    install_requires=["oncall-common==0.1.0"] + [f"oncall-{name}==0.1.0" for name in extensions],
)
