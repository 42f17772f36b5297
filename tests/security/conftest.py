"""Helpers of the security tests: reading what is really stored (raw files, raw SQL) and
running tasks and commands the way users do."""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner, Result


def flux_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """``flux ARGS...`` in this process (click's runner), as a user would type it."""
    from flux.cli.main import cli

    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)


def write_dag(folder: Path, name: str, body: str) -> Path:
    """Write ``folder/name.py`` from ``body`` (dedented); return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


def raw_bytes_of_sqlite(path: Path) -> bytes:
    """Every byte SQLite keeps for the database ``path``: the file and its WAL (not yet merged)."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")) if p.is_file())
