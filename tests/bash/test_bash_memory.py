"""100 MB of output streams through the task log without the process's memory growing with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from flux import tasklog

from .conftest import DATE, write_dag_file

OUTPUT_BYTES = 100_000_000
LINE = "0123456789abcdef"
#: growth of the peak resident size allowed while the 100 MB go through (a flat stream needs ~0)
MAX_GROWTH_BYTES = 50 * 1024 * 1024


@pytest.mark.slow
def test_100_mb_of_output_streams_in_flat_memory(tmp_path):
    dag_file = write_dag_file(tmp_path, "big_dag", f"""
        BashOperator(task_id="warm_up", bash_command="echo warm")
        BashOperator(task_id="flood", bash_command="yes {LINE} | head -c {OUTPUT_BYTES}")
    """)
    # A process of its own, so that its peak resident size (ru_maxrss) measures this run alone;
    # the warm-up task loads everything a run needs before the baseline is taken.
    script = tmp_path / "measure.py"
    script.write_text(textwrap.dedent(f"""
        import json, resource
        from datetime import datetime
        from flux.dagbag import get_dag_from_file
        from flux.taskrunner import run_task_instance

        when = datetime({DATE.year}, {DATE.month}, {DATE.day})
        dag = get_dag_from_file({str(dag_file)!r}, "big_dag")
        assert run_task_instance(dag.get_task("warm_up"), when).state == "success"
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = run_task_instance(dag.get_task("flood"), when)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"state": result.state, "value": result.return_value,
                          "growth_kb": after - before}}))
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["state"] == "success"
    # 100_000_000 = 5_882_352 full lines of 17 bytes + the 16 bytes of an unfinished last line
    assert report["value"] == LINE
    assert report["growth_kb"] * 1024 < MAX_GROWTH_BYTES, report

    full_lines, remainder = divmod(OUTPUT_BYTES, len(LINE) + 1)
    expected = full_lines + (1 if remainder else 0)
    log_path = tasklog.log_path("big_dag", "flood", DATE, 1)
    with open(log_path, encoding="utf-8") as log:
        logged = sum(1 for line in log if line.endswith(f" - {LINE}\n"))
    assert logged == expected
