"""The LOAD DATA LOCAL INFILE path's pieces: the escaped row format and the named-pipe writer."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flux_mysql.loaddata import _PipeWriter, encode_rows


def test_rows_are_encoded_in_the_servers_escaped_format():
    rows = [["1", "plain", "🚀"], ["2", None, "tab\there"], ["3", "line\nbreak\r", "back\\slash\x00"],
            ["4", "\\N", ""]]
    assert b"".join(encode_rows(iter(rows))).decode("utf-8") == (
        "1\tplain\t🚀\n"
        "2\t\\N\ttab\\there\n"
        "3\tline\\nbreak\\r\tback\\\\slash\\0\n"
        "4\t\\\\N\t\n"
    )


def test_large_input_comes_in_bounded_chunks():
    rows = ([str(i), "x" * 100] for i in range(20_000))
    chunks = list(encode_rows(rows))
    assert len(chunks) > 5
    assert max(len(chunk) for chunk in chunks[:-1]) < 512 * 1024
    assert b"".join(chunks).count(b"\n") == 20_000


def test_a_writer_nobody_reads_from_is_released(tmp_path: Path):
    # The statement failed before the server asked for the data: the writer must not hang.
    fifo = str(tmp_path / "rows.tsv")
    os.mkfifo(fifo)
    writer = _PipeWriter(fifo, encode_rows(iter([["x" * 1000]] * 10_000)))
    writer.start()
    done = threading.Event()
    threading.Thread(target=lambda: (writer.release(), done.set()), daemon=True).start()
    assert done.wait(30), "release() hung"
    assert not writer.is_alive() and writer.error is None


def test_a_reader_that_stops_early_ends_the_writer(tmp_path: Path):
    fifo = str(tmp_path / "rows.tsv")
    os.mkfifo(fifo)
    writer = _PipeWriter(fifo, encode_rows(iter([["y" * 1000]] * 10_000)))
    writer.start()
    with open(fifo, "rb") as reader:
        assert reader.read(10) == b"y" * 10
    writer.join(30)
    assert not writer.is_alive() and writer.error is None
