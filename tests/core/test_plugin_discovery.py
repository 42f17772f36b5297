"""Finding plugins through entry points of group ``flux``, without installing anything.

Each test writes fake distributions (a ``<name>-<version>.dist-info`` folder with METADATA and
entry_points.txt, and a plugin module) into a temporary folder put on ``sys.path``: that is all
``importlib.metadata`` looks at, so the manager finds them exactly as it finds installed ones.
The slow test at the end installs real distributions into a fresh virtualenv.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from importlib import metadata
from pathlib import Path

import pytest

from flux.exceptions import MissingPluginError, PluginError
from flux.plugins import FluxPluginManager, get_plugin_manager

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[2]
HELLO = REPO_ROOT / "examples" / "plugins" / "flux-hello"


class FakeSite:
    """A folder on ``sys.path`` to which tests add fake distributions and plugin modules."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.modules: list[str] = []
        root.mkdir()
        monkeypatch.syspath_prepend(str(root))

    def module(self, source: str) -> str:
        """Write a module with ``source``; return its (unique) name."""
        name = f"fluxtest_{uuid.uuid4().hex[:10]}"
        (self.root / f"{name}.py").write_text(textwrap.dedent(source))
        self.modules.append(name)
        return name

    def distribution(self, name: str, version: str, entry_points: dict[str, str]) -> None:
        """Write ``<name>-<version>.dist-info`` declaring ``entry_points`` in group ``flux``."""
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[flux]\n{lines}")

    def plugin(self, dist: str, version: str, name: str, source: str) -> str:
        """A distribution whose one plugin ``name`` is a new module with ``source``."""
        module = self.module(source)
        self.distribution(dist, version, {name: module})
        return module

    def forget(self) -> None:
        for name in self.modules:
            sys.modules.pop(name, None)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = FakeSite(tmp_path / "site", monkeypatch)
    yield fake
    fake.forget()


OPERATOR_PLUGIN = """
    from flux.hookspecs import hookimpl

    class FakeOperator:
        '''An operator of the fake distribution.'''

    @hookimpl
    def flux_operators():
        return [FakeOperator]
"""


def test_an_entry_point_is_found_with_its_distribution_and_version(site: FakeSite) -> None:
    module = site.plugin("flux-fake", "1.0", "fake", OPERATOR_PLUGIN)
    manager = FluxPluginManager()
    info = manager.plugins["fake"]
    assert (info.distribution, info.version, info.module) == ("flux-fake", "1.0", module)
    assert info.status == "loaded"
    contribution = manager.contributions("operators")["FakeOperator"]
    assert contribution.plugin is info
    assert contribution.obj is sys.modules[module].FakeOperator
    assert "core" in manager.plugins  # found through flux-core's own entry point, the same way


def test_the_process_wide_manager_and_the_seed_paths_see_discovered_plugins(site: FakeSite) -> None:
    module = site.plugin("flux-fake", "2.3", "fake", OPERATOR_PLUGIN)
    from flux.operators import FakeOperator

    assert FakeOperator is sys.modules[module].FakeOperator
    assert get_plugin_manager().plugins["fake"].version == "2.3"


