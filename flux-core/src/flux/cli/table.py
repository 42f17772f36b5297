"""Plain-text tables for the CLI (cells may span several lines)."""

from __future__ import annotations

from collections.abc import Sequence


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render ``rows`` under ``headers`` as aligned columns; ``\\n`` in a cell makes more lines."""
    cells = [[str(c) if c is not None else "" for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], *(len(line) for line in cell.split("\n")))
    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=False)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    for row in cells:
        split = [cell.split("\n") for cell in row]
        for i in range(max(len(s) for s in split)):
            out.append(line([s[i] if i < len(s) else "" for s in split]))
    return "\n".join(out)
