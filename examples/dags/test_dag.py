"""The tutorial's ``test_dag``: truncate a MySQL table, then insert into it.

Needs flux-mysql and a connection named ``local_mysql`` (for example
``FLUX_CONN_LOCAL_MYSQL=mysql://root@127.0.0.1:3306/test``) holding a table ``tmp``.
"""

from datetime import datetime

from flux import DAG
from flux.operators import MySqlOperator

# Setting some default operator parameters
default_args = {
    "owner": "max",
    "mysql_dbid": "local_mysql",
}

# Initializing a directed acyclic graph
dag = DAG(dag_id="test_dag", start_date=datetime(2014, 9, 1))

# MySQL Operator
sql = "TRUNCATE TABLE tmp;"
mysql_fisrt = MySqlOperator(task_id="mysql_fisrt", sql=sql, **default_args)
dag.add_task(mysql_fisrt)

sql = """
INSERT INTO tmp
SELECT 1;
"""
mysql_second = MySqlOperator(task_id="mysql_second", sql=sql, **default_args)
dag.add_task(mysql_second)
mysql_second.set_upstream(mysql_fisrt)

if __name__ == "__main__":
    # As in the tutorial: show the tree, then run the first of September.
    dag.tree_view()
    dag.run(start_date=datetime(2014, 9, 1), end_date=datetime(2014, 9, 1))
