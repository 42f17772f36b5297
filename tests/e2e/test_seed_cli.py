"""The seed tutorial's command-line section, and the README's main job, run for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE2 = REPO / "examples" / "dags" / "example2.py"
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] \{[\w.]+\.py:\d+\} (INFO|WARNING|ERROR) - ")

pytest.importorskip("flux_bash", reason="the seed's example_2 uses BashOperator (flux-bash)")


def flux(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLUX_HOME": str(home)}
    env.pop("FLUX_DATABASE_URL", None)  # the README's job runs on the embedded default
    return subprocess.run([sys.executable, "-m", "flux.cli.main", *args], env=env, text=True,
                          capture_output=True, timeout=120, cwd=home)


def test_flux_run_example_2_writes_the_seed_shaped_log(tmp_path: Path) -> None:
    result = flux("run", "example_2", "runme_1", "2014-09-01", "-sd", str(EXAMPLE2), home=tmp_path)
    assert result.returncode == 0, result.stderr
    announced = re.search(r"^Logging into: (.+)$", result.stdout, re.M)
    assert announced, result.stdout
    log_path = Path(announced.group(1))
    assert log_path == tmp_path / "logs" / "example_2" / "runme_1" / "2014-09-01T00:00:00" / "1.log"
    lines = log_path.read_text().splitlines()
    records = [line for line in lines if LOG_LINE.match(line)]
    messages = [LOG_LINE.sub("", line) for line in records]
    assert messages[0] == f"Filling up the DagBag from {EXAMPLE2}"
    assert messages[1] == f"Importing {EXAMPLE2}"
    assert "New run starting @" in log_path.read_text()
    assert "Executing <Task(BashOperator): runme_1> for 2014-09-01 00:00:00" in messages
    assert 'Running command: echo "1: 2014-09-01 00:00:00"' in messages
    position = messages.index("Command STDOUT:")
    assert messages[position + 1] == "1: 2014-09-01 00:00:00"
    # running it again does nothing: it already succeeded
    again = flux("run", "example_2", "runme_1", "2014-09-01", "-sd", str(EXAMPLE2), home=tmp_path)
    assert again.returncode == 0
    assert "already succeeded" in again.stdout
    assert not (log_path.parent / "2.log").exists()


def test_readme_main_job_backfills_then_shows_the_tree(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    assert "flux backfill example_2 -sd examples/dags -s 2014-09-01 -e 2014-09-03" in readme
    dags = str(REPO / "examples" / "dags")
    backfill = flux("backfill", "example_2", "-sd", dags, "-s", "2014-09-01", "-e", "2014-09-03",
                    home=tmp_path)
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    assert re.search(r"^success\s+12$", backfill.stdout, re.M), backfill.stdout
    show = flux("dags", "show", "example_2", "-sd", dags, home=tmp_path)
    assert show.stdout.splitlines()[0] == "<Task(BashOperator): run_after_loop>"
    assert "    <Task(BashOperator): runme_1>" in show.stdout.splitlines()
    again = flux("backfill", "example_2", "-sd", dags, "-s", "2014-09-01", "-e", "2014-09-03",
                 home=tmp_path)
    assert again.returncode == 0
    assert "Nothing to do" in again.stdout


@pytest.mark.parametrize(("command", "flags"), [
    ("backfill", ["-t, --task_regex", "-s, --start_date", "-e, --end_date", "-m, --mark_success",
                  "-sd, --subdir"]),
    ("clear", ["-t, --task_regex", "-s, --start_date", "-e, --end_date", "-sd, --subdir"]),
    ("run", ["-sd, --subdir", "-m, --mark_success", "-f, --force", "-i, --ignore_dependencies"]),
    ("master", ["-d, --dag_id", "-sd, --subdir"]),
    ("webserver", ["-p, --port"]),
])
def test_seed_cli_flags_exist(command: str, flags: list[str], tmp_path: Path) -> None:
    if command == "webserver":
        pytest.importorskip("flux_web", reason="flux webserver comes from flux-web")
    result = flux(command, "-h", home=tmp_path)
    assert result.returncode == 0, result.stderr
    for flag in flags:
        assert flag in result.stdout, f"{command}: {flag} missing from\n{result.stdout}"


def test_top_level_help_lists_the_seed_commands(tmp_path: Path) -> None:
    result = flux("--help", home=tmp_path)
    for command in ("backfill", "clear", "run", "master"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command
