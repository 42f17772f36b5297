"""Configuration: one place that reads ``$FLUX_HOME/flux.toml`` and the environment.

Precedence, highest first:

1. ``FLUX__SECTION__KEY`` environment variables (``FLUX__CORE__PARALLELISM=8``);
2. ``FLUX_DATABASE_URL`` for ``[database] url`` (a shortcut every peer offers);
3. ``$FLUX_HOME/flux.toml``;
4. the defaults below.

Environment values are strings; they are converted to the type of the default when there is one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from flux.exceptions import ConfigError

CONFIG_FILE_NAME = "flux.toml"


def flux_home() -> Path:
    """The folder holding flux.toml, flux.db, logs/ and dags/ (``$FLUX_HOME``, default ``~/flux``)."""
    return Path(os.environ.get("FLUX_HOME") or Path.home() / "flux").expanduser()


def _defaults(home: Path) -> dict[str, dict[str, Any]]:
    return {
        "core": {
            "dags_folder": str(home / "dags"),
            "executor": "local",
            "parallelism": 4,
            "default_owner": "flux",
            "fernet_key": "",
            "dagbag_import_timeout": 30.0,
            "max_active_runs_per_dag": 16,
            "max_xcom_size": 49344,
            "killed_task_grace_seconds": 5.0,
        },
        "database": {
            "url": f"sqlite:///{home / 'flux.db'}",
            "pool_size": 5,
            "connect_timeout": 10,
            "reconnect_timeout_seconds": 120.0,
        },
        "logging": {
            "base_log_folder": str(home / "logs"),
            "level": "INFO",
        },
        "scheduler": {
            "heartbeat_seconds": 5.0,
            "zombie_threshold_seconds": 60.0,
            "dag_dir_list_interval": 30.0,
            "loop_interval": 1.0,
        },
        "webserver": {
            "host": "127.0.0.1",
            "port": 8080,
            "secret_key": "",
            "workers": 4,
        },
    }


def _coerce(value: str, like: Any, where: str) -> Any:
    if isinstance(like, bool):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    if isinstance(like, int):
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if isinstance(like, float):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    return value


class Config:
    """The merged configuration, read once per process (see :func:`get_config`)."""

    def __init__(self, home: Path | None = None, environ: dict[str, str] | None = None) -> None:
        self.home = home or flux_home()
        self.path = self.home / CONFIG_FILE_NAME
        env = os.environ if environ is None else environ
        self._values = _defaults(self.home)
        self._merge(self._read_file())
        self._merge(self._read_env(env))

    def _read_file(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        import tomllib

        try:
            with self.path.open("rb") as handle:
                data = tomllib.load(handle)
        except (tomllib.TOMLDecodeError, OSError) as exc:
            raise ConfigError(f"cannot read {self.path}: {exc}") from None
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{self.path}: top-level key {section!r} must be a [section]")
        return data

    def _read_env(self, env: Any) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if env.get("FLUX_DATABASE_URL"):
            found.setdefault("database", {})["url"] = env["FLUX_DATABASE_URL"]
        for name, value in env.items():
            if not name.startswith("FLUX__"):
                continue
            parts = name[len("FLUX__") :].lower().split("__", 1)
            if len(parts) != 2 or not all(parts):
                raise ConfigError(f"environment variable {name}: expected FLUX__SECTION__KEY")
            section, key = parts
            like = self._values.get(section, {}).get(key)
            found.setdefault(section, {})[key] = _coerce(value, like, name) if like is not None else value
        return found

    def _merge(self, data: dict[str, dict[str, Any]]) -> None:
        for section, values in data.items():
            self._values.setdefault(section, {}).update(values)

    def get(self, section: str, key: str, default: Any = None) -> Any:
        """The value of ``[section] key``, or ``default`` when it is not set anywhere."""
        return self._values.get(section, {}).get(key, default)

    def section(self, section: str) -> dict[str, Any]:
        """A copy of every key of one section."""
        return dict(self._values.get(section, {}))

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """A copy of the whole merged configuration."""
        return {name: dict(values) for name, values in self._values.items()}

    @property
    def database_url(self) -> str:
        return str(self.get("database", "url"))

    @property
    def dags_folder(self) -> Path:
        return Path(self.get("core", "dags_folder")).expanduser()

    @property
    def log_folder(self) -> Path:
        return Path(self.get("logging", "base_log_folder")).expanduser()

    def set_persistent(self, section: str, key: str, value: Any) -> None:
        """Write ``[section] key = value`` into flux.toml, keeping the rest of the file."""
        import tomllib

        import tomli_w

        data: dict[str, Any] = {}
        if self.path.exists():
            with self.path.open("rb") as handle:
                data = tomllib.load(handle)
        data.setdefault(section, {})[key] = value
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".toml.tmp")
        with tmp.open("wb") as handle:
            tomli_w.dump(data, handle)
        os.chmod(tmp, 0o600)
        # Replace atomically so a crash never leaves a half-written config (it holds the Fernet key).
        os.replace(tmp, self.path)
        self._values.setdefault(section, {})[key] = value


_config: Config | None = None
_lock = threading.Lock()


def get_config() -> Config:
    """The process-wide configuration, read on first use."""
    global _config
    if _config is None:
        with _lock:
            if _config is None:
                _config = Config()
    return _config


def reset_config() -> None:
    """Forget the cached configuration (tests change FLUX_HOME between cases)."""
    global _config
    _config = None
