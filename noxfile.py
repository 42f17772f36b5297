"""Test sessions of the Flux monorepo (run ``nox`` for every default session, ``nox -l`` to list them).

Every session installs the distributions it needs from this repository's folders, editable and in
one install command, so that a plugin's dependency on ``flux-core`` is met by the local folder and
never by the package index (which holds an unrelated project of that name).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

# uv skips bytecode compilation unless asked; where PYTHONDONTWRITEBYTECODE is set too, every test
# subprocess would then recompile SQLAlchemy & co. from source (hundreds of ms each).
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"

ROOT = Path(__file__).resolve().parent
PLUGINS = ("bash", "mysql", "web", "celery")
TEST_DEPS = ("pytest", "pytest-timeout", "hypothesis", "psycopg[binary]", "pymysql")
# Pinned so that a new ruff release cannot turn CI red without a change in this repository.
RUFF = "ruff==0.17.6"
# A hung test must fail the run rather than eat CI's time budget.
PYTEST_ARGS = ("--timeout=300",)
EXAMPLE_PLUGINS = ROOT / "examples" / "plugins"


def _example_plugins() -> list[str]:
    """The example plugin distributions' folders (examples/plugins/*/pyproject.toml), repo-relative."""
    if not EXAMPLE_PLUGINS.is_dir():
        return []
    return [
        path.relative_to(ROOT).as_posix()
        for path in sorted(EXAMPLE_PLUGINS.iterdir())
        if (path / "pyproject.toml").is_file()
    ]


def _local(*plugins: str, examples: bool = False) -> list[str]:
    """Editable-install arguments for flux-core, the named plugins and, optionally, example plugins."""
    folders = ["flux-core", *(f"flux-{name}" for name in plugins)]
    if examples:
        folders += _example_plugins()
    return [arg for folder in folders for arg in ("-e", f"./{folder}")]


def _has_tests(folder: str) -> bool:
    path = ROOT / folder
    return path.is_dir() and any(
        p.name.startswith("test_") or p.name.endswith("_test.py") for p in path.rglob("*.py")
    )


def _pytest(session: nox.Session, *folders: str, database: str = "sqlite",
            options: tuple[str, ...] = ()) -> None:
    """Run pytest (with ``options``) over the folders that hold tests; skip the session when none
    does yet."""
    present = [folder for folder in folders if _has_tests(folder)]
    if not present:
        session.skip(f"no tests yet in {', '.join(folders)}")
    for folder in sorted(set(folders) - set(present)):
        session.log(f"{folder} holds no tests yet; skipped")
    # Exit code 5 ("no tests collected") is what an emptied selection gives: not a failure here.
    session.run(
        "pytest", *PYTEST_ARGS, *options, *present, *session.posargs,
        env={"FLUX_TEST_DATABASE": database},
        success_codes=[0, 5],
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Lint the whole repository with ruff (settings in the root pyproject.toml)."""
    session.install(RUFF)
    session.run("ruff", "check", ".", *session.posargs)


@nox.session
def core(session: nox.Session) -> None:
    """flux-core alone (no plugin installed) against tests/core: core needs no plugin."""
    session.install(*_local(), *TEST_DEPS)
    _pytest(session, "tests/core")


# Test dependencies only one plugin's tests need (flux-web's browser tests drive the system's
# chromium through Playwright; `playwright install` is never run).
PLUGIN_TEST_DEPS = {"web": ("playwright",)}


def _plugin_session(name: str) -> None:
    def run(session: nox.Session) -> None:
        session.install(*_local(name), *TEST_DEPS, *PLUGIN_TEST_DEPS.get(name, ()))
        _pytest(session, "tests/core", f"tests/{name}")

    run.__doc__ = f"flux-core with flux-{name} only, against tests/core and tests/{name}."
    nox.session(name=name)(run)


for _name in PLUGINS:
    _plugin_session(_name)


#: minutes-long tests that the reliability session runs; run again by `all` they only cost time
RELIABILITY_ONLY = ("tests/reliability/test_scheduler_load.py",
                    "tests/reliability/test_metadata_db_outage.py")


@nox.session(name="all")
def all_(session: nox.Session) -> None:
    """Every distribution and example plugin installed together: tests/ and the examples' tests
    (but for the load and database-outage tests, which the reliability session runs)."""
    session.install(*_local(*PLUGINS, examples=True), *TEST_DEPS)
    _pytest(session, "tests", *(f"{folder}/tests" for folder in _example_plugins()),
            options=tuple(f"--ignore={path}" for path in RELIABILITY_ONLY))


@nox.session
def mariadb(session: nox.Session) -> None:
    """Everything installed; the core suite and flux-mysql's with the metadata DB on MariaDB."""
    session.install(*_local(*PLUGINS, examples=True), *TEST_DEPS)
    _pytest(session, "tests/core", "tests/mysql", database="mysql")


@nox.session
def postgres(session: nox.Session) -> None:
    """Everything installed; the core suite with the metadata DB on PostgreSQL (127.0.0.1:5432)."""
    session.install(*_local(*PLUGINS, examples=True), *TEST_DEPS)
    _pytest(session, "tests/core", database="postgres")


@nox.session
def reliability(session: nox.Session) -> None:
    """Real faults against real processes: workers SIGKILLed mid-task, tasks killed before their
    first heartbeat, timeouts ignored by tasks, races on a lost try, random DAGs (hypothesis),
    broken DAG files (flux-web for the DAG list's banner), 200 DAGs under load on MariaDB."""
    session.install(*_local("bash", "mysql", "web"), *TEST_DEPS)
    _pytest(session, "tests/reliability")


@nox.session
def security(session: nox.Session) -> None:
    """Secrets encrypted at rest and masked (SQLite and MariaDB), SQL injection through hooks and
    operators, fuzzed command-line dates."""
    session.install(*_local("bash", "mysql"), *TEST_DEPS)
    _pytest(session, "tests/security")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run bench/run_all.py: one line per workload and its ratio to the floor, then every other
    runner in bench/ (numbers are printed, nothing is asserted)."""
    session.install(*_local(*PLUGINS))
    session.run("python", "bench/run_all.py", *session.posargs)


@nox.session(default=False)
def screenshots(session: nox.Session) -> None:
    """Regenerate the documentation's screenshots with docs/screenshots.py (needs chromium)."""
    script = ROOT / "docs" / "screenshots.py"
    if not script.is_file():
        session.skip("docs/screenshots.py does not exist yet")
    session.install(*_local(*PLUGINS, examples=True), "playwright")
    session.run("python", str(script.relative_to(ROOT)), *session.posargs)
