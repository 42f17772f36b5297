"""Flux's metadata database on MariaDB, looked at through MySqlHook (the seed's first query)."""

from __future__ import annotations

import pytest

from .conftest import HOST, PORT, USER, MySqlDatabase


def test_information_schema_query_lists_fluxs_tables(mysql_db: MySqlDatabase,
                                                      monkeypatch: pytest.MonkeyPatch):
    from flux import config, db
    from flux.connections import ConnectionInfo, add_connection, get_connection
    from flux.hooks import MySqlHook
    from flux.models import Base

    monkeypatch.setenv("FLUX_DATABASE_URL", mysql_db.url)
    monkeypatch.delenv("FLUX_CONN_LOCAL_MYSQL")
    config.reset_config()
    db.dispose_all()
    # The connection is stored in the metadata database it points at, password encrypted.
    add_connection(ConnectionInfo(conn_id="metadata", conn_type="mysql", host=HOST, port=PORT, login=USER,
                                  password="", schema=mysql_db.name))
    assert get_connection("metadata").source == "db"

    sql = f"""
    SELECT table_schema, table_name
    FROM information_schema.tables
    WHERE table_schema = '{mysql_db.name}'
    """
    records = MySqlHook(mysql_dbid="metadata").get_records(sql)
    tables = {name for _, name in records}
    assert {schema for schema, _ in records} == {mysql_db.name}
    assert "task_instance" in tables
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
    stored = MySqlHook(mysql_dbid="metadata").get_records(
        "SELECT conn_id, conn_type, host FROM connection WHERE conn_id = %s", ("metadata",))
    assert stored == (("metadata", "mysql", HOST),)
