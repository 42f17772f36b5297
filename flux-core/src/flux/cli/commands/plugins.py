"""``flux plugins``: what plugins were found and what each contributes."""

from __future__ import annotations

import json

import click

KIND_LABELS = ("hooks", "operators", "executors", "commands", "macros")


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def plugins_command(as_json: bool) -> None:
    """List installed plugins and what each contributes."""
    from flux.plugins import get_plugin_manager

    rows = get_plugin_manager().describe()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from flux.cli.table import render_table

    table = []
    for row in rows:
        parts = [_wrapped(kind, row[kind]) for kind in KIND_LABELS if row[kind]]
        if row["status"] == "disabled":
            parts.insert(0, "DISABLED (FLUX_DISABLED_PLUGINS)")
        elif row["status"] != "loaded":
            parts.insert(0, f"{row['status'].upper()}: {row['error']}")
        parts.extend(f"CONFLICT: {problem}" for problem in row.get("problems", []))
        table.append([row["name"], row["distribution"], row["version"], "\n".join(parts) or "-"])
    click.echo(render_table(["name", "distribution", "version", "contributes"], table))


def _wrapped(kind: str, names: list[str], width: int = 72) -> str:
    """``kind: a, b, c`` folded under its first name when long."""
    import textwrap

    return "\n".join(textwrap.wrap(
        f"{kind}: {', '.join(names)}", width=width, subsequent_indent=" " * (len(kind) + 2),
        break_long_words=False, break_on_hyphens=False,
    ))


COMMANDS = [plugins_command]
