"""Tables of the ``smg`` command: boxed for a person at a terminal, plain rows for a pipe or a file.

On a terminal a cell folds when the screen is narrow. Anywhere else (``smg mcp tools | grep ...``,
``> file``) each row is one line with every value whole: the header line, then the values padded to line
up, two spaces apart. A line break inside a value becomes ``", "`` and a tab a space there.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text


def print_table(
    console: Console, columns: Sequence[str], rows: Sequence[Sequence[str]], *, header: bool = True
) -> None:
    """Print ``rows`` (already made printable) under ``columns`` on ``console``."""
    if console.is_terminal:
        table = Table(show_header=header)
        for column in columns:
            table.add_column(column, overflow="fold")  # nothing is cut off on a narrow terminal
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))  # Text: a "[...]" in a value is not markup
        console.print(table)
        return
    lines = [list(columns)] if header else []
    lines += [[cell.replace("\n", ", ").replace("\t", " ") for cell in row] for row in rows]
    widths = [max((cell_len(line[i]) for line in lines), default=0) for i in range(len(columns))]
    out = console.file
    for line in lines:
        padded = [cell + " " * (width - cell_len(cell)) for cell, width in zip(line, widths, strict=True)]
        out.write("  ".join(padded).rstrip() + "\n")
    out.flush()
