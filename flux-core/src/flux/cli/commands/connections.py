"""``flux connections add|list|get|delete`` and ``flux rotate-fernet-key``.

Passwords and secret extras are never printed: they show as ``***``.
"""

from __future__ import annotations

from typing import Any

import click


@click.group("connections")
def connections_group() -> None:
    """Manage connections (how hooks reach databases and other systems)."""


@connections_group.command("add")
@click.argument("conn_id")
@click.option("--uri", default=None, metavar="URI",
              help="The whole connection, e.g. mysql://user:pa%40ss@host:3306/db?charset=utf8mb4")
@click.option("--conn-type", default=None, help="Connection type (mysql, postgres...), without --uri.")
@click.option("--host", default=None)
@click.option("--port", default=None, metavar="PORT")
@click.option("--login", default=None)
@click.option("--password", default=None)
@click.option("--schema", default=None)
@click.option("--extra", default=None, metavar="JSON", help='A JSON object, e.g. \'{"charset": "utf8mb4"}\'.')
@click.option("--description", default=None)
@click.option("--replace", is_flag=True, help="Overwrite the connection if it exists.")
def add_command(conn_id: str, uri: str | None, conn_type: str | None, host: str | None, port: str | None,
                login: str | None, password: str | None, schema: str | None, extra: str | None,
                description: str | None, replace: bool) -> None:
    """Add connection CONN_ID, from --uri or from the field options."""
    from flux.connections import ConnectionInfo, add_connection, env_var_names

    fields = {"host": host, "port": port, "login": login, "password": password, "schema": schema}
    if uri is not None:
        given = [f"--{name}" for name, value in fields.items() if value is not None]
        if conn_type is not None:
            given.insert(0, "--conn-type")
        if given:
            raise click.ClickException(f"give either --uri or field options, not both ({', '.join(given)})")
        info = ConnectionInfo.from_uri(conn_id, uri, description=description)
    else:
        if not conn_type:
            raise click.ClickException("give --uri URI, or the fields with at least --conn-type")
        info = ConnectionInfo(conn_id=conn_id, conn_type=conn_type, description=description, **fields)
    if extra is not None:
        info.extra.update(_parse_extra(extra))
    stored = add_connection(info, replace=replace)
    verb = "Replaced" if replace else "Added"
    click.echo(f"{verb} connection {conn_id!r}: {stored.masked_uri()}")
    import os

    shadowing = [name for name in env_var_names(conn_id) if os.environ.get(name)]
    if shadowing:
        click.echo(f"Note: {shadowing[0]} is set and takes precedence over the stored connection.", err=True)


def _parse_extra(text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.ClickException(f"--extra is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise click.ClickException(f"--extra must be a JSON object ({{...}}), not {type(value).__name__}")
    return value


def _extra_text(extra: dict[str, Any]) -> str:
    import json

    return json.dumps(extra, ensure_ascii=False) if extra else ""


@connections_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def list_command(as_json: bool) -> None:
    """List connections (stored ones and FLUX_CONN_ variables); passwords show as ***."""
    from flux.connections import list_connections

    found = list_connections(include_env=True)
    if as_json:
        import json

        click.echo(json.dumps([info.to_dict() for info in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("No connections. Add one with: flux connections add ID --uri URI")
        return
    from flux.cli.table import render_table

    rows = []
    for info in found:
        data = info.to_dict()
        rows.append([
            data["conn_id"], data["conn_type"], data["host"], data["port"], data["login"],
            data["password"] or "", data["schema"], _extra_text(data["extra"]), data["source"],
        ])
    headers = ["conn_id", "conn_type", "host", "port", "login", "password", "schema", "extra", "source"]
    click.echo(render_table(headers, rows))


@connections_group.command("get")
@click.argument("conn_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def get_command(conn_id: str, as_json: bool) -> None:
    """Show connection CONN_ID (FLUX_CONN_ variable first, then the database); password as ***."""
    from flux.connections import get_connection

    info = get_connection(conn_id)
    data = info.to_dict()
    if as_json:
        import json

        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    data["extra"] = _extra_text(data["extra"])
    data["uri"] = info.masked_uri()
    width = max(len(key) for key in data)
    for key, value in data.items():
        click.echo(f"{key.ljust(width)}  {'' if value is None else value}")


@connections_group.command("delete")
@click.argument("conn_id")
def delete_command(conn_id: str) -> None:
    """Delete connection CONN_ID from the database."""
    from flux.connections import delete_connection

    delete_connection(conn_id)
    click.echo(f"Deleted connection {conn_id!r}")


@click.command("rotate-fernet-key")
def rotate_fernet_key_command() -> None:
    """Re-encrypt every stored secret with a new Fernet key.

    Generates a key, writes "new,old" to [core] fernet_key in flux.toml, re-encrypts connections
    and variables, then keeps only the new key. If fernet_key already holds "new,old", that new
    key is used. Restart running schedulers and workers afterwards so they read the new key.
    """
    from flux.connections import switch_fernet_key

    done = switch_fernet_key()
    click.echo(f"Re-encrypted {done.rotated} stored secret row(s) with the new Fernet key.")
    if done.from_environment:
        click.echo("Now set FLUX__CORE__FERNET_KEY to the new key alone (the first one of the list).")
    else:
        click.echo("[core] fernet_key in flux.toml now holds only the new key.")


COMMANDS = [connections_group, rotate_fernet_key_command]
