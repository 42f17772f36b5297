"""BashOperator run through the real task runner: log shape, return value, templates, environment,
exit codes and bad input. Every command is a real bash process."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from flux.dag import DAG
from flux.exceptions import DagDefinitionError
from flux.state import State
from flux.taskrunner import run_task_instance

from .conftest import DATE, log_messages, read_log, wait_for, write_dag_file


def run(task, date=DATE):
    result = run_task_instance(task, date)
    return result, read_log(result.log_path)


def make_dag(dag_id: str = "bash_dag", **kwargs) -> DAG:
    return DAG(dag_id, start_date=DATE, **kwargs)


# --- the plugin --------------------------------------------------------------------------------


def test_importable_from_flux_operators_and_credited_to_flux_bash():
    from flux.operators import BashOperator, BashSensor
    from flux.plugins import get_plugin_manager

    assert BashOperator.__module__ == "flux_bash.operators"
    assert BashSensor.__module__ == "flux_bash.sensors"
    contributions = get_plugin_manager().contributions("operators")
    assert contributions["BashOperator"].obj is BashOperator
    assert BashOperator.template_fields == ("bash_command", "env", "cwd")
    assert BashOperator.template_ext == (".sh", ".bash")


# --- the seed's run --------------------------------------------------------------------------


def test_seed_example_logs_command_then_output_and_returns_last_line():
    from flux import xcom
    from flux.operators import BashOperator

    with make_dag("example_2") as dag:
        task = BashOperator(task_id="runme_1", bash_command='echo "1: {{ ds }}"; echo last line')
    result, log = run(task)

    assert result.state == State.SUCCESS
    messages = log_messages(log)
    start = messages.index('Running command: echo "1: 2024-03-01"; echo last line')
    assert messages[start + 1:start + 4] == ["Command STDOUT:", "1: 2024-03-01", "last line"]
    assert "] {command.py:" in log and " INFO - Command STDOUT:" in log
    assert result.return_value == "last line"
    assert xcom.pull(dag.dag_id, "runme_1", DATE) == "last line"


def test_stderr_is_merged_into_the_log_in_order():
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(task_id="mixed", bash_command="echo out1; echo err1 >&2; echo out2")
    result, log = run(task)
    assert result.state == State.SUCCESS
    messages = log_messages(log)
    out = messages[messages.index("Command STDOUT:") + 1:]
    assert out[:3] == ["out1", "err1", "out2"]


def test_many_lines_arrive_in_order():
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(task_id="count", bash_command="for i in $(seq 1 2000); do echo line-$i; done")
    result, log = run(task)
    messages = log_messages(log)
    lines = [m for m in messages if m.startswith("line-")]
    assert lines == [f"line-{i}" for i in range(1, 2001)]
    assert result.return_value == "line-2000"


def test_output_is_in_the_log_while_the_command_still_runs(tmp_path):
    """The first line is logged before the command may finish: it waits for a file the test creates
    only after seeing that line in the log file."""
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(
            task_id="stream",
            bash_command="echo first; while [ ! -e go ]; do sleep 0.05; done; echo second",
            cwd=str(tmp_path),
        )
    from flux import tasklog

    log_path = tasklog.log_path("bash_dag", "stream", DATE, 1)
    results = []
    runner = threading.Thread(target=lambda: results.append(run_task_instance(task, DATE)))
    runner.start()
    try:
        wait_for(lambda: log_path.exists() and "INFO - first" in log_path.read_text(), "the first line")
        assert "INFO - second" not in log_path.read_text()
    finally:
        (tmp_path / "go").touch()
        runner.join(60)
    assert results and results[0].state == State.SUCCESS
    messages = log_messages(read_log(log_path))
    assert messages.index("first") < messages.index("second")


def test_no_output_returns_none():
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(task_id="quiet", bash_command="true")
    result, _ = run(task)
    assert result.state == State.SUCCESS
    assert result.return_value is None


# --- templates -------------------------------------------------------------------------------


def test_template_file_next_to_the_dag_file(tmp_path):
    from flux.dagbag import get_dag_from_file

    (tmp_path / "greet.sh").write_text('echo "hello {{ params.who }} on {{ ds }}"\n')
    (tmp_path / "bye.bash").write_text('echo "bye {{ ds_nodash }}"\n')
    path = write_dag_file(tmp_path, "files_dag", """
        BashOperator(task_id="greet", bash_command="greet.sh", params={"who": "world"})
        BashOperator(task_id="bye", bash_command="bye.bash")
    """)
    dag = get_dag_from_file(path, "files_dag")

    result, log = run(dag.get_task("greet"))
    assert result.state == State.SUCCESS, log
    assert result.return_value == "hello world on 2024-03-01"
    assert 'Running command: echo "hello world on 2024-03-01"' in log

    result, log = run(dag.get_task("bye"))
    assert result.return_value == "bye 20240301"


def test_missing_template_file_fails_with_a_clear_message(tmp_path):
    from flux.dagbag import get_dag_from_file

    path = write_dag_file(tmp_path, "nofile_dag", 'BashOperator(task_id="t", bash_command="absent.sh")')
    result, log = run(get_dag_from_file(path, "nofile_dag").get_task("t"))
    assert result.state == State.FAILED
    assert "TemplateError" in log and "'absent.sh' not found" in log


def test_undefined_template_variable_fails_the_task():
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(task_id="typo", bash_command="echo {{ no_such_variable }}")
    result, log = run(task)
    assert result.state == State.FAILED
    assert "TemplateError" in log and "no_such_variable" in log
    assert "Running command" not in log


def test_env_and_cwd_are_templated(tmp_path):
    from flux.operators import BashOperator

    with make_dag(params={"folder": str(tmp_path)}):
        task = BashOperator(task_id="tpl", bash_command='echo "$DAY in $(pwd)"',
                            env={"DAY": "{{ ds }}"}, cwd="{{ params.folder }}")
    result, _ = run(task)
    assert result.return_value == f"2024-03-01 in {tmp_path}"


# --- environment -----------------------------------------------------------------------------


def test_context_variables_are_exported():
    from flux.operators import BashOperator

    with make_dag("ctx_dag"):
        task = BashOperator(
            task_id="ctx",
            bash_command='echo "$FLUX_CTX_DAG_ID|$FLUX_CTX_TASK_ID|$FLUX_CTX_EXECUTION_DATE|'
                         '$FLUX_CTX_TRY_NUMBER"',
        )
    result, _ = run(task)
    assert result.return_value == f"ctx_dag|ctx|{DATE.isoformat()}+00:00|1"


def test_append_env_adds_to_the_environment(monkeypatch):
    from flux.operators import BashOperator

    monkeypatch.setenv("FLUX_BASH_MARKER", "inherited")
    with make_dag():
        task = BashOperator(task_id="append", bash_command='echo "$FLUX_BASH_MARKER/$MINE/${PATH:+path}"',
                            env={"MINE": "given"})
    result, _ = run(task)
    assert result.return_value == "inherited/given/path"


def test_append_env_false_replaces_the_environment(monkeypatch):
    from flux.operators import BashOperator

    monkeypatch.setenv("FLUX_BASH_MARKER", "inherited")
    with make_dag():
        task = BashOperator(task_id="replace", bash_command="env | cut -d= -f1 | sort | tr '\\n' ' '",
                            env={"MINE": "given"}, append_env=False)
    result, log = run(task)
    assert result.state == State.SUCCESS, log
    names = set(result.return_value.split())
    assert {"MINE", "FLUX_CTX_DAG_ID", "FLUX_CTX_TASK_ID", "FLUX_CTX_EXECUTION_DATE",
            "FLUX_CTX_TRY_NUMBER"} <= names
    assert "FLUX_BASH_MARKER" not in names
    assert "FLUX_HOME" not in names


def test_default_cwd_is_a_scratch_folder_emptied_afterwards():
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(task_id="tmp", bash_command="touch here; mkdir sub; pwd")
        again = BashOperator(task_id="again", bash_command="ls -A | wc -l; pwd")
    result, _ = run(task)
    folder = Path(result.return_value)
    assert folder.name == f"flux-bash-{os.getpid()}"
    assert list(folder.iterdir()) == []  # what the command left is gone
    second, _ = run(again)
    assert second.return_value == str(folder)  # the next command starts in the same, empty folder


def test_scratch_folders_of_dead_processes_are_removed(tmp_path, monkeypatch):
    import subprocess
    import tempfile

    from flux_bash import command

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process that no longer exists
    stale = tmp_path / f"flux-bash-{gone.pid}"
    stale.mkdir()
    (stale / "leftover").write_text("x")
    monkeypatch.setattr(command, "_scratch", None)
    folder = command._scratch_folder()
    assert folder == str(tmp_path / f"flux-bash-{os.getpid()}")
    assert not stale.exists()


def test_connection_password_never_reaches_the_log(monkeypatch):
    from flux.hooks.base import BaseHook
    from flux.operators import BashOperator

    monkeypatch.setenv("FLUX_CONN_WAREHOUSE", "mysql://loader:Sup3rSecretPw@db.example:3306/dw")

    def password(conn_id: str) -> str:
        return BaseHook.get_connection(conn_id).password

    with make_dag(user_defined_macros={"password": password}):
        task = BashOperator(task_id="secret",
                            bash_command="echo \"connecting with {{ password('warehouse') }}\"; "
                                         "echo \"env has $PW\"",
                            env={"PW": "{{ password('warehouse') }}"})
    result, log = run(task)
    assert result.state == State.SUCCESS, log
    assert "Sup3rSecretPw" not in log
    assert "Running command: echo \"connecting with ***\"" in log
    assert "INFO - connecting with ***" in log and "INFO - env has ***" in log


# --- exit codes and bad input ----------------------------------------------------------------


def test_non_zero_exit_fails_with_the_exit_code():
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(task_id="fails", bash_command="echo before; exit 3")
    result, log = run(task)
    assert result.state == State.FAILED
    assert result.message == "TaskFailed: Bash command failed: exit code 3"
    assert "ERROR - Task failed: TaskFailed: Bash command failed: exit code 3" in log
    assert "INFO - before" in log
    assert "Traceback" not in log


def test_skip_exit_code_skips_the_task():
    from flux.operators import BashOperator

    with make_dag():
        skipped = BashOperator(task_id="skipped", bash_command="exit 99", skip_exit_code=99)
        failed = BashOperator(task_id="no_skip_code", bash_command="exit 99")
    result, log = run(skipped)
    assert result.state == State.SKIPPED
    assert "exited with code 99 (skip_exit_code)" in log
    assert run(failed)[0].state == State.FAILED


def test_command_not_found_fails_with_bash_message():
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(task_id="nocmd", bash_command="no_such_command_xyz --flag")
    result, log = run(task)
    assert result.state == State.FAILED
    assert "no_such_command_xyz: command not found" in log
    assert "Bash command failed: exit code 127 (command not found)" in log


def test_non_utf8_output_is_replaced_not_a_crash():
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(task_id="bytes", bash_command=r"printf 'caf\xe9 \xff\xfe\n'; echo ok")
        latin = BashOperator(task_id="latin", bash_command=r"printf 'caf\xe9\n'",
                             output_encoding="latin-1")
    result, log = run(task)
    assert result.state == State.SUCCESS
    assert "INFO - caf\ufffd \ufffd\ufffd" in log
    assert result.return_value == "ok"
    assert run(latin)[0].return_value == "café"


def test_missing_cwd_fails_with_a_clear_message(tmp_path):
    from flux.operators import BashOperator

    missing = tmp_path / "nowhere"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with make_dag():
        task = BashOperator(task_id="nocwd", bash_command="echo hi", cwd=str(missing))
        not_dir = BashOperator(task_id="filecwd", bash_command="echo hi", cwd=str(a_file))
    result, log = run(task)
    assert result.state == State.FAILED
    assert f"TaskFailed: cwd '{missing}' does not exist" in log
    assert "Traceback" not in log
    result, log = run(not_dir)
    assert f"cwd '{a_file}' is not a directory" in log


def test_bad_arguments_are_dag_definition_errors():
    from flux.operators import BashOperator

    with make_dag():
        with pytest.raises(DagDefinitionError, match="bash_command must be a non-empty string"):
            BashOperator(task_id="empty", bash_command="  ")
        with pytest.raises(DagDefinitionError, match="unknown output_encoding 'klingon'"):
            BashOperator(task_id="enc", bash_command="true", output_encoding="klingon")
        with pytest.raises(DagDefinitionError, match="skip_exit_code must be an integer"):
            BashOperator(task_id="skip", bash_command="true", skip_exit_code="99")
        with pytest.raises(DagDefinitionError, match="env must be a dict"):
            BashOperator(task_id="env", bash_command="true", env=["A=1"])
        with pytest.raises(DagDefinitionError, match=r"invalid arguments .*: nonsense"):
            BashOperator(task_id="other", bash_command="true", nonsense=1)


def test_default_args_fill_operator_arguments(tmp_path):
    from flux.operators import BashOperator

    with make_dag(default_args={"cwd": str(tmp_path), "env": {"X": "from-defaults"}}):
        task = BashOperator(task_id="defaults", bash_command='echo "$X $(pwd)"')
    assert run(task)[0].return_value == f"from-defaults {tmp_path}"


def test_bash_is_run_even_when_path_is_replaced():
    """With append_env=False and no PATH, bash itself is still found (looked up by Flux)."""
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(task_id="nopath", bash_command='echo "path=${PATH-unset}"',
                            env={"X": "1"}, append_env=False)
    result, log = run(task)
    assert result.state == State.SUCCESS, log
    assert result.return_value.startswith("path=")


def test_the_dag_object_is_not_changed_by_rendering():
    from flux.operators import BashOperator

    with make_dag():
        task = BashOperator(task_id="keep", bash_command="echo {{ ds }}", env={"D": "{{ ds }}"})
    run(task)
    assert task.bash_command == "echo {{ ds }}"
    assert task.env == {"D": "{{ ds }}"}
    assert os.environ.get("D") is None
