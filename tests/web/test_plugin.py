"""flux-web as a plugin: its commands, its hookspec ``flux_web_blueprints``, and a core that never
imports Flask."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from flux.cli.main import cli
from flux.hookspecs import hookimpl
from flux.plugins import PluginInfo, get_plugin_manager

from .conftest import sign_in


class HelloPages:
    """A third-party plugin adding a page through ``flux_web_blueprints``."""

    @hookimpl
    def flux_web_blueprints(self) -> list[Any]:
        from flask import Blueprint, request

        bp = Blueprint("hello", __name__, url_prefix="/hello")

        @bp.get("/")
        def index() -> str:
            return "hello from a plugin"

        @bp.get("/page")
        def page() -> str:
            from flask import render_template_string

            return render_template_string(
                "{% extends 'base.html' %}{% block content %}<p id=hello>{{ who }}</p>{% endblock %}",
                who="<plugin>")

        @bp.post("/poke")
        def poke() -> str:
            return "poked " + request.form.get("what", "")

        bp.flux_menu = [("Hello", "hello.index")]
        return [bp]


class BrokenPages:
    @hookimpl
    def flux_web_blueprints(self) -> list[Any]:
        raise RuntimeError("this plugin's pages are broken")


def _register(obj: object, name: str) -> None:
    get_plugin_manager().register(obj, PluginInfo(name=name, module=name, distribution=f"{name}-dist",
                                                  version="1.0"))


def test_flux_web_declares_its_hookspec_when_it_loads() -> None:
    manager = get_plugin_manager()
    assert manager.plugins["web"].status == "loaded"
    assert "flux_web_blueprints" in manager.hook_names()


def test_a_plugins_blueprint_is_served_behind_the_sign_in(users: None, flux_env: Path) -> None:
    from flux_web.app import create_app

    _register(HelloPages(), "hello_pages")
    app = create_app({"TESTING": True})
    client = app.test_client()
    assert client.get("/hello/").status_code == 302  # the central sign-in applies to it too
    admin = sign_in(app, "alice", "alice-password")
    assert admin.get("/hello/").get_data(as_text=True) == "hello from a plugin"
    page = admin.get("/hello/page").get_data(as_text=True)
    assert "<p id=hello>&lt;plugin&gt;</p>" in page and "Sign out" in page  # inside the layout
    assert 'href="/hello/">Hello</a>' in admin.get("/dags").get_data(as_text=True)
    viewer = sign_in(app, "victor", "victor-password")
    assert viewer.post("/hello/poke", {"what": "x"}).status_code == 403  # roles apply too
    assert admin.http.post("/hello/poke", data={"what": "x"}).status_code == 400  # and CSRF
    assert admin.post("/hello/poke", {"what": "x"}).get_data(as_text=True) == "poked x"


def test_flux_webs_own_pages_come_through_the_same_hook() -> None:
    impls = get_plugin_manager().hook.flux_web_blueprints.get_hookimpls()
    assert [impl.plugin_name for impl in impls] == ["web"]
    names = [bp.name for bp in impls[0].function()]
    assert names == ["auth", "dags", "task_instances", "site", "api"]


def test_a_broken_plugins_pages_do_not_break_the_web_server(users: None, flux_env: Path,
                                                           caplog: Any) -> None:
    from flux_web.app import create_app

    _register(BrokenPages(), "broken_pages")
    app = create_app({"TESTING": True})
    assert "dags.index" in app.view_functions
    assert "this plugin's pages are broken" in caplog.text


def test_flux_plugins_lists_the_web_plugins_commands() -> None:
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["web"]["distribution"] == "flux-web"
    assert {"webserver", "users"} <= set(rows["web"]["commands"])


def test_webserver_help_matches_the_seed() -> None:
    result = CliRunner().invoke(cli, ["webserver", "--help"])
    assert result.exit_code == 0
    assert "Start a Flux webserver instance" in result.output
    for option in ("-p, --port", "-H, --host", "--workers", "--debug"):
        assert option in result.output


def test_core_never_imports_flask() -> None:
    code = (
        "import sys\n"
        "import flux, flux.models, flux.db, flux.plugins, flux.cli.main, flux.trigger\n"
        "from flux.plugins import get_plugin_manager\n"
        "m = get_plugin_manager(); m.commands(); m.describe()\n"
        "from flux.cli.main import cli\n"
        "from click.testing import CliRunner\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('flask', 'waitress', 'werkzeug'))\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_flux_core_sources_do_not_mention_flask() -> None:
    import flux

    core = Path(flux.__file__).parent
    offenders = [p for p in core.rglob("*.py") if "import flask" in p.read_text().lower()
                 or "from flask" in p.read_text().lower()]
    assert offenders == []


def test_the_plugins_page_credits_each_plugins_pages(users: None, flux_env: Path) -> None:
    from flux_web.app import create_app

    _register(HelloPages(), "hello_pages")
    app = create_app({"TESTING": True})
    page = sign_in(app, "alice", "alice-password").get("/plugins").get_data(as_text=True)
    assert "<td>auth, dags, task_instances, site, api</td>" in page
    assert "<td>hello</td></tr>" in page


def test_the_hookspec_is_documented_with_an_example() -> None:
    import inspect

    from flux_web import hookspecs

    doc = inspect.getdoc(hookspecs.flux_web_blueprints) or ""
    assert "Example" in doc and "def flux_web_blueprints(" in doc
    guide = (Path(__file__).resolve().parents[2] / "docs" / "web.md").read_text()
    section = guide.split("## Adding pages from a plugin: `flux_web_blueprints()`", 1)[1]
    assert "def flux_web_blueprints(" in section and "**Called**" in section
