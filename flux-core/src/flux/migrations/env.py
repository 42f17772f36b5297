"""Alembic's environment: runs migrations on the engine Flux hands over (never an ini file)."""

from __future__ import annotations

from alembic import context

from flux.models import Base

config = context.config
engine = config.attributes.get("connection_engine")
if engine is None:  # `alembic` run by hand: use Flux's configured database
    from flux.db import get_engine

    engine = get_engine(migrate=False)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
