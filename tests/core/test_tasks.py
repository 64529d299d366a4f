"""piyasa.tasks: bounding and stopping work never loses the caller's own cancellation."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from piyasa.tasks import wait_for
from tests.waiting import finishes

ROOT = Path(__file__).resolve().parents[2]


async def test_a_cancel_arriving_as_the_work_completes_still_cancels_the_caller() -> None:
    """The race that hung CI: the awaited work completes in the same loop iteration as the
    caller is cancelled. ``asyncio.wait_for`` of Python 3.11 returns the result (the loop
    runs on and whoever stops it hangs); ``piyasa.tasks.wait_for`` raises CancelledError."""
    work: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            await wait_for(work if rounds == 0 else asyncio.sleep(0.01), 10)
            rounds += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)  # the loop waits on the work
    work.set_result("renewed")
    task.cancel()  # same iteration: the work is done, the cancel is pending
    with pytest.raises(asyncio.CancelledError):
        await finishes(task, "the cancelled loop to end")
    assert rounds == 0


async def test_time_running_out_cancels_the_work_and_raises_timeout_error() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        await wait_for(slow(), 0.01)
    assert cancelled.is_set()
    assert await wait_for(asyncio.sleep(0, "done"), None) == "done"
    assert await wait_for(asyncio.sleep(0, "done"), 5) == "done"


def test_ruff_refuses_asyncio_wait_for_in_this_tree() -> None:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert exe is not None, "ruff is part of the `test` extra"
    snippet = "import asyncio\n\n\nasync def f() -> None:\n    await asyncio.wait_for(g(), 1)\n"
    result = subprocess.run(
        [exe, "check", "--stdin-filename", "piyasa/example.py", "-"],
        cwd=ROOT,
        input=snippet,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "TID251" in result.stdout, result.stdout
    assert "piyasa.tasks.wait_for" in result.stdout


async def test_a_stopped_task_that_had_failed_is_logged_by_type_not_raised(caplog) -> None:  # type: ignore[no-untyped-def]
    from piyasa.tasks import cancel_and_wait

    async def fails() -> None:
        raise RuntimeError("token 123:SECRET")

    task = asyncio.create_task(fails(), name="worker-7")
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert "worker-7" in caplog.text and "RuntimeError" in caplog.text
    assert "SECRET" not in caplog.text
