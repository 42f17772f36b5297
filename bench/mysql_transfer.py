"""Extract and load throughput of ``MySqlHook`` on a real MySQL/MariaDB server, and peak memory.

A scratch database gets a table of ``--rows`` rows (1 million by default: an id, a name, an
amount, a timestamp and a nullable note). Then, each in a fresh Python process so that its peak
resident memory is its own, the runner measures:

* ``to_csv``: the table extracted to a CSV file (unbuffered cursor);
* ``load_csv insert``: that file loaded into an empty table with batched INSERTs;
* ``load_csv local_infile``: the same with ``LOAD DATA LOCAL INFILE``;
* ``mysql_to_mysql``: ``MySqlToMySqlOperator``'s copy of the table into another one.

One line per measurement::

    to_csv: 1000000 rows in 7.54 s = 132,599 rows/s; peak RSS 43.2 MiB (36.2 MiB before the work)

The scratch database is dropped at the end. Run it where flux-core and flux-mysql are installed
from this repository (``nox -s bench``); ``--url`` names the server (root on 127.0.0.1 by default).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

DEFAULT_URL = "mysql://root@127.0.0.1:3306"
MEASUREMENTS = ("to_csv", "load_csv insert", "load_csv local_infile", "mysql_to_mysql")
TABLE_DDL = (
    "CREATE TABLE {name} (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, amount DECIMAL(12, 2), "
    "created DATETIME NOT NULL, note VARCHAR(255) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
)


def rss_mib() -> float:
    """The peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hook_for(url: str, database: str, local_infile: bool = False) -> Any:
    """A MySqlHook on ``database`` of the server at ``url`` (through a FLUX_CONN_ variable)."""
    from flux.hooks import MySqlHook

    conn_id = "bench_local" if local_infile else "bench"
    query = "?local_infile=true" if local_infile else ""
    os.environ[f"FLUX_CONN_{conn_id.upper()}"] = f"{url.rstrip('/')}/{database}{query}"
    return MySqlHook(mysql_dbid=conn_id)


def prepare(url: str, database: str, rows: int) -> None:
    """Create the scratch database and fill table ``src`` with ``rows`` rows, server-side."""
    import pymysql

    from flux.connections import ConnectionInfo

    info = ConnectionInfo.from_uri("bench_admin", url)
    admin = pymysql.connect(host=info.host or "127.0.0.1", port=info.port or 3306, user=info.login or "root",
                            password=info.password or "", autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    admin.close()
    hook = hook_for(url, database)
    hook.run([
        "CREATE TABLE digits (d INT PRIMARY KEY)",
        "INSERT INTO digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)",
        TABLE_DDL.format(name="src"),
    ], autocommit=True)
    # Cross joins of the ten digits count up to `rows` without sending a row over the network.
    tens = max(1, len(str(max(rows - 1, 1))))
    joins = ", ".join(f"digits d{i}" for i in range(tens))
    number = " + ".join(f"d{i}.d * {10 ** i}" for i in range(tens))
    hook.run(
        f"INSERT INTO src SELECT n, CONCAT('name-', n), n / 100, "
        f"'2024-01-01' + INTERVAL (n MOD 86400) SECOND, IF(n MOD 7 = 0, NULL, CONCAT('note ', n)) "
        f"FROM (SELECT {number} AS n FROM {joins}) AS numbers WHERE n < {rows}",
        autocommit=True,
    )


def drop(url: str, database: str) -> None:
    hook_for(url, database).run(f"DROP DATABASE IF EXISTS `{database}`", autocommit=True)


def measure(kind: str, url: str, database: str, csv_path: str) -> dict[str, float]:
    """Run one measurement in this process; return its row count, seconds and memory."""
    from flux_mysql.transfers import MySqlToMySqlOperator

    hook = hook_for(url, database, local_infile=kind.endswith("local_infile"))
    started_rss = rss_mib()
    started = time.perf_counter()
    if kind == "to_csv":
        count = hook.to_csv("SELECT id, name, amount, created, note FROM src", csv_path)
    elif kind.startswith("load_csv"):
        table = "dst_local" if kind.endswith("local_infile") else "dst_insert"
        hook.run([f"DROP TABLE IF EXISTS {table}", TABLE_DDL.format(name=table)], autocommit=True)
        started = time.perf_counter()
        count = hook.load_csv(csv_path, table)
    elif kind == "mysql_to_mysql":
        hook.run(["DROP TABLE IF EXISTS dst_copy", TABLE_DDL.format(name="dst_copy")], autocommit=True)
        started = time.perf_counter()
        task = MySqlToMySqlOperator(task_id="copy", sql="SELECT * FROM src", source_mysql_dbid="bench",
                                    destination_mysql_dbid="bench", destination_table="dst_copy")
        count = task.execute({})
    else:
        raise SystemExit(f"unknown measurement {kind!r}")
    seconds = time.perf_counter() - started
    return {"rows": count, "seconds": seconds, "peak_rss": rss_mib(), "start_rss": started_rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("FLUX_BENCH_MYSQL_URL", DEFAULT_URL),
                        help="server to use, as a connection URI without a database")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=MEASUREMENTS, action="append", help="run only this (repeatable)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "DATABASE", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, database, csv_path = args.child
        print(json.dumps(measure(kind, args.url, database, csv_path)))
        return

    database = f"flux_bench_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="flux-bench-") as folder:
        csv_path = str(Path(folder) / "src.csv")
        os.environ.setdefault("FLUX_HOME", folder)  # the hook reads no metadata, but config wants a home
        try:
            started = time.perf_counter()
            prepare(args.url, database, args.rows)
            print(f"setup: {args.rows} rows generated server-side in {time.perf_counter() - started:.1f} s")
            wanted = args.only or list(MEASUREMENTS)
            for kind in MEASUREMENTS:
                loads_need_the_file = kind == "to_csv" and any(k.startswith("load") for k in wanted)
                if kind not in wanted and not loads_need_the_file:
                    continue
                child = subprocess.run(
                    [sys.executable, __file__, "--url", args.url, "--child", kind, database, csv_path],
                    capture_output=True, text=True, check=False, env=os.environ,
                )
                if child.returncode != 0:
                    print(f"{kind}: FAILED\n{child.stderr.strip()}")
                    continue
                result = json.loads(child.stdout.strip().splitlines()[-1])
                rate = result["rows"] / result["seconds"] if result["seconds"] else float("inf")
                print(f"{kind}: {int(result['rows'])} rows in {result['seconds']:.2f} s "
                      f"= {rate:,.0f} rows/s; "
                      f"peak RSS {result['peak_rss']:.1f} MiB "
                      f"({result['start_rss']:.1f} MiB before the work)")
        finally:
            drop(args.url, database)


if __name__ == "__main__":
    main()
