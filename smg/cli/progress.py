"""A spinner on stderr for ``smg`` operations that take more than a second, when stderr is a terminal.

Nothing is shown when stderr is a pipe or a file, and the spinner line is erased when the operation ends,
so what a command prints on stdout and stderr is the same with or without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

SHOW_AFTER_SECS = 1.0


@asynccontextmanager
async def progress(message: str, *, console: Console | None = None) -> AsyncIterator[None]:
    """Show ``message`` with a spinner once the body has run for `SHOW_AFTER_SECS`, until it ends."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    # No redirection of sys.stdout/sys.stderr: output printed meanwhile must go where it was going.
    live = Live(
        Spinner("dots", text=Text(message)),  # Text: a "[" in a name is not markup
        console=console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
        refresh_per_second=10,
    )

    async def show() -> None:
        await asyncio.sleep(SHOW_AFTER_SECS)
        live.start()

    shown = asyncio.create_task(show())
    try:
        yield
    finally:
        shown.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await shown
        live.stop()
