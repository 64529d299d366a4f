"""Run only the fleet in the foreground: ``python -m piyasa.runtime``.

Used by the fault tests (a process to SIGKILL) and handy when operating the fleet apart
from the admin surfaces. Settings come from the environment as for ``piyasa up``;
``PIYASA_FLEET_OVERRIDES`` may hold a JSON object of settings-table overrides and
``PIYASA_FLEET_RECEIVE`` the receive mode (polling, webhook, off). With
``PIYASA_FLEET_WAIT_STDIN=1`` the process imports and connects, then waits for a line on
stdin before starting the fleet: a fault test can have the "restarted" process warm while
the first one still runs, and start it the moment the first one is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys

from piyasa.config import load_settings
from piyasa.logs import setup_logging
from piyasa.runtime.fleet import Fleet
from piyasa.services import Services


async def main() -> int:
    settings = load_settings()
    setup_logging(settings.log_level, [settings.secret_key.reveal()])
    services = Services.build(settings)
    overrides = json.loads(os.environ.get("PIYASA_FLEET_OVERRIDES") or "{}")
    fleet = Fleet(
        services,
        receive=os.environ.get("PIYASA_FLEET_RECEIVE") or None,
        settings_overrides=overrides,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if os.environ.get("PIYASA_FLEET_WAIT_STDIN") == "1":
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():  # EOF: whoever wanted to start us is gone
            await services.close()
            return 0
    await fleet.start()
    print(f"fleet running: instance {fleet.instance}", flush=True)
    try:
        await stop.wait()
    finally:
        await fleet.stop()
        await services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
