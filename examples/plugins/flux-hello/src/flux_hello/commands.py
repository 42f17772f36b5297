"""``flux hello [NAME]``: imports only click at the top, like every command module."""

from __future__ import annotations

import click


@click.command("hello")
@click.argument("name", default="world")
@click.option("--shout", is_flag=True, help="Print the greeting in capitals.")
def hello_command(name: str, shout: bool) -> None:
    """Greet NAME (default: world), the way HelloOperator does."""
    from flux_hello.macros import greet

    message = greet(name)
    click.echo(message.upper() if shout else message)
