"""``flux users create|list|delete`` and the user table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from flux.cli.main import cli


def _flux(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=stdin)


def test_create_asks_for_the_password_twice() -> None:
    result = _flux("users", "create", "-u", "ann", "-r", "admin", stdin="long-password\nlong-password\n")
    assert result.exit_code == 0, result.output
    assert "Repeat the password" in result.output
    assert "Created user 'ann' with role admin" in result.output
    from flux_web.users import authenticate

    assert authenticate("ann", "long-password") is not None
    assert authenticate("ann", "other") is None


def test_create_refuses_two_different_passwords() -> None:
    result = _flux("users", "create", "-u", "ann", "-r", "viewer",
                   stdin="long-password\nanother-one\nlong-password\nlong-password\n")
    assert "do not match" in result.output.lower() or "don't match" in result.output.lower()
    from flux_web.users import authenticate

    assert authenticate("ann", "long-password") is not None  # asked again until they matched


def test_create_reads_the_password_from_stdin() -> None:
    result = _flux("users", "create", "-u", "bob", "-r", "viewer", "--password-stdin",
                   stdin="from stdin pw\n")
    assert result.exit_code == 0, result.output
    from flux_web.users import authenticate

    user = authenticate("bob", "from stdin pw")
    assert user is not None and user.role == "viewer" and not user.is_admin


def test_the_password_is_stored_hashed() -> None:
    from flux.db import session_scope
    from flux.models import User

    _flux("users", "create", "-u", "bob", "-r", "viewer", "--password-stdin", stdin="plain-text-pw\n")
    with session_scope() as session:
        stored = session.query(User).one().password_hash
    assert "plain-text-pw" not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["-u", "bad name", "-r", "admin"], "long-password\n", "invalid user name"),
    (["-u", "<script>", "-r", "admin"], "long-password\n", "invalid user name"),
    (["-u", "ann", "-r", "root"], "long-password\n", "Invalid value for '-r'"),
    (["-u", "ann", "-r", "admin"], "short\n", "at least 8 characters"),
])
def test_create_refuses_bad_input_in_one_line(args: list[str], stdin: str, message: str) -> None:
    result = _flux("users", "create", *args, "--password-stdin", stdin=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    from flux_web.users import list_users

    assert list_users() == []


def test_create_refuses_a_taken_name() -> None:
    _flux("users", "create", "-u", "ann", "-r", "admin", "--password-stdin", stdin="long-password\n")
    result = _flux("users", "create", "-u", "ann", "-r", "viewer", "--password-stdin",
                   stdin="other-password\n")
    assert result.exit_code == 1
    assert "Error: user 'ann' already exists" in result.output
    from flux_web.users import authenticate

    assert authenticate("ann", "long-password").role == "admin"  # the first one is kept


def test_list_and_delete() -> None:
    assert "No users yet" in _flux("users", "list").output
    for name, role in (("zed", "viewer"), ("amy", "admin")):
        _flux("users", "create", "-u", name, "-r", role, "--password-stdin", stdin="long-password\n")
    table = _flux("users", "list").output.splitlines()
    assert table[0].split() == ["username", "role", "created", "last", "login"]
    assert [line.split()[0] for line in table[2:]] == ["amy", "zed"]
    assert "never" in table[2]
    data = json.loads(_flux("users", "list", "--json").output)
    assert [(u["username"], u["role"]) for u in data] == [("amy", "admin"), ("zed", "viewer")]
    assert _flux("users", "delete", "-u", "zed").exit_code == 0
    assert [u["username"] for u in json.loads(_flux("users", "list", "--json").output)] == ["amy"]
    result = _flux("users", "delete", "-u", "zed")
    assert result.exit_code == 1 and "no user named 'zed'" in result.output


def test_the_user_table_refuses_unknown_roles() -> None:
    from sqlalchemy.exc import IntegrityError

    from flux.dates import utcnow
    from flux.db import session_scope
    from flux.exceptions import DatabaseError
    from flux.models import User

    # MariaDB reports a failed CHECK as an operational error (Flux's DatabaseError), others as
    # an integrity error: either way the row is refused.
    with pytest.raises((IntegrityError, DatabaseError)), session_scope() as session:
        session.add(User(username="x", password_hash="h", role="superuser", created_at=utcnow()))


def test_migration_0002_adds_and_removes_the_user_table(tmp_path: Any) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from flux.db import _alembic_config, get_engine, upgrade
    from flux.migrations import HEAD

    engine = get_engine(f"sqlite:///{tmp_path / 'm.db'}", migrate=False)
    upgrade(engine, "0001")
    assert "user" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert HEAD == "0002" and "user" in inspect(engine).get_table_names()
    command.downgrade(_alembic_config(engine), "0001")
    assert "user" not in inspect(engine).get_table_names()
    engine.dispose()
