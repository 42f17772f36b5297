"""What the bash operator and the bash sensor share: checking arguments, the environment, one run."""

from __future__ import annotations

import codecs
import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flux.exceptions import DagDefinitionError, TaskFailed
from flux_bash.process import RunningCommand

#: exported to every command, so that scripts know which task instance they are running for
CONTEXT_VARIABLES = ("FLUX_CTX_DAG_ID", "FLUX_CTX_TASK_ID", "FLUX_CTX_EXECUTION_DATE",
                     "FLUX_CTX_TRY_NUMBER")
DEFAULT_GRACE_SECONDS = 5.0


@dataclass
class CommandResult:
    """How a command ended: its exit code and the last line it printed (None if it printed nothing)."""

    exit_code: int
    last_line: str | None


class BashCommandMixin:
    """Runs ``self.bash_command`` with bash; mixed into a :class:`flux.baseoperator.BaseOperator`.

    The command runs in its own process group, in ``cwd`` (default: a fresh temporary folder), its
    output is logged line by line as it comes, and when it ends (or the task is stopped) nothing it
    started is left running.
    """

    bash_command: str
    env: Mapping[str, Any] | None
    append_env: bool
    cwd: str | None
    output_encoding: str
    #: the command of the current try, while it runs (so that ``on_kill`` can stop it)
    _running: RunningCommand | None = None

    def _set_bash_arguments(self, task_id: str, bash_command: str, env: Mapping[str, Any] | None,
                            append_env: bool, cwd: str | None, output_encoding: str) -> None:
        """Check and store the arguments (an error here is a mistake in the DAG file)."""
        where = f"task {task_id!r}"
        if not isinstance(bash_command, str) or not bash_command.strip():
            raise DagDefinitionError(f"{where}: bash_command must be a non-empty string")
        if env is not None and not isinstance(env, Mapping):
            raise DagDefinitionError(f"{where}: env must be a dict of strings, got {type(env).__name__}")
        if cwd is not None and not isinstance(cwd, (str, os.PathLike)):
            raise DagDefinitionError(f"{where}: cwd must be a path, got {type(cwd).__name__}")
        try:
            codecs.lookup(output_encoding)
        except (LookupError, TypeError):
            raise DagDefinitionError(f"{where}: unknown output_encoding {output_encoding!r}") from None
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.output_encoding = output_encoding

    def build_environment(self, context: dict[str, Any]) -> dict[str, str]:
        """The command's environment: ``env`` over (or instead of) ``os.environ``, plus FLUX_CTX_*."""
        given: dict[str, str] = {}
        for key, value in (self.env or {}).items():
            if value is None or not isinstance(value, (str, int, float, os.PathLike)):
                raise TaskFailed(f"env value of {key!r} must be a string, got {type(value).__name__}")
            given[str(key)] = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        if self.append_env or self.env is None:
            environment = {**os.environ, **given}
        else:
            environment = given
        ti = context.get("ti")
        execution_date = context.get("execution_date")
        environment.update({
            "FLUX_CTX_DAG_ID": getattr(context.get("dag"), "dag_id", "") or "",
            "FLUX_CTX_TASK_ID": getattr(context.get("task"), "task_id", "") or "",
            "FLUX_CTX_EXECUTION_DATE": execution_date.isoformat() if execution_date else "",
            "FLUX_CTX_TRY_NUMBER": str(getattr(ti, "try_number", "") or ""),
        })
        return environment

    def run_bash_command(self, context: dict[str, Any]) -> CommandResult:
        """Run the (rendered) command once, logging its output; stop its whole group on the way out.

        A kill request (execution_timeout, SIGTERM, the instance cleared) raises inside the read
        loop; the ``finally`` then stops the group even if ``on_kill`` is never called.
        """
        from flux import tasklog

        log = self.log  # type: ignore[attr-defined]
        bash = _find_bash(os.environ.get("PATH"))
        if not os.path.exists(bash):
            raise TaskFailed("cannot run the command: bash is not installed on this machine")
        environment = self.build_environment(context)
        command = self.bash_command
        with _working_directory(self.cwd) as cwd:
            log.info("Running command: %s", tasklog.mask(command))
            try:
                running = RunningCommand([bash, "-c", command], environment, cwd)
            except OSError as exc:
                raise TaskFailed(f"cannot start bash in {cwd}: {exc.strerror or exc}") from None
            self._running = running
            last_line: str | None = None
            try:
                log.info("Command STDOUT:")
                for line in running.lines(self.output_encoding):
                    log.info("%s", line)
                    last_line = line
                exit_code = running.wait()
            finally:
                leftover = running.stop(self.grace_seconds())
                running.close()
                self._running = None
            if leftover:
                log.warning("Stopped processes the command left running in the background")
        return CommandResult(exit_code, last_line)

    def on_kill(self) -> None:
        """Stop the running command's whole process group (SIGTERM, then SIGKILL after the grace)."""
        running = self._running
        if running is not None:
            running.stop(self.grace_seconds())

    def grace_seconds(self) -> float:
        """``[core] killed_task_grace_seconds``: how long a stopped command gets before SIGKILL."""
        from flux.config import get_config

        return float(get_config().get("core", "killed_task_grace_seconds", DEFAULT_GRACE_SECONDS))


@functools.lru_cache(maxsize=8)
def _find_bash(search_path: str | None) -> str:
    """bash's path on ``search_path`` (looked up once per PATH: a worker runs thousands of commands)."""
    return shutil.which("bash", path=search_path) or "/bin/bash"


@contextlib.contextmanager
def _working_directory(cwd: str | None) -> Iterator[str]:
    """``cwd`` checked to exist, or this process's scratch folder (emptied afterwards) when None."""
    if cwd is None:
        folder = _scratch_folder()
        try:
            yield folder
        finally:
            _empty(folder)
        return
    if not os.path.exists(cwd):
        raise TaskFailed(f"cwd {cwd!r} does not exist")
    if not os.path.isdir(cwd):
        raise TaskFailed(f"cwd {cwd!r} is not a directory")
    yield cwd


SCRATCH_PREFIX = "flux-bash-"
_scratch: tuple[int, str] | None = None


def _scratch_folder() -> str:
    """An empty folder owned by this process, made once and reused by every command it runs.

    Making and removing a fresh temporary folder per command costs more than a small command
    itself; an emptied folder is just as clean. Folders of processes that are gone (a worker
    that was killed) are removed when the next one is made.
    """
    global _scratch
    pid = os.getpid()
    if _scratch is not None and _scratch[0] == pid and os.path.isdir(_scratch[1]):
        return _scratch[1]
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        if name.startswith(SCRATCH_PREFIX) and name[len(SCRATCH_PREFIX):].isdigit():
            owner = int(name[len(SCRATCH_PREFIX):])
            if owner != pid and not _alive(owner):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    folder = os.path.join(root, f"{SCRATCH_PREFIX}{pid}")
    shutil.rmtree(folder, ignore_errors=True)  # left by an earlier process with this pid
    os.mkdir(folder, 0o700)
    _scratch = (pid, folder)
    return folder


def _empty(folder: str) -> None:
    """Remove whatever the command left in ``folder`` (one directory read when it left nothing)."""
    try:
        with os.scandir(folder) as entries:
            dirty = any(True for _ in entries)
    except FileNotFoundError:
        return
    if dirty:
        shutil.rmtree(folder, ignore_errors=True)
        os.mkdir(folder, 0o700)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
