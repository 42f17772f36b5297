"""``flux pools``: named slot limits shared by task instances."""

from __future__ import annotations

import click


@click.group("pools")
def pools_group() -> None:
    """Create, list and delete pools."""


@pools_group.command("set")
@click.argument("name")
@click.argument("slots", type=click.IntRange(min=0))
@click.option("--description", default=None)
def pools_set(name: str, slots: int, description: str | None) -> None:
    """Create pool NAME with SLOTS slots (or change its size)."""
    from flux.db import session_scope
    from flux.models import Pool

    with session_scope() as session:
        pool = session.get(Pool, name)
        if pool is None:
            session.add(Pool(pool=name, slots=slots, description=description))
        else:
            pool.slots = slots
            if description is not None:
                pool.description = description
    click.echo(f"Pool {name}: {slots} slots")


@pools_group.command("list")
def pools_list() -> None:
    """List pools with their slots and how many are in use."""
    from sqlalchemy import func, select

    from flux.cli.table import render_table
    from flux.db import session_scope
    from flux.models import Pool, TaskInstance
    from flux.state import State

    with session_scope() as session:
        pools = session.execute(select(Pool).order_by(Pool.pool)).scalars().all()
        used = dict(session.execute(
            select(TaskInstance.pool, func.sum(TaskInstance.pool_slots))
            .where(TaskInstance.state.in_([State.QUEUED, State.RUNNING]))
            .group_by(TaskInstance.pool)).all())
        rows = [[p.pool, p.slots, int(used.get(p.pool) or 0), p.description or ""] for p in pools]
    click.echo(render_table(["pool", "slots", "in use", "description"], rows))


@pools_group.command("delete")
@click.argument("name")
def pools_delete(name: str) -> None:
    """Delete pool NAME."""
    from flux.db import session_scope
    from flux.models import Pool

    with session_scope() as session:
        pool = session.get(Pool, name)
        if pool is None:
            raise click.ClickException(f"pool {name!r} does not exist")
        session.delete(pool)
    click.echo(f"Deleted pool {name}")


COMMANDS = [pools_group]
