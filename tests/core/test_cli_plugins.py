"""``flux plugins`` (table and ``--json``) and the promise that ``flux --help`` stays light and
survives broken plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
import uuid
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from flux.cli.main import cli
from flux.hookspecs import hookimpl
from flux.plugins import PluginInfo, get_plugin_manager

# Libraries `flux --help` must never import: each costs tens of milliseconds, and a plugin's
# command list must not depend on a database driver or a web framework being importable.
HEAVY = ("sqlalchemy", "jinja2", "alembic", "pymysql", "psycopg", "flask", "celery", "pandas")

JSON_KEYS = {
    "name", "distribution", "version", "module", "status", "error",
    "hooks", "operators", "executors", "commands", "macros", "problems",
}


@pytest.fixture(autouse=True)
def fresh_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    # The root group keeps the plugin commands it loaded; each test here builds its own plugins.
    monkeypatch.delattr(cli, "_loaded", raising=False)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def invoke_plugins(*args: str) -> tuple[int, str]:
    from flux.cli.commands.plugins import plugins_command

    result = CliRunner().invoke(plugins_command, list(args))
    return result.exit_code, result.output


def fake_plugin(site: Path, dist: str, name: str, source: str) -> str:
    """Write a distribution ``dist`` (version 1.0) whose plugin ``name`` is a new module."""
    site.mkdir(exist_ok=True)
    module = f"fluxtest_{uuid.uuid4().hex[:10]}"
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[flux]\n{name} = {module}\n")
    return module


def run_flux(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``flux`` console script's code in a new interpreter, as a user's shell would."""
    env = {k: v for k, v in os.environ.items() if k != "FLUX_DISABLED_PLUGINS"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [sys.executable, "-c", "import sys; from flux.cli.main import main; main(sys.argv[1:])", *args],
        capture_output=True, text=True, env=env,
    )


# --- flux plugins --------------------------------------------------------------------------------


def test_table_lists_each_plugin_with_its_distribution_version_and_parts() -> None:
    code, output = invoke("plugins")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split() == ["name", "distribution", "version", "contributes"]
    assert set(lines[1]) <= {"-", " "}
    core = next(line for line in lines if line.startswith("core "))
    assert core.split()[:3] == ["core", "flux-core", get_plugin_manager().plugins["core"].version]
    assert "commands:" in output and "plugins" in output


def test_table_shows_a_registered_plugins_parts_on_its_own_lines() -> None:
    widget = type("WidgetOperator", (), {})
    plugin = types.SimpleNamespace(
        flux_operators=hookimpl(lambda: [widget]),
        flux_macros=hookimpl(lambda: {"widget": types.SimpleNamespace()}),
    )
    manager = get_plugin_manager()
    manager.register(plugin, PluginInfo("widget", "tests.widget", "flux-widget", "3.1"))
    try:
        code, output = invoke("plugins")
    finally:
        manager.unregister("widget")
    assert code == 0, output
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("widget "))
    assert lines[start].split() == ["widget", "flux-widget", "3.1", "operators:", "WidgetOperator"]
    assert lines[start + 1].split() == ["macros:", "widget"]


def test_a_long_list_is_folded_and_sorted() -> None:
    names = [f"Long{i:02d}TransferOperator" for i in range(12, 0, -1)]
    plugin = types.SimpleNamespace(flux_operators=hookimpl(lambda: [type(n, (), {}) for n in names]))
    manager = get_plugin_manager()
    manager.register(plugin, PluginInfo("many", "tests.many", "flux-many", "1.0"))
    try:
        code, output = invoke("plugins")
    finally:
        manager.unregister("many")
    assert code == 0, output
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("many "))
    column = lines[start].index("operators:")
    block = [lines[start][column:]]
    for line in lines[start + 1:]:
        if line[:column].strip() or not line[column:].startswith(" " * len("operators: ")):
            break
        block.append(line[column:])
    assert len(block) > 1 and all(len(line) <= 72 for line in block)
    listed = " ".join(block).removeprefix("operators: ").replace(",", " ").split()
    assert listed == sorted(names)


def test_json_is_a_list_of_plugins_for_machines() -> None:
    code, output = invoke("plugins", "--json")
    assert code == 0, output
    rows = json.loads(output)
    assert isinstance(rows, list) and rows
    for row in rows:
        assert set(row) == JSON_KEYS
    core = next(row for row in rows if row["name"] == "core")
    assert core["distribution"] == "flux-core" and core["status"] == "loaded" and core["error"] is None
    assert "plugins" in core["commands"]