def test_disabled_plugins_are_listed_but_not_even_imported(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = site.plugin("flux-first", "1.0", "first", OPERATOR_PLUGIN)
    second = site.plugin("flux-second", "1.0", "second", "raise RuntimeError('must not be imported')\n")
    kept = site.plugin("flux-kept", "1.0", "kept", OPERATOR_PLUGIN)
    monkeypatch.setenv("FLUX_DISABLED_PLUGINS", " first, second ,")
    manager = FluxPluginManager()
    assert manager.plugins["first"].status == "disabled"
    assert manager.plugins["second"].status == "disabled"
    assert manager.plugins["kept"].status == "loaded"
    assert first not in sys.modules and second not in sys.modules and kept in sys.modules
    assert manager.contributions("operators")["FakeOperator"].plugin.name == "kept"


def test_a_known_name_of_a_disabled_distribution_says_so(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake flux-mysql comes first on sys.path, so it hides a real one installed here.
    site.plugin("flux-mysql", "9.9", "mysql", OPERATOR_PLUGIN)
    monkeypatch.setenv("FLUX_DISABLED_PLUGINS", "mysql")
    with pytest.raises(ImportError) as caught:
        from flux.operators import MySqlOperator  # noqa: F401
    assert str(caught.value) == (
        "MySqlOperator is provided by flux-mysql, whose plugin 'mysql' is disabled by FLUX_DISABLED_PLUGINS"
    )


def test_a_plugin_that_fails_to_import_is_marked_and_the_others_load(
    site: FakeSite, caplog: pytest.LogCaptureFixture
) -> None:
    site.plugin("flux-broken", "0.1", "broken", "import no_such_module_anywhere\n")
    site.plugin("flux-fine", "1.0", "fine", OPERATOR_PLUGIN)
    with caplog.at_level(logging.WARNING, logger="flux.plugins"):
        manager = FluxPluginManager()
    broken = manager.plugins["broken"]
    assert broken.status == "error"
    assert broken.error == "ModuleNotFoundError: No module named 'no_such_module_anywhere'"
    assert "plugin 'broken' (flux-broken) is broken" in caplog.text
    assert manager.plugins["fine"].status == "loaded"
    assert "FakeOperator" in manager.operators()
    with pytest.raises(MissingPluginError, match=r"plugins that failed to load .*broken \(flux-broken\)"):
        manager.get("operators", "WhateverOperator")


def test_an_attribute_lookup_names_the_plugins_not_loaded(
    site: FakeSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flux.operators

    site.plugin("flux-broken", "0.1", "broken", "raise ValueError('bad config')\n")
    site.plugin("flux-off", "0.1", "off", OPERATOR_PLUGIN)
    monkeypatch.setenv("FLUX_DISABLED_PLUGINS", "off")
    with pytest.raises(AttributeError) as caught:
        flux.operators.FakeOperator  # noqa: B018
    message, _, listed = str(caught.value).partition("; plugins not loaded (see 'flux plugins'): ")
    assert message.startswith("module 'flux.operators' has no attribute 'FakeOperator'")
    for fragment in ("broken (flux-broken, error)", "off (flux-off, disabled)"):
        assert fragment in listed
    assert listed.count("(") == 2


def test_a_misspelled_hook_found_through_an_entry_point(site: FakeSite) -> None:
    site.plugin("flux-typo", "1.0", "typo", """
        from flux.hookspecs import hookimpl

        @hookimpl
        def flux_command():
            return []
    """)
    manager = FluxPluginManager()
    info = manager.plugins["typo"]
    assert info.status == "error"
    assert info.error.startswith("unknown hook flux_command (misspelled?); known hooks: ")
    assert "flux_commands" in info.error
    with pytest.raises(PluginError, match=r"'typo' \(flux-typo\) implements unknown hook flux_command"):
        manager.check_pending()


def test_a_hook_declared_by_a_plugin_discovered_later_is_not_unknown(site: FakeSite) -> None:
    implementing = site.plugin("flux-pages-extra", "1.0", "pages-extra", """
        from flux.hookspecs import hookimpl

        @hookimpl
        def flux_test_pages():
            return ["extra"]
    """)
    declaring = site.plugin("flux-pages", "1.0", "pages", """
        from flux.hookspecs import hookspec

        @hookspec
        def flux_test_pages():
            '''Pages of the fake web UI.'''
    """)
    points = {ep.name: ep for ep in metadata.entry_points(group="flux")}
    # The implementation is loaded first, before the hookspec it implements exists.
    manager = FluxPluginManager(entry_points=[points["pages-extra"], points["pages"]])
    assert manager.plugins["pages-extra"].status == "loaded", manager.plugins["pages-extra"].error
    assert manager.hook.flux_test_pages() == [["extra"]]
    manager.check_pending()
    assert implementing in sys.modules and declaring in sys.modules


def test_two_distributions_with_one_plugin_name(site: FakeSite) -> None:
    site.plugin("flux-one", "1.0", "same", OPERATOR_PLUGIN)
    site.plugin("flux-two", "1.0", "same", OPERATOR_PLUGIN)
    points = [ep for ep in metadata.entry_points(group="flux") if ep.name == "same"]
    manager = FluxPluginManager(entry_points=points)
    first, second = manager.plugins["same"], manager.plugins[f"same ({points[1].dist.metadata['Name']})"]
    assert first.status == "loaded" and second.status == "error"
    assert "flux-one" in second.error and "flux-two" in second.error
    rows = manager.describe()
    assert [row["operators"] for row in rows] == [["FakeOperator"], []]  # credited to the loaded one


def test_a_plugin_using_the_manager_at_import_time_gets_an_error_not_a_deadlock(site: FakeSite) -> None:
    site.plugin("flux-eager", "1.0", "eager", """
        from flux.plugins import get_plugin_manager

        get_plugin_manager()
    """)
    manager = get_plugin_manager()
    assert manager.plugins["eager"].status == "error"
    assert "must not use it at import time" in manager.plugins["eager"].error
    assert manager.plugins["core"].status == "loaded"


# --- flux-hello, the example third-party plugin --------------------------------------------------


def _hello_project() -> dict:
    with open(HELLO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]


@pytest.fixture
def hello(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FluxPluginManager:
    """The manager with flux-hello: installed here, or else declared from its pyproject.toml."""
    try:
        metadata.distribution("flux-hello")
    except metadata.PackageNotFoundError:
        project = _hello_project()
        site = FakeSite(tmp_path / "hello-site", monkeypatch)
        site.distribution(project["name"], project["version"], project["entry-points"]["flux"])
        monkeypatch.syspath_prepend(str(HELLO / "src"))
    return get_plugin_manager()


def test_flux_hello_contributions_are_credited_to_it(hello: FluxPluginManager) -> None:
    project = _hello_project()
    info = hello.plugins["hello"]
    assert (info.distribution, info.version, info.module, info.status) == (
        "flux-hello", project["version"], "flux_hello.plugin", "loaded",
    )
    for kind, name in [("operators", "HelloOperator"), ("commands", "hello"), ("macros", "hello")]:
        assert hello.contributions(kind)[name].plugin is info
    hello.check_pending()


def test_flux_hello_operator_renders_its_macro(
    hello: FluxPluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # flux.macros may cache the namespace per manager; start from none, whatever came before.
    monkeypatch.setattr("flux.macros._namespaces", {}, raising=False)
    from flux.baseoperator import BaseOperator
    from flux.macros import build_namespace
    from flux.operators import HelloOperator

    assert issubclass(HelloOperator, BaseOperator)
    task = HelloOperator(task_id="greet", name="{{ macros.hello.greet(ds) }}")
    task.render_template_fields({"ds": "2015-06-01", "macros": build_namespace()})
    assert task.name == "Hello, 2015-06-01!"
    assert task.execute({}) == "Hello, Hello, 2015-06-01!!"


def test_flux_hello_plugin_module_imports_nothing_heavy(hello: FluxPluginManager) -> None:
    # The plugin module was imported by the manager; its parts only when a hook asked for them.
    assert "flux_hello.plugin" in sys.modules
    code = ("import json, sys, flux_hello.plugin; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('flux'))))")
    env = {**os.environ, "PYTHONPATH": str(HELLO / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    loaded = json.loads(done.stdout)
    assert "flux_hello.plugin" in loaded
    assert not {"flux_hello.operators", "flux_hello.commands", "flux.baseoperator"} & set(loaded)


# --- end to end: real installs into a fresh virtualenv -------------------------------------------

SKELETONS = ("flux-bash", "flux-mysql")


def _copy_project(source: Path, target: Path) -> Path:
    """Copy a distribution's folder without build leftovers, so building it leaves the repo clean."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(
        "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".venv",
    ))
    return target


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH") and not k.startswith("FLUX_DISABLED")}
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env)
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _listed(venv: Path) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(_run(venv / "bin" / "flux", "plugins", "--json"))}


@pytest.mark.slow
def test_plugins_installed_into_a_fresh_virtualenv(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (the CI script installs it)")
    src = tmp_path / "src"
    core = _copy_project(REPO_ROOT / "flux-core", src / "flux-core")
    hello = _copy_project(HELLO, src / "flux-hello")
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    _run(uv, "venv", "--quiet", "--python", sys.executable, venv)

    _run(uv, "pip", "install", "--quiet", "--python", python, core)
    assert list(_listed(venv)) == ["core"]
    assert _listed(venv)["core"]["distribution"] == "flux-core"

    present = [name for name in SKELETONS if (REPO_ROOT / name / "pyproject.toml").is_file()]
    plugins = [_copy_project(REPO_ROOT / name, src / name) for name in present]
    # flux-core is named in the same command, so the plugins' dependency on it is met by the local
    # folder, never by the package index (which holds an unrelated "flux-core").
    _run(uv, "pip", "install", "--quiet", "--python", python, core, *plugins, hello, "pytest")
    listed = _listed(venv)
    expected = {"core", "hello", *(name.removeprefix("flux-") for name in present)}
    assert expected <= set(listed)
    for name in expected:
        assert listed[name]["status"] == "loaded", listed[name]
    assert listed["hello"]["distribution"] == "flux-hello"
    assert listed["hello"]["operators"] == ["HelloOperator"]
    assert metadata.version("flux-core") == listed["core"]["version"]
    assert "hello" in _run(venv / "bin" / "flux", "--help")
    assert _run(venv / "bin" / "flux", "hello", "Ada") == "Hello, Ada!\n"
    # The example's own tests pass against the installed distribution, as its author runs them.
    tested = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", hello / "tests", cwd=hello)
    assert " passed" in tested and "failed" not in tested
    missing = sorted(set(SKELETONS) - set(present))
    if missing:
        pytest.skip(f"{', '.join(missing)} not in the repository yet: not installed (the rest passed)")
