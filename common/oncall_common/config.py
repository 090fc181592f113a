"""Configuration with named profiles: ``~/.oncall/config`` (INI) plus ``ONCALL_<SECTION>_<KEY>``.

The file format and environment rule are knack's ``CLIConfig`` (so ``[core] output = table``
works in the CLI too). Profiles overlay the base sections::

    [core]
    profile = prod          ; the default profile (or --profile / ONCALL_PROFILE)

    [alerts]
    url = http://127.0.0.1:9093

    [alerts:prod]           ; used when the profile is "prod"
    url = https://alertmanager.prod.example

Lookup order: environment, the profile's section, the base section, the default.
"""
import configparser
import os
from pathlib import Path

ENV_PREFIX = "ONCALL"


def config_dir():
    return Path(os.environ.get("ONCALL_CONFIG_DIR") or Path.home() / ".oncall")


class Config:
    def __init__(self, directory=None, profile=None, environ=None):
        self.dir = Path(directory) if directory else config_dir()
        self.path = self.dir / "config"
        self.environ = os.environ if environ is None else environ
        self.parser = configparser.ConfigParser(interpolation=None)
        if self.path.exists():
            self.parser.read(self.path, encoding="utf-8")
        self.profile = (profile or self.environ.get(f"{ENV_PREFIX}_PROFILE")
                        or self.parser.get("core", "profile", fallback=None) or "default")

    def _env_key(self, section, key):
        return f"{ENV_PREFIX}_{section}_{key}".upper().replace("-", "_").replace(".", "_")

    def get(self, section, key, default=None):
        env = self.environ.get(self._env_key(section, key))
        if env is not None:
            return env
        if self.profile != "default":
            value = self.parser.get(f"{section}:{self.profile}", key, fallback=None)
            if value is not None:
                return value
        return self.parser.get(section, key, fallback=default)

    def getboolean(self, section, key, default=False):
        value = self.get(section, key)
        if value is None:
            return default
        return str(value).strip().lower() in ("1", "true", "yes", "on")

    def source(self, section, key):
        """Where a value comes from: env, file section, or None."""
        if self._env_key(section, key) in self.environ:
            return "env:" + self._env_key(section, key)
        if self.profile != "default" and self.parser.has_option(f"{section}:{self.profile}", key):
            return f"{self.path}[{section}:{self.profile}]"
        if self.parser.has_option(section, key):
            return f"{self.path}[{section}]"
        return None

    def set(self, section, key, value, profile=None):
        name = section if not profile or profile == "default" else f"{section}:{profile}"
        if not self.parser.has_section(name):
            self.parser.add_section(name)
        self.parser.set(name, key, value)
        self.save()

    def unset(self, section, key, profile=None):
        name = section if not profile or profile == "default" else f"{section}:{profile}"
        removed = self.parser.has_section(name) and self.parser.remove_option(name, key)
        if removed:
            self.save()
        return removed

    def profiles(self):
        names = {"default"}
        for section in self.parser.sections():
            if ":" in section:
                names.add(section.split(":", 1)[1])
        return sorted(names)

    def items(self, profile=None):
        """Every (section, key, value) visible for ``profile`` (file only)."""
        profile = profile or self.profile
        seen = {}
        for section in self.parser.sections():
            base, _, prof = section.partition(":")
            if prof and prof != profile:
                continue
            for key, value in self.parser.items(section):
                if prof or (base, key) not in seen:
                    seen[(base, key)] = value
        return [(s, k, v) for (s, k), v in sorted(seen.items())]

    def save(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            self.parser.write(fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
