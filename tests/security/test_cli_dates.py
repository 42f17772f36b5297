"""Fuzzing the command line's dates: any string gives a date or one clear error, never a traceback.

``flux.dates.parse_date`` and the ``DATE`` parameter type of the CLI get random text, text shaped
like ISO dates (with out-of-range fields, extreme years and time zone offsets), and the whole
``flux run DAG TASK <date>`` command gets the same strings. The examples are derandomized, so
the test is stable.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flux.cli.options import DATE
from flux.dates import parse_date
from flux.exceptions import InvalidDateError

DATE_SHAPED = st.from_regex(
    r"[+-]?\d{1,6}-\d{1,3}-\d{1,3}([T ]\d{1,3}(:\d{1,3}(:\d{1,3}([.,]\d{1,9})?)?)?)?"
    r"(Z|[+-]\d{1,2}(:?\d{1,2})?)?", fullmatch=True)
TEXTS = st.one_of(st.text(max_size=40), DATE_SHAPED)
EDGES = [
    "", " ", "\x00", "2024-13-01", "2024-02-30", "2024-01-01T25:00", "0000-01-01",
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.999999-23:59",
    "2024-01-01T00:00:00+24:00", "20240101", "2024-W01-1", "2024-001", "１２３４-01-01", "2024-01-01Z",
    "--", "-1", "nan", "today", "2024-01-01 00:00:00 UTC",
]
SETTINGS = settings(max_examples=500, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def with_edges(test):  # type: ignore[no-untyped-def]
    for edge in EDGES:
        test = example(edge)(test)
    return test


@SETTINGS
@with_edges
@given(TEXTS)
def test_parse_date_gives_a_utc_date_or_invalid_date_error(text: str) -> None:
    try:
        value = parse_date(text)
    except InvalidDateError as exc:
        message = str(exc)
        assert message.startswith("invalid date") and "\n" not in message
    else:
        assert value.utcoffset() == timedelta(0)


@SETTINGS
@with_edges
@given(TEXTS)
def test_the_date_parameter_raises_only_click_usage_errors(text: str) -> None:
    try:
        DATE.convert(text, None, None)
    except click.BadParameter as exc:
        assert "invalid date" in exc.format_message()


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@with_edges
@given(TEXTS)
def test_flux_run_with_any_date_fails_cleanly(flux_env: Path, text: str) -> None:
    from flux.cli.main import cli

    (flux_env / "dags").mkdir(exist_ok=True)
    # "--": a string starting with "-" is the date argument, not an option
    result = CliRunner().invoke(cli, ["run", "no_such_dag", "no_such_task", "--", text])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    try:
        parse_date(text)
    except InvalidDateError:
        assert result.exit_code == 2, result.output
        assert "invalid date" in result.output
    else:  # a valid date: the DAG is what is missing (a FluxError: one line, exit code 1)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ") and "no_such_dag" in result.output
