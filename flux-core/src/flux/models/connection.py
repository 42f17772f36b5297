"""The ``connection`` table: how to reach outside systems, secrets encrypted at rest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from flux.models.base import Base, IdString


class Connection(Base):
    """A named connection (``conn_id``); password and secret extra keys are stored encrypted.

    Use :mod:`flux.connections` to read and write them: it encrypts, decrypts and merges
    ``FLUX_CONN_<ID>`` environment variables. The attributes here hold what is stored.
    """

    __tablename__ = "connection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conn_id: Mapped[str] = mapped_column(IdString(), unique=True, nullable=False)
    conn_type: Mapped[str] = mapped_column(String(50), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(500))
    port: Mapped[int | None] = mapped_column(Integer)
    login: Mapped[str | None] = mapped_column(String(500))
    password: Mapped[str | None] = mapped_column(Text)
    schema: Mapped[str | None] = mapped_column(String(500))
    extra: Mapped[str | None] = mapped_column(Text)
    is_encrypted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    is_extra_encrypted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    def __repr__(self) -> str:
        return f"<Connection {self.conn_id} ({self.conn_type})>"

    def as_dict(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id,
            "conn_type": self.conn_type,
            "host": self.host,
            "port": self.port,
            "login": self.login,
            "schema": self.schema,
        }
