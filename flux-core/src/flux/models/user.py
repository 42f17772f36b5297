"""The ``user`` table: who may sign in to the web interface, and with which role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from flux.models.base import Base, IdString, UtcDateTime

#: may look at everything and act (clear, mark, trigger, pause)
ROLE_ADMIN = "admin"
#: may look at everything, change nothing
ROLE_VIEWER = "viewer"
ROLES = (ROLE_ADMIN, ROLE_VIEWER)


class User(Base):
    """A web user. ``password_hash`` is a salted hash (never the password itself)."""

    __tablename__ = "user"
    __table_args__ = (CheckConstraint("role IN ('admin', 'viewer')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(IdString(), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(500), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    last_login: Mapped[datetime | None] = mapped_column(UtcDateTime())

    def __repr__(self) -> str:
        return f"<User {self.username} ({self.role})>"

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN
