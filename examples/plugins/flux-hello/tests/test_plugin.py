"""How a plugin author tests a plugin: against the installed distribution, through Flux's own APIs.

Run with ``pytest`` after ``pip install ./flux-core ./examples/plugins/flux-hello`` (from the Flux
repository). Each test gets a fresh plugin manager, as ``flux`` builds one per process.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from flux.cli.main import cli
from flux.plugins import get_plugin_manager, reset_plugin_manager


@pytest.fixture(autouse=True)
def fresh_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("FLUX_HOME", str(tmp_path))
    monkeypatch.delenv("FLUX_DISABLED_PLUGINS", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def test_plugin_loads_without_misspelled_hooks():
    manager = get_plugin_manager()
    manager.check_pending()  # raises if a @hookimpl name matches no hookspec
    info = manager.plugins["hello"]
    assert (info.status, info.distribution) == ("loaded", "flux-hello")


def test_contributions_are_credited_to_flux_hello():
    manager = get_plugin_manager()
    for kind, name in [("operators", "HelloOperator"), ("commands", "hello"), ("macros", "hello")]:
        assert manager.contributions(kind)[name].plugin.distribution == "flux-hello"


def test_operator_renders_its_template_and_returns_the_greeting():
    from flux.macros import build_namespace
    from flux.operators import HelloOperator

    task = HelloOperator(task_id="greet", name="{{ macros.hello.greet(ds) }}")
    task.render_template_fields({"ds": "2024-01-02", "macros": build_namespace()})
    assert task.name == "Hello, 2024-01-02!"
    assert task.execute({}) == "Hello, Hello, 2024-01-02!!"


def test_cli_command():
    result = CliRunner().invoke(cli, ["hello", "Ada", "--shout"])
    assert result.exit_code == 0, result.output
    assert result.output == "HELLO, ADA!\n"


def test_disabling_the_plugin_removes_its_parts(monkeypatch):
    monkeypatch.setenv("FLUX_DISABLED_PLUGINS", "hello")
    manager = get_plugin_manager()
    assert manager.plugins["hello"].status == "disabled"
    assert "HelloOperator" not in manager.operators()
