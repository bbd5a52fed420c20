"""Reading a line at a terminal prompt without holding up Ctrl-C.

`asyncio.to_thread(input)` reads in the default executor, whose threads Python joins at exit: after
Ctrl-C the process waited for one more Enter. The read here runs in a daemon thread instead, so an
interrupted prompt ends the process at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


async def ask(read: Callable[[str], str], prompt: str) -> str:
    """`read(prompt)` (e.g. `input`), awaited; its EOFError and other errors are raised here."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def settle(result: str | None, error: BaseException | None) -> None:
        if answer.done():
            return  # the prompt was given up (Ctrl-C)
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(result or "")

    def work() -> None:
        try:
            line = read(prompt)
        except BaseException as err:  # EOFError, and whatever else `read` raises, goes to the awaiter
            loop.call_soon_threadsafe(settle, None, err)
        else:
            loop.call_soon_threadsafe(settle, line, None)

    threading.Thread(target=work, name="console prompt", daemon=True).start()
    return await answer