def test_disabled_and_broken_plugins_are_shown_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    fake_plugin(site, "flux-quiet", "quiet", "from flux.hookspecs import hookimpl\n")
    fake_plugin(site, "flux-shaky", "shaky", "raise RuntimeError('shaky plugin exploded')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("FLUX_DISABLED_PLUGINS", "quiet")
    code, output = invoke("plugins", "--json")
    assert code == 0, output
    rows = {row["name"]: row for row in json.loads(output)}
    assert rows["quiet"]["status"] == "disabled" and rows["quiet"]["distribution"] == "flux-quiet"
    assert rows["shaky"]["status"] == "error"
    assert rows["shaky"]["error"] == "RuntimeError: shaky plugin exploded"
    code, output = invoke("plugins")
    assert code == 0, output
    table = {line.split()[0]: line for line in output.splitlines()[2:] if not line.startswith(" ")}
    assert "DISABLED" in table["quiet"]
    assert "ERROR: RuntimeError: shaky plugin exploded" in table["shaky"]


def test_a_conflict_is_shown_on_both_plugins_rows() -> None:
    manager = get_plugin_manager()
    for name in ("left", "right"):
        command = click.Command("twin", callback=lambda: None)
        plugin = types.SimpleNamespace(flux_commands=hookimpl(lambda command=command: [command]))
        manager.register(plugin, PluginInfo(name, f"tests.{name}", f"flux-{name}", "1.0"))
    try:
        # Run `plugins` itself: the root group cannot list contested commands (see test_plugins).
        code, output = invoke_plugins()
        _, as_json = invoke_plugins("--json")
    finally:
        manager.unregister("left")
        manager.unregister("right")
    assert code == 0, output
    assert output.count("CONFLICT: command 'twin' is registered by both flux-left") == 2
    rows = {row["name"]: row for row in json.loads(as_json)}
    assert rows["left"]["problems"] == rows["right"]["problems"]
    assert "flux-right" in rows["left"]["problems"][0]


def test_a_plugin_command_is_a_flux_subcommand() -> None:
    @click.command("wave")
    @click.argument("who")
    def wave(who: str) -> None:
        """Wave at WHO."""
        click.echo(f"*waves at {who}*")

    manager = get_plugin_manager()
    manager.register(types.SimpleNamespace(flux_commands=hookimpl(lambda: [wave])),
                     PluginInfo("waver", "tests.waver", "flux-waver", "1.0"))
    try:
        assert invoke("wave", "Ada") == (0, "*waves at Ada*\n")
        code, output = invoke("--help")
        assert code == 0 and "Wave at WHO." in output
    finally:
        manager.unregister("waver")


# --- flux --help in a new interpreter ------------------------------------------------------------

IMPORTS_AFTER_HELP = """
import json, sys
from flux.cli.main import main
try:
    main(["--help"])
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(sys.modules)))
"""


def test_help_imports_no_heavy_library() -> None:
    done = subprocess.run([sys.executable, "-c", IMPORTS_AFTER_HELP], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    help_text, _, modules_json = done.stdout.rstrip().rpartition("\n")
    assert "plugins" in help_text  # the plugin commands were loaded, not skipped
    loaded = {name.split(".")[0] for name in json.loads(modules_json)}
    assert "flux" in loaded and "click" in loaded
    assert not loaded & set(HEAVY), f"`flux --help` imported {sorted(loaded & set(HEAVY))}"


def test_a_plugin_that_fails_to_import_breaks_neither_help_nor_plugins(tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_plugin(site, "flux-kaput", "kaput", "import no_such_module_anywhere\n")
    helped = run_flux("--help", pythonpath=site)
    assert helped.returncode == 0, helped.stderr
    assert "plugins" in helped.stdout and "db" in helped.stdout
    assert "plugin 'kaput' (flux-kaput) is broken: ModuleNotFoundError" in helped.stderr
    listed = run_flux("plugins", "--json", pythonpath=site)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["kaput"]["status"] == "error"
    assert rows["kaput"]["error"] == "ModuleNotFoundError: No module named 'no_such_module_anywhere'"
    assert rows["core"]["status"] == "loaded"


def test_disabled_plugins_from_the_environment_in_a_new_interpreter(tmp_path: Path) -> None:
    site = tmp_path / "site"
    module = fake_plugin(site, "flux-loud", "loud", """
        import click
        from flux.hookspecs import hookimpl

        @click.command("shout")
        def shout():
            '''Shout.'''

        @hookimpl
        def flux_commands():
            return [shout]
    """)
    assert "shout" in run_flux("--help", pythonpath=site).stdout
    env = {**os.environ, "PYTHONPATH": str(site), "FLUX_DISABLED_PLUGINS": "loud"}
    code = "import sys; from flux.cli.main import main; main(sys.argv[1:])"
    helped = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0 and "shout" not in helped.stdout
    listed = subprocess.run([sys.executable, "-c", code, "plugins"], capture_output=True, text=True, env=env)
    row = next(line for line in listed.stdout.splitlines() if line.startswith("loud "))
    assert row.split()[:5] == ["loud", "flux-loud", "1.0", "DISABLED", "(FLUX_DISABLED_PLUGINS)"]
    assert module not in listed.stdout
