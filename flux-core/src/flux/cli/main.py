"""The ``flux`` root command: a click group whose subcommands are collected from plugins.

Only click and pluggy are imported before a subcommand runs, so ``flux --help`` stays fast; each
command imports what it needs (SQLAlchemy, Jinja2...) inside its own function.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from flux.exceptions import FluxError


class FluxGroup(click.Group):
    """The root group: plugin commands loaded on first need; FluxErrors shown as one line."""

    def _plugin_commands(self) -> dict[str, click.Command]:
        from flux.plugins import get_plugin_manager

        manager = get_plugin_manager()
        # Tied to the manager: tests (and long-lived processes) may reset it.
        if getattr(self, "_loaded_from", None) is not manager:
            # A conflict between two plugins must not hide every other command (flux plugins
            # is how the user finds out what is wrong): leave the contested name out, say why.
            usable, conflicts = manager.contributions_and_conflicts("commands")
            for conflict in conflicts:
                click.echo(f"flux: {conflict}", err=True)
            self._loaded = {name: c.obj for name, c in usable.items()}
            self._loaded_from = manager
        return self._loaded

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugin_commands().get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FluxError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            # click would say "Aborted!" and exit 1; shells expect 130 after Ctrl-C
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=FluxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flux-core", prog_name="flux")
def cli() -> None:
    """Flux: author, schedule and monitor workflows (DAGs of tasks) run over dates."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``flux`` console script."""
    try:
        cli.main(args=argv, prog_name="flux")
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
