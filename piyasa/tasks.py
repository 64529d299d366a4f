"""Stopping asyncio tasks without swallowing the caller's own cancellation.

The idiom ``task.cancel(); with suppress(CancelledError): await task`` also swallows a
cancellation aimed at the *caller* while it waits: a loop task that stops a helper task
that way survives its own ``cancel()`` and runs on, and whoever awaits it hangs (the CI
hang of ``tests/cluster/test_lease.py`` at pytest's 900 s timeout, 2026-11-30).
"""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Future[object] | None) -> None:
    """Cancel ``task`` and wait until it has ended. Its result or exception is collected
    and dropped; a cancellation of the caller while it waits propagates
    (``asyncio.CancelledError``) instead of being mistaken for the task's own."""
    if task is None:
        return
    task.cancel()
    if not task.done():
        await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" at exit
