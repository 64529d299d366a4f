"""Stopping and bounding asyncio work without losing the caller's own cancellation.

Two idioms lose a cancellation aimed at the task that runs them, so a loop task survives
its own ``cancel()`` and runs on, and whoever awaits its end hangs:

* ``task.cancel(); with suppress(CancelledError): await task`` swallows a cancellation
  of the *caller* while it waits (the CI hang of ``tests/cluster/test_lease.py`` at
  pytest's 900 s timeout, 2026-11-30) — use :func:`cancel_and_wait`;
* ``asyncio.wait_for`` on Python 3.11 returns the inner result when the caller is
  cancelled in the same loop iteration as the inner work completes (CPython
  gh-86296, fixed in 3.12 by re-implementing it on ``asyncio.timeout``): a bot-lease
  loop cancelled while its renewal came back renewed forever (the CI hang of
  ``tests/cluster/test_spread.py`` at 900 s, 2026-12-01) — use :func:`wait_for`.
  ``ruff`` bans ``asyncio.wait_for`` in this tree (``TID251``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Future[object] | None) -> None:
    """Cancel ``task`` and wait until it has ended. Its result is dropped; an exception it
    ended with is logged (its type only: messages may hold secrets) and not raised; a
    cancellation of the caller while it waits propagates (``asyncio.CancelledError``)
    instead of being mistaken for the task's own."""
    if task is None:
        return
    task.cancel()
    if not task.done():
        await asyncio.wait({task})
    if not task.cancelled():
        exc = task.exception()  # retrieved: no "exception was never retrieved" at exit
        if exc is not None:
            name = task.get_name() if isinstance(task, asyncio.Task) else "future"
            log.warning("stopped task %s had failed: %s", name, type(exc).__name__)


async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109
    """Await ``awaitable`` for at most ``timeout`` seconds (``None``: no limit), as
    ``asyncio.wait_for`` does on Python ≥ 3.12: raises ``TimeoutError`` when time runs
    out (the awaited work is cancelled first), and a cancellation of the caller always
    propagates as ``asyncio.CancelledError``, even when the work finished at the same
    moment."""
    async with asyncio.timeout(timeout):
        return await awaitable
