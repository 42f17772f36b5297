"""A tour of Flux DAG writing: templates with params and macros, retries, a sensor in reschedule
mode, and a value passed from a Python task to a templated one through XCom.

Needs flux-core and flux-bash. Try it::

    flux dags show tutorial -sd examples/dags
    flux backfill tutorial -sd examples/dags -s 2024-01-01 -e 2024-01-02
"""

import os
import tempfile
from datetime import datetime, timedelta

from flux import DAG
from flux.operators import BashOperator, FileSensor, PythonOperator

# Where the first task writes the file the sensor waits for (one file per execution date).
WORK_FOLDER = os.path.join(tempfile.gettempdir(), "flux_tutorial")

default_args = {
    "owner": "flux",
    "depends_on_past": False,
    # A failed try is tried again twice, 30 s then 60 s later (never more than 5 minutes apart).
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}


def count_words(path, ti, ds):
    """Count the words of the day's file; the returned number becomes the XCom return_value."""
    with open(path, encoding="utf-8") as handle:
        words = len(handle.read().split())
    print(f"{path} has {words} words on {ds} (try {ti.try_number})")
    return words


with DAG(
    dag_id="tutorial",
    description="Templates, retries, a reschedule-mode sensor and XCom",
    default_args=default_args,
    start_date=datetime(2024, 1, 1),
    schedule_interval="@daily",
    catchup=False,
    tags=["example"],
    params={"folder": WORK_FOLDER, "greeting": "hello from flux"},
) as dag:
    # Templated fields see params, ds/ds_nodash/execution_date, macros, dag, task and ti.
    write_file = BashOperator(
        task_id="write_file",
        bash_command=(
            "mkdir -p '{{ params.folder }}' && "
            "echo '{{ params.greeting }} for {{ ds }}' > '{{ params.folder }}/{{ ds_nodash }}.txt'"
        ),
    )

    # Reschedule mode: between pokes the sensor gives its worker slot back.
    wait_for_file = FileSensor(
        task_id="wait_for_file",
        filepath="{{ params.folder }}/{{ ds_nodash }}.txt",
        mode="reschedule",
        poke_interval=10,
        timeout=timedelta(hours=1),
    )

    # op_kwargs are templated; ti and ds are passed because count_words names them.
    count = PythonOperator(
        task_id="count_words",
        python_callable=count_words,
        op_kwargs={"path": "{{ params.folder }}/{{ ds_nodash }}.txt"},
    )

    # The XCom pushed by count_words, pulled in a template.
    report = BashOperator(
        task_id="report",
        bash_command=(
            "echo \"{{ ti.xcom_pull(task_ids='count_words') }} words on "
            "{{ macros.ds_format(ds, '%Y-%m-%d', '%d %B %Y') }}; "
            "next week is {{ macros.ds_add(ds, 7) }}\""
        ),
    )

    write_file >> wait_for_file >> count >> report
