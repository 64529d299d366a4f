"""Waiting in tests: for a condition, never on a stopwatch.

A test waits for what it needs (a message, a state, a port, a line of output) for as long
as that takes. A slow machine (importing aiogram alone can take 8 s of CPU; four xdist
workers share two cores) may only make a test slower, never fail it. The one limit is
``HANG_S``: reaching it means something is stuck, and the wait then fails with an
AssertionError naming what it waited for (and the process output, where there is one).
Speed targets belong in benchmarks (`piyasa bench`), not in tests.

- ``wait_until(check, what)`` polls a plain function (subprocesses, files, sockets).
- ``await until(check, what)`` polls a function or coroutine function from async code.
- ``await finishes(awaitable, what)`` awaits something that should end by itself.
- ``PatientSandbox`` is the Telegram sandbox whose waits default to ``HANG_S``.

Short timeouts that are the point of a test (a client timeout that must fire, a
long-poll parameter, a health probe's timeout) are protocol values, not waits: they stay.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from piyasa.sandbox.telegram import TelegramSandbox

HANG_S = 300.0
"""How long a wait may take before it is a hang. 120 s was not enough: with two CPU hogs
and other test runs sharing two cores, `piyasa up` took over 120 s to answer /healthz.
pytest's own per-test timeout (pyproject.toml) is well above it, so this clear failure
comes first."""

T = TypeVar("T")
Output = Callable[[], str] | str | None


def hang(what: str, ceiling: float = HANG_S, output: Output = None) -> AssertionError:
    """The failure of a wait that reached its ceiling."""
    message = f"still waiting for {what} after {ceiling:.0f} s (the hang ceiling)"
    text = output() if callable(output) else output
    if text:  # the process output, or whatever else shows where it got stuck
        message += f":\n{text[-3000:]}"
    return AssertionError(message)


def wait_until(
    check: Callable[[], T],
    what: str,
    *,
    ceiling: float = HANG_S,
    interval: float = 0.05,
    output: Output = None,
) -> T:
    """Call ``check`` until it returns something truthy, and return that.

    ``check`` may raise (say, "the process exited") to stop waiting at once.
    """
    deadline = time.monotonic() + ceiling
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise hang(what, ceiling, output)
        time.sleep(interval)


async def until(
    check: Callable[[], Any],
    what: str,
    *,
    ceiling: float = HANG_S,
    interval: float = 0.02,
    output: Output = None,
) -> Any:
    """Call ``check`` (plain or async) until it returns something truthy, and return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ceiling
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise hang(what, ceiling, output)
        await asyncio.sleep(interval)


async def finishes(
    awaitable: Awaitable[T], what: str, *, ceiling: float = HANG_S, output: Output = None
) -> T:
    """Await ``awaitable``; fail with ``what`` if it is still running after ``ceiling``.

    A TimeoutError raised by the awaitable itself passes through unchanged.
    """
    scope = asyncio.timeout(ceiling)
    try:
        async with scope:
            return await awaitable
    except TimeoutError:
        if scope.expired():
            raise hang(what, ceiling, output) from None
        raise


class PatientSandbox(TelegramSandbox):
    """The Telegram sandbox for tests: its waits give up only on a hang, with an
    AssertionError. (The product API's default is 5 s, which a loaded machine can miss.)"""

    async def wait_for_message(
        self,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        chat_id: int | None = None,
        bot_id: int | None = None,
        timeout: float = HANG_S,  # noqa: ASYNC109 - the parent's signature
        edits: bool = False,
        after: int | None = None,
    ) -> dict[str, Any]:
        try:
            return await super().wait_for_message(predicate, chat_id, bot_id, timeout, edits, after)
        except TimeoutError as exc:
            what = "an edit or message" if edits else "a message"
            raise AssertionError(
                f"no bot {what} (chat {chat_id}, bot {bot_id}) after {timeout:.0f} s: {exc}"
            ) from None

    async def wait_for_poller(self, bot_id: int, timeout: float = HANG_S) -> None:  # noqa: ASYNC109
        try:
            await super().wait_for_poller(bot_id, timeout)
        except TimeoutError as exc:
            raise AssertionError(str(exc)) from None
