"""The tutorial's ``example_2``: three echo tasks, then one that runs after all of them.

Needs flux-core and flux-bash only::

    flux backfill example_2 -sd examples/dags -s 2014-09-01 -e 2014-09-03
    flux run example_2 runme_1 2014-09-01 -sd examples/dags/example2.py
"""

from datetime import datetime, timedelta

from flux import DAG
from flux.operators import BashOperator

default_args = {
    "owner": "max",
    "start_date": datetime(2014, 9, 1),
}

# runme_1 prints "1: 2014-09-01 00:00:00" for the run of 2014-09-01.
ECHO_DATE = "echo \"{{ params.number }}: {{ execution_date.strftime('%Y-%m-%d %H:%M:%S') }}\""

with DAG(dag_id="example_2", default_args=default_args,
         schedule_interval=timedelta(days=1)) as dag:
    run_after_loop = BashOperator(task_id="run_after_loop", bash_command="echo 'all done: {{ ds }}'")
    for number in range(3):
        runme = BashOperator(task_id=f"runme_{number}", bash_command=ECHO_DATE,
                             params={"number": number})
        runme >> run_after_loop
