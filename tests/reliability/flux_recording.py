"""Run the ``flux`` command line with one extra listener plugin that records state changes.

Used by the reliability tests as ``python flux_recording.py scheduler -sd DAGS``: exactly the
``flux`` entry point, plus a ``flux_task_instance_state_changed`` listener that appends one line
per committed change to the file named by ``FLUX_TEST_TRANSITIONS``::

    <unix time> <pid> <task_id> <try_number> <previous state> <new state>

Worker processes are forked from this one, so they record their own changes too. That is how a
test sees every state a task instance went through, not only the last one.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from flux.hookspecs import hookimpl
from flux.plugins import PluginInfo, get_plugin_manager


class TransitionRecorder:
    """Appends each state change to ``$FLUX_TEST_TRANSITIONS`` (one short line: an atomic append)."""

    @hookimpl
    def flux_task_instance_state_changed(self, ti: Any, previous: str | None, state: str | None) -> None:
        line = f"{time.time():.6f} {os.getpid()} {ti.task_id} {ti.try_number} {previous} {state}\n"
        with open(os.environ["FLUX_TEST_TRANSITIONS"], "a", encoding="utf-8") as handle:
            handle.write(line)


def main() -> None:
    get_plugin_manager().register(
        TransitionRecorder(), PluginInfo("transition-recorder", __name__, "flux-tests", "0"))
    from flux.cli.main import main as flux_main

    flux_main(sys.argv[1:])


if __name__ == "__main__":
    main()
