"""``flux webserver`` and ``flux users``: the web plugin's commands.

Only click is imported at the top (``flux --help`` imports this module); Flask, waitress and the
database are imported inside the command functions.
"""

from __future__ import annotations

import sys

import click


@click.command("webserver")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=None,
              help="The port to listen on (default: [webserver] port, 8080).")
@click.option("-H", "--host", "--hostname", "host", default=None,
              help="The address to bind (default: [webserver] host, 127.0.0.1).")
@click.option("-w", "--workers", type=click.IntRange(1, 256), default=None,
              help="Threads serving requests (default: [webserver] workers, 4).")
@click.option("-d", "--debug", is_flag=True,
              help="Use Flask's development server with the debugger (never in production).")
def webserver(port: int | None, host: str | None, workers: int | None, debug: bool) -> None:
    """Start a Flux webserver instance."""
    from flux.config import get_config
    from flux_web.server import serve

    config = get_config()
    serve(
        host=host or str(config.get("webserver", "host", "127.0.0.1")),
        port=int(config.get("webserver", "port", 8080)) if port is None else port,
        workers=workers or int(config.get("webserver", "workers", 4)),
        debug=debug,
        echo=click.echo,
    )


@click.group("users")
def users_group() -> None:
    """Create, list and delete the users of the web interface."""


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        # One line; the newline that ends it is not part of the password.
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")


@users_group.command("create")
@click.option("-u", "--username", required=True, help="The name to sign in with.")
@click.option("-r", "--role", type=click.Choice(["admin", "viewer"]), required=True,
              help="admin may act (clear, mark, trigger, pause); viewer may only look.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input instead of asking.")
def users_create(username: str, role: str, password_stdin: bool) -> None:
    """Create a user (the password is asked twice, or read with --password-stdin)."""
    from flux_web.users import create_user, validate_role, validate_username

    validate_username(username)  # fail before asking for a password
    validate_role(role)
    user = create_user(username, _read_password(password_stdin), role)
    click.echo(f"Created user {user.username!r} with role {user.role}")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def users_list(as_json: bool) -> None:
    """List the users and their roles."""
    from flux.cli.table import render_table
    from flux.dates import display
    from flux_web.users import list_users

    users = list_users()
    if as_json:
        import json

        click.echo(json.dumps([
            {"username": u.username, "role": u.role, "created_at": u.created_at.isoformat(),
             "last_login": u.last_login.isoformat() if u.last_login else None}
            for u in users
        ], indent=2))
        return
    if not users:
        click.echo("No users yet. Create one with: flux users create -u NAME -r admin")
        return
    click.echo(render_table(
        ["username", "role", "created", "last login"],
        [[u.username, u.role, display(u.created_at), display(u.last_login) if u.last_login else "never"]
         for u in users],
    ))


@users_group.command("delete")
@click.option("-u", "--username", required=True, help="The user to delete.")
def users_delete(username: str) -> None:
    """Delete a user (their open sessions stop working at once)."""
    from flux_web.users import delete_user

    delete_user(username)
    click.echo(f"Deleted user {username!r}")


COMMANDS = [webserver, users_group]
