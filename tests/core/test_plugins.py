"""The plugin contract, in process: crediting, conflicts, misspelled hooks, broken hooks, the seed's
import paths (``from flux.operators import X``) and listener hooks.

Throwaway plugins are plain objects with ``@hookimpl`` functions, registered on the process-wide
manager and removed in ``finally`` (tests/conftest.py also resets the manager around each test).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any

import click
import pytest

from flux.exceptions import MissingPluginError, PluginConflictError, PluginError
from flux.hookspecs import hookimpl, hookspec
from flux.plugins import (
    FluxPluginManager,
    PluginInfo,
    get_plugin_manager,
    reset_plugin_manager,
)

# --- helpers -------------------------------------------------------------------------------------


def make_plugin(**hooks: Callable[..., Any]) -> types.SimpleNamespace:
    """An object whose attributes are the given functions, marked as hook implementations."""
    return types.SimpleNamespace(**{name: hookimpl(function) for name, function in hooks.items()})


@contextmanager
def registered(name: str, distribution: str, **hooks: Callable[..., Any]) -> Iterator[FluxPluginManager]:
    """Register a throwaway plugin for the duration of a ``with`` block."""
    manager = get_plugin_manager()
    manager.register(make_plugin(**hooks), PluginInfo(name, f"tests.{name}", distribution, "1.0"))
    try:
        yield manager
    finally:
        manager.unregister(name)


def returning(*items: Any) -> Callable[[], list[Any]]:
    return lambda: list(items)


def operator_class(class_name: str) -> type:
    return type(class_name, (), {"__doc__": "A throwaway operator."})


def hook_class(class_name: str, conn_type: str) -> type:
    return type(class_name, (), {"conn_type": conn_type})


def executor_class(class_name: str, executor_name: str) -> type:
    return type(class_name, (), {"executor_name": executor_name})


def click_command(name: str) -> click.Command:
    return click.Command(name, callback=lambda: click.echo(name), help=f"The {name} command.")


@pytest.fixture
def core_only(monkeypatch: pytest.MonkeyPatch) -> FluxPluginManager:
    """The process-wide manager as it is with flux-core alone installed, whatever else is here."""
    from flux import plugins

    core = [ep for ep in metadata.distribution("flux-core").entry_points if ep.group == "flux"]
    manager = FluxPluginManager(entry_points=core)
    monkeypatch.setattr(plugins, "_manager", manager)
    return manager


# --- crediting -----------------------------------------------------------------------------------


def test_every_kind_of_contribution_is_credited_to_its_distribution() -> None:
    Op = operator_class("CreditOperator")
    Hook = hook_class("CreditHook", "credit")
    Executor = executor_class("CreditExecutor", "credit")
    command = click_command("credit-cmd")
    namespace = types.SimpleNamespace(double=lambda x: 2 * x)
    with registered(
        "credit", "flux-credit",
        flux_operators=returning(Op), flux_hooks=returning(Hook),
        flux_executors=returning(Executor), flux_commands=returning(command),
        flux_macros=lambda: {"credit": namespace},
    ) as manager:
        expected = {
            ("operators", "CreditOperator"): Op, ("hooks", "credit"): Hook,
            ("executors", "credit"): Executor, ("commands", "credit-cmd"): command,
            ("macros", "credit"): namespace,
        }
        for (kind, name), obj in expected.items():
            contribution = manager.contributions(kind)[name]
            assert contribution.obj is obj
            assert (contribution.plugin.name, contribution.plugin.distribution) == ("credit", "flux-credit")
            assert manager.get(kind, name) is obj
        row = next(row for row in manager.describe() if row["name"] == "credit")
        assert row["operators"] == ["CreditOperator"]
        assert row["hooks"] == ["credit"] and row["executors"] == ["credit"]
        assert row["commands"] == ["credit-cmd"] and row["macros"] == ["credit"]
        assert row["status"] == "loaded" and row["problems"] == []
    assert "CreditOperator" not in get_plugin_manager().operators()


def test_core_is_a_plugin_like_any_other() -> None:
    manager = get_plugin_manager()
    core = manager.plugins["core"]
    assert (core.distribution, core.module, core.status) == ("flux-core", "flux.builtin.plugin", "loaded")
    assert core.version == metadata.version("flux-core")
    for name in ("plugins", "db"):
        assert manager.contributions("commands")[name].plugin is core


def test_macro_namespaces_reach_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    from flux.macros import build_namespace

    # flux.macros may cache the namespace per manager; start from none, whatever came before.
    monkeypatch.setattr("flux.macros._namespaces", {}, raising=False)
    namespace = types.SimpleNamespace(shout=lambda s: s.upper())
    with registered("loud", "flux-loud", flux_macros=lambda: {"loud": namespace}):
        assert build_namespace().loud.shout("hi") == "HI"
        assert build_namespace({"extra": 1}).loud is namespace


# --- conflicts -----------------------------------------------------------------------------------

CONFLICTS: dict[str, tuple[str, str, Callable[[], Any]]] = {
    # kind: (hook, name both plugins claim, a fresh object claiming it)
    "operators": ("flux_operators", "TwinOperator", lambda: operator_class("TwinOperator")),
    "hooks": ("flux_hooks", "twin", lambda: hook_class("TwinHook", "twin")),
    "executors": ("flux_executors", "twin", lambda: executor_class("TwinExecutor", "twin")),
    "commands": ("flux_commands", "twin", lambda: click_command("twin")),
    "macros": ("flux_macros", "twin", lambda: types.SimpleNamespace()),
}


def _claiming(kind: str) -> dict[str, Callable[[], Any]]:
    hook, name, make = CONFLICTS[kind]
    obj = make()
    return {hook: (lambda: {name: obj}) if kind == "macros" else returning(obj)}


@pytest.mark.parametrize("kind", sorted(CONFLICTS))
def test_two_plugins_claiming_one_name_is_an_error_naming_both(kind: str) -> None:
    name = CONFLICTS[kind][1]
    with registered("twin-a", "flux-twin-a", **_claiming(kind)), \
            registered("twin-b", "flux-twin-b", **_claiming(kind)) as manager:
        with pytest.raises(PluginConflictError) as caught:
            manager.contributions(kind)
        message = str(caught.value)
        assert "flux-twin-a" in message and "flux-twin-b" in message
        assert repr(name) in message
        assert "FLUX_DISABLED_PLUGINS=twin-b" in message
        # Listing never raises: both rows carry the conflict.
        rows = {row["name"]: row for row in manager.describe()}
        for plugin in ("twin-a", "twin-b"):
            assert rows[plugin][kind] == [name]
            assert rows[plugin]["problems"] == [message]
    assert name not in get_plugin_manager().contributions(kind)


def test_callers_that_must_keep_working_get_the_uncontested_names_and_the_conflicts() -> None:
    Lone = operator_class("LoneOperator")
    with registered("twin-a", "flux-twin-a", **_claiming("operators")), \
            registered("twin-b", "flux-twin-b", **_claiming("operators")), \
            registered("lone", "flux-lone", flux_operators=returning(Lone)) as manager:
        usable, conflicts = manager.contributions_and_conflicts("operators")
        assert usable["LoneOperator"].obj is Lone
        assert "TwinOperator" not in usable
        assert [type(c) for c in conflicts] == [PluginConflictError]
        assert "flux-twin-a" in str(conflicts[0]) and "flux-twin-b" in str(conflicts[0])
        assert manager.contributions_and_conflicts("hooks")[1] == []


def test_a_plugin_command_clashing_with_a_core_command_names_flux_core() -> None:
    with registered("shadow", "flux-shadow", flux_commands=returning(click_command("plugins"))) as manager:
        with pytest.raises(PluginConflictError, match=r"both flux-core .* and flux-shadow"):
            manager.commands()


def test_one_class_offered_by_two_plugins_is_not_a_conflict() -> None:
    Shared = operator_class("SharedOperator")
    with registered("first", "flux-first", flux_operators=returning(Shared)), \
            registered("second", "flux-second", flux_operators=returning(Shared)) as manager:
        assert manager.operators()["SharedOperator"] is Shared
        # The first plugin in discovery order is credited.
        assert manager.contributions("operators")["SharedOperator"].plugin.name == "first"


# --- misspelled and broken plugins ---------------------------------------------------------------


def test_a_misspelled_hook_is_reported_and_check_pending_raises() -> None:
    manager = get_plugin_manager()
    manager.check_pending()  # nothing pending before
    info = PluginInfo("typo", "tests.typo", "flux-typo", "1.0")
    plugin = make_plugin(flux_operator=returning(operator_class("TypoOperator")))
    try:
        with pytest.raises(PluginError, match=r"unknown hook flux_operator \(misspelled\?\)"):
            manager.register(plugin, info)
        assert info.status == "error"
        # The message names the misspelled hook, and the known ones.
        assert "flux_operator" in info.error and "flux_operators" in info.error
        with pytest.raises(PluginError, match=r"'typo' \(flux-typo\) implements unknown hook flux_operator"):
            manager.check_pending()
        # The rejected plugin contributes nothing, and is listed as broken.
        assert "TypoOperator" not in manager.operators()
        row = next(row for row in manager.describe() if row["name"] == "typo")
        assert row["status"] == "error" and "flux_operator" in row["error"]
    finally:
        manager.unregister("typo")
    manager.check_pending()
    assert "flux_operator" not in manager.hook_names()


def test_an_optional_hook_of_an_absent_plugin_is_not_an_error() -> None:
    manager = get_plugin_manager()

    def flux_web_pages() -> list[str]:
        return ["page"]

    plugin = types.SimpleNamespace(flux_web_pages=hookimpl(optionalhook=True)(flux_web_pages))
    manager.register(plugin, PluginInfo("optional", "tests.optional", "flux-optional", "1.0"))
    try:
        assert manager.plugins["optional"].status == "loaded"
        manager.check_pending()
    finally:
        manager.unregister("optional")


def test_a_hook_with_wrong_arguments_is_rejected() -> None:
    manager = get_plugin_manager()
    info = PluginInfo("badargs", "tests.badargs", "flux-badargs", "1.0")

    def flux_task_instance_state_changed(ti: Any, old_state: Any) -> None:
        pass

    try:
        with pytest.raises(PluginError, match="old_state"):
            manager.register(make_plugin(flux_task_instance_state_changed=flux_task_instance_state_changed),
                             info)
        assert info.status == "error"
    finally:
        manager.unregister("badargs")


def test_a_plugin_name_cannot_be_registered_twice() -> None:
    manager = get_plugin_manager()
    with pytest.raises(PluginError, match="'core' is already used by flux-core"):
        manager.register(make_plugin(), PluginInfo("core", "tests.core", "flux-imposter", "1.0"))
    assert manager.plugins["core"].distribution == "flux-core"


def test_a_hook_that_raises_breaks_only_its_plugin(caplog: pytest.LogCaptureFixture) -> None:
    Good = operator_class("GoodOperator")

    def flux_operators() -> list[type]:
        raise ModuleNotFoundError("No module named 'fancy_driver'")

    with registered("good", "flux-good", flux_operators=returning(Good)), \
            registered("fragile", "flux-fragile", flux_operators=flux_operators) as manager:
        with caplog.at_level(logging.WARNING, logger="flux.plugins"):
            operators = manager.operators()
        assert operators["GoodOperator"] is Good
        info = manager.plugins["fragile"]
        assert info.status == "error"
        assert info.error == "flux_operators failed: ModuleNotFoundError: No module named 'fancy_driver'"
        assert "plugin 'fragile' (flux-fragile) is broken" in caplog.text
        with pytest.raises(MissingPluginError, match=r"failed to load .*fragile \(flux-fragile\)"):
            manager.get("operators", "FancyOperator")


def test_a_hook_returning_something_invalid_breaks_only_its_plugin() -> None:
    # A hook class without conn_type cannot be keyed.
    with registered("sloppy", "flux-sloppy", flux_hooks=returning(object)) as manager:
        assert object not in manager.hooks().values()
        assert manager.plugins["sloppy"].status == "error"
        assert "flux_hooks failed: AttributeError" in manager.plugins["sloppy"].error


# --- plugins extending the contract --------------------------------------------------------------


def test_a_plugin_may_add_hookspecs_and_others_implement_them() -> None:
    def flux_test_greetings() -> list[str]:
        """Greetings, a hook another plugin adds to the contract."""

    manager = get_plugin_manager()
    info = PluginInfo("greeter", "tests.greeter", "flux-greeter", "1.0")
    greeter = make_plugin(flux_test_greetings=lambda: ["hi"])
    try:
        # Implemented before the hookspec exists: rejected as unknown...
        with pytest.raises(PluginError, match="unknown hook flux_test_greetings"):
            manager.register(greeter, info)
        # ...and registered again once a plugin adds the hookspec.
        manager.add_hookspecs(types.SimpleNamespace(flux_test_greetings=hookspec(flux_test_greetings)))
        assert info.status == "loaded" and info.error is None
        assert "flux_test_greetings" in manager.hook_names()
        assert manager.hook.flux_test_greetings() == [["hi"]]
        manager.check_pending()
    finally:
        manager.unregister("greeter")


def test_a_plugin_declaring_hookspecs_extends_the_contract_when_registered() -> None:
    def flux_test_pages() -> list[str]:
        """Pages, declared by a plugin object itself (as flux-web's plugin module does)."""

    declaring = types.SimpleNamespace(flux_test_pages=hookspec(flux_test_pages))
    manager = get_plugin_manager()
    manager.register(declaring, PluginInfo("declares", "tests.declares", "flux-declares", "1.0"))
    try:
        assert "flux_test_pages" in manager.hook_names()
        with registered("page-maker", "flux-page-maker", flux_test_pages=lambda: ["about"]):
            assert manager.plugins["page-maker"].status == "loaded"
            assert manager.hook.flux_test_pages() == [["about"]]
    finally:
        manager.unregister("declares")


# --- listeners -----------------------------------------------------------------------------------


def test_state_change_listeners_are_called_and_a_failing_one_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    def flux_task_instance_state_changed(ti: Any, previous: Any, state: Any) -> None:
        seen.append((ti, previous, state))

    def failing(ti: Any, previous: Any, state: Any) -> None:
        raise RuntimeError("chat server down")

    def terse(state: Any, ti: Any) -> None:  # any subset of the arguments, in any order
        seen.append(("terse", state, ti))

    recorder = {"flux_task_instance_state_changed": flux_task_instance_state_changed}
    with registered("recorder", "flux-recorder", **recorder), \
            registered("noisy", "flux-noisy", flux_task_instance_state_changed=failing), \
            registered("terse", "flux-terse", flux_task_instance_state_changed=terse) as manager:
        with caplog.at_level(logging.ERROR, logger="flux.plugins"):
            manager.call_listeners("flux_task_instance_state_changed", ti="ti", previous="running",
                                   state="success")
    assert seen == [("ti", "running", "success"), ("terse", "success", "ti")]
    assert "listener flux_task_instance_state_changed of plugin 'noisy' failed" in caplog.text
    assert "chat server down" in caplog.text


# --- the seed's import paths ---------------------------------------------------------------------


@pytest.mark.parametrize(("statement", "message"), [
    ("from flux.operators import MySqlOperator",
     "MySqlOperator is provided by flux-mysql: pip install flux-mysql"),
    ("from flux.hooks import MySqlHook", "MySqlHook is provided by flux-mysql: pip install flux-mysql"),
    ("from flux.operators import BashOperator",
     "BashOperator is provided by flux-bash: pip install flux-bash"),
    ("from flux.executors import CeleryExecutor",
     "CeleryExecutor is provided by flux-celery: pip install flux-celery"),
])
def test_a_name_from_a_missing_distribution_says_what_to_install(
    core_only: FluxPluginManager, statement: str, message: str
) -> None:
    with pytest.raises(ImportError) as caught:
        exec(statement, {})
    assert str(caught.value) == message
    assert isinstance(caught.value, MissingPluginError)


def test_registered_classes_resolve_from_the_seed_paths() -> None:
    Op = operator_class("PathOperator")
    Hook = hook_class("PathHook", "path")
    Executor = executor_class("PathExecutor", "path")
    with registered("paths", "flux-paths", flux_operators=returning(Op), flux_hooks=returning(Hook),
                    flux_executors=returning(Executor)):
        from flux.executors import PathExecutor
        from flux.hooks import PathHook
        from flux.operators import PathOperator

        assert (PathOperator, PathHook, PathExecutor) == (Op, Hook, Executor)
        import flux.executors
        import flux.hooks
        import flux.operators

        assert "PathOperator" in dir(flux.operators)
        assert "PathHook" in dir(flux.hooks)
        assert "PathExecutor" in dir(flux.executors)
        # executors are chosen by executor_name in the config, imported by class name
        assert get_plugin_manager().get("executors", "path") is Executor


def test_an_unknown_name_is_a_plain_import_error_listing_what_exists() -> None:
    import flux.executors
    import flux.operators

    known = executor_class("KnownExecutor", "known")
    with registered("known", "flux-known", flux_executors=returning(known)):
        with pytest.raises(ImportError, match="cannot import name 'NoSuchExecutor'"):
            from flux.executors import NoSuchExecutor  # noqa: F401
        with pytest.raises(AttributeError, match=r"installed executors: .*KnownExecutor"):
            flux.executors.NoSuchExecutor  # noqa: B018
    assert not hasattr(flux.operators, "NoSuchOperator")
    with pytest.raises(MissingPluginError, match=r"^no installed plugin provides executor 'nope' "):
        get_plugin_manager().get("executors", "nope")


def test_core_names_of_the_namespaces_resolve_without_plugins(core_only: FluxPluginManager) -> None:
    from flux.baseoperator import BaseOperator
    from flux.operators import BaseOperator as FromNamespace

    assert FromNamespace is BaseOperator


# --- the manager's life --------------------------------------------------------------------------


def test_the_manager_is_built_once_and_reset_forgets_it() -> None:
    first = get_plugin_manager()
    assert get_plugin_manager() is first
    reset_plugin_manager()
    assert get_plugin_manager() is not first
