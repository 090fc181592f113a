"""python -m demo: start the local stack and walk an on-call shift through the real CLI.

Each group adds demo/groups/<name>.py with start(stack) and steps(stack) -> [(narration, args[, opts])].
"""
import importlib
import json
import os
import shlex
import subprocess
import sys
import time

from .stack import ROOT, Stack

ORDER = [("alerts", "steps"), ("k8s", "steps"), ("logs", "steps"), ("devops", "steps"), ("blob", "steps"),
         ("alerts", "closing_steps")]
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def oncall_bin():
    return str(ROOT / ".venv" / "bin" / "oncall")


def run_step(stack, narration, args, opts):
    args = args(stack) if callable(args) else args
    print(f"\n{BOLD}# {narration}{RESET}")
    print(f"{BOLD}$ oncall {' '.join(shlex.quote(str(a)) for a in args)}{RESET}", flush=True)
    proc = subprocess.run([oncall_bin(), *map(str, args)], capture_output=True, text=True, env=stack.process_env(),
                          timeout=opts.get("timeout", 120))
    out = proc.stdout
    limit = opts.get("show_lines", 25)
    lines = out.splitlines()
    print("\n".join(lines[:limit]) + (f"\n{DIM}... ({len(lines) - limit} more lines){RESET}" if len(lines) > limit else ""))
    if proc.stderr.strip():
        print(f"{DIM}{proc.stderr.rstrip()}{RESET}")
    expected = opts.get("expect", 0)
    if proc.returncode != expected:
        raise SystemExit(f"demo step failed: exit {proc.returncode} (expected {expected})")
    try:
        stack.last = json.loads(out) if out.strip() else None
    except ValueError:
        stack.last = out


def main():
    stack = Stack()
    started = time.monotonic()
    modules = {}
    try:
        for name, _ in ORDER:
            if name in modules:
                continue
            try:
                modules[name] = importlib.import_module(f"demo.groups.{name}")
            except ModuleNotFoundError as ex:
                if ex.name != f"demo.groups.{name}":
                    raise
                continue
            if hasattr(modules[name], "start"):
                print(f"{DIM}starting {name} ...{RESET}", flush=True)
                modules[name].start(stack)
        print(f"{BOLD}oncall demo: a payments pod is crash-looping and the pager just went off.{RESET}")
        for name, attr in ORDER:
            module = modules.get(name)
            if module is None or not hasattr(module, attr):
                continue
            print(f"\n{BOLD}===== {name} ====={RESET}")
            for step in getattr(module, attr)(stack):
                narration, args, *rest = step
                run_step(stack, narration, args, rest[0] if rest else {})
        print(f"\n{BOLD}demo finished in {time.monotonic() - started:.1f}s: every step ran through the real CLI.{RESET}")
    finally:
        stack.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
