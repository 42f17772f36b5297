"""Flux plugin for MySQL and MariaDB: MySqlHook, MySqlOperator, a SQL sensor and transfers."""
