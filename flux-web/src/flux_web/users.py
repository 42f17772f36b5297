"""Web users: create, list, delete, and check passwords (hashes from ``werkzeug.security``).

Used by ``flux users`` and by the web application's sign-in; no Flask import here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime

from werkzeug.security import check_password_hash, generate_password_hash

from flux.models.user import ROLES
from flux_web.errors import UserError, UserExists, UserNotFound

_USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,250}$")
MIN_PASSWORD_LENGTH = 8


@functools.cache
def _dummy_hash() -> str:
    # Checked when the name is unknown, so that a wrong name costs as long as a wrong password
    # (the response time must not tell which user names exist).
    return generate_password_hash("flux-no-such-user")


@dataclass(frozen=True)
class UserInfo:
    """A user as the web application and the CLI see it (never the password hash)."""

    id: int
    username: str
    role: str
    created_at: datetime
    last_login: datetime | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _info(row: object) -> UserInfo:
    return UserInfo(id=row.id, username=row.username, role=row.role,  # type: ignore[attr-defined]
                    created_at=row.created_at, last_login=row.last_login)  # type: ignore[attr-defined]


def validate_username(username: str) -> str:
    """The name, or :class:`UserError` saying what is wrong with it."""
    if not _USERNAME_RE.match(username or ""):
        raise UserError(f"invalid user name {username!r}: use 1 to 250 letters, digits, '_', '.', '@' "
                        "or '-'")
    return username


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"invalid role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def validate_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


def create_user(username: str, password: str, role: str) -> UserInfo:
    """Add a user; :class:`UserExists` if the name is taken."""
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from flux.dates import utcnow
    from flux.db import session_scope
    from flux.models import User

    validate_username(username)
    validate_role(role)
    validate_password(password)
    password_hash = generate_password_hash(password)
    taken = UserExists(f"user {username!r} already exists (delete it first: flux users delete -u {username})")
    with session_scope() as session:
        if session.execute(select(User.id).where(User.username == username)).first() is not None:
            raise taken
        row = User(username=username, password_hash=password_hash, role=role, created_at=utcnow())
        session.add(row)
        try:
            session.flush()
        except IntegrityError:  # created by someone else since the check above
            raise taken from None
        return _info(row)


def list_users() -> list[UserInfo]:
    """Every user, by name."""
    from sqlalchemy import select

    from flux.db import session_scope
    from flux.models import User

    with session_scope() as session:
        return [_info(row) for row in session.execute(select(User).order_by(User.username)).scalars()]


def delete_user(username: str) -> None:
    """Remove a user; :class:`UserNotFound` if there is none of that name."""
    from sqlalchemy import delete

    from flux.db import session_scope
    from flux.models import User

    with session_scope() as session:
        if session.execute(delete(User).where(User.username == username)).rowcount == 0:
            raise UserNotFound(f"no user named {username!r} ('flux users list' shows them)")


def get_user(user_id: int) -> UserInfo | None:
    """The user with this id, or None (deleted since it signed in)."""
    from flux.db import session_scope
    from flux.models import User

    with session_scope() as session:
        row = session.get(User, user_id)
        return _info(row) if row is not None else None


def authenticate(username: str, password: str, *, record_login: bool = False) -> UserInfo | None:
    """The user if ``password`` is theirs, else None. ``record_login`` updates ``last_login``."""
    from sqlalchemy import select

    from flux.dates import utcnow
    from flux.db import session_scope
    from flux.models import User

    with session_scope() as session:
        row = session.execute(select(User).where(User.username == username)).scalars().first()
        if row is None:
            check_password_hash(_dummy_hash(), password)
            return None
        if not check_password_hash(row.password_hash, password):
            return None
        if record_login:
            row.last_login = utcnow()
        return _info(row)
