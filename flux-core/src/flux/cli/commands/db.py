"""``flux db init|upgrade|reset`` and the ``flux initdb`` alias."""

from __future__ import annotations

import click

from flux.cli.options import alias


@click.group("db")
def db_group() -> None:
    """Create, migrate or reset the metadata database."""


def _describe() -> str:
    from flux.config import get_config
    from flux.db import redact_url

    return redact_url(get_config().database_url)


@db_group.command("init")
def db_init() -> None:
    """Create the metadata database (or migrate it) and the Fernet key."""
    from flux import crypto
    from flux.db import get_engine

    get_engine()
    crypto.ensure_key()
    click.echo(f"Metadata database ready: {_describe()}")


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending schema migration."""
    from flux.db import current_revision, get_engine, upgrade

    engine = get_engine(migrate=False)
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    if before == after:
        click.echo(f"Already at revision {after}: {_describe()}")
    else:
        click.echo(f"Upgraded {_describe()} from {before or 'empty'} to {after}")


@db_group.command("reset")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def db_reset(yes: bool) -> None:
    """Drop every Flux table and create them anew (ALL METADATA IS LOST)."""
    from flux.db import reset

    target = _describe()
    if not yes:
        click.confirm(f"Drop all Flux metadata in {target}?", abort=True)
    reset()
    click.echo(f"Reset {target}")


COMMANDS = [db_group, alias(db_init, "initdb", "Alias of 'flux db init'.")]
